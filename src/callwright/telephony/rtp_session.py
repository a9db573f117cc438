"""One call's RTP media over asyncio UDP: G.711 in and out, paced every 20 ms.

Rules:

1. One clock drives both directions. The pacer wakes at absolute deadlines
   ``t0 + n * ptime`` (never "sleep 20 ms", which drifts by the scheduling delay of
   every tick) and each tick does two things: it sends one packet (the agent's frame,
   silence, or a DTMF event packet) and emits exactly one ``CallerFrame`` (the jitter
   buffer's frame, its concealment, or silence before the stream starts). A consumer
   that answers each caller frame with one ``send`` therefore runs at wire rate.
2. Received packets go through ``media.JitterBuffer`` keyed by their sequence numbers;
   the buffer and the pacer read the same clock, which is injectable (``clock``,
   ``sleep_until``) so tests run in virtual time.
3. Symmetric RTP (RFC 4961): until a valid packet arrives we send to the address in the
   SDP; the first packet that parses and carries a negotiated payload type latches the
   remote address, and packets from any other source are dropped and counted.
4. Bad input is never fatal: a datagram that does not parse, an unknown payload type, an
   empty or oversized payload, all are dropped and counted in ``stats``.
5. Peers may packetise at any ptime (sipp's sample capture uses 30 ms): ``Reframer``
   cuts the payloads into 20 ms frames by RTP timestamp, and the frame index, not the
   packet's sequence number, is the jitter buffer's slot.
6. DTMF (RFC 4733): received telephone-events become one ``CallerDigit`` per key press;
   ``send_digits`` sends event packets when the peer negotiated telephone-event, and
   in-band tones otherwise. Event packets replace audio packets on the wire.
7. Direction follows the negotiated ``AudioSession`` (hold and unhold by re-INVITE):
   nothing is sent unless it ``sends``, received audio is ignored unless it
   ``receives``; the pacer keeps emitting caller frames either way.

8. RTCP (RFC 3550 §6, ``telephony.rtcp``) runs on the odd port above the RTP port:
   ``open`` binds the pair. Every ``RTCP_INTERVAL`` (5 s, randomised to 0.5-1.5 times;
   the first report after half that) a tick sends a compound packet: SR if we sent RTP
   since the last report, else RR, with a report block about the peer's stream (A.3
   loss, A.8 jitter, LSR/DLSR) when it sent since the last report, then SDES CNAME.
   This simplifies §6.3's interval rules: with two participants and G.711 the computed
   interval is below the 5 s minimum anyway. ``close`` sends a BYE. Reports go to the
   SDP's port + 1 until the peer's first valid RTCP latches its address (symmetric RTCP,
   RFC 4961). RTCP multiplexed on the RTP port (RFC 5761) is read the same way; we never
   offer rtcp-mux, so we never send it there.
9. Received RTCP is parsed; a malformed datagram is dropped and counted. A peer's SR
   gives the LSR/DLSR of our next report; a report block about our stream gives the
   round-trip time (``rtt``) and the peer's view of our loss and jitter (``remote_report``).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, fields

import numpy as np

from callwright.media.dtmf import generate_dtmf
from callwright.media.frames import Int16Array
from callwright.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from callwright.media.jitter import JitterBuffer, JitterConfig, MediaPacket
from callwright.telephony.rtcp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    RtcpParseError,
    SenderReport,
    SourceDescription,
    SourceStats,
    compound,
    middle32,
    ntp_timestamp,
    parse_rtcp,
    round_trip,
)
from callwright.telephony.rtp import (
    DtmfReceiver,
    RtpPacket,
    RtpParseError,
    dtmf_payloads,
    looks_like_rtcp,
    parse_rtp,
)
from callwright.telephony.sip.sdp import AudioSession

Address = tuple[str, int]

SAMPLE_RATE = 8000
PTIME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * PTIME_MS // 1000
PERIOD = PTIME_MS / 1000
COMFORT_NOISE = 13  # RFC 3389 payload type: understood, never offered, ignored
# Ticks of audio between two key presses sent as events (RFC 4733 wants a gap).
DIGIT_GAP_TICKS = 4
# A pacer this far behind its schedule (a stalled process) starts a new schedule
# instead of firing the missed ticks back to back.
MAX_LAG = 1.0
MAX_PAYLOAD = 8 * FRAME_SAMPLES  # 160 ms: more is not a telephony stream
RTCP_INTERVAL = 5.0  # RFC 3550 §6.2's minimum, which two G.711 parties never exceed
_TS_MOD = 1 << 32


# -- what the session yields ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CallerFrame:
    """20 ms of the caller's audio at 8 kHz (concealment or silence if none arrived)."""

    pcm: Int16Array


