"""Which speech back-ends a server runs, and which TTS voice a call's ``voice`` names.

``speech_from_settings`` builds everything once at start-up: the embedded models
always load (Piper for TTS, Silero for VAD, and Whisper when it is the STT); network
back-ends join when their settings are present. Loading takes a second or two of
CPU, so call it from a thread on a running server (``asyncio.to_thread``).

Voice names (``SpeechProviders.resolve_voice``), case-insensitive:

1. empty or None: the default voice (setting ``speech_voice``, "joe" by default);
2. an alias: Bland's curated voice names ("maya", "josh", "florian", "derek", "june",
   "nat", "paige") stand for the default voice, so client code written for Bland
   runs unchanged; the table can be replaced;
3. ``backend:voice``: that back-end's voice, e.g. ``piper:joe``, ``openai:nova``,
   ``elevenlabs:21m00Tcm4TlvDq8ikWAM`` (ElevenLabs takes any voice id);
4. a bare voice name or id that one configured back-end lists (``joe``, ``nova``);
   the embedded back-end is searched first.

Anything else raises ``UnknownVoice``, which the API answers with a 400.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from callwright.providers.speech.base import STT, TTS, UnknownVoice, VoiceInfo
from callwright.providers.speech.deepgram_stt import DeepgramSTT
from callwright.providers.speech.elevenlabs_tts import ElevenLabsTTS
from callwright.providers.speech.openai_speech import OPENAI_VOICES, OpenAISTT, OpenAITTS
from callwright.providers.speech.piper_tts import DEFAULT_VOICE as DEFAULT_PIPER_VOICE
from callwright.providers.speech.piper_tts import PiperTTS
from callwright.providers.speech.silero_vad import SileroVADModel
from callwright.providers.speech.whisper_stt import WhisperSTT

DEFAULT_VOICE_ALIAS = ""  # an alias pointing here means "the default voice"
BLAND_VOICE_ALIASES: Mapping[str, str] = {
    name: DEFAULT_VOICE_ALIAS
    for name in ("maya", "josh", "florian", "derek", "june", "nat", "paige")
}
_EMBEDDED_STT = frozenset({"whisper"})
_EMBEDDED_TTS = frozenset({"piper"})
_WARM_STT_RATE = 16_000  # one second of silence
# Back-ends that accept voice ids they do not list (an account's own voices).
_OPEN_VOICE_BACKENDS = frozenset({"elevenlabs"})


@dataclass
class SpeechProviders:
    """The speech back-ends of one server process, shared by every call."""

    stt: STT
    tts: Mapping[str, TTS]  # back-end name -> back-end, in search order
    default_voice: str
    vad: SileroVADModel | None = None
    aliases: Mapping[str, str] = field(default_factory=lambda: dict(BLAND_VOICE_ALIASES))

    def resolve_voice(self, name: str | None) -> tuple[TTS, str]:
        """The TTS back-end and its voice id for a call's ``voice`` field."""
        raw = (name or "").strip()
        target = self.aliases.get(raw.lower(), raw).strip()  # alias keys are lower case
        if not target:
            target = self.default_voice.strip()
            if target.lower() in self.aliases:
                raise UnknownVoice(self.default_voice, "the default voice is an alias")
        shown = raw or target
        backend_name, sep, voice = target.partition(":")
        if sep:
            return self._explicit(shown, backend_name.lower(), voice)
        for backend in self.tts.values():
            found = _find(backend.voices(), target.lower())
            if found is not None:
                return backend, found.voice_id
        raise UnknownVoice(shown, f"voices here: {', '.join(self.voice_names())}")

    def voice_names(self) -> list[str]:
        return sorted(
            {f"{v.backend}:{v.name}" for b in self.tts.values() for v in b.voices()}
            | set(self.aliases)
        )

    def voices(self) -> list[VoiceInfo]:
        return [v for backend in self.tts.values() for v in backend.voices()]

    async def warm(self) -> None:
        """Run each embedded model once (a second of silence through Whisper, "Hello"
        through Piper, a window through Silero): a model's first run pays for memory
        and kernel set-up, which would otherwise land on the first call's first turn.
        Network back-ends are left alone: a request costs money and warms nothing here."""
        if self.stt.name in _EMBEDDED_STT:
            await self.stt.transcribe(np.zeros(_WARM_STT_RATE, np.int16), _WARM_STT_RATE)
        for backend in self.tts.values():
            if backend.name in _EMBEDDED_TTS:
                stream = backend.synthesize("Hello")
                try:
                    async for _ in stream:
                        pass
                finally:
                    await stream.aclose()
        if isinstance(self.vad, SileroVADModel):
            await asyncio.to_thread(self.vad.warm)

    async def aclose(self) -> None:
        await self.stt.aclose()
        for backend in self.tts.values():
            await backend.aclose()

    def _explicit(self, shown: str, backend_name: str, voice: str) -> tuple[TTS, str]:
        backend = self.tts.get(backend_name)
        if backend is None:
            raise UnknownVoice(shown, f"TTS back-end {backend_name!r} is not configured")
        found = _find(backend.voices(), voice.lower())
        if found is not None:
            return backend, found.voice_id
        if backend_name in _OPEN_VOICE_BACKENDS and voice:
            return backend, voice  # ids are case-sensitive there: keep the spelling given
        raise UnknownVoice(shown, f"{backend_name} has no voice {voice!r}")


