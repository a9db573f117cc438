"""Audio frames and the framer that cuts a PCM stream into them.

Rules:

1. Audio is mono, signed 16-bit PCM. On the wire (``bytes``) it is little-endian.
2. A frame carries its ``timestamp``: the index of its first sample on a monotonic
   sample clock at the frame's own ``sample_rate``. Time is counted in samples, never
   read from a clock, so a test can run an hour of audio in milliseconds.
3. A frame's samples are read-only: frames are shared between consumers (recorder,
   VAD, STT) and one of them scribbling on another's audio would be a silent bug.
4. The framer emits only whole frames (20 ms by default) and keeps the remainder,
   including an odd trailing byte, for the next push.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Int16Array = npt.NDArray[np.int16]

FRAME_MS = 20
_WIRE_DTYPE = np.dtype("<i2")


def samples_per_frame(sample_rate: int, frame_ms: int = FRAME_MS) -> int:
    """Samples in one frame; refuses rates that do not divide into whole frames."""
    samples, remainder = divmod(sample_rate * frame_ms, 1000)
    if sample_rate <= 0 or frame_ms <= 0 or remainder:
        raise ValueError(f"{frame_ms} ms at {sample_rate} Hz is not a whole number of samples")
    return samples


def as_pcm(data: bytes | bytearray | memoryview | Int16Array) -> Int16Array:
    """View ``data`` as a 1-D int16 array (bytes are little-endian PCM)."""
    if isinstance(data, bytes | bytearray | memoryview):
        if len(data) % 2:
            raise ValueError("PCM bytes must have an even length")
        return np.frombuffer(data, dtype=_WIRE_DTYPE).astype(np.int16, copy=False)
    array = np.asarray(data)
    if array.dtype != np.int16 or array.ndim != 1:
        raise ValueError(f"PCM must be a 1-D int16 array, got {array.dtype} {array.shape}")
    return array


@dataclass(frozen=True, slots=True, eq=False)
class AudioFrame:
    """A short run of mono int16 PCM at ``sample_rate``, starting at sample ``timestamp``.

    Equality is identity: comparing sample arrays element-wise is never what ``==``
    on a frame should mean; compare ``frame.samples`` explicitly.
    """

    samples: Int16Array
    sample_rate: int
    timestamp: int

    def __post_init__(self) -> None:
        samples = as_pcm(self.samples)
        if not _is_frozen(samples):
            # The caller may still hold (and later change) this buffer: take a private copy.
            samples = samples.copy()
            samples.flags.writeable = False
        object.__setattr__(self, "samples", samples)
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")

    @classmethod
    def from_bytes(cls, data: bytes, sample_rate: int, timestamp: int) -> AudioFrame:
        return cls(as_pcm(data), sample_rate, timestamp)

    @classmethod
    def silence(cls, num_samples: int, sample_rate: int, timestamp: int) -> AudioFrame:
        return cls(_readonly(np.zeros(num_samples, dtype=np.int16)), sample_rate, timestamp)

    def to_bytes(self) -> bytes:
        return self.samples.astype(_WIRE_DTYPE, copy=False).tobytes()

    @property
    def num_samples(self) -> int:
        return int(self.samples.shape[0])

    @property
    def end_timestamp(self) -> int:
        """The timestamp one past the last sample (where the next frame should start)."""
        return self.timestamp + self.num_samples

    @property
    def duration_ms(self) -> float:
        return 1000.0 * self.num_samples / self.sample_rate


def _readonly(samples: Int16Array) -> Int16Array:
    samples.flags.writeable = False
    return samples


def _is_frozen(array: npt.NDArray[np.generic]) -> bool:
    """True if no one can change ``array``'s memory: read-only all the way to its owner."""
    base: object = array
    while isinstance(base, np.ndarray):
        if base.flags.writeable:
            return False
        base = base.base
    return base is None or isinstance(base, bytes)


def frame_from_owned(samples: Int16Array, sample_rate: int, timestamp: int) -> AudioFrame:
    """Build a frame from a fresh array nobody else holds, without the defensive copy."""
    return AudioFrame(_readonly(samples), sample_rate, timestamp)


class Framer:
    """Cuts an arbitrary PCM stream into exact ``frame_ms`` frames.

    ``push`` returns the whole frames now available; the remainder waits for the next
    push. ``flush`` pads the remainder with silence into one last frame.
    """

    def __init__(self, sample_rate: int, frame_ms: int = FRAME_MS, start_timestamp: int = 0):
        self.sample_rate = sample_rate
        self.frame_samples = samples_per_frame(sample_rate, frame_ms)
        self._next_timestamp = start_timestamp
        self._pending = bytearray()

    @property
    def pending_samples(self) -> int:
        return len(self._pending) // 2

    def push(self, pcm: bytes | bytearray | memoryview | Int16Array) -> list[AudioFrame]:
        if isinstance(pcm, bytes | bytearray | memoryview):
            self._pending += pcm
        else:
            self._pending += as_pcm(pcm).astype(_WIRE_DTYPE, copy=False).tobytes()
        frame_bytes = 2 * self.frame_samples
        whole = len(self._pending) // frame_bytes
        if not whole:
            return []
        cut = whole * frame_bytes
        # astype copies, so the frames do not alias the bytearray we are about to trim.
        block = np.frombuffer(self._pending, dtype=_WIRE_DTYPE, count=cut // 2).astype(np.int16)
        del self._pending[:cut]
        rows = _readonly(block).reshape(whole, self.frame_samples)
        frames = [
            AudioFrame(row, self.sample_rate, self._next_timestamp + i * self.frame_samples)
            for i, row in enumerate(rows)
        ]
        self._next_timestamp += whole * self.frame_samples
        return frames

    def flush(self) -> AudioFrame | None:
        """The remainder padded with silence to a whole frame, or None if there is none.

        An odd trailing byte (half a sample) is dropped.
        """
        remainder = len(self._pending) // 2
        if not remainder:
            self._pending.clear()
            return None
        samples = np.zeros(self.frame_samples, dtype=np.int16)
        samples[:remainder] = np.frombuffer(self._pending, dtype=_WIRE_DTYPE, count=remainder)
        self._pending.clear()
        frame = frame_from_owned(samples, self.sample_rate, self._next_timestamp)
        self._next_timestamp += self.frame_samples
        return frame
