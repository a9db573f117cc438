from __future__ import annotations

import wave

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callwright.media.frames import AudioFrame, Framer
from callwright.media.recorder import CallRecorder

RATE = 8000


def tone(freq: float, seconds: float, amplitude: float = 8000.0) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def read_wav(path) -> tuple[int, int, np.ndarray]:
    with wave.open(str(path), "rb") as wav:
        assert wav.getsampwidth() == 2
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        channels = wav.getnchannels()
        return channels, wav.getframerate(), data.reshape(-1, channels)


def test_caller_left_agent_right_and_nothing_leaks(tmp_path):
    caller, agent = tone(440, 1.0), tone(1000, 1.0)
    recorder = CallRecorder(RATE)
    for frame in Framer(RATE).push(caller):
        recorder.add_caller(frame)
    for frame in Framer(RATE).push(agent):
        recorder.add_agent(frame)
    recorder.write(tmp_path / "call.wav", tmp_path / "mix.wav")

    channels, rate, stereo = read_wav(tmp_path / "call.wav")
    assert (channels, rate, len(stereo)) == (2, RATE, RATE)
    np.testing.assert_array_equal(stereo[:, 0], caller)
    np.testing.assert_array_equal(stereo[:, 1], agent)

    channels, rate, mono = read_wav(tmp_path / "mix.wav")
    assert (channels, rate, len(mono)) == (1, RATE, RATE)
    np.testing.assert_array_equal(mono[:, 0], caller.astype(np.int32) + agent)


def test_a_late_starting_side_is_preceded_by_silence():
    recorder = CallRecorder(RATE)
    for frame in Framer(RATE, start_timestamp=1000).push(tone(440, 0.5)):
        recorder.add_caller(frame)
    for frame in Framer(RATE, start_timestamp=1000 + 2400).push(tone(700, 0.5)):
        recorder.add_agent(frame)
    stereo, _ = recorder.render()
    assert recorder.start_timestamp == 1000
    assert len(stereo) == 2400 + 4000
    assert not stereo[:2400, 1].any()
    assert stereo[2400:2500, 1].any()
    assert not stereo[4000:, 0].any()


def test_gaps_are_silence_and_arrival_order_does_not_matter():
    frames = Framer(RATE).push(tone(440, 0.2))  # ten frames
    kept = [f for i, f in enumerate(frames) if i not in (3, 4)]
    in_order, shuffled = CallRecorder(RATE), CallRecorder(RATE)
    for frame in kept:
        in_order.add_caller(frame)
    for frame in reversed(kept):
        shuffled.add_caller(frame)
    a, _ = in_order.render()
    b, _ = shuffled.render()
    np.testing.assert_array_equal(a, b)
    assert len(a) == 1600
    assert not a[480:800].any()
    np.testing.assert_array_equal(a[800:, 0], np.concatenate([f.samples for f in frames[5:]]))


def test_an_overlapping_frame_replaces_rather_than_adds():
    recorder = CallRecorder(RATE)
    recorder.add_agent(AudioFrame(np.full(160, 1000, np.int16), RATE, 0))
    recorder.add_agent(AudioFrame(np.full(160, 7, np.int16), RATE, 80))
    stereo, mono = recorder.render()
    assert stereo[:80, 1].tolist() == [1000] * 80
    assert stereo[80:, 1].tolist() == [7] * 160
    np.testing.assert_array_equal(mono, stereo[:, 1])


def test_the_mix_saturates_instead_of_wrapping():
    recorder = CallRecorder(RATE)
    recorder.add_caller(AudioFrame(np.full(160, 30000, np.int16), RATE, 0))
    recorder.add_agent(AudioFrame(np.full(160, 30000, np.int16), RATE, 0))
    recorder.add_caller(AudioFrame(np.full(160, -30000, np.int16), RATE, 160))
    recorder.add_agent(AudioFrame(np.full(160, -30000, np.int16), RATE, 160))
    _, mono = recorder.render()
    assert set(mono[:160].tolist()) == {32767}
    assert set(mono[160:].tolist()) == {-32768}


def test_an_empty_recording_writes_empty_files(tmp_path):
    CallRecorder(16000).write(tmp_path / "empty.wav", tmp_path / "empty-mix.wav")
    channels, rate, data = read_wav(tmp_path / "empty.wav")
    assert (channels, rate, len(data)) == (2, 16000, 0)
    assert read_wav(tmp_path / "empty-mix.wav")[2].shape == (0, 1)


def test_mono_file_is_optional(tmp_path):
    recorder = CallRecorder(RATE)
    recorder.add_caller(AudioFrame.silence(160, RATE, 0))
    recorder.write(tmp_path / "only.wav")
    assert [p.name for p in tmp_path.iterdir()] == ["only.wav"]


def test_rejects_frames_at_another_rate():
    with pytest.raises(ValueError, match="16000 Hz"):
        CallRecorder(RATE).add_caller(AudioFrame.silence(320, 16000, 0))


frame_spec = st.tuples(
    st.sampled_from(["caller", "agent"]),
    st.integers(0, 4000),  # timestamp
    st.integers(1, 400),  # length
    st.integers(-32768, 32767),  # constant value
)


@settings(max_examples=200, deadline=None)
@given(st.lists(frame_spec, min_size=1, max_size=25))
def test_render_matches_a_sample_by_sample_oracle(specs):
    recorder = CallRecorder(RATE)
    oracle: dict[tuple[int, int], int] = {}
    for side, timestamp, length, value in specs:
        recorder.add(side, AudioFrame(np.full(length, value, np.int16), RATE, timestamp))
        channel = 0 if side == "caller" else 1
        for n in range(timestamp, timestamp + length):
            oracle[(n, channel)] = value
    stereo, mono = recorder.render()
    start = min(t for _, t, _, _ in specs)
    end = max(t + n for _, t, n, _ in specs)
    assert stereo.shape == (end - start, 2)
    for n in range(start, end):
        left, right = oracle.get((n, 0), 0), oracle.get((n, 1), 0)
        assert (stereo[n - start, 0], stereo[n - start, 1]) == (left, right)
        assert mono[n - start] == max(-32768, min(32767, left + right))


def test_spilling_to_a_file_gives_the_same_recording_and_bounded_memory() -> None:
    import random
    import tempfile

    rng = random.Random(7)
    frames = [
        (
            side,
            AudioFrame(
                np.full(160, (i % 50) * (1 if side == "caller" else -1), np.int16), 8000, i * 160
            ),
        )
        for i in range(1500)  # 30 s
        for side in ("caller", "agent")
    ]
    late = [frames[i] for i in rng.sample(range(len(frames)), 40)]  # resent, some long after
    in_memory = CallRecorder(8000)
    with tempfile.TemporaryFile() as spill:
        spilled = CallRecorder(8000, spill=spill, keep_seconds=3)
        most_held = 0
        for side, frame in [*frames, *late]:
            in_memory.add(side, frame)  # type: ignore[arg-type]
            spilled.add(side, frame)  # type: ignore[arg-type]
            most_held = max(most_held, *(len(b) for b in spilled._blocks.values()))
        assert most_held <= 4 + 1  # a few seconds per side, whatever the length
        got, want = spilled.render(), in_memory.render()
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
        assert spilled.stereo_wav() == in_memory.stereo_wav()
