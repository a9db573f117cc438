"""Calls over SIP as the dispatcher and the conversation see them.

- ``SipPort`` is the conversation's ``AudioPort`` over a ``SipCall`` (media events
  mapped onto port events).
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

from callwright.conversation.loop import LoopResult
from callwright.conversation.ports import (
    AudioPort,
    CallerAudio,
    CallerHungUp,
    Keypress,
    Pcm,
    PortEvent,
)
from callwright.dispatch.dispatcher import no_route_message
from callwright.dispatch.transport import CallHandle, CallInfo, Outcome
from callwright.store import trunks
from callwright.store.crypto import SecretBox
from callwright.store.db import Database
from callwright.telephony.rtp_session import CallerDigit, CallerFrame, RtpSession
from callwright.telephony.sip_call import DialFailed, DialTarget, SipCall
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
}


def ended_by(result: LoopResult) -> Literal["ASSISTANT", "USER"]:
    return "USER" if result.ended_by == "caller" else "ASSISTANT"


def ending_message(result: LoopResult) -> str:
    return ENDINGS.get(result.ended_by, f"Call ended ({result.ended_by}).")


class SipPort:
    """The conversation's ``AudioPort`` over a ``SipCall``."""

    def __init__(self, call: SipCall) -> None:
        self.call = call
        self.sample_rate = call.sample_rate

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
        target = DialTarget(
            host=found.host,
            port=found.port or 5060,
            transport="tcp" if found.transport == "tcp" else "udp",
            username=found.username,
            password=found.password,
            caller_id=info.from_number or found.caller_id,
            headers=tuple((str(k), str(v)) for k, v in found.headers.items()),
        )
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
            return _not_answered(exc)
        except OSError as exc:
            message = f"Could not reach trunk {found.trunk_id}: {exc}"
            return Outcome("failed", error_message=message, message=message)
        return await self._talk(call, sip_call)

    async def _talk(self, call: CallHandle, sip_call: SipCall) -> Outcome:
        try:
            await call.set_status("in-progress", "Call answered")
            conversation = asyncio.ensure_future(
                self.converse(SipPort(sip_call), call.info.call_id)
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


def _not_answered(exc: DialFailed) -> Outcome:
    code = f" (SIP {exc.sip_status})" if exc.sip_status is not None else ""
    if exc.status == "canceled":
        return Outcome("canceled", message="Call stopped by API request while ringing.")
    if exc.status == "busy":
        return Outcome("busy", message=f"The line was busy{code}.")
    if exc.status == "no-answer":
        return Outcome("no-answer", message=f"No answer{code}: {exc.reason}.")
    message = f"The call failed{code}: {exc.reason}."
    return Outcome("failed", error_message=message, message=message)
