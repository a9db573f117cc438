"""RTCP (RFC 3550 §6) sans-I/O: compound packets and the receiver statistics.

``parse_rtcp`` turns a datagram into its packets or raises ``RtcpParseError`` (and
nothing else). It applies RFC 3550 A.2's validity checks that matter to a receiver:
version 2 in every packet, lengths that add up exactly to the datagram, padding only in
the last packet. A compound packet that does not start with SR or RR is accepted
(RFC 5506 reduced-size RTCP); types we do not read (APP, feedback, XR) are kept as
``OtherRtcp``. Each packet class serializes itself; ``compound`` joins them.

``SourceStats`` is RFC 3550 A.1 (sequence validation with probation, wrap-around and
restart detection), A.3 (expected, lost, fraction lost since the last report) and A.8
(interarrival jitter) for one remote source; ``report`` makes its report block.
Times are arguments: the arrival time in seconds on any monotonic scale, the wall clock
only for NTP timestamps (``ntp_timestamp``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTCP_VERSION = 2
SR, RR, SDES, BYE, APP = 200, 201, 202, 203, 204
CNAME = 1  # SDES item type
NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900 to 1970
_HEADER = struct.Struct("!BBH")
_SENDER_INFO = struct.Struct("!IQIII")  # SSRC, NTP, RTP timestamp, packets, octets
_BLOCK = struct.Struct("!IIIIII")
_U32 = 1 << 32
RTP_SEQ_MOD = 1 << 16
MAX_DROPOUT = 3000
MAX_MISORDER = 100
MIN_SEQUENTIAL = 2


class RtcpParseError(Exception):
    """A malformed RTCP packet."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- packets --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReportBlock:
    """Reception report about one source (RFC 3550 §6.4.1)."""

    ssrc: int
    fraction_lost: int  # 0-255: lost / expected since the last report, times 256
    cumulative_lost: int  # signed 24 bits (duplicates can make it negative)
    highest_seq: int  # extended: cycles << 16 | max seq
    jitter: int  # timestamp units
    lsr: int = 0  # middle 32 bits of the NTP time of the last SR from the source
    dlsr: int = 0  # delay since that SR, in 1/65536 s

    def serialize(self) -> bytes:
        if not 0 <= self.fraction_lost <= 255:
            raise ValueError("fraction lost out of range")
        lost = max(-(1 << 23), min((1 << 23) - 1, self.cumulative_lost)) & 0xFFFFFF
        return _BLOCK.pack(
            self.ssrc & 0xFFFFFFFF,
            self.fraction_lost << 24 | lost,
            self.highest_seq & 0xFFFFFFFF,
            self.jitter & 0xFFFFFFFF,
            self.lsr & 0xFFFFFFFF,
            self.dlsr & 0xFFFFFFFF,
        )


@dataclass(frozen=True, slots=True)
class SenderReport:
    ssrc: int
    ntp: int  # 64-bit NTP timestamp
    rtp_timestamp: int  # the same instant on the RTP clock
    packets: int  # sent since the stream started
    octets: int  # payload octets sent
    reports: tuple[ReportBlock, ...] = ()

    def serialize(self) -> bytes:
        body = _SENDER_INFO.pack(
            self.ssrc & 0xFFFFFFFF,
            self.ntp & 0xFFFFFFFFFFFFFFFF,
            self.rtp_timestamp & 0xFFFFFFFF,
            self.packets & 0xFFFFFFFF,
            self.octets & 0xFFFFFFFF,
        )
        return _packet(SR, len(self.reports), body + _blocks(self.reports))


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()

    def serialize(self) -> bytes:
        body = struct.pack("!I", self.ssrc & 0xFFFFFFFF) + _blocks(self.reports)
        return _packet(RR, len(self.reports), body)


@dataclass(frozen=True, slots=True)
class SdesChunk:
    ssrc: int
    items: tuple[tuple[int, bytes], ...]  # (type, value); CNAME is type 1

    @property
    def cname(self) -> str | None:
        for kind, value in self.items:
            if kind == CNAME:
                return value.decode("utf-8", "replace")
        return None


@dataclass(frozen=True, slots=True)
class SourceDescription:
    chunks: tuple[SdesChunk, ...]

    @classmethod
    def cname(cls, ssrc: int, name: str) -> SourceDescription:
        return cls((SdesChunk(ssrc, ((CNAME, name.encode()),)),))

    def serialize(self) -> bytes:
        parts = []
        for chunk in self.chunks:
            data = bytearray(struct.pack("!I", chunk.ssrc & 0xFFFFFFFF))
            for kind, value in chunk.items:
                if not 1 <= kind <= 255 or len(value) > 255:
                    raise ValueError("SDES item type or length out of range")
                data += bytes((kind, len(value))) + value
            # The item list ends with a null octet, then pads to 32 bits (§6.5).
            data += bytes(4 - len(data) % 4)
            parts.append(bytes(data))
        return _packet(SDES, len(self.chunks), b"".join(parts))


