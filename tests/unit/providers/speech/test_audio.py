from __future__ import annotations

import io
import struct
import wave

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from callwright.providers.speech._audio import (
    PcmAssembler,
    WavStreamDecoder,
    pcm_to_wav,
    resample,
)
from callwright.providers.speech.base import SpeechServiceError

SAMPLES = np.array([0, 1, -1, 32767, -32768, 1234, -4321, 7], dtype=np.int16)


def cut(data: bytes, points: list[int]) -> list[bytes]:
    edges = sorted({0, len(data), *(p % (len(data) + 1) for p in points)})
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_pcm_bytes_cut_anywhere_give_back_every_sample(points: list[int]) -> None:
    data = SAMPLES.astype("<i2").tobytes()
    assembler = PcmAssembler()
    out = np.concatenate([assembler.feed(piece) for piece in cut(data, points)] + [SAMPLES[:0]])
    assert np.array_equal(out, SAMPLES)
    assert assembler.leftover == 0


def test_a_truncated_sample_is_held_back() -> None:
    assembler = PcmAssembler()
    assert assembler.feed(b"\x01\x00\x02").tolist() == [1]
    assert assembler.leftover == 1


def streamed_wav(samples: np.ndarray, rate: int, extra_chunk: bool = True) -> bytes:
    """A WAV as streaming servers send it: an extra chunk and an unknown data size."""
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    parts = [b"WAVE", b"fmt ", struct.pack("<I", len(fmt)), fmt]
    if extra_chunk:
        parts += [b"LIST", struct.pack("<I", 3), b"abc\x00"]  # odd size: padded
    parts += [b"data", struct.pack("<I", 0xFFFFFFFF), samples.astype("<i2").tobytes()]
    body = b"".join(parts)
    return b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + body


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=12), st.booleans())
def test_a_streamed_wav_cut_anywhere_decodes_whole(points: list[int], extra: bool) -> None:
    decoder = WavStreamDecoder()
    pieces = cut(streamed_wav(SAMPLES, 24000, extra), points)
    out = np.concatenate([decoder.feed(piece) for piece in pieces])
    assert np.array_equal(out, SAMPLES)
    assert decoder.sample_rate == 24000


def test_our_own_wav_decodes_with_the_stdlib_and_with_the_stream_decoder() -> None:
    data = pcm_to_wav(SAMPLES, 8000)
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        assert np.array_equal(np.frombuffer(wav.readframes(100), "<i2"), SAMPLES)
    assert np.array_equal(WavStreamDecoder().feed(data), SAMPLES)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"RIFF\x00\x00\x00\x00MP3 ....", "not a WAV"),
        (streamed_wav(SAMPLES, 8000).replace(b"\x01\x00\x01\x00", b"\x01\x00\x02\x00", 1), "mono"),
    ],
)
def test_wavs_we_cannot_play_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(SpeechServiceError, match=message):
        WavStreamDecoder().feed(data)


def test_resample_keeps_the_length_ratio() -> None:
    tone = (np.sin(np.arange(8000) * 2 * np.pi * 440 / 8000) * 8000).astype(np.int16)
    assert resample(tone, 8000, 16000).shape[0] == 16000
    assert resample(tone, 8000, 8000) is tone
