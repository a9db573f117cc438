"""A scripted OpenAI-compatible speech server with no model cost, for load runs.

The server under load talks to it through its real OpenAI speech back-ends
(``speech_stt = "openai"``, voice ``openai:alloy``), so the HTTP clients, the WAV
upload, the streamed PCM decoding and the resampling all run as in production, while
no Whisper or Piper inference competes with the calls for the CPU.

- ``POST /v1/audio/transcriptions`` (multipart WAV, OpenAI's form): answers ``{"text":
  REPLY}`` for every utterance. The reply is a fixed line a caller of the demo pathway
  might say, so the agent takes a real branch.
- ``POST /v1/audio/speech`` (JSON): streams raw 16-bit PCM at 24 kHz, one tone per word
  (``tests.support.fake_speech.tones``), so a reply lasts about as long as its words.

Counters (``/stats``): requests per route, for a test or benchmark to check that the
server under load really went through this server.

Run on its own (a benchmark keeps its CPU out of the driver's process):
``python -m tests.support.speech_server --port 18123``.
"""

from __future__ import annotations

import argparse
import asyncio
import email.parser
import email.policy
import zlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.conftest import free_port
from tests.support.fake_speech import HIGH_HZ, LOW_HZ, STEP_HZ, ToneCode, tones
from tests.support.uvicorn_thread import UvicornThread

TTS_RATE = 24_000  # OpenAI's raw PCM rate, what OpenAITTS expects by default
CHUNK_BYTES = 4800  # 100 ms of 24 kHz PCM per body chunk, as a streaming TTS sends
CALLER_REPLY = "I'd like to book an appointment."
SLOTS = (HIGH_HZ - LOW_HZ) // STEP_HZ


class HashedToneCode(ToneCode):
    """A word's tone from a hash of the word: a long-running server speaks any number of
    distinct words (``ToneCode`` runs out after 155), and words may share a tone."""

    def frequency(self, word: str) -> float:
        return float(LOW_HZ + STEP_HZ * (zlib.crc32(word.encode()) % SLOTS))


def speech_app(reply: str = CALLER_REPLY, counts: Counter[str] | None = None) -> Starlette:
    """The Starlette app: the two OpenAI audio routes and ``/stats``."""
    code = HashedToneCode()
    seen: Counter[str] = counts if counts is not None else Counter()

    async def transcriptions(request: Request) -> Response:
        try:
            body = await request.body()
        except ClientDisconnect:  # the call ended (or barged in) while uploading
            return Response(status_code=499)
        fields = _form_fields(request.headers.get("content-type", ""), body)
        if not fields.get("file", b"").startswith(b"RIFF"):
            return JSONResponse({"error": {"message": "a WAV file is required"}}, status_code=400)
        seen["transcriptions"] += 1
        return JSONResponse({"text": reply})

    async def speech(request: Request) -> Response:
        try:
            body = await request.json()
        except ClientDisconnect:
            return Response(status_code=499)
        if body.get("response_format", "pcm") != "pcm":
            return JSONResponse({"error": {"message": "only pcm here"}}, status_code=400)
        seen["speech"] += 1
        pcm = tones(code, str(body["input"]), TTS_RATE).astype("<i2").tobytes()
        return StreamingResponse(_chunks(pcm), media_type="audio/pcm")

    async def stats(request: Request) -> Response:
        return JSONResponse(dict(seen))

    return Starlette(
        routes=[
            Route("/v1/audio/transcriptions", transcriptions, methods=["POST"]),
            Route("/v1/audio/speech", speech, methods=["POST"]),
            Route("/stats", stats, methods=["GET"]),
        ]
    )


def _form_fields(content_type: str, body: bytes) -> dict[str, bytes]:
    """A multipart form's fields, by the stdlib's MIME parser (no python-multipart)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        return {}
    found: dict[str, bytes] = {}
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        name = part.get_param("name", header="content-disposition")
        found[str(name)] = payload if isinstance(payload, bytes) else b""
    return found


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), CHUNK_BYTES):
        yield data[start : start + CHUNK_BYTES]
        await asyncio.sleep(0)


@dataclass
class SpeechServer:
    """The app under uvicorn in a daemon thread on loopback."""

    reply: str = CALLER_REPLY
    port: int = field(default_factory=free_port)
    counts: Counter[str] = field(default_factory=Counter)
    _running: UvicornThread | None = None

    @property
    def base_url(self) -> str:
        """What ``openai_speech_base_url`` takes (with the version prefix)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> SpeechServer:
        self._running = UvicornThread.start(speech_app(self.reply, self.counts), self.port)
        return self

    def stop(self) -> None:
        if self._running is not None:
            self._running.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--reply", default=CALLER_REPLY)
    args = parser.parse_args()
    uvicorn.run(
        speech_app(args.reply),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        lifespan="off",
    )


if __name__ == "__main__":
    main()
