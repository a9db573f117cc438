"""RTP packets (RFC 3550 §5.1) and RFC 4733 telephone-events, sans-I/O and strict.

``parse_rtp`` turns a datagram into an ``RtpPacket`` or raises ``RtpParseError`` (and
nothing else): a bad packet is dropped and counted by the caller, never fatal.
``RtpPacket.serialize`` builds one. For DTMF, ``TelephoneEvent`` is the 4-byte event
payload, ``dtmf_payloads`` the packet sequence that sends one key press, and
``DtmfReceiver`` reports each received key press once despite the retransmitted end
packets.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTP_VERSION = 2
_HEADER = struct.Struct("!BBHII")
_EVENT = struct.Struct("!BBH")
DTMF_EVENTS = "0123456789*#ABCD"  # event codes 0-15 (RFC 4733 §3.2); 16 is flash


class RtpParseError(Exception):
    """A malformed RTP packet or telephone-event payload."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RtpExtension:
    profile: int  # the 16-bit "defined by profile" field
    data: bytes  # a multiple of 4 bytes


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: RtpExtension | None = None
    padding: int = 0  # padding octets after the payload (the last one holds the count)

    def serialize(self) -> bytes:
        if not 0 <= self.payload_type <= 127:
            raise ValueError("payload type out of range")
        if len(self.csrc) > 15:
            raise ValueError("at most 15 CSRCs")
        if not 0 <= self.padding <= 255:
            raise ValueError("padding out of range")
        ext = self.extension
        first = RTP_VERSION << 6 | (0x20 if self.padding else 0) | (0x10 if ext else 0)
        first |= len(self.csrc)
        parts = [
            _HEADER.pack(
                first,
                (0x80 if self.marker else 0) | self.payload_type,
                self.sequence & 0xFFFF,
                self.timestamp & 0xFFFFFFFF,
                self.ssrc & 0xFFFFFFFF,
            )
        ]
        parts += [struct.pack("!I", c) for c in self.csrc]
        if ext is not None:
            if len(ext.data) % 4:
                raise ValueError("extension data must be a multiple of 4 bytes")
            parts += [struct.pack("!HH", ext.profile, len(ext.data) // 4), ext.data]
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes([self.padding]))
        return b"".join(parts)


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one RTP packet; raise ``RtpParseError`` if it is malformed."""
    if len(data) < 12:
        raise RtpParseError("shorter than an RTP header")
    first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
    if first >> 6 != RTP_VERSION:
        raise RtpParseError("not RTP version 2")
    offset = 12
    count = first & 0x0F
    end = len(data)
    if offset + 4 * count > end:
        raise RtpParseError("truncated CSRC list")
    csrc = struct.unpack_from(f"!{count}I", data, offset) if count else ()
    offset += 4 * count
    extension = None
    if first & 0x10:
        if offset + 4 > end:
            raise RtpParseError("truncated header extension")
        profile, words = struct.unpack_from("!HH", data, offset)
        offset += 4
        if offset + 4 * words > end:
            raise RtpParseError("truncated header extension")
        extension = RtpExtension(profile, bytes(data[offset : offset + 4 * words]))
        offset += 4 * words
    padding = 0
    if first & 0x20:
        padding = data[-1]
        if padding == 0 or offset + padding > end:
            raise RtpParseError("bad padding count")
        end -= padding
    return RtpPacket(
        payload_type=second & 0x7F,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        payload=bytes(data[offset:end]),
        marker=bool(second & 0x80),
        csrc=tuple(csrc),
        extension=extension,
        padding=padding,
    )


def looks_like_rtcp(data: bytes) -> bool:
    """RTCP multiplexed on the RTP port (RFC 5761): packet types 192-223 in byte 2."""
    return len(data) >= 2 and data[0] >> 6 == RTP_VERSION and 192 <= data[1] <= 223


# ------------------------------------------------------------------- RFC 4733 events


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    event: int  # 0-9, 10 '*', 11 '#', 12-15 'A'-'D', 16 flash
    end: bool = False
    volume: int = 10  # attenuation in dBm0, 0-63 (power level -volume dBm0)
    duration: int = 0  # in timestamp units (samples at the clock rate)

    @property
    def digit(self) -> str | None:
        return DTMF_EVENTS[self.event] if self.event < len(DTMF_EVENTS) else None

    def serialize(self) -> bytes:
        if not 0 <= self.event <= 255 or not 0 <= self.volume <= 63:
            raise ValueError("event or volume out of range")
        flags = (0x80 if self.end else 0) | self.volume
        return _EVENT.pack(self.event, flags, min(self.duration, 0xFFFF))


def parse_telephone_event(payload: bytes) -> TelephoneEvent:
    if len(payload) != 4:
        raise RtpParseError("telephone-event payload must be 4 bytes")
    event, flags, duration = _EVENT.unpack(payload)
    return TelephoneEvent(event, bool(flags & 0x80), flags & 0x3F, duration)


def digit_event(digit: str) -> int:
    index = DTMF_EVENTS.find(digit.upper()) if len(digit) == 1 else -1
    if index < 0:
        raise ValueError(f"not a DTMF digit: {digit!r}")
    return index


def dtmf_payloads(
    digit: str,
    *,
    duration_ms: int = 160,
    ptime_ms: int = 20,
    clock_rate: int = 8000,
    volume: int = 10,
    end_copies: int = 3,
) -> list[tuple[bytes, bool]]:
    """``(payload, marker)`` for each packet of one key press (RFC 4733 §2.5).

    All packets share the event's start timestamp (the caller sets it, and the sequence
    numbers); the first has the marker bit; the duration grows by one ptime per packet;
    the final packet, with the E bit, is sent ``end_copies`` times for reliability.
    """
    event = digit_event(digit)
    step = clock_rate * ptime_ms // 1000
    total = clock_rate * duration_ms // 1000
    out: list[tuple[bytes, bool]] = []
    elapsed = step
    while elapsed < total:
        out.append((TelephoneEvent(event, False, volume, elapsed).serialize(), not out))
        elapsed += step
    final = TelephoneEvent(event, True, volume, total).serialize()
    out += [(final, not out)] + [(final, False)] * (end_copies - 1)
    return out


class DtmfReceiver:
    """Reports each RFC 4733 key press once, as soon as it starts.

    An event is identified by its RTP timestamp (all packets of one press share it), so
    the retransmitted end packets and a lost first packet are both handled.
    """

    def __init__(self) -> None:
        self._last: tuple[int, int] | None = None  # (ssrc, timestamp) of the last press

    def feed(self, packet: RtpPacket) -> str | None:
        try:
            event = parse_telephone_event(packet.payload)
        except RtpParseError:
            return None
        key = (packet.ssrc, packet.timestamp)
        if key == self._last or event.digit is None:
            return None
        self._last = key
        return event.digit
