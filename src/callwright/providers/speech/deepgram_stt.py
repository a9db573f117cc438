"""Deepgram streaming speech-to-text over a WebSocket.

Wire format: connect to ``{base}/v1/listen?encoding=linear16&sample_rate=R&channels=1
&model=...&language=...&interim_results=true&punctuate=true&endpointing=MS`` with the
header ``Authorization: Token KEY``; send audio as binary messages of raw signed 16-bit
little-endian PCM; receive JSON text messages. Those of ``"type": "Results"`` carry
``channel.alternatives[0].transcript`` (and ``words``), ``is_final`` (this stretch of
audio will not be revised) and ``speech_final`` (Deepgram's endpointer heard the
speaker stop). Sending ``{"type": "CloseStream"}`` asks for the last finals; the
server then closes the socket normally. ``Metadata`` and other messages are ignored.

Each ``DeepgramStream`` connects on first use and is one Deepgram session. Push audio
continuously, silence included: the service closes a stream that hears nothing for
about 10 s (close code 1011, reported as a retryable ``SpeechServiceError``).
``transcribe`` opens a stream for one utterance, sends it, and joins the finals.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from callwright.providers.speech._audio import check_pcm
from callwright.providers.speech._http import retryable_status
from callwright.providers.speech.base import (
    Int16Array,
    SpeechServiceError,
    Transcript,
    Word,
)

# Deepgram's documented "no audio for too long" and server-error close codes.
_RETRYABLE_CLOSE = frozenset({1011, 1012, 1013})
_SEND_SAMPLES = 4000  # samples per message when sending a whole utterance (250 ms at 16 kHz)


class DeepgramSTT:
    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = "wss://api.deepgram.com",
        model: str = "nova-2",
        language: str = "en-US",
        endpointing_ms: int = 300,
        interim_results: bool = True,
        options: Mapping[str, str] | None = None,
        open_timeout: float = 10.0,
    ):
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Token {api_key}"}
        self._query: dict[str, str] = {
            "model": model,
            "language": language,
            "interim_results": str(interim_results).lower(),
            "punctuate": "true",
            "endpointing": str(endpointing_ms),
            **(options or {}),
        }
        self._open_timeout = open_timeout

    @property
    def name(self) -> str:
        return "deepgram"

    def stream(self, sample_rate: int, *, language: str | None = None) -> DeepgramStream:
        query = {
            "encoding": "linear16",
            "sample_rate": str(sample_rate),
            "channels": "1",
            **self._query,
        }
        if language:
            query["language"] = language
        url = f"{self._base}/v1/listen?{urlencode(query)}"
        return DeepgramStream(url, self._headers, query["language"], self._open_timeout)

    async def transcribe(
        self, pcm: Int16Array, sample_rate: int, *, language: str | None = None
    ) -> Transcript:
        pcm = check_pcm(pcm)
        async with self.stream(sample_rate, language=language) as stream:

            async def send() -> None:
                for start in range(0, pcm.shape[0], _SEND_SAMPLES):
                    await stream.push(pcm[start : start + _SEND_SAMPLES])
                await stream.end_input()

            sender = asyncio.create_task(send())
            try:
                finals = [t async for t in stream if t.is_final]
                await sender  # its own failure, if the results ended without one
            finally:
                sender.cancel()
                await asyncio.wait([sender])
                if not sender.cancelled():
                    sender.exception()  # retrieved: the reader's error is the one to raise
        words = tuple(w for t in finals for w in t.words)
        text = " ".join(t.text for t in finals if t.text)
        return Transcript(text, stream.language, pcm.shape[0] / sample_rate, words)

    async def aclose(self) -> None:
        return None  # streams own their sockets


class DeepgramStream:
    def __init__(self, url: str, headers: Mapping[str, str], language: str, open_timeout: float):
        self._url = url
        self._headers = dict(headers)
        self.language = language
        self._open_timeout = open_timeout
        self._ws: ClientConnection | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self._failed: SpeechServiceError | None = None

    async def __aenter__(self) -> DeepgramStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def push(self, pcm: Int16Array) -> None:
        ws = await self._connection()
        try:
            await ws.send(check_pcm(pcm).astype("<i2", copy=False).tobytes())
        except ConnectionClosed as exc:
            raise _closed_error(exc) from exc

    async def end_input(self) -> None:
        ws = await self._connection()
        try:
            await ws.send(json.dumps({"type": "CloseStream"}))
        except ConnectionClosed as exc:
            raise _closed_error(exc) from exc

    def __aiter__(self) -> AsyncIterator[Transcript]:
        return self._results()

    async def aclose(self) -> None:
        self._closed = True
        if self._ws is not None:
            await self._ws.close()

    async def _results(self) -> AsyncIterator[Transcript]:
        ws = await self._connection()
        try:
            async for message in ws:  # ends when the server closes normally
                if isinstance(message, bytes):
                    continue
                event = json.loads(message)
                if isinstance(event, dict) and event.get("type") == "Results":
                    yield _transcript(event, self.language)
        except ConnectionClosed as exc:
            if not self._closed:
                raise _closed_error(exc) from exc
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise SpeechServiceError(f"Deepgram sent an unexpected message: {exc}") from exc

    async def _connection(self) -> ClientConnection:
        async with self._lock:
            if self._closed:
                raise RuntimeError("the Deepgram stream is closed")
            if self._failed is not None:
                raise self._failed  # one refused handshake is enough for pusher and reader
            if self._ws is None:
                try:
                    self._ws = await self._connect()
                except SpeechServiceError as exc:
                    self._failed = exc
                    raise
            return self._ws

    async def _connect(self) -> ClientConnection:
        try:
            return await connect(
                self._url, additional_headers=self._headers, open_timeout=self._open_timeout
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            body = exc.response.body[:300].decode("utf-8", "replace") if exc.response.body else ""
            raise SpeechServiceError(
                f"Deepgram refused the stream: HTTP {status} {body}".strip(),
                status=status,
                retryable=retryable_status(status),
            ) from exc
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise SpeechServiceError(
                f"Deepgram connection failed: {type(exc).__name__}: {exc}", retryable=True
            ) from exc


def _transcript(event: dict[str, Any], language: str) -> Transcript:
    alternative = event["channel"]["alternatives"][0]
    words = tuple(
        Word(
            str(w.get("punctuated_word") or w["word"]),
            float(w["start"]),
            float(w["end"]),
            float(w["confidence"]) if "confidence" in w else None,
        )
        for w in alternative.get("words", ())
    )
    return Transcript(
        text=str(alternative["transcript"]).strip(),
        language=language,
        duration=float(event.get("duration", 0.0)),
        words=words,
        is_final=bool(event.get("is_final", False)),
        speech_final=bool(event.get("speech_final", False)),
    )


def _closed_error(exc: ConnectionClosed) -> SpeechServiceError:
    code = exc.rcvd.code if exc.rcvd is not None else None
    reason = exc.rcvd.reason if exc.rcvd is not None else "no close frame"
    return SpeechServiceError(
        f"Deepgram closed the stream: {code} {reason}".strip(),
        retryable=code is None or code in _RETRYABLE_CLOSE,
    )
