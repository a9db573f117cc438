"""ElevenLabs streaming text-to-speech over HTTP.

Wire format: ``POST {base}/v1/text-to-speech/{voice_id}/stream?output_format=pcm_{rate}``
with header ``xi-api-key`` and JSON ``{"text", "model_id"}``; the body streams raw
signed 16-bit little-endian mono PCM at ``rate`` (8000, 16000, 22050, 24000 or 44100).
Asking for 16 kHz (the default here) saves a resampling step on the way to a phone.

Voices are ElevenLabs voice ids. ``voices`` names the ones a call may pick by name
(``{"rachel": "21m00Tcm4TlvDq8ikWAM"}``); any other id is passed through as is,
since the account's voice library is not known without a request.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from urllib.parse import quote

import httpx

from callwright.providers.speech._audio import PcmAssembler
from callwright.providers.speech._http import check_response, make_client, transport_error
from callwright.providers.speech.base import AudioChunk, UnknownVoice, VoiceInfo

PCM_RATES = (8000, 16000, 22050, 24000, 44100)


class ElevenLabsTTS:
    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = "https://api.elevenlabs.io",
        model: str = "eleven_flash_v2_5",
        voices: Mapping[str, str] | None = None,
        default_voice: str | None = None,
        sample_rate: int = 16000,
        client: httpx.AsyncClient | None = None,
    ):
        if sample_rate not in PCM_RATES:
            raise ValueError(f"ElevenLabs PCM comes at {PCM_RATES} Hz, not {sample_rate}")
        self._base = base_url.rstrip("/")
        self._headers = {"xi-api-key": api_key}
        self._model = model
        self._voices = tuple(
            VoiceInfo(name=name, backend="elevenlabs", voice_id=voice_id)
            for name, voice_id in (voices or {}).items()
        )
        self._default_voice = default_voice or (self._voices[0].voice_id if self._voices else None)
        self._rate = sample_rate
        self._client, self._owns_client = make_client(client)

    @property
    def name(self) -> str:
        return "elevenlabs"

    @property
    def sample_rate(self) -> int:
        return self._rate

    def voices(self) -> Sequence[VoiceInfo]:
        return self._voices

    async def synthesize(
        self, text: str, voice: str | None = None
    ) -> AsyncGenerator[AudioChunk, None]:
        voice_id = voice or self._default_voice
        if not voice_id:
            raise UnknownVoice("", "no ElevenLabs voice id given and no default configured")
        if not text.strip():
            return
        url = f"{self._base}/v1/text-to-speech/{quote(voice_id, safe='')}/stream"
        params = {"output_format": f"pcm_{self._rate}"}
        payload = {"text": text, "model_id": self._model}
        assembler = PcmAssembler()
        try:
            async with self._client.stream(
                "POST", url, params=params, json=payload, headers=self._headers
            ) as response:
                await check_response("ElevenLabs", response)
                async for data in response.aiter_bytes():
                    pcm = assembler.feed(data)
                    if pcm.shape[0]:
                        yield AudioChunk(pcm, self._rate)
        except httpx.HTTPError as exc:
            raise transport_error("ElevenLabs", exc) from exc

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
