"""Streaming sample-rate conversion between the rates a call meets.

Telephony runs at 8 kHz, speech models at 16 kHz, TTS voices at 22.05/24 kHz and
browsers at 48 kHz. One ``StreamingResampler`` per direction of a call converts a
stream of frames, keeping the filter state across frames so frame edges leave no
clicks.

Theory: libsoxr's stream keeps the filter history and compensates its delay, so
output sample ``k`` lines up with input time ``k / out_rate``. It works in blocks,
though: output arrives in bursts and may be empty for the first few frames (about
30-130 ms at the default quality, depending on the rates). The total is exact once
``flush`` has drained the tail: ``round(n_in * out_rate / in_rate)`` samples. Callers
that need fixed 20 ms frames re-cut the output with a ``Framer``.

Output timestamps continue the input's: the first output sample is stamped with the
first input timestamp scaled to the output rate, and each later sample one more.

``resample_block`` converts one whole buffer (an utterance for the speech recognizer)
in a single call, with no stream state and no block delay.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import soxr

from callwright.media.frames import AudioFrame, Int16Array, frame_from_owned

Quality = Literal["QQ", "LQ", "MQ", "HQ", "VHQ"]
COMMON_RATES = (8000, 16000, 22050, 24000, 48000)


class StreamingResampler:
    """Converts a stream of frames from ``in_rate`` to ``out_rate``, keeping state.

    ``QQ`` is a cubic interpolator with almost no delay and audible aliasing; ``HQ``
    (default) is a proper low-pass with the block delay described above.
    """

    def __init__(self, in_rate: int, out_rate: int, *, quality: Quality = "HQ"):
        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {in_rate} -> {out_rate}")
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._quality: Quality = quality
        self._stream = self._new_stream()
        self._next_timestamp: int | None = None

    def _new_stream(self) -> soxr.ResampleStream | None:
        if self.in_rate == self.out_rate:
            return None
        return soxr.ResampleStream(
            self.in_rate, self.out_rate, 1, dtype="int16", quality=self._quality
        )

    def process(self, frame: AudioFrame) -> AudioFrame | None:
        """Feed one input frame; returns what the filter releases (None when nothing)."""
        if frame.sample_rate != self.in_rate:
            raise ValueError(f"frame is {frame.sample_rate} Hz, resampler expects {self.in_rate}")
        if self._next_timestamp is None:
            self._next_timestamp = round(frame.timestamp * self.out_rate / self.in_rate)
        if self._stream is None:
            return self._stamp(frame.samples)
        return self._stamp(self._stream.resample_chunk(frame.samples))

    def flush(self) -> AudioFrame | None:
        """Drain the filter at the end of the stream; the resampler is then ready for reuse."""
        tail = None
        if self._stream is not None:
            tail = self._stamp(self._stream.resample_chunk(np.zeros(0, np.int16), last=True))
            self._stream = self._new_stream()
        self._next_timestamp = None
        return tail

    def _stamp(self, samples: Int16Array) -> AudioFrame | None:
        if not samples.shape[0] or self._next_timestamp is None:
            return None
        frame = frame_from_owned(samples, self.out_rate, self._next_timestamp)
        self._next_timestamp = frame.end_timestamp
        return frame


def resample_block(
    samples: Int16Array, in_rate: int, out_rate: int, *, quality: Quality = "HQ"
) -> Int16Array:
    """One whole buffer from ``in_rate`` to ``out_rate``; the input is left untouched."""
    if in_rate <= 0 or out_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {in_rate} -> {out_rate}")
    if in_rate == out_rate or not samples.shape[0]:
        return samples.copy()
    out: Int16Array = soxr.resample(samples, in_rate, out_rate, quality=quality)
    return out
