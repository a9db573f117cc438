"""Real loopback servers that speak the speech services' wire formats.

``SpeechHTTPServer``: uvicorn in a thread serving a Starlette app with OpenAI's
``/v1/audio/transcriptions`` and ``/v1/audio/speech`` and ElevenLabs'
``/v1/text-to-speech/{voice_id}/stream``. ``DeepgramServer``: a websockets server
(in the test's own loop) for ``/v1/listen``.

The answers are deterministic functions of the request, so a test can tell the
request arrived intact: the transcription says how many samples at which rate it
decoded; synthesized audio is a ramp whose length follows the text.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import io
import json
import struct
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from tests.conftest import free_port
from tests.support.uvicorn_thread import UvicornThread
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Response as WSResponse

API_KEY = "test-key"
SAMPLES_PER_CHAR = 100  # synthesized audio: 100 samples for each character of input
CHUNK_BYTES = 1001  # odd on purpose: samples split across reads


def speech_samples(text: str) -> np.ndarray:
    n = SAMPLES_PER_CHAR * len(text)
    return (np.arange(n) % 2000 - 1000).astype(np.int16)


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """Form fields -> (filename, content), with the stdlib's MIME parser."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        fields[str(name)] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
    return fields


@dataclass
class SpeechHTTPServer:
    port: int = field(default_factory=free_port)
    requests: list[dict[str, Any]] = field(default_factory=list)
    stream_forever: bool = False  # speech bodies never end (cancellation tests)
    open_streams: int = 0
    _running: UvicornThread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SpeechHTTPServer:
        app = Starlette(
            routes=[
                Route("/v1/audio/transcriptions", self._transcriptions, methods=["POST"]),
                Route("/v1/audio/speech", self._speech, methods=["POST"]),
                Route("/v1/text-to-speech/{voice_id}/stream", self._eleven, methods=["POST"]),
            ]
        )
        self._running = UvicornThread.start(app, self.port, log_level="error")
        return self

    def stop(self) -> None:
        if self._running is not None:
            self._running.stop()

    async def _transcriptions(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return JSONResponse({"error": {"message": "bad key"}}, status_code=401)
        form = parse_multipart(request.headers["content-type"], await request.body())
        self.requests.append({"path": request.url.path, "form": form})
        filename, audio = form["file"]
        with wave.open(io.BytesIO(audio)) as wav:
            rate, frames = wav.getframerate(), wav.getnframes()
        if form["response_format"][1] != b"json" or not filename:
            return JSONResponse({"error": {"message": "bad request"}}, status_code=400)
        model = form["model"][1].decode()
        return JSONResponse({"text": f" heard {frames} samples at {rate} Hz with {model} "})

    async def _speech(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return JSONResponse({"error": {"message": "bad key"}}, status_code=401)
        body = await request.json()
        self.requests.append({"path": request.url.path, "json": body})
        if body["voice"] == "busy":
            return JSONResponse({"error": {"message": "slow down"}}, status_code=429)
        pcm = speech_samples(body["input"]).astype("<i2").tobytes()
        if body["response_format"] == "wav":
            pcm = _wav_header(24000) + pcm
        return StreamingResponse(self._chunks(pcm), media_type="audio/pcm")

    async def _eleven(self, request: Request) -> Response:
        if request.headers.get("xi-api-key") != API_KEY:
            return JSONResponse({"detail": {"status": "invalid_api_key"}}, status_code=401)
        body = await request.json()
        self.requests.append(
            {
                "path": request.url.path,
                "json": body,
                "output_format": request.query_params.get("output_format"),
            }
        )
        return StreamingResponse(
            self._chunks(speech_samples(body["text"]).astype("<i2").tobytes()),
            media_type="audio/pcm",
        )

    async def _chunks(self, data: bytes) -> AsyncIterator[bytes]:
        self.open_streams += 1
        try:
            while True:
                for start in range(0, len(data), CHUNK_BYTES):
                    yield data[start : start + CHUNK_BYTES]
                    await asyncio.sleep(0)
                if not self.stream_forever:
                    return
                await asyncio.sleep(0.001)
        finally:
            self.open_streams -= 1


def _wav_header(rate: int) -> bytes:
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 0xFFFFFFFF)
        + b"WAVEfmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", 0xFFFFFFFF)
    )


@dataclass
class DeepgramServer:
    """Deepgram's live API in miniature: one final result per ``segment_ms`` of audio.

    Each segment first gets an interim result, then a final one; the final of the last
    segment (sent on CloseStream) is ``speech_final``. ``close_code`` makes the server
    drop the socket with that code after the first segment.
    """

    segment_ms: int = 500
    close_code: int | None = None
    port: int = field(default_factory=free_port)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    _server: Server | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> DeepgramServer:
        self._server = await serve(
            self._handle, "127.0.0.1", self.port, process_request=self._check_request
        )
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _check_request(self, connection: ServerConnection, request: Any) -> WSResponse | None:
        if request.headers.get("Authorization") != f"Token {API_KEY}":
            body = b'{"err_code":"INVALID_AUTH"}'
            return WSResponse(
                401, "Unauthorized", Headers({"Content-Length": str(len(body))}), body
            )
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        url = urlparse(ws.request.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        session: dict[str, Any] = {"path": url.path, "query": query, "bytes": 0, "messages": 0}
        self.sessions.append(session)
        assert url.path == "/v1/listen" and query["encoding"] == "linear16"
        rate = int(query["sample_rate"])
        segment_bytes = rate * 2 * self.segment_ms // 1000
        pending, segment = 0, 0
        await ws.send(json.dumps({"type": "Metadata", "request_id": "test"}))
        async for message in ws:
            if isinstance(message, str):
                if json.loads(message).get("type") == "CloseStream":
                    if pending:
                        await ws.send(self._result(segment, pending / 2 / rate, True, True))
                    break
                continue
            session["bytes"] += len(message)
            session["messages"] += 1
            pending += len(message)
            while pending >= segment_bytes:
                seconds = self.segment_ms / 1000
                await ws.send(self._result(segment, seconds, False, False))
                await ws.send(self._result(segment, seconds, True, False))
                pending -= segment_bytes
                segment += 1
                if self.close_code is not None:
                    await ws.close(self.close_code, "NET-0001")
                    return
        await ws.close()

    def _result(self, segment: int, duration: float, final: bool, speech_final: bool) -> str:
        start = segment * self.segment_ms / 1000
        words = [
            {"word": "segment", "start": start, "end": start + 0.2, "confidence": 0.9},
            {
                "word": str(segment),
                "punctuated_word": f"{segment}.",
                "start": start + 0.2,
                "end": start + duration,
                "confidence": 0.8,
            },
        ]
        return json.dumps(
            {
                "type": "Results",
                "start": start,
                "duration": duration,
                "is_final": final,
                "speech_final": speech_final,
                "channel": {
                    "alternatives": [
                        {
                            "transcript": f"segment {segment}." if final else "segm",
                            "confidence": 0.85,
                            "words": words if final else [],
                        }
                    ]
                },
            }
        )
