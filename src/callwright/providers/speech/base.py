"""The speech interfaces: ``STT`` and ``TTS`` Protocols, their data types and errors.

Rules every back-end keeps:

1. Audio is mono signed 16-bit PCM as a 1-D ``np.int16`` array, always with its rate.
2. ``STT.transcribe`` takes one whole utterance (the conversation endpoints speech with
   VAD first) and returns one final ``Transcript``. ``STT.stream`` opens a session that
   takes frames as they arrive and yields interim and final transcripts; back-ends
   without native streaming buffer the audio and answer once at the end.
3. ``TTS.synthesize`` returns an async iterator of ``AudioChunk`` at once; the first
   chunk comes as soon as the first sentence or phrase is ready, so a caller hears the
   agent before the whole reply is synthesized.
4. Everything is cancellable: cancelling the awaiting task, or ``aclose()`` on the
   iterator, stops the work promptly (model inference is interrupted or abandoned at
   the next sentence, network requests are closed) and leaves no task behind.
5. Models load once, in the constructor, and are shared by every call; inference runs
   in worker threads, never on the event loop.

Errors form one tree::

    SpeechError
    ├── SpeechUnavailable   a package or model file is missing (start-up)
    ├── UnknownVoice        a voice name no configured back-end knows (a 400 at the API)
    └── SpeechServiceError  a network back-end failed (``status``, ``retryable``)
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

Int16Array = npt.NDArray[np.int16]


class SpeechError(Exception):
    """Base of every speech provider error."""


class SpeechUnavailable(SpeechError):
    """A back-end cannot start: a package or model file is missing."""


class UnknownVoice(SpeechError, ValueError):
    """No configured TTS back-end has this voice."""

    def __init__(self, name: str, reason: str = ""):
        self.name = name
        super().__init__(f"unknown voice {name!r}" + (f": {reason}" if reason else ""))


class SpeechServiceError(SpeechError):
    """A network speech service answered with an error or could not be reached.

    ``status`` is the HTTP status (None when there was no response); ``retryable``
    says whether the same request may succeed later (timeouts, 429, 5xx).
    """

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False):
        super().__init__(message)
        self.status = status
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    start: float  # seconds from the start of the audio given to the STT
    end: float
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class Transcript:
    """What was said. ``duration`` is the length of the audio heard, in seconds."""

    text: str
    language: str | None
    duration: float
    words: tuple[Word, ...] = ()
    is_final: bool = True
    # Deepgram-style end of utterance: the service heard the speaker stop.
    speech_final: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class AudioChunk:
    """A piece of synthesized speech; ``text`` is the sentence it speaks, when known."""

    pcm: Int16Array
    sample_rate: int
    text: str | None = None

    @property
    def duration(self) -> float:
        return float(self.pcm.shape[0]) / self.sample_rate


@dataclass(frozen=True, slots=True)
class VoiceInfo:
    """A voice a TTS back-end offers. ``name`` is what a call's ``voice`` field says."""

    name: str
    backend: str
    voice_id: str  # the back-end's own identifier
    language: str = "en"
    description: str = ""


class STTStream(Protocol):
    """One streaming recognition session (one call leg, or one utterance)."""

    async def push(self, pcm: Int16Array) -> None:
        """Send audio at the rate the stream was opened with."""
        ...

    async def end_input(self) -> None:
        """No more audio: the remaining finals arrive, then iteration ends."""
        ...

    def __aiter__(self) -> AsyncIterator[Transcript]: ...

    async def aclose(self) -> None:
        """Stop now, dropping results still in flight."""
        ...


class STT(Protocol):
    @property
    def name(self) -> str: ...

    async def transcribe(
        self, pcm: Int16Array, sample_rate: int, *, language: str | None = None
    ) -> Transcript: ...

    def stream(self, sample_rate: int, *, language: str | None = None) -> STTStream: ...

    async def aclose(self) -> None: ...


class TTS(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def sample_rate(self) -> int:
        """The rate of every chunk this back-end yields."""
        ...

    def voices(self) -> Sequence[VoiceInfo]:
        """The voices known without a network round trip (may be empty)."""
        ...

    def synthesize(self, text: str, voice: str | None = None) -> AsyncGenerator[AudioChunk, None]:
        """Speech for ``text`` in ``voice`` (a ``VoiceInfo.voice_id``; None = default)."""
        ...

    async def aclose(self) -> None: ...
