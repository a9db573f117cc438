"""Calls over SIP as the dispatcher and the conversation see them.

- ``SipPort`` is the conversation's ``AudioPort`` over a ``SipCall`` (media events
  mapped onto port events). It is also a ``BridgingPort``: ``dial`` calls a transfer
  target (a ``sip:`` URI directly, a number through the org's trunk) and ``bridge``
  joins the two calls' media in process (``telephony.bridge``) until one hangs up.
- ``TrunkDialer`` is how a live call reaches a number: the outbound trunk of the call's
  org (for an inbound call, the org of the number that was called). ``SipTransport``
  installs one on the user agent.
- ``SipTransport`` places the queued outbound calls: the org's trunk
  (``store.trunks.outbound_trunk``) becomes a ``DialTarget``; ringing and answer are
  reported through the ``CallHandle``; a refused call maps to busy / no-answer / failed;
  an answered one runs its conversation (``ConversationRunner.run_call``) until either
  side hangs up or the API stops it.
- ``RtpTotals`` sums the RTP counters of the calls this process carried, for
  ``/metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from callwright.conversation.loop import LoopResult
from callwright.conversation.ports import (
    AudioPort,
    CallerAudio,
    CallerHungUp,
    Keypress,
    NotReached,
    Pcm,
    PortEvent,
)
from callwright.dispatch.dispatcher import no_route_message
from callwright.dispatch.transport import CallHandle, CallInfo, Outcome
from callwright.store import numbers, trunks
from callwright.store.crypto import SecretBox
from callwright.store.db import Database
from callwright.telephony.bridge import bridge
from callwright.telephony.rtp_session import CallerDigit, CallerFrame, RtpSession
from callwright.telephony.sip.errors import SipParseError
from callwright.telephony.sip.uri import SipUri, parse_uri
from callwright.telephony.sip_call import Dialer, DialFailed, DialTarget, SipCall
from callwright.telephony.sip_ua import UserAgent

log = logging.getLogger("callwright.dispatch.sip")

Converse = Callable[[AudioPort, str], Awaitable[LoopResult]]

STOPPED = "Call ended by API request."
ENDINGS = {
    "caller": "The other party hung up.",
    "agent": "The agent ended the call.",
    "silence": "The agent hung up after a long silence.",
    "max_duration": "The call reached its max_duration.",
    "transfer": "The call was transferred.",
    "voicemail": "A voicemail answered; the agent hung up.",
    "voicemail_left": "A voicemail answered; the agent left a message and hung up.",
}


def ended_by(result: LoopResult) -> Literal["ASSISTANT", "USER"]:
    return "USER" if result.ended_by == "caller" else "ASSISTANT"


def ending_message(result: LoopResult) -> str:
    return ENDINGS.get(result.ended_by, f"Call ended ({result.ended_by}).")


class SipPort:
    """The conversation's ``AudioPort`` (and ``BridgingPort``) over a ``SipCall``.

    ``dialer`` places transfer legs (the user agent's when not given). A port made by
    ``dial`` is a leg: it closes its media when hung up or bridged.
    """

    def __init__(self, call: SipCall, *, dialer: Dialer | None = None, leg: bool = False) -> None:
        self.call = call
        self.sample_rate = call.sample_rate
        self.dialer = dialer
        self.leg = leg

    async def events(self) -> AsyncIterator[PortEvent]:
        async for event in self.call.events():
            if isinstance(event, CallerFrame):
                yield CallerAudio(event.pcm)
            elif isinstance(event, CallerDigit):
                yield Keypress(event.digit)
            else:
                yield CallerHungUp()
                return

    async def send(self, pcm: Pcm) -> None:
        await self.call.send(pcm)

    async def send_digits(self, digits: str) -> None:
        await self.call.send_digits(digits)

    async def transfer(self, number: str) -> None:
        await self.call.transfer(number)

    async def hang_up(self) -> None:
        await self.call.hang_up()
        if self.leg:
            await self.call.media.close()

    # -- BridgingPort ------------------------------------------------------------------------
    async def dial(
        self, number: str, *, caller_id: str | None = None, stop: asyncio.Event | None = None
    ) -> SipPort:
        ua = self.call.ua
        ring = ua.transfer_seconds
        try:
            direct = _direct_target(number, caller_id)
            if direct is not None:
                target, user = direct
                leg = await ua.dial(target, user, ring_timeout=ring, stop=stop)
            else:
                dialer = self.dialer or ua.dialer
                if dialer is None:
                    raise NotReached("failed", "this line has no way to place calls")
                leg = await dialer(
                    self.call, number, caller_id=caller_id, ring_timeout=ring, stop=stop
                )
        except DialFailed as exc:
            raise NotReached(exc.status, f"{number} not reached: {exc.reason}") from exc
        except OSError as exc:
            raise NotReached("failed", f"{number} not reached: {exc}") from exc
        return SipPort(leg, dialer=self.dialer, leg=True)

    async def bridge(self, other: AudioPort) -> str:
        if not isinstance(other, SipPort):
            raise TypeError("a SIP call is bridged to another SIP call")
        try:
            result = await bridge(self.call, other.call)
        finally:
            if other.leg:
                await other.call.media.close()
        log.info(
            "sip.bridge_ended",
            extra={
                "ended_by": result.ended_by,
                "frames_to_target": result.a_to_b.frames,
                "frames_to_caller": result.b_to_a.frames,
            },
        )
        return "caller" if result.ended_by == "a" else "target"


def _direct_target(number: str, caller_id: str | None) -> tuple[DialTarget, str] | None:
    """A ``sip:user@host[:port]`` transfer target is called directly, not by trunk."""
    if not number.startswith("sip:"):
        return None
    try:
        uri = parse_uri(number)
    except SipParseError as exc:
        raise NotReached("failed", f"bad SIP URI {number!r}") from exc
    if not isinstance(uri, SipUri):
        return None
    tcp = uri.params.get("transport") == "tcp"
    target = DialTarget(uri.host, uri.port or 5060, "tcp" if tcp else "udp", caller_id=caller_id)
    return target, uri.user or ""


class TrunkDialer:
    """Places a live call's transfer legs through its org's outbound trunk: ``org_id``'s
    (an outbound call's), else the org of the number an inbound call was made to. The
    target sees ``caller_id``, else ``from_number``, else the number that was called."""

    def __init__(
        self,
        ua: UserAgent,
        db: Database,
        box: SecretBox,
        *,
        org_id: str | None = None,
        from_number: str | None = None,
    ) -> None:
        self.ua = ua
        self.db = db
        self.box = box
        self.org_id = org_id
        self.from_number = from_number

    async def __call__(
        self,
        call: SipCall,
        number: str,
        *,
        caller_id: str | None,
        ring_timeout: float,
        stop: asyncio.Event | None,
    ) -> SipCall:
        called = call.info.to_number if call.info is not None else None
        shown = caller_id or self.from_number or called
        async with self.db.session() as session:
            org_id = self.org_id or await _called_org(session, call)
            if org_id is None:
                raise DialFailed("failed", "the call's org is unknown")
            trunk = await trunks.outbound_trunk(session, org_id, shown)
            found = None if trunk is None else trunks.target(self.box, trunk)
        if found is None:
            raise DialFailed("failed", no_route_message(number))
        target = trunk_target(found, shown)
        return await self.ua.dial(target, number, ring_timeout=ring_timeout, stop=stop)


async def _called_org(session: AsyncSession, call: SipCall) -> str | None:
    """The org of the inbound number ``call`` was made to."""
    if call.info is None:
        return None
    # Imported here: ``inbound`` builds on this module.
    from callwright.dispatch.inbound import number_candidates  # noqa: PLC0415

    for candidate in number_candidates(call.info.to_number):
        number = await numbers.find_inbound(session, candidate)
        if number is not None:
            return number.org_id
    return None


def trunk_target(found: trunks.TrunkTarget, caller_id: str | None) -> DialTarget:
    """A trunk as a ``DialTarget`` (``caller_id`` shown, else the trunk's own)."""
    return DialTarget(
        host=found.host,
        port=found.port or 5060,
        transport="tcp" if found.transport == "tcp" else "udp",
        username=found.username,
        password=found.password,
        caller_id=caller_id or found.caller_id,
        headers=tuple((str(k), str(v)) for k, v in found.headers.items()),
    )


class RtpTotals:
    """RTP counters summed over every call this process carried: the ended calls'
    (added once each) plus the live ones' (read when asked)."""

    def __init__(self) -> None:
        self._ended: Counter[str] = Counter()
        self._added: weakref.WeakSet[RtpSession] = weakref.WeakSet()

    def add(self, media: RtpSession) -> None:
        if media in self._added:
            return
        self._added.add(media)
        self._ended.update(media.stats.as_dict())

    def snapshot(self, live: Iterable[SipCall]) -> dict[str, int]:
        total = Counter(self._ended)
        for call in live:
            if call.media not in self._added:
                total.update(call.media.stats.as_dict())
        return dict(total)


class SipTransport:
    """Places outbound calls through the org's SIP trunk (see the module docstring)."""

    name = "sip"

    def __init__(
        self,
        ua: UserAgent,
        db: Database,
        box: SecretBox,
        converse: Converse,
        *,
        rtp: RtpTotals | None = None,
        ring_timeout: float = 60.0,
    ) -> None:
        self.ua = ua
        self.db = db
        self.box = box
        self.converse = converse
        self.rtp = rtp or RtpTotals()
        self.ring_timeout = ring_timeout
        if ua.dialer is None:
            # Transfers from any call (inbound ones too) go out through the org's trunk.
            ua.dialer = TrunkDialer(ua, db, box)

    def serves(self, call: CallInfo) -> bool:
        # Whether the org has a trunk is a database question, answered in ``run``
        # (with the dispatcher's own no-route outcome when it has none).
        return True

    async def run(self, call: CallHandle) -> Outcome:
        info = call.info
        async with self.db.session() as session:
            trunk = await trunks.outbound_trunk(session, info.org_id, info.from_number)
            found = None if trunk is None else trunks.target(self.box, trunk)
        if found is None:
            message = no_route_message(info.to_number)
            return Outcome("failed", error_message=message, message=message)
        if found.transport not in ("udp", "tcp"):
            message = f"Trunk {found.trunk_id} uses {found.transport}, which is not supported."
            return Outcome("failed", error_message=message, message=message)
        target = trunk_target(found, info.from_number)
        await call.log(
            "sip.dial", f"Dialing {info.to_number} through trunk {found.trunk_id} ({found.host})."
        )

        async def ringing() -> None:
            await call.set_status("ringing", "Ringing")

        try:
            sip_call = await self.ua.dial(
                target,
                info.to_number,
                ring_timeout=self.ring_timeout,
                on_ringing=ringing,
                stop=call.stop,
            )
        except DialFailed as exc:
            return _not_answered(exc, detect=bool(info.params.get("answered_by_enabled")))
        except OSError as exc:
            message = f"Could not reach trunk {found.trunk_id}: {exc}"
            return Outcome("failed", error_message=message, message=message)
        return await self._talk(call, sip_call)

    async def _talk(self, call: CallHandle, sip_call: SipCall) -> Outcome:
        info = call.info
        dialer = TrunkDialer(
            self.ua, self.db, self.box, org_id=info.org_id, from_number=info.from_number
        )
        try:
            await call.set_status("in-progress", "Call answered")
            conversation = asyncio.ensure_future(
                self.converse(SipPort(sip_call, dialer=dialer), call.info.call_id)
            )
            stopper = asyncio.ensure_future(call.stop.wait())
            try:
                await asyncio.wait({conversation, stopper}, return_when=asyncio.FIRST_COMPLETED)
                stopped = not conversation.done()
                if stopped:
                    # The port reports the hang-up; the loop winds down and the
                    # runner still stores the recording and the summary.
                    await sip_call.hang_up()
                result = await conversation
            finally:
                stopper.cancel()
                if not conversation.done():
                    conversation.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await conversation
        finally:
            await sip_call.hang_up()
            await sip_call.media.close()
            self.rtp.add(sip_call.media)
        if stopped:
            return Outcome("completed", call_ended_by="ASSISTANT", message=STOPPED)
        return Outcome("completed", call_ended_by=ended_by(result), message=ending_message(result))


def _not_answered(exc: DialFailed, *, detect: bool = False) -> Outcome:
    code = f" (SIP {exc.sip_status})" if exc.sip_status is not None else ""
    if exc.status == "canceled":
        return Outcome("canceled", message="Call stopped by API request while ringing.")
    if exc.status == "busy":
        return Outcome("busy", message=f"The line was busy{code}.")
    if exc.status == "no-answer":
        answered_by = "no-answer" if detect else None  # the reference's answered_by value
        return Outcome(
            "no-answer", answered_by=answered_by, message=f"No answer{code}: {exc.reason}."
        )
    message = f"The call failed{code}: {exc.reason}."
    return Outcome("failed", error_message=message, message=message)
