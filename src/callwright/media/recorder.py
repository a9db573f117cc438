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

Audio is copied into one-second int16 blocks per side as frames arrive: a few objects
per second, not one per frame, so a long call adds nothing for the garbage collector to
walk. Without a spill file everything stays in memory (1.9 MB per minute of call at
8 kHz, both sides). With ``spill`` (an open binary file, e.g. a temporary file), blocks
older than ``keep_seconds`` behind the newest move to the file, so a live call holds a
few seconds of audio whatever its length; a late frame for a block already moved is
written into the file. ``render`` reads the file back; ``write`` and ``stereo_wav``
block, so an asyncio caller runs them in a worker thread. Moving a one-second block is
one 16 KB write to the page cache per side per second.
"""

from __future__ import annotations

import io
import wave
from os import PathLike
from typing import BinaryIO, Literal

import numpy as np
import numpy.typing as npt

from callwright.media.frames import AudioFrame, Int16Array

Side = Literal["caller", "agent"]
_SIDES: tuple[Side, Side] = ("caller", "agent")


class CallRecorder:
    def __init__(
        self, sample_rate: int = 8000, *, spill: BinaryIO | None = None, keep_seconds: int = 4
    ):
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        self.sample_rate = sample_rate
        self._block = sample_rate  # samples per block: one second
        # side -> block index (timestamp // block) -> that second of audio
        self._blocks: dict[Side, dict[int, Int16Array]] = {side: {} for side in _SIDES}
        self._start: int | None = None
        self._end: int | None = None
        self._spill = spill
        self._keep = max(1, keep_seconds)
        self._spilled: dict[Side, set[int]] = {side: set() for side in _SIDES}

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
                block = blocks[index] = (
                    self._read_spilled(side, index)
                    if index in self._spilled[side]
                    else np.zeros(size, dtype=np.int16)
                )
            take = min(size - offset, end - at)
            block[offset : offset + take] = samples[done : done + take]
            at += take
            done += take
        if self._spill is not None and len(blocks) > self._keep:
            self._spill_old(side)

    # -- spilling ------------------------------------------------------------------------
    def _offset(self, side: Side, index: int) -> int:
        # Both sides interleave by block in one file: block i of side s at (2i + s).
        return (2 * index + _SIDES.index(side)) * self._block * 2

    def _spill_old(self, side: Side) -> None:
        assert self._spill is not None
        blocks = self._blocks[side]
        newest = max(blocks)
        for index in [i for i in blocks if i <= newest - self._keep]:
            self._spill.seek(self._offset(side, index))
            self._spill.write(blocks.pop(index).astype("<i2", copy=False).tobytes())
            self._spilled[side].add(index)

    def _read_spilled(self, side: Side, index: int) -> Int16Array:
        assert self._spill is not None
        self._spill.seek(self._offset(side, index))
        raw = self._spill.read(self._block * 2)
        block: Int16Array = np.frombuffer(raw, dtype="<i2").astype(np.int16)
        self._spilled[side].discard(index)
        return block

    def _all_blocks(self, side: Side) -> dict[int, Int16Array]:
        found = dict(self._blocks[side])
        if self._spill is not None:
            for index in self._spilled[side]:
                self._spill.seek(self._offset(side, index))
                raw = self._spill.read(self._block * 2)
                found[index] = np.frombuffer(raw, dtype="<i2").astype(np.int16)
        return found

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
            for index, block in self._all_blocks(side).items():
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
