from __future__ import annotations

import numpy as np
import pytest
import soxr
from hypothesis import given, settings
from hypothesis import strategies as st

from callwright.media.frames import AudioFrame, Framer
from callwright.media.resample import COMMON_RATES, StreamingResampler

rates = st.sampled_from(COMMON_RATES)


def sine(freq: float, rate: int, seconds: float, amplitude: float = 12000.0) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def stream(resampler: StreamingResampler, frames: list[AudioFrame]) -> list[AudioFrame]:
    out = [resampler.process(f) for f in frames]
    out.append(resampler.flush())
    return [f for f in out if f is not None]


def chunk(samples: np.ndarray, rate: int, cuts: list[int]) -> list[AudioFrame]:
    edges = [0, *sorted({c % (len(samples) + 1) for c in cuts}), len(samples)]
    return [
        AudioFrame(samples[a:b], rate, a) for a, b in zip(edges, edges[1:], strict=False) if b > a
    ]


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    window = np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(samples * window, n=8 * len(samples)))
    return float(np.argmax(spectrum) * rate / (8 * len(samples)))


@settings(max_examples=200, deadline=None)
@given(
    in_rate=rates,
    out_rate=rates,
    n=st.integers(1, 12000),
    cuts=st.lists(st.integers(0, 12000), max_size=30),
    seed=st.integers(0, 2**32 - 1),
)
def test_chunked_stream_gives_the_exact_total_length(in_rate, out_rate, n, cuts, seed):
    samples = np.random.default_rng(seed).integers(-8000, 8000, n).astype(np.int16)
    out = stream(StreamingResampler(in_rate, out_rate), chunk(samples, in_rate, cuts))
    total = sum(f.num_samples for f in out)
    assert abs(total - n * out_rate / in_rate) <= 1
    # Output timestamps are contiguous on the output clock.
    for a, b in zip(out, out[1:], strict=False):
        assert b.timestamp == a.end_timestamp
    assert all(f.sample_rate == out_rate for f in out)


@settings(max_examples=60, deadline=None)
@given(in_rate=rates, out_rate=rates, cuts=st.lists(st.integers(0, 4000), max_size=20))
def test_chunking_does_not_change_the_signal(in_rate, out_rate, cuts):
    samples = sine(300.0, in_rate, 4000 / in_rate)
    whole = stream(StreamingResampler(in_rate, out_rate), [AudioFrame(samples, in_rate, 0)])
    pieces = stream(StreamingResampler(in_rate, out_rate), chunk(samples, in_rate, cuts))
    a = np.concatenate([f.samples for f in whole]).astype(np.int32)
    b = np.concatenate([f.samples for f in pieces]).astype(np.int32)
    assert len(a) == len(b)
    assert np.abs(a - b).max() <= 2  # int16 rounding inside the filter, nothing more


@pytest.mark.parametrize("in_rate", COMMON_RATES)
@pytest.mark.parametrize("out_rate", COMMON_RATES)
@pytest.mark.parametrize("freq", [440.0, 1700.0])
def test_a_sine_keeps_its_frequency_and_level(in_rate, out_rate, freq):
    framer = Framer(in_rate)
    frames = framer.push(sine(freq, in_rate, 0.5))
    out = stream(StreamingResampler(in_rate, out_rate), frames)
    samples = np.concatenate([f.samples for f in out]).astype(np.float64)
    steady = samples[len(samples) // 10 : -len(samples) // 10]
    resolution = out_rate / len(steady)
    assert abs(dominant_frequency(steady, out_rate) - freq) <= resolution
    rms = np.sqrt(np.mean(steady**2))
    assert rms == pytest.approx(12000 / np.sqrt(2), rel=0.03)


def test_streamed_output_lines_up_with_one_shot_resampling():
    samples = sine(700.0, 8000, 1.0)
    out = stream(StreamingResampler(8000, 16000), Framer(8000).push(samples))
    streamed = np.concatenate([f.samples for f in out]).astype(np.int32)
    one_shot = soxr.resample(samples, 8000, 16000, quality="HQ").astype(np.int32)
    assert len(streamed) == len(one_shot)
    assert np.abs(streamed - one_shot).max() <= 2


def test_first_output_timestamp_is_the_input_timestamp_on_the_output_clock():
    resampler = StreamingResampler(8000, 48000)
    frames = Framer(8000, start_timestamp=8000).push(sine(440.0, 8000, 0.3))
    out = stream(resampler, frames)
    assert out[0].timestamp == 48000
    assert out[-1].end_timestamp == 48000 + 6 * 2400


def test_equal_rates_pass_frames_through_with_the_same_samples():
    resampler = StreamingResampler(16000, 16000)
    frame = AudioFrame(sine(440.0, 16000, 0.02), 16000, 320)
    out = resampler.process(frame)
    assert out is not None
    assert out.timestamp == 320
    np.testing.assert_array_equal(out.samples, frame.samples)
    assert resampler.flush() is None


def test_flush_resets_for_a_new_stream():
    resampler = StreamingResampler(16000, 8000)
    first = stream(resampler, Framer(16000).push(sine(440.0, 16000, 0.2)))
    second = stream(resampler, Framer(16000, start_timestamp=0).push(sine(440.0, 16000, 0.2)))
    assert second[0].timestamp == 0
    assert sum(f.num_samples for f in first) == sum(f.num_samples for f in second) == 1600


def test_rejects_frames_at_the_wrong_rate():
    resampler = StreamingResampler(8000, 16000)
    with pytest.raises(ValueError, match="16000 Hz"):
        resampler.process(AudioFrame.silence(320, 16000, 0))
    with pytest.raises(ValueError, match="positive"):
        StreamingResampler(0, 8000)


def test_resample_block_converts_a_whole_buffer() -> None:
    from callwright.media.resample import resample_block

    tone = (np.sin(np.arange(8000) * 2 * np.pi * 440 / 8000) * 8000).astype(np.int16)
    up = resample_block(tone, 8000, 16000)
    assert abs(len(up) - 16000) <= 2
    same = resample_block(tone, 8000, 8000)
    assert np.array_equal(same, tone) and same is not tone
    with pytest.raises(ValueError):
        resample_block(tone, 0, 16000)
