"""PCM plumbing shared by the speech back-ends: WAV in and out, byte streams to samples.

Network services send audio as byte streams cut anywhere, even inside a sample, and
WAV streams whose header may arrive over several reads. ``PcmAssembler`` and
``WavStreamDecoder`` turn such streams into whole int16 samples.
"""

from __future__ import annotations

import io
import struct
import wave

import numpy as np
import numpy.typing as npt
import soxr

from callwright.providers.speech.base import Int16Array, SpeechServiceError

_WIRE = np.dtype("<i2")


def check_pcm(pcm: Int16Array) -> Int16Array:
    array: Int16Array = np.asarray(pcm)
    if array.dtype != np.int16 or array.ndim != 1:
        raise ValueError(f"PCM must be a 1-D int16 array, got {array.dtype} {array.shape}")
    return array


def float_to_int16(audio: npt.NDArray[np.float32]) -> Int16Array:
    scaled = np.clip(audio, -1.0, 1.0) * np.float32(32767.0)
    return scaled.astype(np.int16)


def int16_to_float(pcm: Int16Array) -> npt.NDArray[np.float32]:
    return pcm.astype(np.float32) / 32768.0


def resample(pcm: Int16Array, in_rate: int, out_rate: int) -> Int16Array:
    """A whole buffer from ``in_rate`` to ``out_rate`` (libsoxr, high quality)."""
    if in_rate == out_rate:
        return pcm
    out: Int16Array = soxr.resample(pcm, in_rate, out_rate, quality="HQ")
    return out


def pcm_to_wav(pcm: Int16Array, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(check_pcm(pcm).astype(_WIRE, copy=False).tobytes())
    return buffer.getvalue()


class PcmAssembler:
    """Little-endian 16-bit PCM bytes, cut anywhere, to int16 arrays of whole samples."""

    def __init__(self) -> None:
        self._odd = b""

    def feed(self, data: bytes) -> Int16Array:
        data = self._odd + data
        whole = len(data) - len(data) % 2
        self._odd = data[whole:]
        return np.frombuffer(data[:whole], dtype=_WIRE).astype(np.int16)

    @property
    def leftover(self) -> int:
        """Bytes held back (0 or 1); 1 at the end of a stream means it was truncated."""
        return len(self._odd)


class WavStreamDecoder:
    """A streamed WAV file to PCM: parses the RIFF header as it arrives, then the samples.

    Streaming servers write a placeholder data size (0 or 0xFFFFFFFF) since they do not
    know the length up front, so the data chunk is read to the end of the stream.
    """

    def __init__(self) -> None:
        self._header = bytearray()
        self._pcm: PcmAssembler | None = None
        self.sample_rate: int | None = None

    def feed(self, data: bytes) -> Int16Array:
        if self._pcm is not None:
            return self._pcm.feed(data)
        self._header += data
        parsed = self._parse_header()
        if parsed is None:
            return np.zeros(0, dtype=np.int16)
        rate, data_start = parsed
        self.sample_rate = rate
        self._pcm = PcmAssembler()
        rest = bytes(self._header[data_start:])
        self._header.clear()
        return self._pcm.feed(rest)

    def _parse_header(self) -> tuple[int, int] | None:
        head = self._header
        if len(head) < 12:
            return None
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise SpeechServiceError("speech service sent audio that is not a WAV file")
        offset, rate = 12, None
        while len(head) >= offset + 8:
            chunk_id = bytes(head[offset : offset + 4])
            (size,) = struct.unpack_from("<I", head, offset + 4)
            if chunk_id == b"data":
                if rate is None:
                    raise SpeechServiceError("WAV data chunk before its fmt chunk")
                return rate, offset + 8
            body = offset + 8
            if len(head) < body + size:
                return None
            if chunk_id == b"fmt ":
                fmt, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", head, body)
                if fmt != 1 or channels != 1 or bits != 16:
                    raise SpeechServiceError(
                        f"WAV must be mono 16-bit PCM, got format {fmt}, "
                        f"{channels} channel(s), {bits} bits"
                    )
            offset = body + size + size % 2  # chunks are padded to even sizes
        return None
