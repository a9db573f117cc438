from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callwright.media.frames import AudioFrame
from callwright.media.vad import (
    Endpointer,
    EndpointerConfig,
    EndpointState,
    SpeechEnded,
    SpeechStarted,
    VoiceActivityDetector,
)

CONFIG = EndpointerConfig(start_threshold=0.5, min_speech_ms=100, end_silence_ms=200)
SPEECH, SILENCE, BETWEEN = 0.9, 0.1, 0.4  # BETWEEN: under start, over end (0.35)


def run(probabilities, config=CONFIG, finish=True):
    endpointer = Endpointer(config)
    events = [e for p in probabilities if (e := endpointer.process(p)) is not None]
    if finish and (last := endpointer.finish()) is not None:
        events.append(last)
    return events


def test_a_turn_starts_at_its_first_speech_frame_and_ends_at_its_first_silent_one():
    probs = [SILENCE] * 10 + [SPEECH] * 30 + [SILENCE] * 20
    assert run(probs) == [SpeechStarted(10, 200), SpeechEnded(40, 800, 600)]


def test_the_start_event_comes_once_min_speech_has_passed():
    endpointer = Endpointer(CONFIG)  # 100 ms = 5 frames
    events = [endpointer.process(SPEECH) for _ in range(5)]
    assert events[:4] == [None] * 4
    assert events[4] == SpeechStarted(0, 0)


def test_the_end_event_comes_once_end_silence_has_passed():
    endpointer = Endpointer(CONFIG)  # 200 ms = 10 frames
    for _ in range(5):
        endpointer.process(SPEECH)
    events = [endpointer.process(SILENCE) for _ in range(10)]
    assert events[:9] == [None] * 9
    assert events[9] == SpeechEnded(5, 100, 100)


def test_a_blip_shorter_than_min_speech_is_not_a_turn():
    probs = [SPEECH] * 4 + [SILENCE] * 3 + [SPEECH] * 4 + [SILENCE] * 20
    assert run(probs) == []


def test_a_pause_shorter_than_end_silence_does_not_end_the_turn():
    probs = [SPEECH] * 10 + [SILENCE] * 9 + [SPEECH] * 10 + [SILENCE] * 10
    assert run(probs) == [SpeechStarted(0, 0), SpeechEnded(29, 580, 580)]


def test_probabilities_between_the_thresholds_continue_the_current_state():
    # Between thresholds: keeps a turn going and keeps a pending start counting...
    probs = [SPEECH] * 2 + [BETWEEN] * 3 + [SPEECH] + [BETWEEN] * 30 + [SILENCE] * 10
    assert run(probs) == [SpeechStarted(0, 0), SpeechEnded(36, 720, 720)]
    # ...but never starts one.
    assert run([BETWEEN] * 50) == []


def test_finish_closes_an_open_turn_at_the_start_of_its_trailing_silence():
    assert run([SPEECH] * 10 + [SILENCE] * 3) == [SpeechStarted(0, 0), SpeechEnded(10, 200, 200)]
    assert run([SPEECH] * 10) == [SpeechStarted(0, 0), SpeechEnded(10, 200, 200)]
    endpointer = Endpointer(CONFIG)
    endpointer.process(SPEECH)
    assert endpointer.finish() is None
    assert endpointer.state is EndpointState.SILENCE


def test_explicit_end_threshold_and_frame_size():
    config = EndpointerConfig(
        start_threshold=0.6, end_threshold=0.6, min_speech_ms=30, end_silence_ms=30, frame_ms=10
    )
    assert run([0.6, 0.6, 0.6, 0.59, 0.59, 0.59], config) == [
        SpeechStarted(0, 0),
        SpeechEnded(3, 30, 30),
    ]


def test_rejects_inverted_thresholds():
    with pytest.raises(ValueError, match="end_threshold"):
        Endpointer(EndpointerConfig(start_threshold=0.3, end_threshold=0.5))
    with pytest.raises(ValueError, match="durations"):
        Endpointer(EndpointerConfig(min_speech_ms=-1))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from([SPEECH, SILENCE, BETWEEN, 0.0, 1.0, 0.5, 0.35]), max_size=300))
def test_events_on_any_sequence_obey_the_rules(probs):
    start_n, end_n = 5, 10  # CONFIG in frames
    speech = [p >= 0.5 for p in probs]
    silence = [p < 0.35 for p in probs]
    events = run(probs)
    # Alternating, starting with a start; every start is closed (finish was called).
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded] * (len(events) // 2)
    for started, ended in zip(events[::2], events[1::2], strict=True):
        s, e = started.frame_index, ended.frame_index
        assert speech[s]
        # min speech: the start is followed by min-speech frames none of which is silence.
        assert not any(silence[s : s + start_n]) and s + start_n <= len(probs)
        assert e > s and ended.duration_ms == (e - s) * 20
        # The turn has no run of end_n silent frames inside it.
        inside = silence[s:e]
        assert not any(all(inside[i : i + end_n]) for i in range(len(inside) - end_n + 1))
        # It ends where silence begins (end_n silent frames, or as many as the audio had).
        assert not silence[e - 1]
        assert all(silence[e : e + end_n])
    if not any(speech):
        assert events == []


def test_a_detector_backend_satisfies_the_protocol():
    class EnergyDetector:
        """The shape a back-end takes: loud frames count as speech."""

        def process(self, frame: AudioFrame) -> float:
            rms = float(np.sqrt(np.mean(frame.samples.astype(np.float64) ** 2)))
            return min(1.0, rms / 3000)

    detector: VoiceActivityDetector = EnergyDetector()
    endpointer = Endpointer(CONFIG)
    loud = AudioFrame(np.full(160, 5000, np.int16), 8000, 0)
    quiet = AudioFrame.silence(160, 8000, 0)
    frames = [quiet] * 5 + [loud] * 10 + [quiet] * 15
    events = [e for f in frames if (e := endpointer.process(detector.process(f)))]
    assert events == [SpeechStarted(5, 100), SpeechEnded(15, 300, 200)]
