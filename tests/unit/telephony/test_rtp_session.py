"""RtpSession: pacing in virtual time, jitter and loss, bad input, DTMF in and out."""

from __future__ import annotations

import asyncio
import random

import numpy as np
import pytest

from callwright.media.g711 import ulaw_decode, ulaw_encode
from callwright.telephony.rtp import RtpPacket, dtmf_payloads, parse_rtp, parse_telephone_event
from callwright.telephony.rtp_session import (
    FRAME_SAMPLES,
    CallEnded,
    CallerDigit,
    CallerFrame,
    MediaEvent,
    Reframer,
    RtpSession,
    parse_port_range,
)
from callwright.telephony.sip.sdp import AudioSession

PEER = ("127.0.0.1", 40000)


def audio(direction: str = "sendrecv", event: int | None = 101) -> AudioSession:
    return AudioSession("PCMU", 0, 8000, PEER[0], PEER[1], event, 20, direction)


def packet(seq: int, level: int = 4000, pt: int = 0, ssrc: int = 7) -> bytes:
    pcm = np.full(FRAME_SAMPLES, level, dtype=np.int16)
    return RtpPacket(pt, seq, seq * FRAME_SAMPLES, ssrc, ulaw_encode(pcm).tobytes()).serialize()


class VirtualClock:
    """A clock that jumps to each deadline the pacer sleeps until, plus a random delay."""

    def __init__(self, late: float = 0.015, seed: int = 1) -> None:
        self.now = 100.0
        self.deadlines: list[float] = []
        self.late = late
        self.rng = random.Random(seed)

    def __call__(self) -> float:
        return self.now

    async def sleep_until(self, deadline: float) -> None:
        self.deadlines.append(deadline)
        self.now = max(self.now, deadline) + self.rng.uniform(0, self.late)
        await asyncio.sleep(0)


async def frozen(deadline: float) -> None:
    """A pacer that never wakes: the test drives ``tick`` itself."""
    await asyncio.Event().wait()


async def drain(session: RtpSession) -> list[MediaEvent]:
    out: list[MediaEvent] = []
    pending = session._pending
    while pending:
        out.append(pending.popleft())
    return out


def test_port_range() -> None:
    assert parse_port_range("10000-20000") == (10000, 20000)
    for bad in ("10000", "20000-10000", "a-b", "80-90"):
        with pytest.raises(ValueError):
            parse_port_range(bad)


async def test_pacer_uses_absolute_deadlines_without_drift() -> None:
    clock = VirtualClock(late=0.015)
    session = RtpSession(host="127.0.0.1", clock=clock, sleep_until=clock.sleep_until)
    session.start(audio())
    frames = 0
    async for event in session.events():
        assert isinstance(event, CallerFrame)
        frames += 1
        await session.send(np.zeros(FRAME_SAMPLES, dtype=np.int16))
        if frames == 500:
            break
    await session.close()
    t0 = clock.deadlines[0] - 0.02
    # Every wake-up was late by up to 15 ms, yet deadline n is exactly t0 + n * 20 ms.
    assert clock.deadlines[:500] == pytest.approx([t0 + 0.02 * n for n in range(1, 501)])
    assert session.stats.sent >= 500
    assert session.stats.pacer_resets == 0


async def test_stalled_pacer_starts_a_new_schedule() -> None:
    clock = VirtualClock(late=0.0)
    session = RtpSession(host="127.0.0.1", clock=clock, sleep_until=clock.sleep_until)
    session.start(audio())
    events = session.events()
    await anext(events)
    clock.now += 5.0  # the process stalled
    for _ in range(3):
        await anext(events)
    await session.close()
    assert session.stats.pacer_resets == 1


async def test_one_frame_per_tick_through_jitter_and_loss() -> None:
    session = RtpSession(host="127.0.0.1", sleep_until=frozen, max_backlog=1000)
    session.start(audio())
    rng = random.Random(3)
    order = list(range(200))
    for i in range(0, 200, 4):  # reorder within groups of four
        group = order[i : i + 4]
        rng.shuffle(group)
        order[i : i + 4] = group
    lost = {50, 51, 120}
    arrivals = sorted((seq * 0.02 + rng.uniform(0, 0.03), seq) for seq in order if seq not in lost)
    ticks = 0
    index = 0
    while ticks < 260:
        now = ticks * 0.02
        while index < len(arrivals) and arrivals[index][0] <= now:
            session.receive(packet(arrivals[index][1]), PEER, arrivals[index][0])
            index += 1
        session.tick(now)
        ticks += 1
    frames = [e for e in await drain(session) if isinstance(e, CallerFrame)]
    assert len(frames) == 260
    heard = sum(bool(np.all(ulaw_decode(ulaw_encode(f.pcm)) > 3000)) for f in frames)
    stats = session._jitter.stats
    assert stats.received == 197
    assert stats.late == 0
    assert stats.lost >= 3
    assert heard == stats.played - stats.lost - session.stats.skipped_frames
    await session.close()


