"""One live SIP call as the conversation sees it: an audio port with signalling verbs.

``SipCall`` has the ``AudioPort`` shape (``sample_rate``, ``events``, ``send``,
``send_digits``, ``transfer``, ``hang_up``) over its ``RtpSession``; its events are the
media events of ``telephony.rtp_session`` (``CallerFrame``, ``CallerDigit``,
``CallEnded``), which the composition root maps onto the conversation's port events.
Hanging up sends BYE; ``transfer`` sends REFER (RFC 3515) and leaves the call once the
transferee reports success. The dialog work itself is the user agent's. A ``Dialer``
(set on the user agent by whoever owns the trunks) places calls on a live call's behalf:
the second leg of a cold or warm transfer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from callwright.media.frames import Int16Array
from callwright.telephony.rtp_session import MediaEvent, RtpSession
from callwright.telephony.sip.dialog import Dialog
from callwright.telephony.sip.sdp import SessionDescription
from callwright.telephony.sip.uri import SipUri, TelUri, Uri
from callwright.telephony.sip_transport import Address, TransportName

if TYPE_CHECKING:
    from callwright.telephony.sip_ua import UserAgent

Direction = Literal["inbound", "outbound"]
DialStatus = Literal["busy", "no-answer", "failed", "canceled"]


@dataclass(frozen=True, slots=True)
class InboundCall:
    """Who called whom: what the number lookup and the call record need."""

    call_id_sip: str
    from_number: str
    to_number: str
    from_uri: str
    to_uri: str
    display_name: str | None
    remote: Address
    transport: TransportName


@dataclass(frozen=True, slots=True)
class DialTarget:
    """Where an outbound INVITE goes: a trunk or a PBX (credentials for digest auth)."""

    host: str
    port: int = 5060
    transport: TransportName = "udp"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    caller_id: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


class DialFailed(Exception):
    """The outbound call was not answered: ``status`` is the call status it maps to."""

    def __init__(self, status: DialStatus, reason: str, sip_status: int | None = None) -> None:
        super().__init__(reason)
        self.status: DialStatus = status
        self.reason = reason
        self.sip_status = sip_status


class TransferFailed(Exception):
    """The peer refused our REFER or the transfer did not complete."""


class Dialer(Protocol):
    """Calls ``number`` for ``call`` (a transfer target) the way its owner places
    outbound calls; the answered call, or ``DialFailed``."""

    async def __call__(
        self,
        call: SipCall,
        number: str,
        *,
        caller_id: str | None,
        ring_timeout: float,
        stop: asyncio.Event | None,
    ) -> SipCall: ...


def user_part(uri: Uri) -> str:
    """The number or user a URI names (``sip:+1555@h`` -> ``+1555``)."""
    if isinstance(uri, SipUri):
        return uri.user or ""
    if isinstance(uri, TelUri):
        return uri.number
    return ""


class SipCall:
    """A live call: its dialog, its media, and the verbs the conversation uses."""

    sample_rate = RtpSession.sample_rate

    def __init__(
        self,
        ua: UserAgent,
        media: RtpSession,
        *,
        direction: Direction,
        call_id: str,
        peer: Address,
        transport: TransportName,
    ) -> None:
        self.ua = ua
        self.media = media
        self.direction: Direction = direction
        self.call_id = call_id
        self.peer = peer
        self.transport: TransportName = transport
        self.dialog: Dialog | None = None
        # Our side of the offer/answer, kept for re-INVITE answers (same session id).
        self.answer: SessionDescription | None = None
        self.answer_version = 1
        self.ended = asyncio.Event()
        self.end_reason: str | None = None
        self.ended_by: Literal["local", "remote"] | None = None
        self.refer_status: asyncio.Queue[int] = asyncio.Queue()
        # Who called whom, for an inbound call (whose org a transfer dials through).
        self.info: InboundCall | None = None

    def __repr__(self) -> str:
        return f"<SipCall {self.direction} {self.call_id} ended={self.ended.is_set()}>"

    # -- the port ---------------------------------------------------------------------------
    def events(self) -> AsyncIterator[MediaEvent]:
        return self.media.events()

    async def send(self, pcm: Int16Array) -> None:
        await self.media.send(pcm)

    async def send_digits(self, digits: str) -> None:
        await self.media.send_digits(digits)

    async def hang_up(self) -> None:
        """End the call from our side (BYE). Does nothing if it is already over."""
        if self.ended.is_set():
            return
        await self.ua.hang_up(self)

    async def transfer(self, number: str) -> None:
        """Blind transfer by REFER: the peer calls ``number`` and we leave the call."""
        await self.ua.refer(self, number, self.ua.transfer_seconds)

    # -- the user agent's side ----------------------------------------------------------------
    def finish(self, reason: str, by: Literal["local", "remote"]) -> None:
        if self.ended.is_set():
            return
        self.end_reason = reason
        self.ended_by = by
        self.media.end(reason)
        self.ended.set()
