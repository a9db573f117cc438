from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

import numpy as np
import pytest

from callwright.providers.speech import (
    AudioChunk,
    Int16Array,
    SpeechProviders,
    Transcript,
    UnknownVoice,
    VoiceInfo,
)
from callwright.providers.speech._stream import BufferedSTTStream


class FakeTTS:
    def __init__(self, name: str, voices: Sequence[str]):
        self._name = name
        self._voices = tuple(
            VoiceInfo(v, name, f"{v}-id" if name != "piper" else v) for v in voices
        )

    @property
    def name(self) -> str:
        return self._name

    @property
    def sample_rate(self) -> int:
        return 16000

    def voices(self) -> Sequence[VoiceInfo]:
        return self._voices

    async def synthesize(
        self, text: str, voice: str | None = None
    ) -> AsyncGenerator[AudioChunk, None]:
        yield AudioChunk(np.zeros(160, np.int16), 16000, text)

    async def aclose(self) -> None:
        return None


class FakeSTT:
    name = "fake"

    async def transcribe(
        self, pcm: Int16Array, sample_rate: int, *, language: str | None = None
    ) -> Transcript:
        return Transcript(f"{pcm.shape[0]} samples", language, pcm.shape[0] / sample_rate)

    def stream(self, sample_rate: int, *, language: str | None = None) -> BufferedSTTStream:
        return BufferedSTTStream(self.transcribe, sample_rate)

    async def aclose(self) -> None:
        return None


PIPER = FakeTTS("piper", ["joe"])
OPENAI = FakeTTS("openai", ["alloy", "nova"])
ELEVEN = FakeTTS("elevenlabs", ["rachel"])


def providers(default: str = "joe") -> SpeechProviders:
    return SpeechProviders(
        stt=FakeSTT(),
        tts={"piper": PIPER, "openai": OPENAI, "elevenlabs": ELEVEN},
        default_voice=default,
    )


@pytest.mark.parametrize(
    ("name", "backend", "voice_id"),
    [
        (None, PIPER, "joe"),
        ("", PIPER, "joe"),
        ("Joe", PIPER, "joe"),
        ("piper:joe", PIPER, "joe"),
        ("maya", PIPER, "joe"),  # Bland's default voice name
        ("Josh", PIPER, "joe"),
        ("nova", OPENAI, "nova-id"),
        ("openai:ALLOY", OPENAI, "alloy-id"),
        ("rachel", ELEVEN, "rachel-id"),
        ("elevenlabs:21m00Tcm4TlvDq8ikWAM", ELEVEN, "21m00Tcm4TlvDq8ikWAM"),
    ],
)
def test_voice_names_resolve(name: str | None, backend: FakeTTS, voice_id: str) -> None:
    assert providers().resolve_voice(name) == (backend, voice_id)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("bogus", "unknown voice 'bogus'"),
        ("openai:joe", "openai has no voice 'joe'"),
        ("azure:jenny", "'azure' is not configured"),
        ("elevenlabs:", "elevenlabs has no voice"),
    ],
)
def test_unknown_voices_raise(name: str, message: str) -> None:
    with pytest.raises(UnknownVoice, match=message) as caught:
        providers().resolve_voice(name)
    assert isinstance(caught.value, ValueError)


def test_an_alias_may_name_any_voice_and_keeps_its_spelling() -> None:
    speech = providers()
    speech.aliases = {"support": "elevenlabs:AbCdEf", "sales": "nova"}
    assert speech.resolve_voice("Support") == (ELEVEN, "AbCdEf")
    assert speech.resolve_voice("sales") == (OPENAI, "nova-id")
    with pytest.raises(UnknownVoice):
        speech.resolve_voice("maya")  # the Bland names were replaced


def test_the_default_voice_may_be_any_resolvable_name() -> None:
    assert providers(default="openai:nova").resolve_voice("maya") == (OPENAI, "nova-id")


def test_listing_names_every_voice_and_alias() -> None:
    names = providers().voice_names()
    assert {"piper:joe", "openai:nova", "elevenlabs:rachel", "maya"} <= set(names)


async def test_a_buffered_stream_transcribes_once_at_the_end() -> None:
    stream = FakeSTT().stream(8000)
    await stream.push(np.zeros(800, np.int16))
    await stream.push(np.zeros(80, np.int16))
    await stream.end_input()
    results = [t async for t in stream]
    assert [t.text for t in results] == ["880 samples"]
    with pytest.raises(RuntimeError):
        await stream.push(np.zeros(80, np.int16))


async def test_a_closed_buffered_stream_yields_nothing() -> None:
    stream = FakeSTT().stream(8000)
    await stream.push(np.zeros(800, np.int16))
    await stream.aclose()
    assert [t async for t in stream] == []
