"""The provider back-ends, seen through the loop's narrow ports."""

from __future__ import annotations

from collections.abc import AsyncIterator

from callwright.conversation.ports import Pcm
from callwright.media.frames import AudioFrame
from callwright.media.vad import VoiceActivityDetector
from callwright.providers.speech.base import STT, TTS

STT_RATE = 16_000


class SpeechTranscriber:
    def __init__(self, stt: STT, *, language: str | None = None) -> None:
        self.stt = stt
        self.language = language

    async def transcribe(self, pcm16k: Pcm) -> str:
        if not len(pcm16k):
            return ""
        result = await self.stt.transcribe(pcm16k, STT_RATE, language=self.language)
        return result.text.strip()


class SpeechSynthesizer:
    def __init__(self, tts: TTS, voice: str | None = None) -> None:
        self.tts = tts
        self.voice = voice
        self.sample_rate = tts.sample_rate

    async def synthesize(self, text: str) -> AsyncIterator[Pcm]:
        stream = self.tts.synthesize(text, self.voice)
        try:
            async for chunk in stream:
                yield chunk.pcm
        finally:
            await stream.aclose()


class DetectorActivity:
    """A per-call VAD (the detector keeps state across frames) on the port's frames, at
    the port's rate: Silero scores 8 and 16 kHz natively, so a phone call's audio is
    never resampled just to be scored."""

    def __init__(self, detector: VoiceActivityDetector, sample_rate: int) -> None:
        self.detector = detector
        self.sample_rate = sample_rate
        self._timestamp = 0

    def probability(self, pcm: Pcm) -> float:
        frame = AudioFrame(pcm, self.sample_rate, self._timestamp)
        self._timestamp += len(pcm)
        return self.detector.process(frame)