@dataclass(frozen=True, slots=True)
class CallerDigit:
    digit: str


@dataclass(frozen=True, slots=True)
class CallEnded:
    reason: str = "hangup"


MediaEvent = CallerFrame | CallerDigit | CallEnded


@dataclass(slots=True)
class RtpStats:
    received: int = 0
    sent: int = 0
    malformed: int = 0
    unknown_payload: int = 0
    wrong_size: int = 0
    foreign_source: int = 0
    rtcp: int = 0  # RTCP datagrams received (on either port)
    rtcp_malformed: int = 0  # of those, dropped as malformed
    rtcp_sent: int = 0
    rtcp_bye: int = 0  # BYE packets received
    digits_in: int = 0
    digits_out: int = 0
    skipped_frames: int = 0  # extra frames the jitter buffer released in one tick
    backlog_dropped: int = 0  # caller frames dropped because nobody read them
    pacer_resets: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def parse_port_range(text: str) -> tuple[int, int]:
    """``"10000-20000"`` -> (10000, 20000); raise ``ValueError`` if malformed."""
    low, dash, high = text.strip().partition("-")
    if not dash or not low.isdigit() or not high.isdigit():
        raise ValueError(f"bad RTP port range {text!r}: want LOW-HIGH")
    first, last = int(low), int(high)
    if not 1024 <= first <= last <= 65535:
        raise ValueError(f"bad RTP port range {text!r}")
    return first, last


class Reframer:
    """Cuts received audio into 20 ms frames aligned on the RTP timestamp.

    ``push`` returns ``(index, frame)`` for each frame completed, where ``index`` counts
    frames from the first timestamp seen. A frame split across packets (30 ms ptime) is
    emitted once both parts are in; a part whose partner was lost is forgotten after
    ``keep`` frames (the jitter buffer conceals the whole frame).
    """

    def __init__(self, keep: int = 50) -> None:
        self.keep = keep
        self._base: int | None = None
        self._ssrc: int | None = None
        self._partial: dict[int, tuple[Int16Array, int]] = {}

    def push(self, ssrc: int, timestamp: int, pcm: Int16Array) -> list[tuple[int, Int16Array]]:
        if ssrc != self._ssrc or self._base is None:
            # A new source restarts the timeline (its timestamps are unrelated).
            self._ssrc, self._base = ssrc, timestamp
            self._partial.clear()
        offset = (timestamp - self._base) % _TS_MOD
        if offset >= _TS_MOD // 2:
            offset -= _TS_MOD  # a packet from before the first one (reordered)
        if offset % FRAME_SAMPLES == 0 and len(pcm) == FRAME_SAMPLES:
            return [(offset // FRAME_SAMPLES, pcm)]
        done: list[tuple[int, Int16Array]] = []
        pos = 0
        while pos < len(pcm):
            index, within = divmod(offset + pos, FRAME_SAMPLES)
            take = min(FRAME_SAMPLES - within, len(pcm) - pos)
            if within == 0 and take == FRAME_SAMPLES:
                done.append((index, pcm[pos : pos + take]))
            else:
                if index in self._partial:
                    frame, filled = self._partial.pop(index)
                else:
                    frame, filled = np.zeros(FRAME_SAMPLES, dtype=np.int16), 0
                frame[within : within + take] = pcm[pos : pos + take]
                if filled + take >= FRAME_SAMPLES:
                    done.append((index, frame))
                else:
                    self._partial[index] = (frame, filled + take)
            pos += take
        if done and self._partial:
            newest = done[-1][0]
            for stale in [k for k in self._partial if k < newest - self.keep]:
                del self._partial[stale]
        return done


Encoder = Callable[[Int16Array], bytes]
Decoder = Callable[[bytes], Int16Array]
_CODECS: dict[str, tuple[Encoder, Decoder]] = {
    "PCMU": (lambda pcm: ulaw_encode(pcm).tobytes(), ulaw_decode),
    "PCMA": (lambda pcm: alaw_encode(pcm).tobytes(), alaw_decode),
}


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, session: RtpSession) -> None:
        self.session = session

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        self.session.receive(data, (str(addr[0]), int(addr[1])), self.session.clock())

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a peer that went away: RTP just keeps going.
        pass


class _RtcpProtocol(asyncio.DatagramProtocol):
    def __init__(self, session: RtpSession) -> None:
        self.session = session

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        self.session.receive_rtcp(data, (str(addr[0]), int(addr[1])), self.session.clock())

    def error_received(self, exc: Exception) -> None:
        pass


async def _sleep_until(deadline: float) -> None:
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))


