"""Speech back-ends with no model: words become tones and tones become words again.

``ToneCode`` gives every word (whitespace-separated token, punctuation kept) its own
frequency. ``ToneTTS`` speaks a text as one short tone per word with a gap between
words; ``ToneSTT`` cuts audio into bursts by energy and maps each burst's peak
frequency back to its word. Tones survive what a phone call does to audio (8 kHz,
G.711 mu-law, resampling), so a scripted caller and an agent can talk through the
real media path and the transcript comes back word for word. ``EnergyVADModel`` is
the VAD: speech is a frame with energy. They implement the providers' ``STT`` and
``TTS`` Protocols and ``SileroVADModel.detector()``, so ``ConversationRunner`` takes
them through a ``SpeechLoader``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from callwright.conversation.runner import SpeechLoader
from callwright.media.frames import AudioFrame
from callwright.providers.speech.base import AudioChunk, Int16Array, Transcript, VoiceInfo
from callwright.providers.speech.registry import SpeechProviders

RATE = 16_000
WORD_MS = 100
GAP_MS = 40
LEVEL = 8000
LOW_HZ, HIGH_HZ, STEP_HZ = 300, 3400, 20  # below the 8 kHz line's 4 kHz Nyquist
_BLOCK = RATE // 200  # 5 ms energy blocks for cutting bursts


@dataclass
class ToneCode:
    """word <-> frequency, assigned on first use, shared by the TTS and the STT."""

    words: dict[str, float] = field(default_factory=dict)

    def frequency(self, word: str) -> float:
        if word not in self.words:
            freq = LOW_HZ + STEP_HZ * len(self.words)
            if freq > HIGH_HZ:
                raise ValueError("the tone code is full: use fewer distinct words")
            self.words[word] = float(freq)
        return self.words[word]

    def word(self, freq: float) -> str | None:
        best = min(self.words.items(), key=lambda item: abs(item[1] - freq), default=None)
        if best is None or abs(best[1] - freq) > STEP_HZ / 2:
            return None
        return best[0]


def tones(code: ToneCode, text: str, rate: int = RATE) -> Int16Array:
    """``text`` as tones: ``WORD_MS`` of each word's frequency, then ``GAP_MS`` of silence."""
    n, gap = rate * WORD_MS // 1000, rate * GAP_MS // 1000
    fade = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / (rate / 200))
    parts = []
    for word in text.split():
        wave = np.sin(2 * np.pi * code.frequency(word) * np.arange(n) / rate) * fade * LEVEL
        parts += [wave.astype(np.int16), np.zeros(gap, dtype=np.int16)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


def decode(code: ToneCode, pcm: Int16Array, rate: int) -> str:
    """The words of the tone bursts in ``pcm``."""
    block = max(rate // 200, 1)
    usable = len(pcm) - len(pcm) % block
    energy = np.sqrt(
        np.mean(pcm[:usable].astype(np.float64).reshape(-1, block) ** 2, axis=1)
        if usable
        else np.zeros(0)
    )
    loud = energy > LEVEL / 8
    words: list[str] = []
    start: int | None = None
    for i, on in enumerate([*loud, False]):
        if on and start is None:
            start = i
        elif not on and start is not None:
            burst = pcm[start * block : i * block].astype(np.float64)
            start = None
            if len(burst) < rate * WORD_MS // 2000:
                continue  # an edge of a burst cut off at the buffer's start or end
            # n=rate: 1 Hz bins, so the peak's index is its frequency.
            spectrum = np.abs(np.fft.rfft(burst * np.hanning(len(burst)), n=rate))
            word = code.word(float(np.argmax(spectrum)))
            if word is not None:
                words.append(word)
    return " ".join(words)


class ToneTTS:
    """Voices ``agent`` and ``caller`` (the same tones); one chunk per sentence."""

    def __init__(self, code: ToneCode) -> None:
        self.code = code
        self.spoken: list[str] = []

    @property
    def name(self) -> str:
        return "tone"

    @property
    def sample_rate(self) -> int:
        return RATE

    def voices(self) -> Sequence[VoiceInfo]:
        return (VoiceInfo("agent", "tone", "agent"), VoiceInfo("caller", "tone", "caller"))

    async def synthesize(
        self, text: str, voice: str | None = None
    ) -> AsyncGenerator[AudioChunk, None]:
        self.spoken.append(text)
        for sentence in re.findall(r"[^.?!]+[.?!]*", text):
            if sentence.strip():
                await asyncio.sleep(0)
                yield AudioChunk(tones(self.code, sentence), RATE, sentence.strip())

    async def aclose(self) -> None:
        pass


class ToneSTT:
    def __init__(self, code: ToneCode) -> None:
        self.code = code
        self.heard: list[str] = []

    @property
    def name(self) -> str:
        return "tone"

    async def transcribe(
        self, pcm: Int16Array, sample_rate: int, *, language: str | None = None
    ) -> Transcript:
        text = decode(self.code, pcm, sample_rate)
        self.heard.append(text)
        return Transcript(text, language, len(pcm) / sample_rate)

    def stream(self, sample_rate: int, *, language: str | None = None) -> Any:
        raise NotImplementedError("the conversation loop transcribes whole utterances")

    async def aclose(self) -> None:
        pass


class EnergyVAD:
    def process(self, frame: AudioFrame) -> float:
        rms = float(np.sqrt(np.mean(frame.samples.astype(np.float64) ** 2)))
        return 1.0 if rms > LEVEL / 8 else 0.0


class EnergyVADModel:
    def detector(self) -> EnergyVAD:
        return EnergyVAD()


def tone_speech(code: ToneCode | None = None) -> tuple[SpeechLoader, ToneTTS, ToneSTT]:
    """A ``SpeechLoader`` of the tone back-ends (the agent's default voice is ``agent``)."""
    code = code or ToneCode()
    tts, stt = ToneTTS(code), ToneSTT(code)
    providers = SpeechProviders(
        stt=stt,
        tts={"tone": tts},
        default_voice="agent",
        vad=cast(Any, EnergyVADModel()),
        aliases={},
    )
    return SpeechLoader(lambda: providers), tts, stt
