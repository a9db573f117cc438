"""Streaming STT sessions for back-ends that only transcribe whole utterances.

``BufferedSTTStream`` keeps the pushed audio and, once input ends, transcribes it in
one go and yields a single final transcript. The conversation endpoints utterances
with its own VAD, so for Whisper-style models this is the natural shape anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import numpy as np

from callwright.providers.speech._audio import check_pcm
from callwright.providers.speech.base import Int16Array, Transcript

Transcribe = Callable[[Int16Array, int], Awaitable[Transcript]]


class BufferedSTTStream:
    def __init__(self, transcribe: Transcribe, sample_rate: int):
        self._transcribe = transcribe
        self.sample_rate = sample_rate
        self._chunks: list[Int16Array] = []
        self._ended = asyncio.Event()
        self._closed = False

    async def push(self, pcm: Int16Array) -> None:
        if self._ended.is_set():
            raise RuntimeError("push after end_input or aclose")
        self._chunks.append(check_pcm(pcm).copy())

    async def end_input(self) -> None:
        self._ended.set()

    def __aiter__(self) -> AsyncIterator[Transcript]:
        return self._results()

    async def _results(self) -> AsyncIterator[Transcript]:
        await self._ended.wait()
        if self._closed:
            return
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        self._chunks.clear()
        yield await self._transcribe(audio, self.sample_rate)

    async def aclose(self) -> None:
        self._closed = True
        self._chunks.clear()
        self._ended.set()
