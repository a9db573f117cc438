"""Call recording: caller and agent audio aligned on one sample clock.

Rules:

1. Both sides are stamped on the same clock (the call's sample counter at
   ``sample_rate``); the recorder places every frame at its timestamp, so order of
   arrival does not matter and gaps become silence.
2. The recording starts at the earliest timestamp either side delivered, so a side
   that starts late is preceded by silence rather than shifted.
3. If two frames of one side overlap, the later-added one wins: a resent frame
   replaces, never doubles, the audio.
4. The stereo file has the caller on the left and the agent on the right; the mono
   file is their sum, saturated to int16.

Audio is kept in memory until ``write``, copied into one-second int16 blocks per side
as frames arrive: 1.9 MB per minute of call at 8 kHz (both sides) and a few objects per
second, not one per frame, so a long call adds nothing for the garbage collector to
walk. ``render`` is pure; ``write`` is the package's only file I/O and blocks, so an
asyncio caller runs it in a worker thread.
"""

from __future__ import annotations

import io
import wave
from os import PathLike
from typing import Literal

import numpy as np
import numpy.typing as npt

from callwright.media.frames import AudioFrame, Int16Array

Side = Literal["caller", "agent"]
_SIDES: tuple[Side, Side] = ("caller", "agent")


class CallRecorder:
    def __init__(self, sample_rate: int = 8000):
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        self.sample_rate = sample_rate
        self._block = sample_rate  # samples per block: one second
        # side -> block index (timestamp // block) -> that second of audio
        self._blocks: dict[Side, dict[int, Int16Array]] = {side: {} for side in _SIDES}
        self._start: int | None = None
        self._end: int | None = None

    def add(self, side: Side, frame: AudioFrame) -> None:
        if frame.sample_rate != self.sample_rate:
            raise ValueError(
                f"{side} frame is {frame.sample_rate} Hz, recorder is {self.sample_rate} Hz"
            )
        blocks, size = self._blocks[side], self._block
        samples, at = frame.samples, frame.timestamp
        end = at + samples.shape[0]
        self._start = at if self._start is None else min(self._start, at)
        self._end = end if self._end is None else max(self._end, end)
        done = 0
        while at < end:
            index, offset = divmod(at, size)
            block = blocks.get(index)
            if block is None:
                block = blocks[index] = np.zeros(size, dtype=np.int16)
            take = min(size - offset, end - at)
            block[offset : offset + take] = samples[done : done + take]
            at += take
            done += take

    def add_caller(self, frame: AudioFrame) -> None:
        self.add("caller", frame)

    def add_agent(self, frame: AudioFrame) -> None:
        self.add("agent", frame)

    @property
    def start_timestamp(self) -> int | None:
        return self._start

    @property
    def num_samples(self) -> int:
        """Length of the recording in samples, from the first start to the last end."""
        if self._start is None or self._end is None:
            return 0
        return self._end - self._start

    def render(self) -> tuple[npt.NDArray[np.int16], Int16Array]:
        """The ``(samples, 2)`` stereo array (caller, agent) and the mixed mono array."""
        start, length, size = self._start or 0, self.num_samples, self._block
        stereo = np.zeros((length, 2), dtype=np.int16)
        for channel, side in enumerate(_SIDES):
            for index, block in self._blocks[side].items():
                lo = max(index * size, start)
                hi = min((index + 1) * size, start + length)
                if lo < hi:
                    stereo[lo - start : hi - start, channel] = block[
                        lo - index * size : hi - index * size
                    ]
        mixed = stereo.astype(np.int32).sum(axis=1)
        mono: Int16Array = np.clip(mixed, -32768, 32767).astype(np.int16)
        return stereo, mono

    def write(
        self,
        stereo_path: str | PathLike[str],
        mono_path: str | PathLike[str] | None = None,
    ) -> None:
        """Write the 2-channel WAV and, if a path is given, the mono mix."""
        stereo, mono = self.render()
        _write_wav(stereo_path, stereo, channels=2, sample_rate=self.sample_rate)
        if mono_path is not None:
            _write_wav(mono_path, mono, channels=1, sample_rate=self.sample_rate)

    def stereo_wav(self) -> bytes:
        """The 2-channel WAV file as bytes (caller left, agent right)."""
        stereo, _ = self.render()
        return wav_bytes(stereo, channels=2, sample_rate=self.sample_rate)


def wav_bytes(samples: npt.NDArray[np.int16], channels: int, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    _write_wav(buffer, samples, channels, sample_rate)
    return buffer.getvalue()


def _write_wav(
    path: str | PathLike[str] | io.BytesIO,
    samples: npt.NDArray[np.int16],
    channels: int,
    sample_rate: int,
) -> None:
    target = path if isinstance(path, io.BytesIO) else str(path)
    with wave.open(target, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        # WAV is little-endian, interleaved by frame: C order of (samples, channels).
        out.writeframes(samples.astype("<i2", copy=False).tobytes())
