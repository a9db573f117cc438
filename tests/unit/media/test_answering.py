"""Answering-machine detection on frame counts: synthetic voices and tones first, then
the embedded Piper voice (slow) answering as a person and as a voicemail greeting."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from callwright.media.answering import (
    AnsweringConfig,
    AnsweringDetector,
    AnsweringEvent,
    Beep,
    Decision,
    ToneMeter,
)
from callwright.media.dtmf import generate_dtmf
from callwright.media.g711 import ulaw_decode, ulaw_encode

RATE = 8000
FRAME = 160
Pcm = np.ndarray[Any, np.dtype[np.int16]]


def silence(frames: int) -> Pcm:
    return np.zeros(frames * FRAME, dtype=np.int16)


def tone(frames: int, hz: float = 1000.0, level: float = 8000.0) -> Pcm:
    t = np.arange(frames * FRAME) / RATE
    return (np.sin(2 * np.pi * hz * t) * level).astype(np.int16)


def voice(frames: int, seed: int = 1) -> Pcm:
    """Vowel-like sound: a gliding pitch (110-190 Hz) and its harmonics under two
    formant bumps, at a syllable's loudness. Loud in every frame, tonal in none."""
    rng = np.random.default_rng(seed)
    n = frames * FRAME
    t = np.arange(n) / RATE
    f0 = 150 + 40 * np.sin(2 * np.pi * 3.0 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    out = np.zeros(n)
    for k in range(1, 3400 // 110):
        hz = k * 150
        gain = np.exp(-(((hz - 600) / 300) ** 2)) + 0.6 * np.exp(-(((hz - 1700) / 400) ** 2)) + 0.05
        out += gain * np.sin(k * phase + rng.uniform(0, 6))
    out *= 6000 / np.sqrt(np.mean(out**2))
    return out.astype(np.int16)


def frames_of(pcm: Pcm) -> Iterator[Pcm]:
    usable = len(pcm) - len(pcm) % FRAME
    yield from pcm[:usable].reshape(-1, FRAME)


def run(
    pcm: Pcm, config: AnsweringConfig | None = None
) -> tuple[AnsweringDetector, list[AnsweringEvent]]:
    detector = AnsweringDetector(config)
    events: list[AnsweringEvent] = []
    for frame in frames_of(pcm):
        events += detector.push(frame)
    return detector, events


def decisions(events: list[AnsweringEvent]) -> list[Decision]:
    return [e for e in events if isinstance(e, Decision)]


def beeps(events: list[AnsweringEvent]) -> list[Beep]:
    return [e for e in events if isinstance(e, Beep)]


# -- the greeting ----------------------------------------------------------------------
def test_a_short_hello_then_a_pause_is_a_human() -> None:
    # 10 frames of line silence, "Hello?" on frames 10..34, then the person waits.
    detector, events = run(np.concatenate([silence(10), voice(25), silence(100)]))
    # The pause starts on frame 35; 800 ms (40 frames) of it decide, on frame 74.
    assert decisions(events) == [Decision("human", "short-greeting", 74, 500, 10)]
    assert detector.decision == decisions(events)[0]
    assert beeps(events) == []


def test_short_pauses_inside_a_long_greeting_do_not_end_it() -> None:
    # A machine reading its script: 1.2 s phrases with 400 ms breaths between them.
    phrase = np.concatenate([voice(60), silence(20)])
    _, events = run(np.concatenate([silence(5), phrase, phrase, phrase]))
    # The greeting starts on frame 5; it reaches 3 s (150 frames) on frame 154.
    assert decisions(events) == [Decision("voicemail", "long-greeting", 154, 3000, 5)]


def test_two_hellos_with_a_breath_between_are_still_a_human() -> None:
    hello = voice(25)
    _, events = run(np.concatenate([hello, silence(30), hello, silence(60)]))
    # Frames 0..79 are one greeting (the 600 ms gap is bridged); the pause decides.
    assert decisions(events) == [Decision("human", "short-greeting", 119, 1600, 0)]


def test_a_shorter_machine_threshold_is_honoured() -> None:
    config = AnsweringConfig(machine_greeting_ms=1000)
    _, events = run(np.concatenate([voice(80), silence(50)]), config)
    assert decisions(events) == [Decision("voicemail", "long-greeting", 49, 1000, 0)]


def test_nobody_speaking_is_unknown_after_the_initial_silence() -> None:
    detector, events = run(silence(300))
    assert decisions(events) == [Decision("unknown", "silence", 149, 0)]
    assert detector.silence_frames == 300 and not detector.heard_speech


def test_speech_still_undecided_at_the_limit_is_unknown() -> None:
    # Speech starts at 2.9 s (within the initial silence) and lasts past 5 s: at the
    # limit it is 2.1 s long, neither a short nor a machine's greeting yet.
    _, events = run(np.concatenate([silence(145), voice(200)]))
    assert decisions(events) == [Decision("unknown", "timeout", 249, 2100, 145)]


def test_the_vad_probability_overrides_the_level() -> None:
    detector = AnsweringDetector()
    events: list[AnsweringEvent] = []
    loud = voice(200)
    for i, frame in enumerate(frames_of(loud)):
        # The VAD hears the loud audio as noise except for a 0.5 s word.
        events += detector.push(frame, 1.0 if 20 <= i < 45 else 0.0)
    assert decisions(events) == [Decision("human", "short-greeting", 84, 500, 20)]


def test_one_decision_only_and_frames_are_checked() -> None:
    detector, events = run(np.concatenate([voice(25), silence(300)]))
    assert len(decisions(events)) == 1
    with pytest.raises(ValueError, match="160 samples"):
        detector.push(np.zeros(80, dtype=np.int16))


# -- the beep --------------------------------------------------------------------------
def test_a_beep_after_the_greeting_is_reported_where_it_is() -> None:
    pcm = np.concatenate([voice(200), silence(15), tone(25, 1000.0), silence(30)])
    detector, events = run(pcm)
    assert decisions(events)[0].answered_by == "voicemail"
    # Tone on frames 215..239; reported on 240, its first silent frame.
    assert beeps(events) == [Beep(215, 240, 1000.0, 240)]
    assert detector.silence_frames == 30


def test_a_beep_right_after_a_short_greeting_makes_it_a_voicemail() -> None:
    # "Leave a message" (1 s), then a beep 500 ms later: before the 800 ms pause ends.
    pcm = np.concatenate([voice(50), silence(25), tone(20, 1400.0), silence(60)])
    _, events = run(pcm)
    # The tone starts on frame 75 and has lasted 150 ms (8 frames) on frame 82.
    assert decisions(events) == [Decision("voicemail", "beep", 82, 1000, 0)]
    assert beeps(events) == [Beep(75, 95, 1400.0, 95)]


def test_a_tone_during_the_pause_defers_the_human_decision_until_it_stops() -> None:
    # A 100 ms blip (not a beep) sounding as the pause completes: human once it stops.
    pcm = np.concatenate([voice(25), silence(35), tone(5, 800.0), silence(40)])
    _, events = run(pcm)
    # The pause (from frame 25) reaches 40 frames on frame 64, inside the blip
    # (frames 60..64); the blip stops on frame 65, which decides.
    assert decisions(events) == [Decision("human", "short-greeting", 65, 500, 0)]
    assert beeps(events) == []


def test_a_beep_without_any_greeting_is_a_voicemail() -> None:
    _, events = run(np.concatenate([silence(20), tone(30, 440.0), silence(10)]))
    assert decisions(events) == [Decision("voicemail", "beep", 27, 0)]
    assert beeps(events) == [Beep(20, 50, 440.0, 50)]


@pytest.mark.parametrize("hz", [450.0, 1000.0, 1850.0])
def test_beeps_survive_mu_law(hz: float) -> None:
    phone = ulaw_decode(
        ulaw_encode(np.concatenate([silence(10), tone(12, hz, 3000.0), silence(5)]))
    )
    _, events = run(phone)
    found = beeps(events)
    assert [(b.start_frame, b.end_frame) for b in found] == [(10, 22)]
    assert found[0].frequency_hz == pytest.approx(hz, abs=5)


def test_a_tone_that_goes_on_is_reported_at_the_maximum() -> None:
    _, events = run(np.concatenate([voice(10), silence(50), tone(400, 1000.0)]))
    # Tone from frame 60; 3 s (150 frames) of it on frame 209.
    assert beeps(events) == [Beep(60, 210, 1000.0, 209)]


def test_a_pitch_change_splits_tones() -> None:
    pcm = np.concatenate([silence(5), tone(10, 800.0), tone(10, 1200.0), silence(5)])
    _, events = run(pcm)
    assert [(b.start_frame, b.end_frame, b.frequency_hz) for b in beeps(events)] == [
        (5, 15, 800.0),
        (15, 25, 1200.0),
    ]


@pytest.mark.parametrize(
    ("name", "pcm"),
    [
        ("too short", tone(7, 1000.0)),
        ("too low", tone(30, 300.0)),
        ("too high", tone(30, 2600.0)),
        ("too quiet", tone(30, 1000.0, level=150.0)),
        ("voice", voice(300)),
        ("DTMF pair", generate_dtmf("1", tone_ms=400, gap_ms=0)),
        ("DTMF digits", generate_dtmf("159#", tone_ms=200, gap_ms=60)),
        ("two tones", tone(30, 1000.0, 5000.0) + tone(30, 1500.0, 3000.0)),
        ("white noise", np.random.default_rng(3).normal(0, 3000, 30 * FRAME).astype(np.int16)),
    ],
)
def test_not_a_beep(name: str, pcm: Pcm) -> None:
    _, events = run(np.concatenate([silence(5), pcm, silence(50)]))
    assert beeps(events) == [], name


def test_the_tone_meter_reads_a_pure_tone_and_a_dtmf_pair() -> None:
    meter = ToneMeter(RATE, FRAME)
    pure = meter.read(tone(1, 1234.0))
    assert pure.frequency_hz == pytest.approx(1234.0, abs=3) and pure.purity > 0.99
    pair = meter.read(generate_dtmf("5", tone_ms=20, gap_ms=0))
    assert pair.purity < 0.6
    assert meter.read(silence(1)).purity == 0.0


def test_other_rates_and_frame_sizes() -> None:
    config = AnsweringConfig(sample_rate=16000, frame_ms=10)
    detector = AnsweringDetector(config)
    assert detector.frame_samples == 160
    t = np.arange(40 * 160) / 16000
    beep = (np.sin(2 * np.pi * 900 * t) * 8000).astype(np.int16)
    events: list[AnsweringEvent] = []
    for frame in np.concatenate([np.zeros(1600, np.int16), beep, np.zeros(800, np.int16)]).reshape(
        -1, 160
    ):
        events += detector.push(frame)
    assert [(b.start_frame, b.end_frame) for b in beeps(events)] == [(10, 50)]


# -- real speech (the embedded Piper voice) ----------------------------------------------
HELLO = "Hello?"
GREETING = (
    "Hi, you've reached the Smith residence. We can't come to the phone right now. "
    "Please leave a message after the tone."
)


@pytest.fixture(scope="module")
def spoken() -> dict[str, Pcm]:
    """Piper's "Hello?" and voicemail greeting at 8 kHz, through mu-law like a call."""
    from callwright.providers.speech import PiperTTS
    from callwright.providers.speech._audio import resample

    piper = PiperTTS()

    async def speak(text: str) -> Pcm:
        return np.concatenate([chunk.pcm async for chunk in piper.synthesize(text)])

    try:
        out = {}
        for name, text in (("hello", HELLO), ("greeting", GREETING)):
            pcm = resample(asyncio.run(speak(text)), piper.sample_rate, RATE)
            out[name] = ulaw_decode(ulaw_encode(pcm))
        return out
    finally:
        piper._worker.close()


def speech_frames(pcm: Pcm) -> list[int]:
    return [i for i, f in enumerate(frames_of(pcm)) if np.sqrt(np.mean(f.astype(float) ** 2)) > 330]


@pytest.mark.slow
def test_piper_hello_is_a_human(spoken: dict[str, Pcm]) -> None:
    hello = spoken["hello"]
    pcm = np.concatenate([silence(15), hello, silence(150)])
    _, events = run(pcm)
    last_word_frame = 15 + speech_frames(hello)[-1]
    [decision] = decisions(events)
    assert decision.answered_by == "human" and decision.reason == "short-greeting"
    # Decided by the 800 ms pause after the word, not before it and not much later.
    assert last_word_frame + 40 <= decision.frame_index <= last_word_frame + 45
    assert beeps(events) == []


@pytest.mark.slow
def test_piper_voicemail_greeting_then_beep(spoken: dict[str, Pcm]) -> None:
    greeting = spoken["greeting"]
    assert len(greeting) > 5 * RATE
    lead = 20
    end = lead + len(greeting) // FRAME  # frames 0..end-1: lead-in and greeting
    beep = ulaw_decode(ulaw_encode(tone(25, 1000.0, 6000.0)))
    pcm = np.concatenate(
        [silence(lead), greeting[: (end - lead) * FRAME], silence(20), beep, silence(60)]
    )
    detector, events = run(pcm)
    first_word_frame = lead + speech_frames(greeting)[0]
    [decision] = decisions(events)
    assert decision.answered_by == "voicemail" and decision.reason == "long-greeting"
    # 3 s of greeting after its first word: 150 frames (+ the VAD's onset slack).
    assert first_word_frame + 149 <= decision.frame_index <= first_word_frame + 155
    assert decision.frame_index < end  # decided while the greeting was still playing
    # Only the beep is a beep: none of the greeting's frames.
    assert [(b.start_frame, b.end_frame) for b in beeps(events)] == [(end + 20, end + 45)]
    assert beeps(events)[0].frame_index == end + 45
    assert detector.silence_frames == 60


@pytest.mark.slow
def test_piper_speech_alone_is_never_a_beep(spoken: dict[str, Pcm]) -> None:
    for pcm in spoken.values():
        _, events = run(np.concatenate([pcm, pcm, silence(10)]), AnsweringConfig(max_ms=60_000))
        assert beeps(events) == []


@pytest.mark.slow
def test_piper_with_silero_probabilities(spoken: dict[str, Pcm]) -> None:
    from callwright.media.frames import AudioFrame
    from callwright.providers.speech import SileroVADModel

    for name, expected in (("hello", "human"), ("greeting", "voicemail")):
        vad = SileroVADModel().detector()
        detector = AnsweringDetector()
        pcm = np.concatenate([silence(10), spoken[name], silence(150)])
        found: list[AnsweringEvent] = []
        for i, frame in enumerate(frames_of(pcm)):
            probability = vad.process(AudioFrame(frame, RATE, i * FRAME))
            found += detector.push(frame, probability)
        assert [d.answered_by for d in decisions(found)] == [expected], name
