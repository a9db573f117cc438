"""Speech providers: ``STT`` and ``TTS`` Protocols, embedded and network back-ends, VAD.

Embedded (offline, loaded once): ``WhisperSTT`` (faster-whisper), ``PiperTTS``
(Piper "joe" voice), ``SileroVADModel`` (Silero VAD for ``callwright.media.vad``).
Network: ``OpenAISTT``/``OpenAITTS`` (OpenAI-compatible audio API), ``DeepgramSTT``
(streaming WebSocket), ``ElevenLabsTTS`` (streaming HTTP). ``speech_from_settings``
builds the set a server runs; ``SpeechProviders.resolve_voice`` maps a call's
``voice`` to a back-end and voice id.

Models load when a back-end is constructed, never at import.
"""

from callwright.providers.speech.base import (
    STT,
    TTS,
    AudioChunk,
    Int16Array,
    SpeechError,
    SpeechServiceError,
    SpeechUnavailable,
    STTStream,
    Transcript,
    UnknownVoice,
    VoiceInfo,
    Word,
)
from callwright.providers.speech.deepgram_stt import DeepgramSTT
from callwright.providers.speech.elevenlabs_tts import ElevenLabsTTS
from callwright.providers.speech.openai_speech import OpenAISTT, OpenAITTS
from callwright.providers.speech.piper_tts import PiperTTS
from callwright.providers.speech.registry import (
    BLAND_VOICE_ALIASES,
    SpeechProviders,
    speech_from_settings,
)
from callwright.providers.speech.silero_vad import SileroVAD, SileroVADModel
from callwright.providers.speech.whisper_stt import WhisperSTT

__all__ = [
    "BLAND_VOICE_ALIASES",
    "STT",
    "TTS",
    "AudioChunk",
    "DeepgramSTT",
    "ElevenLabsTTS",
    "Int16Array",
    "OpenAISTT",
    "OpenAITTS",
    "PiperTTS",
    "STTStream",
    "SileroVAD",
    "SileroVADModel",
    "SpeechError",
    "SpeechProviders",
    "SpeechServiceError",
    "SpeechUnavailable",
    "Transcript",
    "UnknownVoice",
    "VoiceInfo",
    "WhisperSTT",
    "Word",
    "speech_from_settings",
]
