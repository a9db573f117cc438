"""callwright's SIP user agent: the sans-I/O core (``telephony.sip``) driven by asyncio.

Theory of operation
-------------------
``SipSockets`` hands each message in; it is parsed (a malformed one is counted, and a
request answered 400 statelessly when its Via can be read), checked
(``validate.check_request``) and given to the ``TransactionLayer`` with the loop's
monotonic time. The effects come back and are carried out at once: bytes to send,
messages for the UA core, timeouts. Transaction timers run on ``loop.call_at`` at the
layer's ``next_deadline``, rescheduled after every step.

The UA core:

1. Inbound INVITE: beyond ``max_calls`` live calls it is answered 503 with
   ``Retry-After``. Otherwise ``admit`` may refuse it with a status (unknown or blocked
   number); an RTP port is bound, the SDP offer answered (``sdp.answer_offer``, 488 if
   nothing fits), 180 sent when ``ring_seconds`` > 0, then 200 OK. ``on_call`` runs the
   conversation over the ``SipCall``; when it returns, the call is hung up.
2. CANCEL while ringing: 200 to the CANCEL, 487 to the INVITE, media released.
3. In-dialog: BYE ends the call (200); a re-INVITE is answered with the direction the
   new offer allows (hold, unhold); OPTIONS 200; NOTIFY carries our REFER's progress;
   INFO is accepted. A request with a To tag that matches no dialog gets 481.
4. Outbound ``dial``: INVITE with our offer; 401/407 retried once per challenge with
   digest credentials; 180/183 report ringing; 2xx is ACKed (and re-ACKed for each
   retransmission) and returns a ``SipCall``; 486/600 raise busy, 408/480/487 and no
   answer at all no-answer, anything else failed. A stop request or the ring timeout
   sends CANCEL.
5. A 2xx we sent that is never ACKed (Timer L) ends the call with BYE
   (RFC 3261 §13.3.1.4).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from typing import Any

from callwright.telephony.rtp_session import RtpSession
from callwright.telephony.sip.dialog import (
    Dialog,
    Dialogs,
    new_call_id,
    new_request,
    new_tag,
    retry_request,
)
from callwright.telephony.sip.digest import Credentials, answer_challenge
from callwright.telephony.sip.errors import SipParseError
from callwright.telephony.sip.headers import NameAddr, Via
from callwright.telephony.sip.message import (
    Request,
    Response,
    error_response,
    make_response,
    parse,
)
from callwright.telephony.sip.sdp import (
    AudioSession,
    LocalAudio,
    SessionDescription,
    accept_answer,
    answer_offer,
    make_offer,
    parse_sdp,
    with_direction,
)
from callwright.telephony.sip.transaction import (
    ClientTransaction,
    Deliver,
    Effect,
    Send,
    ServerTransaction,
    State,
    Terminated,
    Timeout,
    Timers,
    TransactionLayer,
)
from callwright.telephony.sip.uri import SipUri
from callwright.telephony.sip.validate import UA_METHODS, check_request, check_response
from callwright.telephony.sip_call import (
    Dialer,
    DialFailed,
    DialStatus,
    DialTarget,
    InboundCall,
    SipCall,
    TransferFailed,
    user_part,
)
from callwright.telephony.sip_transport import (
    Address,
    ListenAddress,
    SipSockets,
    TransportName,
    parse_listen,
)

log = logging.getLogger(__name__)

OnCall = Callable[[SipCall, InboundCall], Awaitable[None]]
Admit = Callable[[InboundCall], Awaitable[int | None]]
MediaFactory = Callable[[], RtpSession]

ALLOW = ", ".join(UA_METHODS)
BUSY = frozenset({486, 600})
NO_ANSWER = frozenset({408, 480, 487})
BYE_TIMEOUT = 5.0


@dataclass(slots=True)
class UaStats:
    """Counters for ``/metrics``."""

    malformed: int = 0  # did not parse
    rejected: int = 0  # parsed, refused by validation (400/405/415/...)
    dropped_responses: int = 0
    unknown_dialog: int = 0  # answered 481
    overload: int = 0  # answered 503
    calls_in: int = 0
    calls_out: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class UserAgent:
    """Answers and places calls (see the module's theory of operation)."""

    def __init__(
        self,
        *,
        listen: list[ListenAddress] | str,
        advertise: str,
        rtp_ports: tuple[int, int] = (10000, 20000),
        rtp_host: str | None = None,
        on_call: OnCall | None = None,
        admit: Admit | None = None,
        max_calls: int = 100,
        retry_after: int = 5,
        ring_seconds: float = 0.0,
        transfer_seconds: float = 30.0,
        user: str = "callwright",
        timers: Timers | None = None,
        media_factory: MediaFactory | None = None,
    ) -> None:
        self.listen = parse_listen(listen) if isinstance(listen, str) else listen
        self.advertise = advertise
        self.rtp_ports = rtp_ports
        self.rtp_host = rtp_host or "0.0.0.0"  # noqa: S104 - RTP comes from anywhere
        self.on_call = on_call
        self.admit = admit
        self.max_calls = max_calls
        self.retry_after = retry_after
        self.ring_seconds = ring_seconds
        self.transfer_seconds = transfer_seconds
        # How a live call reaches a transfer target (the trunks' owner sets it).
        self.dialer: Dialer | None = None
        self.user = user
        self.layer = TransactionLayer(timers or Timers())
        self.dialogs = Dialogs()
        self.stats = UaStats()
        self.sockets = SipSockets(self._on_message)
        self._media_factory = media_factory
        self.calls: dict[str, SipCall] = {}  # by Call-ID: ringing and answered
        self._ringing: dict[ServerTransaction, tuple[SipCall, asyncio.Task[None], str]] = {}
        self._answered: dict[ServerTransaction, SipCall] = {}
        self._waiters: dict[ClientTransaction, asyncio.Queue[Response | None]] = {}
        # The ACK we sent for each answered outbound call (Call-ID -> CSeq, bytes, peer).
        self._acks: dict[str, tuple[int, bytes, Address]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._session_ids = secrets.randbits(31)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        await self.sockets.start(self.listen)

    async def close(self) -> None:
        for call in list(self.calls.values()):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(call.hang_up(), BYE_TIMEOUT)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._timer is not None:
            self._timer.cancel()
        await self.sockets.close()

    @property
    def port(self) -> int:
        """The SIP port we advertise (UDP's, else TCP's)."""
        address = self.sockets.udp_address or self.sockets.tcp_address
        if address is None:
            raise RuntimeError("the user agent is not started")
        return address[1]

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _new_media(self) -> RtpSession:
        if self._media_factory is not None:
            return self._media_factory()
        return RtpSession(host=self.rtp_host, ports=self.rtp_ports)

    def _via(self, transport: TransportName) -> Via:
        address = self.sockets.tcp_address if transport == "tcp" else self.sockets.udp_address
        port = address[1] if address is not None else self.port
        return Via(transport.upper(), self.advertise, port, {"rport": None})

    def _contact(self, transport: TransportName) -> NameAddr:
        address = self.sockets.tcp_address if transport == "tcp" else self.sockets.udp_address
        port = address[1] if address is not None else self.port
        params = {"transport": "tcp"} if transport == "tcp" else {}
        return NameAddr(SipUri(self.advertise, self.user, None, port, params))

    def _local_audio(self, media: RtpSession) -> LocalAudio:
        return LocalAudio(self.advertise, media.local_port)

    def _next_session_id(self) -> int:
        self._session_ids = (self._session_ids + 1) % (1 << 31)
        return self._session_ids

    # -- the wire ----------------------------------------------------------------------------
    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _send(self, data: bytes, peer: Address) -> None:
        transport: TransportName = "tcp" if peer in self.sockets.connections else "udp"
        self.sockets.send(data, peer, transport)

    def _on_message(self, data: bytes, peer: Address, transport: TransportName) -> None:
        try:
            message = parse(data)
        except SipParseError as exc:
            self.stats.malformed += 1
            log.info("sip.malformed", extra={"peer": peer[0], "reason": exc.reason})
            reply = error_response(data, exc.status)
            if reply is not None:
                self.sockets.send(reply, peer, transport)
            return
        if isinstance(message, Response):
            if check_response(message) is not None:
                self.stats.dropped_responses += 1
                return
        else:
            rejection = check_request(message)
            if rejection is not None:
                self.stats.rejected += 1
                if message.method != "ACK":
                    self._reject_stateless(
                        data,
                        message,
                        rejection.status,
                        rejection.reason,
                        rejection.headers,
                        peer,
                        transport,
                    )
                return
        try:
            effects = self.layer.receive(message, peer, self._now(), transport == "tcp")
        except SipParseError:
            self.stats.malformed += 1
            return
        self._run(effects)

    def _reject_stateless(
        self,
        data: bytes,
        request: Request,
        status: int,
        reason: str,
        headers: tuple[tuple[str, str], ...],
        peer: Address,
        transport: TransportName,
    ) -> None:
        try:
            reply: bytes | None = make_response(request, status, reason, extra=headers).serialize()
        except SipParseError:
            reply = error_response(data, status, reason)
        if reply is not None:
            self.sockets.send(reply, peer, transport)

    def _run(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Send):
                self._send(effect.data, effect.peer)
            elif isinstance(effect, Deliver):
                message, txn = effect.message, effect.transaction
                try:
                    if isinstance(message, Response):
                        self._on_response(message, txn)
                    elif message.method == "ACK":
                        self._on_ack(message)
                    elif isinstance(txn, ServerTransaction):
                        self._on_request(message, txn)
                except SipParseError:
                    # A field the layer did not need was malformed: the message is dropped.
                    self.stats.malformed += 1
            elif isinstance(effect, Timeout):
                self._on_timeout(effect.transaction)
            elif isinstance(effect, Terminated):
                txn = effect.transaction
                if isinstance(txn, ClientTransaction):
                    waiter = self._waiters.pop(txn, None)
                    if waiter is not None:
                        waiter.put_nowait(None)
                elif isinstance(txn, ServerTransaction):
                    self._answered.pop(txn, None)
        self._schedule()

    def _schedule(self) -> None:
        deadline = self.layer.next_deadline()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            self._timer = asyncio.get_running_loop().call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._run(self.layer.on_timer(self._now()))

    def _respond(self, txn: ServerTransaction, response: Response) -> None:
        if txn.state not in (State.TRYING, State.PROCEEDING):
            return  # already answered (a CANCEL raced the answer)
        self._run(self.layer.respond(txn, response, self._now()))

    def _request(
        self, request: Request, peer: Address, transport: TransportName
    ) -> tuple[ClientTransaction, asyncio.Queue[Response | None]]:
        txn, effects = self.layer.send_request(request, peer, self._now(), transport == "tcp")
        queue: asyncio.Queue[Response | None] = asyncio.Queue()
        self._waiters[txn] = queue
        self._run(effects)
        return txn, queue

    async def _resolve(self, host: str, port: int) -> Address:
        bare = host[1:-1] if host.startswith("[") else host
        with contextlib.suppress(ValueError):
            ipaddress.ip_address(bare)
            return bare, port
        infos = await asyncio.get_running_loop().getaddrinfo(bare, port, proto=17)
        return str(infos[0][4][0]), int(infos[0][4][1])

    # -- requests to us ------------------------------------------------------------------------
    def _on_request(self, request: Request, txn: ServerTransaction) -> None:
        method = request.method
        if request.to.tag is not None:
            self._in_dialog(request, txn)
        elif method == "INVITE":
            self._incoming_invite(request, txn)
        elif method == "CANCEL":
            self._incoming_cancel(request, txn)
        elif method == "OPTIONS":
            self._respond(txn, self._options_ok(request))
        else:
            self.stats.unknown_dialog += 1
            self._respond(txn, make_response(request, 481))

    def _options_ok(self, request: Request) -> Response:
        return make_response(request, 200, extra=[("Allow", ALLOW), ("Accept", "application/sdp")])

    def _in_dialog(self, request: Request, txn: ServerTransaction) -> None:
        dialog = self.dialogs.for_request(request)
        call = self.calls.get(request.call_id)
        if dialog is None or call is None:
            self.stats.unknown_dialog += 1
            self._respond(txn, self.dialogs.unknown_dialog(request) or make_response(request, 481))
            return
        out_of_order = dialog.receive(request)
        if out_of_order is not None:
            self._respond(txn, out_of_order)
            return
        method = request.method
        if method == "BYE":
            self._respond(txn, make_response(request, 200))
            self._forget(call)
            call.finish("hangup", "remote")
        elif method == "INVITE":
            self._reinvite(call, request, txn)
        elif method == "OPTIONS":
            self._respond(txn, self._options_ok(request))
        elif method == "NOTIFY":
            self._respond(txn, make_response(request, 200))
            call.refer_status.put_nowait(_sipfrag_status(request.body))
        elif method == "INFO":
            self._respond(txn, make_response(request, 200))
        else:
            self._respond(txn, make_response(request, 403, f"{method} not accepted"))

    def _incoming_invite(self, request: Request, txn: ServerTransaction) -> None:
        if len(self.calls) >= self.max_calls:
            self.stats.overload += 1
            self._respond(
                txn, make_response(request, 503, extra=[("Retry-After", str(self.retry_after))])
            )
            return
        if request.call_id in self.calls:
            self._respond(txn, make_response(request, 482, "Loop Detected"))
            return
        if request.content_type != "application/sdp" or not request.body:
            self._respond(txn, make_response(request, 488, "SDP offer required"))
            return
        try:
            offer = parse_sdp(request.body)
        except SipParseError:
            self._respond(txn, make_response(request, 400, "Bad SDP"))
            return
        info = InboundCall(
            call_id_sip=request.call_id,
            from_number=user_part(request.from_.uri),
            to_number=user_part(request.uri) or user_part(request.to.uri),
            from_uri=str(request.from_.uri),
            to_uri=str(request.to.uri),
            display_name=request.from_.display,
            remote=txn.peer,
            transport="tcp" if txn.reliable else "udp",
        )
        media = self._new_media()
        call = SipCall(
            self,
            media,
            direction="inbound",
            call_id=request.call_id,
            peer=txn.peer,
            transport=info.transport,
        )
        call.info = info
        self.calls[request.call_id] = call
        self.stats.calls_in += 1
        tag = new_tag()
        task = asyncio.ensure_future(self._answer(call, request, txn, offer, info, tag))
        self._ringing[txn] = (call, task, tag)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(
        self,
        call: SipCall,
        request: Request,
        txn: ServerTransaction,
        offer: SessionDescription,
        info: InboundCall,
        tag: str,
    ) -> None:
        media = call.media
        try:
            if self.admit is not None:
                status = await self.admit(info)
                if status is not None:
                    self._refuse(call, txn, make_response(request, status, to_tag=tag))
                    return
            await media.open()
            answered = answer_offer(offer, self._local_audio(media), self._next_session_id(), 1)
            if answered is None:
                self._refuse(call, txn, make_response(request, 488, to_tag=tag))
                return
            answer, session = answered
            contact = self._contact(info.transport)
            if self.ring_seconds > 0:
                ringing = make_response(request, 180, to_tag=tag, extra=[("Contact", str(contact))])
                self._respond(txn, ringing)
                await asyncio.sleep(self.ring_seconds)
            ok = make_response(
                request,
                200,
                to_tag=tag,
                extra=[
                    ("Contact", str(contact)),
                    ("Allow", ALLOW),
                    ("Content-Type", "application/sdp"),
                ],
                body=answer.serialize(),
            )
            dialog = Dialog.as_uas(
                request, ok, local_via=self._via(info.transport), local_contact=contact
            )
        except asyncio.CancelledError:
            await media.close()
            raise
        except (OSError, SipParseError) as exc:
            log.warning("sip.answer_failed", extra={"error": str(exc)})
            self._refuse(call, txn, make_response(request, 500, to_tag=tag))
            await media.close()
            return
        self._ringing.pop(txn, None)
        call.dialog = dialog
        call.answer = answer
        self.dialogs.add(dialog)
        self._answered[txn] = call
        self._respond(txn, ok)
        media.start(session)
        if self.on_call is not None:
            self._spawn(self._converse(call, info), f"sip-call-{call.call_id}")

    def _refuse(self, call: SipCall, txn: ServerTransaction, response: Response) -> None:
        self._ringing.pop(txn, None)
        self._respond(txn, response)
        self._forget(call)
        call.finish("refused", "local")

    async def _converse(self, call: SipCall, info: InboundCall) -> None:
        assert self.on_call is not None
        try:
            await self.on_call(call, info)
        except Exception:
            log.exception("sip.on_call_failed")
        finally:
            await call.hang_up()
            await call.media.close()

    def _incoming_cancel(self, request: Request, txn: ServerTransaction) -> None:
        invite = self.layer.find_invite(request)
        if invite is None:
            self._respond(txn, make_response(request, 481))
            return
        self._respond(txn, make_response(request, 200))
        ringing = self._ringing.pop(invite, None)
        if ringing is None:
            return  # already answered: the CANCEL has no effect (RFC 3261 §9.2)
        call, task, tag = ringing
        task.cancel()
        self._respond(invite, make_response(invite.request, 487, to_tag=tag))
        self._forget(call)
        call.finish("canceled", "remote")

    def _reinvite(self, call: SipCall, request: Request, txn: ServerTransaction) -> None:
        if not request.body:
            # An offerless re-INVITE: offer what we have (the ACK would carry the answer);
            # we refuse it rather than renegotiate in the ACK.
            self._respond(txn, make_response(request, 488, "SDP offer required"))
            return
        try:
            offer = parse_sdp(request.body)
        except SipParseError:
            self._respond(txn, make_response(request, 400, "Bad SDP"))
            return
        version = call.answer_version + 1
        session_id = int(call.answer.origin.session_id) if call.answer else 0
        answered = answer_offer(offer, self._local_audio(call.media), session_id, version)
        if answered is None:
            self._respond(txn, make_response(request, 488))
            return
        answer, session = answered
        call.answer = answer
        call.answer_version = version
        call.media.update(session)
        assert call.dialog is not None
        ok = make_response(
            request,
            200,
            extra=[
                ("Contact", str(call.dialog.local_contact)),
                ("Content-Type", "application/sdp"),
            ],
            body=answer.serialize(),
        )
        self._answered[txn] = call
        self._respond(txn, ok)

    def _on_ack(self, request: Request) -> None:
        # The layer stopped the 2xx retransmissions; nothing else rides on the ACK.
        return

    def _on_timeout(self, txn: ClientTransaction | ServerTransaction | object) -> None:
        if isinstance(txn, ClientTransaction):
            waiter = self._waiters.pop(txn, None)
            if waiter is not None:
                waiter.put_nowait(None)
        elif isinstance(txn, ServerTransaction):
            call = self._answered.pop(txn, None)
            if call is not None and txn.invite and not call.ended.is_set():
                log.info("sip.no_ack", extra={"call_id": call.call_id})
                self._spawn(call.hang_up(), f"sip-noack-{call.call_id}")

    def _forget(self, call: SipCall) -> None:
        if self.calls.get(call.call_id) is call:
            del self.calls[call.call_id]
        if call.dialog is not None:
            self.dialogs.remove(call.dialog)
        self._acks.pop(call.call_id, None)

    # -- requests from us ----------------------------------------------------------------------
    async def _dialog_peer(self, call: SipCall) -> Address:
        dialog = call.dialog
        assert dialog is not None
        if call.transport == "tcp" and call.peer in self.sockets.connections:
            return call.peer
        target = dialog.route_set[0].uri if dialog.route_set else dialog.remote_target
        if not isinstance(target, SipUri):
            return call.peer
        return await self._resolve(*target.host_port())

    async def _dialog_request(
        self, call: SipCall, request: Request, within: float
    ) -> Response | None:
        """Send an in-dialog request; its final response (None on timeout)."""
        peer = await self._dialog_peer(call)
        _, queue = self._request(request, peer, call.transport)
        async with asyncio.timeout(within):
            response = await queue.get()
            while response is not None and response.status < 200:
                response = await queue.get()
        return response

    async def hang_up(self, call: SipCall) -> None:
        """BYE (or nothing, if the dialog never came up) and forget the call."""
        if call.ended.is_set():
            return
        dialog = call.dialog
        self._forget(call)
        call.finish("hangup", "local")
        for txn, (ringing, task, tag) in list(self._ringing.items()):
            if ringing is call:
                del self._ringing[txn]
                task.cancel()
                self._respond(txn, make_response(txn.request, 480, to_tag=tag))
        if dialog is None:
            return
        with contextlib.suppress(TimeoutError, OSError):
            await self._dialog_request(call, dialog.request("BYE"), BYE_TIMEOUT)

    async def refer(self, call: SipCall, number: str, within: float) -> None:
        """Blind transfer (RFC 3515): REFER, then BYE once the NOTIFY reports a 2xx."""
        dialog = call.dialog
        if dialog is None or call.ended.is_set():
            raise TransferFailed("the call is not up")
        if number.startswith(("sip:", "sips:", "tel:")):
            refer_to = number
        else:
            target = dialog.remote_target
            host = target.host if isinstance(target, SipUri) else call.peer[0]
            refer_to = str(SipUri(host, number))
        request = dialog.request(
            "REFER", extra=[("Refer-To", f"<{refer_to}>"), ("Referred-By", str(dialog.local_uri))]
        )
        try:
            response = await self._dialog_request(call, request, within)
        except TimeoutError:
            response = None
        if response is None or response.status >= 300:
            status = "no answer" if response is None else str(response.status)
            raise TransferFailed(f"REFER refused ({status})")
        status_code = await _refer_outcome(call, within)
        if status_code is None:
            return  # the transferee left us once it had the REFER: their part is done
        if status_code >= 300:
            raise TransferFailed(f"the transfer target answered {status_code}")
        await self.hang_up(call)

    async def reoffer(self, call: SipCall, direction: str) -> AudioSession:
        """Re-INVITE with our offer set to ``direction`` (``sendonly`` holds the peer,
        ``sendrecv`` resumes); the renegotiated stream, also applied to the media."""
        dialog = call.dialog
        if dialog is None or call.answer is None or call.ended.is_set():
            raise ValueError("the call is not up")
        call.answer_version += 1
        offer = with_direction(call.answer, direction, call.answer_version)
        request = dialog.request("INVITE", body=offer.serialize(), content_type="application/sdp")
        response = await self._dialog_request(call, request, 64 * self.layer.timers.t1)
        if response is None or response.status >= 300:
            raise ValueError(f"re-INVITE refused ({response.status if response else 'no answer'})")
        peer = await self._dialog_peer(call)
        self._send(dialog.ack().serialize(), peer)
        session = accept_answer(offer, parse_sdp(response.body))
        if session is None:
            raise ValueError("re-INVITE answer without a usable stream")
        call.answer = offer
        call.media.update(session)
        return session

    async def dial(
        self,
        target: DialTarget,
        to_user: str,
        *,
        from_user: str | None = None,
        ring_timeout: float = 60.0,
        on_ringing: Callable[[], Awaitable[None]] | None = None,
        stop: asyncio.Event | None = None,
    ) -> SipCall:
        """Place a call; the answered ``SipCall`` or ``DialFailed``."""
        transport = target.transport
        peer = await self._resolve(target.host, target.port)
        if transport == "tcp":
            await self.sockets.connect(peer)
        media = self._new_media()
        await media.open()
        try:
            return await self._dial(
                target, to_user, from_user, media, peer, ring_timeout, on_ringing, stop
            )
        except BaseException:
            await media.close()
            raise

    async def _dial(
        self,
        target: DialTarget,
        to_user: str,
        from_user: str | None,
        media: RtpSession,
        peer: Address,
        ring_timeout: float,
        on_ringing: Callable[[], Awaitable[None]] | None,
        stop: asyncio.Event | None,
    ) -> SipCall:
        transport = target.transport
        offer = make_offer(self._local_audio(media), self._next_session_id(), 1)
        params = {"transport": "tcp"} if transport == "tcp" else {}
        port = None if target.port == 5060 else target.port
        uri = SipUri(target.host, to_user, None, port, params)
        caller = target.caller_id or from_user or self.user
        contact = self._contact(transport)
        invite = new_request(
            "INVITE",
            uri,
            from_=NameAddr(SipUri(target.host, caller)).with_tag(new_tag()),
            to=NameAddr(uri),
            via=self._via(transport),
            call_id=new_call_id(self.advertise),
            contact=contact,
            body=offer.serialize(),
            content_type="application/sdp",
            extra=[("Allow", ALLOW), *target.headers],
        )
        credentials = None
        if target.username and target.password is not None:
            credentials = Credentials(target.username, target.password)
        call = SipCall(
            self,
            media,
            direction="outbound",
            call_id=invite.call_id,
            peer=peer,
            transport=transport,
        )
        self.calls[invite.call_id] = call
        self.stats.calls_out += 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ring_timeout
        ringing = False
        authenticated = 0
        stopper = asyncio.ensure_future(stop.wait()) if stop is not None else None
        try:
            while True:
                txn, queue = self._request(invite, peer, transport)
                canceled: str | None = None
                while True:
                    response = await self._next_response(queue, stopper, deadline, canceled)
                    if isinstance(response, str):
                        canceled = response
                        self._run(self.layer.cancel(txn, self._now())[1])
                        continue
                    if response is None:
                        if canceled == "stop":
                            raise DialFailed("canceled", "stopped while ringing")
                        raise DialFailed("no-answer", "no answer from the callee")
                    status = response.status
                    if status < 200:
                        if status in (180, 183) and not ringing and canceled is None:
                            ringing = True
                            if on_ringing is not None:
                                await on_ringing()
                        continue
                    break
                if status in (401, 407) and credentials is not None and authenticated < 2:
                    header = answer_challenge(invite, response, credentials)
                    if header is not None and canceled is None:
                        authenticated += 1
                        invite = retry_request(invite, [header])
                        continue
                if 200 <= status < 300:
                    return await self._answered_out(call, invite, response, offer, canceled)
                if canceled is not None:
                    raise DialFailed("canceled" if canceled == "stop" else "no-answer", canceled)
                raise DialFailed(_dial_status(status), f"{status} {response.reason}", status)
        except BaseException:
            self._forget(call)
            call.finish("not answered", "local")
            raise
        finally:
            if stopper is not None:
                stopper.cancel()

    async def _next_response(
        self,
        queue: asyncio.Queue[Response | None],
        stopper: asyncio.Future[Any] | None,
        deadline: float,
        canceled: str | None,
    ) -> Response | None | str:
        """The next response, or why we must cancel ("stop", "timeout") if not yet."""
        getter = asyncio.ensure_future(queue.get())
        waits: set[asyncio.Future[Any]] = {getter}
        if canceled is None and stopper is not None:
            waits.add(stopper)
        timeout = None if canceled is not None else max(0.0, deadline - self._now())
        done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            return getter.result()
        getter.cancel()
        return "stop" if stopper is not None and stopper in done else "timeout"

    async def _answered_out(
        self,
        call: SipCall,
        invite: Request,
        response: Response,
        offer: SessionDescription,
        canceled: str | None,
    ) -> SipCall:
        dialog = Dialog.as_uac(
            invite,
            response,
            local_via=self._via(call.transport),
            local_contact=self._contact(call.transport),
        )
        call.dialog = dialog
        self.dialogs.add(dialog)
        ack = dialog.ack()
        peer = await self._dialog_peer(call)
        data = ack.serialize()
        self._acks[invite.call_id] = (invite.cseq.number, data, peer)
        self._send(data, peer)
        session: AudioSession | None = None
        with contextlib.suppress(SipParseError):
            if response.body:
                session = accept_answer(offer, parse_sdp(response.body))
        if canceled is not None or session is None:
            await self.hang_up(call)
            reason = "no usable SDP answer" if session is None else "answered after CANCEL"
            raise DialFailed("failed" if canceled is None else "no-answer", reason, response.status)
        call.answer = offer
        call.media.start(session)
        return call

    def _on_response(self, response: Response, txn: object) -> None:
        if response.cseq.method == "INVITE" and 200 <= response.status < 300:
            sent = self._acks.get(response.call_id)
            if sent is not None and sent[0] == response.cseq.number:
                # A retransmitted 2xx: our ACK was lost (RFC 3261 §13.2.2.4).
                self._send(sent[1], sent[2])
                return
        if isinstance(txn, ClientTransaction):
            waiter = self._waiters.get(txn)
            if waiter is not None:
                waiter.put_nowait(response)
                if response.status >= 200 and response.cseq.method != "INVITE":
                    self._waiters.pop(txn, None)

    # -- requests outside a dialog (REGISTER): used by telephony.registration -------------
    # One block, public names only: the registration client builds its requests with
    # these and sends them through the same transaction layer as everything else.
    def local_via(self, transport: TransportName) -> Via:
        """Our Via (advertised host, listening port, ``rport``) for ``transport``."""
        return self._via(transport)

    def local_contact(self, transport: TransportName, user: str | None = None) -> NameAddr:
        """Our Contact for ``transport``, naming ``user`` (default: the UA's user)."""
        contact = self._contact(transport)
        uri = contact.uri
        assert isinstance(uri, SipUri)
        return NameAddr(SipUri(uri.host, user or self.user, None, uri.port, uri.params))

    async def resolve(self, host: str, port: int) -> Address:
        """``host`` (a name or an address) and ``port`` as an address to send to."""
        return await self._resolve(host, port)

    async def request(
        self, request: Request, peer: Address, transport: TransportName = "udp"
    ) -> Response | None:
        """Send a non-INVITE ``request`` outside any dialog through a client transaction;
        its final response, or ``None`` when the transaction timed out (Timer F)."""
        if request.method == "INVITE":
            raise ValueError("INVITE goes through dial")
        if transport == "tcp":
            await self.sockets.connect(peer)
        _, queue = self._request(request, peer, transport)
        response = await queue.get()
        while response is not None and response.status < 200:
            response = await queue.get()
        return response


def _dial_status(status: int) -> DialStatus:
    if status in BUSY:
        return "busy"
    if status in NO_ANSWER:
        return "no-answer"
    return "failed"


async def _refer_outcome(call: SipCall, within: float) -> int | None:
    """The final status the NOTIFYs report for our REFER; None if the transferee hung up
    on us first (``TransferFailed`` if neither happens in time)."""
    ended = asyncio.ensure_future(call.ended.wait())
    try:
        async with asyncio.timeout(within):
            while True:
                notified = asyncio.ensure_future(call.refer_status.get())
                await asyncio.wait({notified, ended}, return_when=asyncio.FIRST_COMPLETED)
                if not notified.done():
                    notified.cancel()
                    return None
                if (status := notified.result()) >= 200:
                    return status
    except TimeoutError:
        raise TransferFailed("the transfer did not complete in time") from None
    finally:
        ended.cancel()


def _sipfrag_status(body: bytes) -> int:
    """The status code of a ``message/sipfrag`` NOTIFY body (``SIP/2.0 200 OK``)."""
    first = body.split(b"\r\n", 1)[0].split(b" ")
    if len(first) >= 2 and first[1].isdigit():
        return int(first[1])
    return 100
