"""OpenAI-compatible speech over HTTP: ``/audio/transcriptions`` and ``/audio/speech``.

Any server that speaks OpenAI's audio API works (OpenAI itself, speaches, LocalAI,
Kokoro-FastAPI, ...). ``base_url`` includes the version prefix, as OpenAI clients
write it: ``https://api.openai.com/v1``.

Wire formats:

- STT: ``POST {base}/audio/transcriptions``, multipart form with ``file`` (the
  utterance as a 16-bit mono WAV), ``model``, ``response_format=json`` and an optional
  ISO-639-1 ``language``; the answer is ``{"text": "..."}``.
- TTS: ``POST {base}/audio/speech`` with JSON ``{model, input, voice,
  response_format}``; the body streams back as raw PCM (``pcm``: signed 16-bit
  little-endian mono, 24 kHz for OpenAI) or as a WAV file (``wav``), which is
  decoded as it arrives so the first audio plays before the body ends.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Literal

import httpx

from callwright.providers.speech._audio import (
    PcmAssembler,
    WavStreamDecoder,
    check_pcm,
    pcm_to_wav,
)
from callwright.providers.speech._http import check_response, make_client, transport_error
from callwright.providers.speech._stream import BufferedSTTStream
from callwright.providers.speech.base import (
    AudioChunk,
    Int16Array,
    SpeechServiceError,
    Transcript,
    UnknownVoice,
    VoiceInfo,
)

OPENAI_VOICES = (
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "fable",
    "nova",
    "onyx",
    "sage",
    "shimmer",
    "verse",
)


def _auth(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


class OpenAISTT:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        model: str = "whisper-1",
        client: httpx.AsyncClient | None = None,
    ):
        self._url = base_url.rstrip("/") + "/audio/transcriptions"
        self._headers = _auth(api_key)
        self._model = model
        self._client, self._owns_client = make_client(client)

    @property
    def name(self) -> str:
        return "openai"

    async def transcribe(
        self, pcm: Int16Array, sample_rate: int, *, language: str | None = None
    ) -> Transcript:
        pcm = check_pcm(pcm)
        duration = pcm.shape[0] / sample_rate
        data = {"model": self._model, "response_format": "json"}
        lang = language.split("-")[0].lower() if language else None
        if lang:
            data["language"] = lang
        files = {"file": ("audio.wav", pcm_to_wav(pcm, sample_rate), "audio/wav")}
        try:
            response = await self._client.post(
                self._url, data=data, files=files, headers=self._headers
            )
        except httpx.HTTPError as exc:
            raise transport_error("OpenAI transcription", exc) from exc
        await check_response("OpenAI transcription", response)
        try:
            text = response.json()["text"]
        except (ValueError, KeyError, TypeError) as exc:
            raise SpeechServiceError(f"OpenAI transcription: unexpected answer: {exc}") from exc
        return Transcript(str(text).strip(), lang, duration)

    def stream(self, sample_rate: int, *, language: str | None = None) -> BufferedSTTStream:
        async def transcribe(pcm: Int16Array, rate: int) -> Transcript:
            return await self.transcribe(pcm, rate, language=language)

        return BufferedSTTStream(transcribe, sample_rate)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


class OpenAITTS:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        model: str = "tts-1",
        voices: Sequence[str] = OPENAI_VOICES,
        default_voice: str = "alloy",
        response_format: Literal["pcm", "wav"] = "pcm",
        sample_rate: int = 24000,
        client: httpx.AsyncClient | None = None,
    ):
        if default_voice not in voices:
            raise ValueError(f"default voice {default_voice!r} is not among {list(voices)}")
        self._url = base_url.rstrip("/") + "/audio/speech"
        self._headers = _auth(api_key)
        self._model = model
        self._voices = tuple(
            VoiceInfo(name=v, backend="openai", voice_id=v, description=f"OpenAI {model} {v}")
            for v in voices
        )
        self._default_voice = default_voice
        self._format = response_format
        self._rate = sample_rate
        self._client, self._owns_client = make_client(client)

    @property
    def name(self) -> str:
        return "openai"

    @property
    def sample_rate(self) -> int:
        return self._rate

    def voices(self) -> Sequence[VoiceInfo]:
        return self._voices

    async def synthesize(
        self, text: str, voice: str | None = None
    ) -> AsyncGenerator[AudioChunk, None]:
        voice = voice or self._default_voice
        if all(v.voice_id != voice for v in self._voices):
            raise UnknownVoice(voice, "not an OpenAI voice")
        if not text.strip():
            return
        payload = {
            "model": self._model,
            "input": text,
            "voice": voice,
            "response_format": self._format,
        }
        wav = WavStreamDecoder() if self._format == "wav" else None
        raw = PcmAssembler()
        try:
            async with self._client.stream(
                "POST", self._url, json=payload, headers=self._headers
            ) as response:
                await check_response("OpenAI speech", response)
                async for data in response.aiter_bytes():
                    pcm = raw.feed(data) if wav is None else wav.feed(data)
                    if wav is not None and wav.sample_rate not in (None, self._rate):
                        raise SpeechServiceError(
                            f"OpenAI speech sent {wav.sample_rate} Hz audio, "
                            f"configured for {self._rate} Hz"
                        )
                    if pcm.shape[0]:
                        yield AudioChunk(pcm, self._rate)
        except httpx.HTTPError as exc:
            raise transport_error("OpenAI speech", exc) from exc

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