@dataclass(frozen=True, slots=True)
class Bye:
    sources: tuple[int, ...]
    reason: str = ""

    def serialize(self) -> bytes:
        body = b"".join(struct.pack("!I", s & 0xFFFFFFFF) for s in self.sources)
        if self.reason:
            text = self.reason.encode()[:255]
            reason = bytes((len(text),)) + text
            body += reason + bytes(-len(reason) % 4)
        return _packet(BYE, len(self.sources), body)


@dataclass(frozen=True, slots=True)
class OtherRtcp:
    """A packet type we do not read (APP, RTPFB/PSFB feedback, XR...)."""

    packet_type: int
    count: int
    body: bytes

    def serialize(self) -> bytes:
        return _packet(self.packet_type, self.count, self.body)


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Bye | OtherRtcp


def compound(*packets: RtcpPacket) -> bytes:
    return b"".join(p.serialize() for p in packets)


def _packet(packet_type: int, count: int, body: bytes) -> bytes:
    if not 0 <= count <= 31:
        raise ValueError("at most 31 items in one RTCP packet")
    if len(body) % 4:
        raise ValueError("an RTCP packet is a whole number of 32-bit words")
    return _HEADER.pack(RTCP_VERSION << 6 | count, packet_type, len(body) // 4) + body


def _blocks(reports: tuple[ReportBlock, ...]) -> bytes:
    return b"".join(r.serialize() for r in reports)


# -- parsing ------------------------------------------------------------------------------
def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """The packets of one compound RTCP datagram; ``RtcpParseError`` if malformed."""
    if len(data) < 4:
        raise RtcpParseError("shorter than an RTCP header")
    packets: list[RtcpPacket] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 4:
            raise RtcpParseError("trailing octets after the last packet")
        first, packet_type, words = _HEADER.unpack_from(data, pos)
        if first >> 6 != RTCP_VERSION:
            raise RtcpParseError(f"version {first >> 6}")
        end = pos + 4 + words * 4
        if end > len(data):
            raise RtcpParseError("length beyond the datagram")
        body = data[pos + 4 : end]
        if first & 0x20:
            if end != len(data):
                raise RtcpParseError("padding before the last packet")
            pad = body[-1] if body else 0
            if pad == 0 or pad > len(body):
                raise RtcpParseError("bad padding")
            body = body[:-pad]
        packets.append(_parse_one(packet_type, first & 0x1F, bytes(body)))
        pos = end
    return packets


def _parse_one(packet_type: int, count: int, body: bytes) -> RtcpPacket:
    if packet_type == SR:
        if len(body) < _SENDER_INFO.size + count * _BLOCK.size:
            raise RtcpParseError("SR shorter than its report count")
        ssrc, ntp, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(body)
        reports = _parse_blocks(body, _SENDER_INFO.size, count)
        return SenderReport(ssrc, ntp, rtp_ts, packets, octets, reports)
    if packet_type == RR:
        if len(body) < 4 + count * _BLOCK.size:
            raise RtcpParseError("RR shorter than its report count")
        (ssrc,) = struct.unpack_from("!I", body)
        return ReceiverReport(ssrc, _parse_blocks(body, 4, count))
    if packet_type == SDES:
        return _parse_sdes(body, count)
    if packet_type == BYE:
        return _parse_bye(body, count)
    if not 192 <= packet_type <= 223:
        raise RtcpParseError(f"packet type {packet_type} is not RTCP")
    return OtherRtcp(packet_type, count, body)


def _parse_blocks(body: bytes, offset: int, count: int) -> tuple[ReportBlock, ...]:
    blocks = []
    for index in range(count):
        ssrc, lost_word, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(
            body, offset + index * _BLOCK.size
        )
        lost = lost_word & 0xFFFFFF
        if lost & 0x800000:
            lost -= 1 << 24
        blocks.append(ReportBlock(ssrc, lost_word >> 24, lost, highest, jitter, lsr, dlsr))
    return tuple(blocks)


def _parse_sdes(body: bytes, count: int) -> SourceDescription:
    chunks = []
    pos = 0
    for _ in range(count):
        if len(body) - pos < 4:
            raise RtcpParseError("SDES chunk cut short")
        (ssrc,) = struct.unpack_from("!I", body, pos)
        pos += 4
        items = []
        while True:
            if pos >= len(body):
                raise RtcpParseError("SDES items without their end")
            kind = body[pos]
            if kind == 0:
                pos += 4 - pos % 4  # the null octet(s) up to the next word
                break
            if pos + 2 > len(body) or pos + 2 + body[pos + 1] > len(body):
                raise RtcpParseError("SDES item beyond its packet")
            length = body[pos + 1]
            items.append((kind, body[pos + 2 : pos + 2 + length]))
            pos += 2 + length
        chunks.append(SdesChunk(ssrc, tuple(items)))
    if pos > len(body):
        raise RtcpParseError("SDES chunk padding beyond its packet")
    return SourceDescription(tuple(chunks))


def _parse_bye(body: bytes, count: int) -> Bye:
    if len(body) < 4 * count:
        raise RtcpParseError("BYE shorter than its source count")
    sources = struct.unpack_from(f"!{count}I", body)
    reason = ""
    rest = body[4 * count :]
    if rest:
        length = rest[0]
        if 1 + length > len(rest):
            raise RtcpParseError("BYE reason beyond its packet")
        reason = rest[1 : 1 + length].decode("utf-8", "replace")
    return Bye(tuple(sources), reason)


# -- time ---------------------------------------------------------------------------------
def ntp_timestamp(unix_seconds: float) -> int:
    """The 64-bit NTP timestamp (seconds since 1900, 32.32 fixed point) of a wall-clock
    instant."""
    seconds = int(unix_seconds)
    fraction = int((unix_seconds - seconds) * _U32)
    return ((seconds + NTP_UNIX_OFFSET) % _U32) << 32 | fraction


def middle32(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp: the form LSR and RTT arithmetic use."""
    return (ntp >> 16) & 0xFFFFFFFF


def round_trip(block: ReportBlock, arrival_ntp: int) -> float | None:
    """RTT in seconds from a report block about us and its arrival (RFC 3550 §6.4.1:
    A - LSR - DLSR), or ``None`` if the peer has no SR of ours yet or the clocks
    disagree (a negative result)."""
    if block.lsr == 0:
        return None
    rtt = (middle32(arrival_ntp) - block.lsr - block.dlsr) % _U32
    if rtt >= 1 << 31:
        return None
    return rtt / 65536


# -- receiver statistics (RFC 3550 A.1, A.3, A.8) -----------------------------------------
class SourceStats:
    """What we received from one source, and its report block."""

    def __init__(self, seq: int, clock_rate: int) -> None:
        self.clock_rate = clock_rate
        self._init_seq(seq)
        self.max_seq = (seq - 1) % RTP_SEQ_MOD
        self.probation = MIN_SEQUENTIAL
        self.jitter = 0.0
        self._transit: int | None = None

    def _init_seq(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = RTP_SEQ_MOD + 1  # so seq == bad_seq is false
        self.cycles = 0
        self.received = 0
        self.received_prior = 0
        self.expected_prior = 0

    def update(self, seq: int, rtp_timestamp: int | None, arrival: float) -> bool:
        """Count one packet (A.1's ``update_seq``); ``False`` if it is not (yet) valid
        in sequence. ``rtp_timestamp`` is ``None`` for packets whose timestamps do not
        advance with time (RFC 4733 events): they do not enter the jitter."""
        udelta = (seq - self.max_seq) % RTP_SEQ_MOD
        if self.probation:
            # A source is valid once MIN_SEQUENTIAL packets came in sequence.
            if seq == (self.max_seq + 1) % RTP_SEQ_MOD:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self._init_seq(seq)
                    self.received += 1
                    self._jitter(rtp_timestamp, arrival)
                    return True
            else:
                self.probation = MIN_SEQUENTIAL - 1
                self.max_seq = seq
            return False
        if udelta < MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += RTP_SEQ_MOD  # wrapped
            self.max_seq = seq
        elif udelta <= RTP_SEQ_MOD - MAX_MISORDER:
            # A very large jump: a restarted source if the next packet follows it.
            if seq == self.bad_seq:
                self._init_seq(seq)
            else:
                self.bad_seq = (seq + 1) % RTP_SEQ_MOD
                return False
        # else: a duplicate or reordered packet, counted.
        self.received += 1
        self._jitter(rtp_timestamp, arrival)
        return True

    def _jitter(self, rtp_timestamp: int | None, arrival: float) -> None:
        if rtp_timestamp is None:
            return
        transit = (int(arrival * self.clock_rate) - rtp_timestamp) % _U32
        if self._transit is not None:
            d = (transit - self._transit) % _U32
            if d >= 1 << 31:
                d = _U32 - d
            self.jitter += (d - self.jitter) / 16
        self._transit = transit

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max - self.base_seq + 1

    @property
    def lost(self) -> int:
        return self.expected - self.received

    def report(self, ssrc: int, lsr: int = 0, dlsr: int = 0) -> ReportBlock:
        """The report block for this source; starts a new interval for fraction lost."""
        expected = self.expected
        expected_interval = expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior = expected
        self.received_prior = self.received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = (lost_interval << 8) // expected_interval
        return ReportBlock(
            ssrc,
            min(fraction, 255),
            self.lost,
            self.extended_max & 0xFFFFFFFF,
            int(self.jitter),
            lsr,
            dlsr,
        )