def _find(voices: Sequence[VoiceInfo], key: str) -> VoiceInfo | None:
    for info in voices:
        if key in (info.name.lower(), info.voice_id.lower()):
            return info
    return None


def _setting(settings: object, name: str, default: Any = None) -> Any:
    value = getattr(settings, name, default)
    return default if value is None else value


def _secret(settings: object, name: str) -> str | None:
    value = getattr(settings, name, None)
    if value is None:
        return None
    reveal = getattr(value, "get_secret_value", None)
    text = str(reveal() if callable(reveal) else value)
    return text or None


def speech_from_settings(settings: object) -> SpeechProviders:
    """Build (and load) the speech back-ends the settings ask for.

    Reads, all optional: ``speech_stt`` ("embedded" | "openai" | "deepgram"),
    ``speech_voice``, ``speech_threads``, ``whisper_model_dir``, ``whisper_beam_size``,
    ``openai_speech_base_url``, ``openai_speech_api_key``, ``openai_stt_model``,
    ``openai_tts_model``, ``deepgram_api_key``, ``deepgram_base_url``,
    ``deepgram_model``, ``elevenlabs_api_key``, ``elevenlabs_base_url``,
    ``elevenlabs_model``, ``elevenlabs_voices`` (name -> voice id).
    """
    threads = int(_setting(settings, "speech_threads", 0))
    openai_url: str | None = _setting(settings, "openai_speech_base_url")
    openai_key = _secret(settings, "openai_speech_api_key")
    deepgram_key = _secret(settings, "deepgram_api_key")
    elevenlabs_key = _secret(settings, "elevenlabs_api_key")

    tts: dict[str, TTS] = {"piper": PiperTTS(cpu_threads=threads)}
    if openai_url:
        tts["openai"] = OpenAITTS(
            openai_url, openai_key, model=_setting(settings, "openai_tts_model", "tts-1")
        )
    if elevenlabs_key:
        tts["elevenlabs"] = ElevenLabsTTS(
            elevenlabs_key,
            base_url=_setting(settings, "elevenlabs_base_url", "https://api.elevenlabs.io"),
            model=_setting(settings, "elevenlabs_model", "eleven_flash_v2_5"),
            voices=_setting(settings, "elevenlabs_voices", {}),
        )

    choice = str(_setting(settings, "speech_stt", "embedded"))
    stt: STT
    if choice == "embedded":
        model_dir = _setting(settings, "whisper_model_dir")
        stt = WhisperSTT(
            Path(model_dir) if model_dir else None,
            beam_size=int(_setting(settings, "whisper_beam_size", 1)),
            cpu_threads=threads,
        )
    elif choice == "openai":
        if not openai_url:
            raise ValueError("speech_stt = 'openai' needs openai_speech_base_url")
        stt = OpenAISTT(
            openai_url, openai_key, model=_setting(settings, "openai_stt_model", "whisper-1")
        )
    elif choice == "deepgram":
        if not deepgram_key:
            raise ValueError("speech_stt = 'deepgram' needs deepgram_api_key")
        stt = DeepgramSTT(
            deepgram_key,
            base_url=_setting(settings, "deepgram_base_url", "wss://api.deepgram.com"),
            model=_setting(settings, "deepgram_model", "nova-2"),
        )
    else:
        raise ValueError(f"speech_stt must be embedded, openai or deepgram, not {choice!r}")

    providers = SpeechProviders(
        stt=stt,
        tts=tts,
        default_voice=str(_setting(settings, "speech_voice", "joe")),
        vad=SileroVADModel(batched=True),  # live calls: scored off the event loop
    )
    providers.resolve_voice(None)  # a default voice nobody has fails at start-up, not per call
    return providers


def check_voice(name: str | None, settings: object) -> None:
    """Raise ``UnknownVoice`` unless ``name`` would resolve on a server with these
    settings, by the rules above, without loading any model (the API checks a call's
    ``voice`` when the call is created; the models load when a call first runs)."""
    raw = (name or "").strip()
    if not raw or raw.lower() in BLAND_VOICE_ALIASES:
        return
    listed: dict[str, set[str]] = {"piper": {DEFAULT_PIPER_VOICE}}  # the one it ships
    if _setting(settings, "openai_speech_base_url"):
        listed["openai"] = set(OPENAI_VOICES)
    if _secret(settings, "elevenlabs_api_key"):
        named = _setting(settings, "elevenlabs_voices", {}) or {}
        listed["elevenlabs"] = {str(k).lower() for k in named} | {
            str(v).lower() for v in named.values()
        }
    backend, sep, voice = raw.partition(":")
    if sep:
        known = listed.get(backend.lower())
        if known is None:
            raise UnknownVoice(raw, f"TTS back-end {backend!r} is not configured")
        if voice.lower() in known or (backend.lower() in _OPEN_VOICE_BACKENDS and voice):
            return
        raise UnknownVoice(raw, f"{backend} has no voice {voice!r}")
    if any(raw.lower() in known for known in listed.values()):
        return
    names = sorted({f"{b}:{v}" for b, vs in listed.items() for v in vs} | set(BLAND_VOICE_ALIASES))
    raise UnknownVoice(raw, f"voices here: {', '.join(names)}")
