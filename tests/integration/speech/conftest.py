"""The embedded speech models, loaded once per test session (each takes ~0.5-1 s)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from callwright.providers.speech import PiperTTS, SileroVADModel, WhisperSTT


@pytest.fixture(scope="session")
def whisper() -> Iterator[WhisperSTT]:
    model = WhisperSTT()
    yield model
    model._worker.close()


@pytest.fixture(scope="session")
def piper() -> Iterator[PiperTTS]:
    model = PiperTTS()
    yield model
    model._worker.close()


@pytest.fixture(scope="session")
def silero() -> SileroVADModel:
    return SileroVADModel()
