from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callwright.media.frames import AudioFrame, Framer, samples_per_frame


@settings(max_examples=300, deadline=None)
@given(
    rate=st.sampled_from([8000, 16000, 22050, 24000, 48000]),
    values=st.lists(st.integers(-32768, 32767), max_size=3000),
    cuts=st.lists(st.integers(0, 6000), max_size=20),
    as_bytes=st.booleans(),
    start=st.integers(0, 2**40),
)
def test_any_chunking_gives_exact_contiguous_frames(rate, values, cuts, as_bytes, start):
    pcm = np.array(values, dtype=np.int16)
    data = pcm.astype("<i2").tobytes()
    edges = [0, *sorted({c % (len(data) + 1) for c in cuts}), len(data)]
    framer = Framer(rate, start_timestamp=start)
    frames = []
    for a, b in zip(edges, edges[1:], strict=False):
        if as_bytes:
            frames += framer.push(data[a:b])
        else:
            frames += framer.push(pcm[a // 2 : b // 2])  # arrays split on whole samples
        assert framer.pending_samples < framer.frame_samples
    size = samples_per_frame(rate)
    full = len(pcm) // size
    assert len(frames) == full
    tail = framer.flush()
    assert (tail is None) == (len(pcm) % size == 0)
    if tail is not None:
        frames.append(tail)
    for n, frame in enumerate(frames):
        assert frame.num_samples == size
        assert frame.timestamp == start + n * size
        assert frame.sample_rate == rate
    joined = np.concatenate([f.samples for f in frames]) if frames else np.zeros(0, np.int16)
    np.testing.assert_array_equal(joined[: len(pcm)], pcm)
    assert not joined[len(pcm) :].any()
    assert framer.pending_samples == 0


def test_an_odd_byte_waits_for_its_other_half():
    framer = Framer(8000)
    data = np.arange(160, dtype="<i2").tobytes()
    assert framer.push(data[:3]) == []
    (frame,) = framer.push(data[3:])
    np.testing.assert_array_equal(frame.samples, np.arange(160))


def test_flush_drops_a_dangling_half_sample():
    framer = Framer(8000)
    framer.push(b"\x05\x00\x07")
    tail = framer.flush()
    assert tail is not None
    assert tail.samples[:2].tolist() == [5, 0]


def test_frames_are_read_only_and_do_not_alias_the_callers_buffer():
    source = np.arange(160, dtype=np.int16)
    frame = AudioFrame(source, 8000, 0)
    source[:] = 0
    assert frame.samples[5] == 5
    with pytest.raises(ValueError):
        frame.samples[0] = 1
    shared = AudioFrame(frame.samples, 8000, 160)
    assert shared.samples is frame.samples  # already frozen: no copy needed


def test_a_readonly_view_of_a_writable_buffer_is_copied():
    source = np.arange(160, dtype=np.int16)
    view = source.view()
    view.flags.writeable = False
    frame = AudioFrame(view, 8000, 0)
    source[:] = 0
    assert frame.samples[5] == 5


def test_bytes_round_trip_and_properties():
    frame = AudioFrame.from_bytes(b"\x01\x00\xff\xff" * 80, 8000, 1000)
    assert frame.samples[:2].tolist() == [1, -1]
    assert frame.to_bytes() == b"\x01\x00\xff\xff" * 80
    assert (frame.num_samples, frame.end_timestamp, frame.duration_ms) == (160, 1160, 20.0)
    silence = AudioFrame.silence(320, 16000, 0)
    assert not silence.samples.any() and silence.duration_ms == 20.0


def test_frame_sizes():
    assert [samples_per_frame(r) for r in (8000, 16000, 22050, 24000, 48000)] == [
        160,
        320,
        441,
        480,
        960,
    ]
    assert samples_per_frame(8000, 30) == 240
    with pytest.raises(ValueError, match="whole number"):
        samples_per_frame(11025, 10)


def test_rejects_bad_audio():
    with pytest.raises(ValueError, match="int16"):
        AudioFrame(np.zeros(160, np.float32), 8000, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="int16"):
        AudioFrame(np.zeros((2, 80), np.int16), 8000, 0)
    with pytest.raises(ValueError, match="even length"):
        AudioFrame.from_bytes(b"\x00", 8000, 0)
    with pytest.raises(ValueError, match="positive"):
        AudioFrame.silence(160, 0, 0)
