from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callwright.media.jitter import (
    JitterBuffer,
    JitterConfig,
    MediaPacket,
    PlayoutFrame,
)

FRAME = 0.02
SAMPLES = 160


def payload(index: int) -> np.ndarray:
    """A frame that names its packet: every sample is index + 1 (never 0, never faded)."""
    return np.full(SAMPLES, index + 1, dtype=np.int16)


def packet(index: int, start_seq: int = 0, start_ts: int = 0) -> MediaPacket:
    return MediaPacket(
        seq=(start_seq + index) % 65536,
        timestamp=(start_ts + index * SAMPLES) % 2**32,
        payload=payload(index),
    )


def drain(jb: JitterBuffer) -> list[PlayoutFrame]:
    out = []
    while jb.buffered:
        frame = jb.pop(math.inf)
        assert frame is not None
        out.append(frame)
    return out


def pop_all(jb: JitterBuffer, now: float) -> list[PlayoutFrame]:
    out = []
    while (frame := jb.pop(now)) is not None:
        out.append(frame)
    return out


@dataclass
class Oracle:
    """What the counters must say, worked out from the outputs the test has seen."""

    start_seq: int
    seen: set[int] = field(default_factory=set)
    accepted: set[int] = field(default_factory=set)
    duplicates: int = 0
    late: int = 0

    def index(self, frame: PlayoutFrame) -> int:
        return (frame.seq - self.start_seq) % 65536

    def on_push(self, i: int, outputs: list[PlayoutFrame]) -> None:
        if i in self.seen:
            self.duplicates += 1
            return
        self.seen.add(i)
        if outputs and i <= self.index(outputs[-1]):
            self.late += 1
        else:
            self.accepted.add(i)