async def test_bad_packets_are_counted_never_fatal() -> None:
    session = RtpSession(host="127.0.0.1", sleep_until=frozen)
    session.start(audio())
    session.receive(b"\x00garbage", PEER, 0.0)
    session.receive(b"\x80\x00", PEER, 0.0)
    session.receive(packet(1, pt=96), PEER, 0.0)
    session.receive(RtpPacket(0, 2, 320, 7, b"").serialize(), PEER, 0.0)
    session.receive(bytes([0x80, 200, 0, 1]) + bytes(24), PEER, 0.0)  # RTCP SR
    session.receive(packet(3), PEER, 0.0)  # latches
    session.receive(packet(4), ("127.0.0.1", 9), 0.0)
    stats = session.stats
    assert (stats.malformed, stats.unknown_payload, stats.wrong_size) == (2, 1, 1)
    assert (stats.rtcp, stats.foreign_source, stats.received) == (1, 1, 1)
    await session.close()


async def test_received_telephone_event_is_one_digit() -> None:
    session = RtpSession(host="127.0.0.1", sleep_until=frozen)
    session.start(audio())
    for seq, (payload, marker) in enumerate(dtmf_payloads("5")):
        session.receive(RtpPacket(101, seq, 8000, 9, payload, marker).serialize(), PEER, 0.0)
    assert await drain(session) == [CallerDigit("5")]
    assert session.stats.digits_in == 1
    await session.close()


def test_reframer_cuts_30ms_packets_into_20ms_frames() -> None:
    reframer = Reframer()
    frames = []
    for n in range(4):
        pcm = np.arange(240, dtype=np.int16) + 240 * n
        frames += reframer.push(1, 5000 + 240 * n, pcm)
    assert [index for index, _ in frames] == [0, 1, 2, 3, 4, 5]
    joined = np.concatenate([frame for _, frame in frames])
    assert np.array_equal(joined, np.arange(960, dtype=np.int16))


class Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets: list[RtpPacket] = []

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        self.packets.append(parse_rtp(data))


async def collector() -> tuple[asyncio.DatagramTransport, Collector]:
    loop = asyncio.get_running_loop()
    return await loop.create_datagram_endpoint(Collector, local_addr=("127.0.0.1", 0))


async def settle(condition: object, tries: int = 200) -> None:
    for _ in range(tries):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.005)


async def test_sends_agent_frames_then_rfc4733_digits() -> None:
    transport, sink = await collector()
    port = transport.get_extra_info("sockname")[1]
    session = RtpSession(host="127.0.0.1", ports=(42000, 42999), sleep_until=frozen)
    await session.open()
    session.start(AudioSession("PCMU", 0, 8000, "127.0.0.1", port, 101, 20, "sendrecv"))
    await session.send(np.full(FRAME_SAMPLES, 2000, dtype=np.int16))
    session.tick(0.0)
    digits = asyncio.create_task(session.send_digits("1#"))
    await asyncio.sleep(0)
    ticks = 1
    while not digits.done() and ticks < 100:
        session.tick(ticks * 0.02)
        ticks += 1
        await asyncio.sleep(0)
    await digits
    await settle(lambda: len(sink.packets) == ticks)
    packets = sink.packets
    assert len(packets) == ticks
    first = packets[0]
    assert first.marker and first.payload_type == 0
    assert np.all(ulaw_decode(first.payload) > 1500)
    assert [p.sequence for p in packets] == [(first.sequence + i) & 0xFFFF for i in range(ticks)]
    assert len({p.ssrc for p in packets}) == 1
    events = [p for p in packets if p.payload_type == 101]
    pressed = {parse_telephone_event(p.payload).digit for p in events}
    assert pressed == {"1", "#"}
    assert [p.timestamp for p in events if p.marker] == sorted({p.timestamp for p in events})
    assert session.stats.digits_out == 2
    await session.close()
    transport.close()


async def test_hold_stops_sending_and_end_reaches_the_consumer() -> None:
    session = RtpSession(host="127.0.0.1", sleep_until=frozen)
    session.start(audio())
    session.tick(0.0)
    session.update(audio("recvonly"))  # the peer put us on hold
    session.tick(0.02)
    session.tick(0.04)
    assert session.stats.sent == 1
    session.update(audio())
    session.tick(0.06)
    assert session.stats.sent == 2
    session.end("hangup")
    events = [e async for e in session.events()]
    assert isinstance(events[-1], CallEnded)
    assert sum(isinstance(e, CallerFrame) for e in events) == 4
    await session.close()
