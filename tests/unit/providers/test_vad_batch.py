"""Batched Silero VAD: the live detectors of many calls scored together, off the loop."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from callwright.media.frames import AudioFrame, Framer
from callwright.providers.speech._audio import resample
from callwright.providers.speech.base import Int16Array
from callwright.providers.speech.silero_vad import BatchedSileroVAD, SileroVAD, SileroVADModel

SENTENCES = (
    "Hello, I would like to book an appointment for next Tuesday.",
    "Yes, that works for me, thank you.",
    "Could you call me back later this afternoon?",
)


@pytest.fixture(scope="module")
def speech() -> list[Int16Array]:
    """Piper speech with pauses: real probabilities that rise and fall."""
    from callwright.providers.speech import PiperTTS

    piper = PiperTTS()

    async def speak(text: str) -> Int16Array:
        return np.concatenate([chunk.pcm async for chunk in piper.synthesize(text)])

    try:
        spoken = [asyncio.run(speak(text)) for text in SENTENCES]
    finally:
        piper._worker.close()
    gap = np.zeros(piper.sample_rate // 3, np.int16)
    return [np.concatenate([gap, pcm, gap]) for pcm in spoken]


def frames_at(pcm: Int16Array, source_rate: int, rate: int) -> list[AudioFrame]:
    return Framer(rate).push(resample(pcm, source_rate, rate))


async def settle(detectors: list[BatchedSileroVAD]) -> None:
    """Until every window handed over so far is scored (bounded, not timed)."""
    for _ in range(20_000):
        if not any(d.busy for d in detectors):
            return
        await asyncio.sleep(0.0005)
    raise AssertionError("the batcher never finished")


async def test_batched_scores_equal_inline_scores_for_interleaved_calls(
    speech: list[Int16Array],
) -> None:
    model = SileroVADModel(batched=True, energy_floor_dbfs=None)
    sizes: list[int] = []
    threads: set[int] = set()

    def hook(size: int) -> None:
        sizes.append(size)
        threads.add(threading.get_ident())

    model.on_batch = hook
    # Five calls: two at 8 kHz, two at 16 kHz, one at 48 kHz (resampled), different audio.
    plan = [(0, 8000), (1, 8000), (2, 16000), (1, 16000), (0, 48000)]
    streams = [frames_at(speech[i], 22050, rate) for i, rate in plan]
    inline = [SileroVAD(model) for _ in plan]
    batched = [model.detector() for _ in plan]
    assert all(isinstance(d, BatchedSileroVAD) for d in batched)
    live = [d for d in batched if isinstance(d, BatchedSileroVAD)]

    expected: list[list[float]] = [[] for _ in plan]
    answered: list[list[float]] = [[] for _ in plan]  # what process returned, unsettled
    settled: list[list[float]] = [[] for _ in plan]
    for index in range(max(len(s) for s in streams)):
        for call, frames in enumerate(streams):
            if index < len(frames):
                expected[call].append(inline[call].process(frames[index]))
                answered[call].append(live[call].process(frames[index]))
        await settle(live)  # a real call's next frame is 20 ms away: the score is back
        for call, frames in enumerate(streams):
            if index < len(frames):
                settled[call].append(live[call].latest)

    for call in range(len(plan)):
        assert np.max(np.abs(np.array(settled[call]) - np.array(expected[call]))) < 1e-4
        # What turn-taking sees: the inline score, one frame late.
        lagged = np.array(answered[call][1:]) - np.array(expected[call][:-1])
        assert np.max(np.abs(lagged)) < 1e-4
        assert np.max(np.abs(inline[call]._state - live[call]._state)) < 1e-4
        assert max(expected[call]) > 0.5  # real speech was scored, not just silence
    assert max(sizes) >= 3  # windows of several calls went in one run
    assert threading.get_ident() not in threads  # never on the event loop's thread


async def test_one_run_per_batch_not_per_window(speech: list[Int16Array]) -> None:
    model = SileroVADModel(batched=True, energy_floor_dbfs=None)
    sizes: list[int] = []
    model.on_batch = sizes.append
    calls = 12
    detectors = [model.detector() for _ in range(calls)]
    live = [d for d in detectors if isinstance(d, BatchedSileroVAD)]
    frames = frames_at(speech[0], 22050, 8000)[:40]
    for frame in frames:
        for detector in detectors:
            detector.process(frame)
        await settle(live)
    windows = calls * (len(frames) * 160 // 256)
    assert sum(sizes) == windows
    assert len(sizes) < windows / 4  # batched: far fewer runs than windows


async def test_quiet_windows_skip_the_model_and_keep_the_state() -> None:
    model = SileroVADModel(batched=True)  # default floor, -55 dBFS
    runs: list[int] = []
    model.on_batch = runs.append
    detector = model.detector()
    assert isinstance(detector, BatchedSileroVAD)
    rate = 16000
    # -70 dBFS hiss: below the floor.
    hiss = (np.random.default_rng(3).normal(0, 10, rate)).astype(np.int16)
    for frame in Framer(rate).push(hiss):
        assert detector.process(frame) == 0.0
    await settle([detector])
    assert runs == [] and not detector._state.any()  # no model run, state untouched

    # Speech then goes to the model from the untouched state: it scores like an inline
    # detector that starts fresh on the same buffered audio.
    reference = SileroVAD(SileroVADModel())
    for frame in Framer(rate).push(hiss):
        reference._windows(frame)  # the same context prefix, no scoring
    # Loud everywhere (Piper's own lead-in is below the floor): every window is scored.
    t = np.arange(rate * 2) / rate
    loud = np.random.default_rng(4).normal(0, 2000, t.shape[0]) * (1.2 + np.sin(2 * np.pi * 3 * t))
    loud += 3000 * np.sin(2 * np.pi * 220 * t)
    for frame in Framer(rate).push(loud.clip(-32768, 32767).astype(np.int16)):
        want = reference.process(frame)
        detector.process(frame)
        await settle([detector])
        assert abs(detector.latest - want) < 1e-4
    assert sum(runs) > 0
    assert np.max(np.abs(detector._state - reference._state)) < 1e-4


async def test_windows_above_the_floor_are_scored() -> None:
    model = SileroVADModel(batched=True)
    runs: list[int] = []
    model.on_batch = runs.append
    detector = model.detector()
    assert isinstance(detector, BatchedSileroVAD)
    noise = np.random.default_rng(5).normal(0, 300, 8000).astype(np.int16)  # about -40 dBFS
    for frame in Framer(8000).push(noise):
        detector.process(frame)
    await settle([detector])
    assert sum(runs) == 8000 // 256


def test_inline_detector_scores_quiet_windows() -> None:
    """The inline detector (offline use, the reference comparison) has no floor."""
    model = SileroVADModel()
    detector = model.detector()
    assert type(detector) is SileroVAD
    quiet = np.random.default_rng(3).normal(0, 10, 1600).astype(np.int16)
    before = detector._state.copy()
    for frame in Framer(16000).push(quiet):
        detector.process(frame)
    assert np.any(detector._state != before)


def test_without_an_event_loop_the_live_detector_scores_inline(
    speech: list[Int16Array],
) -> None:
    model = SileroVADModel(batched=True, energy_floor_dbfs=None)
    live, inline = model.detector(), SileroVAD(model)
    for frame in frames_at(speech[2], 22050, 8000):
        assert abs(live.process(frame) - inline.process(frame)) < 1e-4


async def test_reset_drops_a_score_still_in_flight(speech: list[Int16Array]) -> None:
    model = SileroVADModel(batched=True, energy_floor_dbfs=None)
    detector = model.detector()
    assert isinstance(detector, BatchedSileroVAD)
    frames = frames_at(speech[0], 22050, 16000)
    for frame in frames[20:40]:  # mid-sentence: high scores
        detector.process(frame)
    assert detector.busy
    detector.reset()
    assert not detector.busy
    for _ in range(200):  # the dropped run finishes and reports back meanwhile
        await asyncio.sleep(0.001)
    assert detector.latest == 0.0 and not detector._state.any()


async def test_a_stream_fed_faster_than_real_time_lags_at_most_one_window(
    speech: list[Int16Array],
) -> None:
    """No loop turn between frames (the fast simulator): each frame that completes a
    window while the last is being scored waits for that score, so the answer is
    never more than one window old."""
    model = SileroVADModel(batched=True, energy_floor_dbfs=None)
    detector = model.detector()
    assert isinstance(detector, BatchedSileroVAD)
    reference = SileroVAD(model)
    frames = frames_at(speech[0], 22050, 8000)
    window_scores = [0.0, 0.0]  # per completed window, inline; two leading "none yet"
    for frame in frames:
        for window in reference._windows(frame):
            window_scores.append(reference._model.score(window, reference._state, 8000)[0])
            reference._state = reference._model.score(window, reference._state, 8000)[1]
        got = detector.process(frame)  # never awaited in between
        assert abs(got - window_scores[-1]) < 1e-4 or abs(got - window_scores[-2]) < 1e-4
    assert model.batcher().waits > len(frames) // 4
    await settle([detector])
    assert abs(detector.latest - window_scores[-1]) < 1e-4