network = st.lists(
    st.tuples(
        st.integers(0, 2),  # copies that arrive: 0 = lost, 2 = duplicated
        st.floats(0.0, 0.25),  # jitter of the first copy
        st.floats(0.0, 0.6),  # jitter of the duplicate (often very late)
    ),
    min_size=1,
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(
    packets=network,
    start_seq=st.one_of(st.integers(0, 65535), st.integers(65500, 65535)),
    start_ts=st.integers(0, 2**32 - 1),
    base_delay=st.floats(0.0, 0.5),
    tick_phase=st.floats(0.0, FRAME),
    loss_burst=st.tuples(st.integers(0, 119), st.integers(0, 10)),
)
def test_any_arrival_pattern_gives_a_continuous_stream_and_true_counters(
    packets, start_seq, start_ts, base_delay, tick_phase, loss_burst
):
    burst_at, burst_len = loss_burst
    arrivals = []
    for i, (copies, jitter, dup_jitter) in enumerate(packets):
        if burst_at <= i < burst_at + burst_len:
            continue
        send = i * FRAME
        if copies >= 1:
            arrivals.append((send + base_delay + jitter, i))
        if copies == 2:
            arrivals.append((send + base_delay + dup_jitter, i))
    arrivals.sort()

    # Long runs of losses can look like a sender pause (rule 6); this network never
    # pauses, so keep that detector out of the way of the exact counts.
    jb = JitterBuffer(JitterConfig(sample_rate=8000, pause_resync=10.0))
    oracle = Oracle(start_seq)
    outputs: list[PlayoutFrame] = []
    tick = tick_phase
    for arrival, i in arrivals:
        while tick <= arrival:
            outputs += pop_all(jb, tick)
            tick += FRAME
        oracle.on_push(i, outputs)
        jb.push(packet(i, start_seq, start_ts), arrival)
    drained = drain(jb)
    outputs += drained

    if not arrivals:
        assert outputs == []
        return
    # Continuous: consecutive sequence numbers and sample-exact timestamps.
    first = outputs[0]
    start = oracle.index(first)
    for n, frame in enumerate(outputs):
        assert oracle.index(frame) == start + n
        assert frame.frame.timestamp == first.frame.timestamp + n * SAMPLES
        assert frame.frame.num_samples == SAMPLES
    # Playout started at the first packet it held, and that packet's timestamp.
    assert not first.concealed
    assert first.frame.timestamp == (start_ts + start * SAMPLES) % 2**32
    # Every accepted packet is played once, in its own slot, with its own audio;
    # everything else is concealment.
    real = {oracle.index(f) for f in outputs if not f.concealed}
    assert real == oracle.accepted
    for frame in outputs:
        if not frame.concealed:
            assert np.all(frame.frame.samples == oracle.index(frame) + 1)
    # Draining stops exactly at the highest packet held.
    if drained:
        assert oracle.index(drained[-1]) == max(oracle.accepted)
    stats = jb.stats
    assert stats.received == len(oracle.accepted)
    assert stats.duplicates == oracle.duplicates
    assert stats.late == oracle.late
    assert stats.lost == sum(f.concealed for f in outputs)
    assert stats.played == len(outputs)
    assert stats.resyncs == 0
    assert jb.config.min_delay <= jb.target_delay <= jb.config.max_delay + 1e-9


def test_steady_network_plays_one_frame_per_tick_and_loses_nothing():
    jb = JitterBuffer()
    played = []
    for i in range(500):
        jb.push(packet(i), i * FRAME + 0.05)
        played.append(len(pop_all(jb, i * FRAME + 0.055)))
    # Once the start-up delay has been trimmed, exactly one frame per tick.
    assert set(played[200:]) == {1}
    assert jb.stats.lost == 0
    assert jb.target_delay == pytest.approx(jb.config.min_delay)


def test_reorders_across_the_sequence_number_wrap():
    jb = JitterBuffer()
    order = [1, 0, 3, 2, 5, 4]  # indexes; seq runs 65533, 65534, 65535, 0, 1, 2
    for k, i in enumerate(order):
        jb.push(packet(i, start_seq=65533), 0.001 * k)
    out = drain(jb)
    assert [f.seq for f in out] == [65533, 65534, 65535, 0, 1, 2]
    assert [int(f.frame.samples[0]) for f in out] == [1, 2, 3, 4, 5, 6]
    assert jb.stats.late == 0


def test_duplicates_and_late_packets_are_counted_and_dropped():
    jb = JitterBuffer()
    jb.push(packet(0), 0.0)
    jb.push(packet(0), 0.001)  # duplicate while buffered
    jb.push(packet(2), 0.04)
    out = pop_all(jb, 0.2)  # plays 0, conceals 1, plays 2, conceals onward
    assert [f.concealed for f in out[:3]] == [False, True, False]
    jb.push(packet(1), 0.21)  # its slot was concealed: late
    jb.push(packet(2), 0.22)  # already played: duplicate
    jb.push(packet(1), 0.23)  # a copy of the late one: duplicate
    stats = jb.stats
    assert (stats.duplicates, stats.late, stats.received) == (3, 1, 2)
    assert stats.lost == sum(f.concealed for f in out)


def test_an_earlier_packet_before_playout_moves_the_start_back():
    jb = JitterBuffer()
    jb.push(packet(5, start_ts=1000), 0.0)
    jb.push(packet(3, start_ts=1000), 0.005)
    out = drain(jb)
    assert [f.concealed for f in out] == [False, True, False]
    assert out[0].frame.timestamp == 1000 + 3 * SAMPLES
    assert jb.stats.late == 0


def test_concealment_fades_the_last_frame_then_goes_silent():
    jb = JitterBuffer(JitterConfig(fade_frames=2))
    jb.push(MediaPacket(0, 0, np.full(SAMPLES, 10000, np.int16)), 0.0)
    jb.push(packet(4), 0.0)
    out = drain(jb)
    first_fade, second_fade, silence = (f.frame.samples for f in out[1:4])
    assert all(f.concealed for f in out[1:4])
    assert first_fade[0] == 10000 and 4900 <= first_fade[-1] <= 5100
    assert np.all(np.diff(first_fade.astype(int)) <= 0)
    assert 4900 <= second_fade[0] <= 5100 and second_fade[-1] == 0
    assert not silence.any()
    assert not out[4].concealed


@pytest.mark.parametrize(
    ("max_jitter", "low", "high"),
    [(0.0, 0.02, 0.021), (0.1, 0.09, 0.13), (2.0, 0.3, 0.3)],
)
def test_target_delay_follows_the_observed_jitter_within_bounds(max_jitter, low, high):
    rng = np.random.default_rng(7)
    jb = JitterBuffer(JitterConfig(min_delay=0.02, max_delay=0.3))
    for i in range(1000):
        jb.push(packet(i), i * FRAME + rng.uniform(0, max_jitter))
        pop_all(jb, i * FRAME)
    assert low - 1e-9 <= jb.target_delay <= high + 1e-9


def test_delay_grows_with_jitter_and_then_shrinks_back():
    rng = np.random.default_rng(3)
    jb = JitterBuffer()
    lost_after_warmup = 0
    for i in range(1500):
        jitter = rng.uniform(0, 0.12) if 250 <= i < 750 else 0.0
        jb.push(packet(i), i * FRAME + jitter)
        out = pop_all(jb, i * FRAME + 0.001)
        if 400 <= i < 750:
            lost_after_warmup += sum(f.concealed for f in out)
        if i == 749:
            assert jb.target_delay > 0.1
    assert lost_after_warmup <= 10  # under 3 %: the buffer grew to cover the jitter
    assert jb.target_delay == pytest.approx(0.02)
    # The playout offset itself came back down, frames are due soon after they arrive.
    jb.push(packet(1500), 1500 * FRAME)
    assert jb.pop(1500 * FRAME + 0.035) is not None


def test_a_jump_in_numbering_resyncs_and_keeps_time_monotonic():
    jb = JitterBuffer()
    for i in range(10):
        jb.push(packet(i), i * FRAME)
    before = drain(jb)
    for i in range(5000, 5010):
        jb.push(packet(i), 1.0 + (i - 5000) * FRAME)
    after = drain(jb)
    assert jb.stats.resyncs == 1
    assert len(after) == 10
    assert after[0].frame.timestamp == before[-1].frame.end_timestamp
    assert not any(f.concealed for f in after)


def test_a_sender_pause_costs_pause_resync_then_audio_flows_again():
    jb = JitterBuffer(JitterConfig(pause_resync=0.5))
    out: list[PlayoutFrame] = []
    for i in range(300):
        # Sender silent from 2 s to 5 s, then resumes with the next sequence number.
        arrival = i * FRAME + (3.0 if i >= 100 else 0.0)
        jb.push(packet(i), arrival)
        out += pop_all(jb, arrival)
    out += drain(jb)
    stats = jb.stats
    assert stats.resyncs == 1
    assert 20 <= stats.late <= 30  # about 0.5 s of packets
    tail = out[-150:]
    assert not any(f.concealed for f in tail)
    assert int(tail[-1].frame.samples[0]) == 300
    for a, b in zip(out, out[1:], strict=False):
        assert b.frame.timestamp == a.frame.end_timestamp


def test_a_step_up_in_network_delay_is_absorbed_without_a_resync():
    jb = JitterBuffer()
    lost_late = 0
    for i in range(1000):
        delay = 0.01 if i < 400 else 0.2  # a route change adds 190 ms
        jb.push(packet(i), i * FRAME + delay)
        out = pop_all(jb, i * FRAME + delay)
        if i >= 450:
            lost_late += sum(f.concealed for f in out)
    assert jb.stats.resyncs == 0
    assert lost_late == 0
    assert jb.stats.late < 40


def test_nothing_is_due_before_the_first_packet_or_before_its_delay():
    jb = JitterBuffer(JitterConfig(initial_delay=0.06))
    assert jb.pop(100.0) is None
    jb.push(packet(0), 1.0)
    assert jb.pop(1.05) is None
    assert jb.pop(1.061) is not None


def test_rejects_a_payload_of_the_wrong_size():
    jb = JitterBuffer()
    with pytest.raises(ValueError, match="expected 160"):
        jb.push(MediaPacket(0, 0, np.zeros(240, np.int16)), 0.0)


def test_rejects_inconsistent_configuration():
    with pytest.raises(ValueError, match="min_delay"):
        JitterBuffer(JitterConfig(min_delay=0.5, max_delay=0.2))
