"""Start-up warm-up: ``running_services(warm=True)`` loads and runs each model once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from callwright import server
from callwright.api.services import Services
from callwright.config import Settings
from callwright.conversation import agents
from callwright.providers.embed import Vectors
from callwright.providers.scripted import HashingEmbedder
from callwright.providers.speech.base import AudioChunk, Int16Array, Transcript, VoiceInfo
from callwright.providers.speech.registry import SpeechProviders


class Counts:
    def __init__(self) -> None:
        self.loads = 0
        self.stt: list[int] = []
        self.tts: list[str] = []
        self.embedders = 0
        self.embedded: list[list[str]] = []


class FakeWhisper:
    """Named like the embedded STT, so warm-up runs it."""

    def __init__(self, counts: Counts) -> None:
        self.counts = counts

    @property
    def name(self) -> str:
        return "whisper"

    async def transcribe(
        self, pcm: Int16Array, sample_rate: int, *, language: str | None = None
    ) -> Transcript:
        self.counts.stt.append(len(pcm))
        return Transcript(text="", language=None, duration=len(pcm) / sample_rate)

    def stream(self, sample_rate: int, *, language: str | None = None) -> object:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass


class FakePiper:
    def __init__(self, counts: Counts) -> None:
        self.counts = counts

    @property
    def name(self) -> str:
        return "piper"

    @property
    def sample_rate(self) -> int:
        return 16_000

    def voices(self) -> Sequence[VoiceInfo]:
        return [VoiceInfo("joe", "piper", "joe")]

    async def synthesize(
        self, text: str, voice: str | None = None
    ) -> AsyncGenerator[AudioChunk, None]:
        self.counts.tts.append(text)
        yield AudioChunk(np.zeros(320, np.int16), 16_000)

    async def aclose(self) -> None:
        pass


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> Counts:
    counts = Counts()

    def load(settings: object) -> SpeechProviders:
        counts.loads += 1
        return SpeechProviders(
            stt=FakeWhisper(counts),  # type: ignore[arg-type]
            tts={"piper": FakePiper(counts)},  # type: ignore[dict-item]
            default_voice="joe",
        )

    class CountingEmbedder(HashingEmbedder):
        def __init__(self) -> None:
            super().__init__()
            counts.embedders += 1

        def embed(self, texts: Sequence[str]) -> Vectors:
            counts.embedded.append(list(texts))
            return super().embed(texts)

    monkeypatch.setattr(server, "speech_from_settings", load)
    monkeypatch.setattr(agents, "MiniLMEmbedder", CountingEmbedder)
    return counts


def settings_in(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'cw.db'}", data_dir=tmp_path)


async def _ready(caplog: pytest.LogCaptureFixture) -> logging.LogRecord:
    for _ in range(2_000):  # bounded: the fakes finish in a few loop turns
        found = [r for r in caplog.records if r.getMessage() == "models.ready"]
        if found:
            return found[0]
        await asyncio.sleep(0.005)
    raise AssertionError("warm-up never finished")


async def test_warm_loads_and_runs_each_model_once(
    tmp_path: Path, counts: Counts, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="callwright.server")
    async with running(tmp_path, warm=True) as services:
        record = await _ready(caplog)
        assert counts.loads == 1
        assert counts.stt == [16_000]  # one second of silence
        assert counts.tts == ["Hello"]
        assert counts.embedders == 1 and counts.embedded == [["Hello"]]
        assert isinstance(record.seconds, float) and record.seconds >= 0
        # A call after warm-up reuses what was loaded.
        assert services.runner is not None and services.agents is not None
        await services.runner.speech.get()
        await services.agents.brain()
        assert counts.loads == 1 and counts.embedders == 1


async def test_without_warm_nothing_loads(
    tmp_path: Path, counts: Counts, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="callwright.server")
    async with running(tmp_path, warm=False):
        for _ in range(20):
            await asyncio.sleep(0)
    assert counts.loads == 0 and counts.embedders == 0
    assert not [r for r in caplog.records if r.getMessage() == "models.ready"]


async def test_a_failing_model_is_logged_not_fatal(
    tmp_path: Path,
    counts: Counts,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(settings: object) -> SpeechProviders:
        raise RuntimeError("no speech today")

    monkeypatch.setattr(server, "speech_from_settings", broken)
    caplog.set_level(logging.INFO, logger="callwright.server")
    async with running(tmp_path, warm=True):
        await _ready(caplog)
        failed = [r for r in caplog.records if r.getMessage() == "models.warm_failed"]
        assert [getattr(r, "model", None) for r in failed] == ["speech"]
        assert counts.embedders == 1  # the brain still warmed


@contextlib.asynccontextmanager
async def running(tmp_path: Path, *, warm: bool) -> AsyncIterator[Services]:
    settings = settings_in(tmp_path)
    async with server.running_services(settings, start_dispatcher=False, warm=warm) as (svc, _):
        yield svc