class RtpSession:
    """A bound RTP port and the media of one call (see the module rules)."""

    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        *,
        host: str,
        ports: tuple[int, int] = (10000, 20000),
        clock: Callable[[], float] = time.monotonic,
        sleep_until: Callable[[float], Awaitable[None]] = _sleep_until,
        jitter: JitterConfig | None = None,
        max_backlog: int = 50,
        ssrc: int | None = None,
        rtcp: bool = True,
        wallclock: Callable[[], float] = time.time,
        rtcp_interval: float = RTCP_INTERVAL,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.host = host
        self.ports = ports
        self.clock = clock
        self._sleep_until = sleep_until
        self.stats = RtpStats()
        self._jitter = JitterBuffer(jitter or JitterConfig(sample_rate=SAMPLE_RATE))
        self._dtmf_in = DtmfReceiver()
        self._reframer = Reframer()
        self._max_backlog = max_backlog
        self._transport: asyncio.DatagramTransport | None = None
        self.local_port = 0
        self.audio: AudioSession | None = None
        self._encode: Encoder | None = None
        self._decode: Decoder | None = None
        self._remote: Address | None = None
        self._latched = False
        # Outgoing stream state (RFC 3550 §5.1: random initial values).
        self.ssrc = ssrc if ssrc is not None else secrets.randbits(32)
        self._seq = secrets.randbits(16)
        self._ts0 = secrets.randbits(32)
        self._ticks = 0
        self._sent_last_tick = False
        self._outbox: deque[Int16Array] = deque()
        self._tones: deque[Int16Array] = deque()  # in-band DTMF, sent before the outbox
        self._events_out: deque[tuple[str, int]] = deque()  # (digit, its number)
        self._event_packets: deque[tuple[bytes, bool]] = deque()
        self._event_ts = 0
        self._event_index = 0
        self._gap = 0
        self._digits_done: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._digits_queued = 0
        # What the consumer reads.
        self._pending: deque[MediaEvent] = deque()
        self._wakeup = asyncio.Event()
        self._silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        self._pacer: asyncio.Task[None] | None = None
        self.ended = False
        # RTCP (rules 8 and 9).
        self.rtcp_enabled = rtcp
        self.wallclock = wallclock
        self.rtcp_interval = rtcp_interval
        self._rng = rng
        self.cname = f"callwright-{secrets.token_hex(6)}"  # RFC 7022: random per session
        self._rtcp_transport: asyncio.DatagramTransport | None = None
        self.rtcp_port = 0
        self._rtcp_remote: Address | None = None
        self._rtcp_latched = False
        self._next_report: float | None = None
        self._source: tuple[int, SourceStats] | None = None  # the peer's SSRC, its stats
        self._last_sr: tuple[int, float] | None = None  # the peer's last SR: LSR, arrival
        self._packets_sent = 0  # RTP packets and payload octets, for our SR
        self._octets_sent = 0
        self._reported_packets = 0  # _packets_sent at our last report
        self._bye_sent = False
        self.rtt: float | None = None  # seconds, from the peer's last report about us
        self.remote_report: ReportBlock | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def open(self, attempts: int = 64) -> int:
        """Bind an even RTP port from the range and the odd one above it for RTCP
        (RFC 3550 §11); a range without such a pair gets RTP alone."""
        loop = asyncio.get_running_loop()
        first, last = self.ports
        pairs = list(range(first + first % 2, last, 2)) if self.rtcp_enabled else []
        if not pairs:
            self.rtcp_enabled = False
        candidates = pairs or list(range(first + first % 2, last + 1, 2)) or [first]
        for port in random.sample(candidates, min(attempts, len(candidates))):
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Protocol(self), local_addr=(self.host, port)
                )
            except OSError:
                continue
            if self.rtcp_enabled:
                try:
                    rtcp, _ = await loop.create_datagram_endpoint(
                        lambda: _RtcpProtocol(self), local_addr=(self.host, port + 1)
                    )
                except OSError:
                    transport.close()
                    continue
                self._rtcp_transport = rtcp
                self.rtcp_port = port + 1
            self._transport = transport
            self.local_port = port
            return port
        raise OSError(f"no free RTP port in {first}-{last}")

    def start(self, audio: AudioSession) -> None:
        """Run the negotiated stream (and start the pacer the first time)."""
        self.update(audio)
        if self._pacer is None and not self.ended:
            self._pacer = asyncio.create_task(self._pace(), name=f"rtp-{self.local_port}")

    def update(self, audio: AudioSession) -> None:
        """A new offer/answer (re-INVITE: hold, unhold, new address or codec)."""
        codec = _CODECS.get(audio.codec)
        if codec is None:
            raise ValueError(f"unsupported codec {audio.codec}")
        previous = self.audio
        self.audio = audio
        self._encode, self._decode = codec
        if previous is None or (previous.remote_address, previous.remote_port) != (
            audio.remote_address,
            audio.remote_port,
        ):
            self._remote = (audio.remote_address, audio.remote_port)
            self._latched = False
            self._rtcp_remote = None
            self._rtcp_latched = False

    def end(self, reason: str = "hangup") -> None:
        """The call is over: the consumer gets ``CallEnded`` and the pacer stops."""
        if self.ended:
            return
        self.ended = True
        self._emit(CallEnded(reason))
        if self._pacer is not None:
            self._pacer.cancel()
        for _, future in self._digits_done:
            if not future.done():
                future.set_result(None)

    async def close(self) -> None:
        self.end("closed")
        if self._pacer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._pacer
        self._send_bye(self.clock())
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if self._rtcp_transport is not None:
            self._rtcp_transport.close()
            self._rtcp_transport = None

    # -- the consumer's side (the AudioPort shape) -----------------------------------------
    async def events(self) -> AsyncIterator[MediaEvent]:
        while True:
            while not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            event = self._pending.popleft()
            yield event
            if isinstance(event, CallEnded):
                return

    async def send(self, pcm: Int16Array) -> None:
        """Queue one agent frame (20 ms at 8 kHz); the next tick sends it."""
        if len(pcm) != FRAME_SAMPLES:
            raise ValueError(f"a frame is {FRAME_SAMPLES} samples, got {len(pcm)}")
        self._outbox.append(pcm)
        while len(self._outbox) > self._max_backlog:
            self._outbox.popleft()

    async def send_digits(self, digits: str) -> None:
        """Send key presses (RFC 4733 events, or tones if the peer has no
        telephone-event); returns when they are on the wire."""
        if self.ended or not digits:
            return
        audio = self.audio
        if audio is None or audio.telephone_event is None:
            tones = generate_dtmf(digits, sample_rate=SAMPLE_RATE)
            usable = len(tones) - len(tones) % FRAME_SAMPLES
            self._tones.extend(np.split(tones[:usable], usable // FRAME_SAMPLES))
            self.stats.digits_out += len(digits)
            # Tones drain at one frame per tick; wait that long.
            await self._sleep_until(self.clock() + len(self._tones) * PERIOD)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for digit in digits:
            self._digits_queued += 1
            self._events_out.append((digit, self._digits_queued))
        self._digits_done.append((self._digits_queued, future))
        await future

    # -- the wire --------------------------------------------------------------------------
    def receive(self, data: bytes, addr: Address, now: float) -> None:
        """One datagram from the network (never raises on bad input)."""
        if looks_like_rtcp(data):
            self.receive_rtcp(data, addr, now, muxed=True)
            return
        try:
            packet = parse_rtp(data)
        except RtpParseError:
            self.stats.malformed += 1
            return
        audio = self.audio
        if audio is None or self.ended:
            return
        if self._latched and addr != self._remote:
            self.stats.foreign_source += 1
            return
        pt = packet.payload_type
        if pt == audio.payload_type:
            if not 0 < len(packet.payload) <= MAX_PAYLOAD:
                self.stats.wrong_size += 1
                return
            self._latch(addr)
            self.stats.received += 1
            self._count(packet, packet.timestamp, now)
            if audio.receives and self._decode is not None:
                pcm = self._decode(packet.payload)
                for index, frame in self._reframer.push(packet.ssrc, packet.timestamp, pcm):
                    slot = MediaPacket(index % 65536, index * FRAME_SAMPLES, frame)
                    self._jitter.push(slot, now)
        elif audio.telephone_event is not None and pt == audio.telephone_event:
            self._latch(addr)
            self.stats.received += 1
            self._count(packet, None, now)  # event timestamps stand still: no jitter
            digit = self._dtmf_in.feed(packet)
            if digit is not None and audio.receives:
                self.stats.digits_in += 1
                self._emit(CallerDigit(digit))
        elif pt == COMFORT_NOISE:
            self._latch(addr)
        else:
            self.stats.unknown_payload += 1

    def _latch(self, addr: Address) -> None:
        if not self._latched:
            self._remote = addr
            self._latched = True

    def _count(self, packet: RtpPacket, timestamp: int | None, now: float) -> None:
        """Reception statistics of the peer's stream (a new SSRC starts them over)."""
        source = self._source
        if source is None or source[0] != packet.ssrc:
            source = (packet.ssrc, SourceStats(packet.sequence, SAMPLE_RATE))
            self._source = source
        source[1].update(packet.sequence, timestamp, now)

    def tick(self, now: float) -> None:
        """One 20 ms step: send one packet (and RTCP when due), emit one caller frame."""
        self._send_tick()
        self._rtcp_tick(now)
        frame = None
        while (playout := self._jitter.pop(now)) is not None:
            if frame is not None:
                self.stats.skipped_frames += 1
            frame = playout
        self._emit(CallerFrame(frame.frame.samples if frame is not None else self._silence))

    def _send_tick(self) -> None:
        timestamp = self._ts0 + self._ticks * FRAME_SAMPLES
        self._ticks += 1
        audio = self.audio
        agent = self._outbox.popleft() if self._outbox else None
        if self._tones:
            agent = self._tones.popleft()
        if audio is None or not audio.sends or self._remote is None:
            self._sent_last_tick = False
            return
        if not self._event_packets and self._gap == 0 and self._events_out:
            digit, self._event_index = self._events_out.popleft()
            self._event_packets.extend(dtmf_payloads(digit, ptime_ms=PTIME_MS))
            self._event_ts = timestamp
            self._gap = DIGIT_GAP_TICKS
        if self._event_packets and audio.telephone_event is not None:
            payload, marker = self._event_packets.popleft()
            self._put(audio.telephone_event, self._event_ts, payload, marker)
            if not self._event_packets:
                self.stats.digits_out += 1
                self._resolve_digits(self._event_index)
            return
        if self._gap:
            self._gap -= 1
        assert self._encode is not None
        pcm = agent if agent is not None else self._silence
        self._put(audio.payload_type, timestamp, self._encode(pcm), not self._sent_last_tick)
        self._sent_last_tick = True

    def _put(self, payload_type: int, timestamp: int, payload: bytes, marker: bool) -> None:
        packet = RtpPacket(payload_type, self._seq, timestamp, self.ssrc, payload, marker)
        self._seq = (self._seq + 1) & 0xFFFF
        if self._transport is not None and self._remote is not None:
            self._transport.sendto(packet.serialize(), self._remote)
            self._packets_sent += 1
            self._octets_sent += len(payload)
        self.stats.sent += 1

    def _resolve_digits(self, index: int) -> None:
        while self._digits_done and self._digits_done[0][0] <= index:
            _, future = self._digits_done.popleft()
            if not future.done():
                future.set_result(None)

    def _emit(self, event: MediaEvent) -> None:
        pending = self._pending
        if isinstance(event, CallerFrame) and len(pending) >= self._max_backlog:
            for index, old in enumerate(pending):
                if isinstance(old, CallerFrame):
                    del pending[index]
                    self.stats.backlog_dropped += 1
                    break
        pending.append(event)
        self._wakeup.set()

    async def _pace(self) -> None:
        t0 = self.clock()
        n = 0
        while not self.ended:
            n += 1
            deadline = t0 + n * PERIOD
            await self._sleep_until(deadline)
            now = self.clock()
            if now - deadline > MAX_LAG:
                self.stats.pacer_resets += 1
                t0, n = now, 0
            self.tick(now)

    # -- RTCP (rules 8 and 9) --------------------------------------------------------------
    def receive_rtcp(self, data: bytes, addr: Address, now: float, *, muxed: bool = False) -> None:
        """One RTCP datagram, from the RTCP port or ``muxed`` on the RTP port (never
        raises on bad input)."""
        self.stats.rtcp += 1
        try:
            packets = parse_rtcp(data)
        except RtcpParseError:
            self.stats.rtcp_malformed += 1
            return
        audio = self.audio
        if not self._rtcp_latched and not muxed and audio is not None:
            # Latch only the peer's host: a stranger must not redirect our reports.
            peer_host = self._remote[0] if self._remote is not None else audio.remote_address
            if addr[0] == peer_host:
                self._rtcp_remote = addr
                self._rtcp_latched = True
        for packet in packets:
            self._on_rtcp(packet, now)

    def _on_rtcp(self, packet: RtcpPacket, now: float) -> None:
        if isinstance(packet, SenderReport):
            self._last_sr = (middle32(packet.ntp), now)
        if isinstance(packet, SenderReport | ReceiverReport):
            for block in packet.reports:
                if block.ssrc == self.ssrc:
                    self.remote_report = block
                    rtt = round_trip(block, ntp_timestamp(self.wallclock()))
                    if rtt is not None:
                        self.rtt = rtt
        elif isinstance(packet, Bye):
            self.stats.rtcp_bye += 1

    def report(self, now: float, *, bye: bool = False) -> bytes:
        """Our compound RTCP packet at ``now``: SR or RR, SDES CNAME (and BYE)."""
        blocks: tuple[ReportBlock, ...] = ()
        source = self._source
        if source is not None:
            ssrc, stats = source
            if stats.received > stats.received_prior:
                lsr = dlsr = 0
                if self._last_sr is not None:
                    lsr = self._last_sr[0]
                    dlsr = int((now - self._last_sr[1]) * 65536)
                blocks = (stats.report(ssrc, lsr, dlsr),)
        first: SenderReport | ReceiverReport
        if self._packets_sent > self._reported_packets:
            # The RTP timestamp of the packet this tick sent: the instant of ``now``.
            rtp_ts = (self._ts0 + max(0, self._ticks - 1) * FRAME_SAMPLES) % (1 << 32)
            first = SenderReport(
                self.ssrc,
                ntp_timestamp(self.wallclock()),
                rtp_ts,
                self._packets_sent,
                self._octets_sent,
                blocks,
            )
        else:
            first = ReceiverReport(self.ssrc, blocks)
        self._reported_packets = self._packets_sent
        packets: list[RtcpPacket] = [first, SourceDescription.cname(self.ssrc, self.cname)]
        if bye:
            packets.append(Bye((self.ssrc,)))
        return compound(*packets)

    def _rtcp_target(self) -> Address | None:
        if self._rtcp_remote is not None:
            return self._rtcp_remote
        audio = self.audio
        if audio is None or not audio.remote_port:
            return None
        return (audio.remote_address, audio.remote_port + 1)

    def _rtcp_tick(self, now: float) -> None:
        if self._rtcp_transport is None:
            return
        if self._next_report is None:
            # RFC 3550 §6.2: the first report after half the minimum interval.
            self._next_report = now + self.rtcp_interval / 2 * (0.5 + self._rng())
            return
        if now < self._next_report:
            return
        self._next_report = now + self.rtcp_interval * (0.5 + self._rng())
        target = self._rtcp_target()
        if target is not None:
            self._rtcp_transport.sendto(self.report(now), target)
            self.stats.rtcp_sent += 1

    def _send_bye(self, now: float) -> None:
        target = self._rtcp_target()
        if self._bye_sent or self._rtcp_transport is None or target is None:
            return
        self._bye_sent = True
        self._rtcp_transport.sendto(self.report(now, bye=True), target)
        self.stats.rtcp_sent += 1
