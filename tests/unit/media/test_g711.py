"""G.711 against a scalar oracle written straight from the ITU-T G.191 bitwise algorithm."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callwright.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

# --- oracle: one sample at a time, the way the reference C reads ------------------------


def ref_alaw_compress(x: int) -> int:
    ix = (~x) >> 4 if x < 0 else x >> 4
    if ix > 15:
        iexp = 1
        while ix > 16 + 15:
            ix >>= 1
            iexp += 1
        ix -= 16
        ix += iexp << 4
    if x >= 0:
        ix |= 0x80
    return ix ^ 0x55


def ref_alaw_expand(code: int) -> int:
    ix = (code ^ 0x55) & 0x7F
    iexp = ix >> 4
    mant = ix & 0x0F
    if iexp > 0:
        mant += 16
    mant = (mant << 4) + 0x08
    if iexp > 1:
        mant <<= iexp - 1
    return mant if code > 127 else -mant


def ref_ulaw_compress(x: int) -> int:
    absno = ((~x) >> 2) + 33 if x < 0 else (x >> 2) + 33
    absno = min(absno, 0x1FFF)
    i = absno >> 6
    segno = 1
    while i != 0:
        segno += 1
        i >>= 1
    high = 0x08 - segno
    low = 0x0F - ((absno >> segno) & 0x0F)
    code = (high << 4) | low
    if x >= 0:
        code |= 0x80
    return code


def ref_ulaw_expand(code: int) -> int:
    sign = -1 if code < 0x80 else 1
    mantissa = ~code
    exponent = (mantissa >> 4) & 0x07
    segment = exponent + 1
    mantissa &= 0x0F
    step = 4 << segment
    return sign * ((0x80 << exponent) + step * mantissa + step // 2 - 4 * 33)


ALL_CODES = np.arange(256, dtype=np.uint8)
ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)

LAWS = [
    pytest.param(ulaw_encode, ulaw_decode, ref_ulaw_compress, ref_ulaw_expand, id="ulaw"),
    pytest.param(alaw_encode, alaw_decode, ref_alaw_compress, ref_alaw_expand, id="alaw"),
]


@pytest.mark.parametrize(("encode", "decode", "ref_encode", "ref_decode"), LAWS)
def test_decode_table_matches_reference_for_all_256_codes(encode, decode, ref_encode, ref_decode):
    expected = np.array([ref_decode(c) for c in range(256)], dtype=np.int16)
    decoded = decode(ALL_CODES)
    assert decoded.dtype == np.int16
    np.testing.assert_array_equal(decoded, expected)


@pytest.mark.parametrize(("encode", "decode", "ref_encode", "ref_decode"), LAWS)
def test_encode_matches_reference_for_all_65536_samples(encode, decode, ref_encode, ref_decode):
    expected = np.array([ref_encode(int(x)) for x in ALL_SAMPLES], dtype=np.uint8)
    encoded = encode(ALL_SAMPLES)
    assert encoded.dtype == np.uint8
    np.testing.assert_array_equal(encoded, expected)


@pytest.mark.parametrize(("encode", "decode", "ref_encode", "ref_decode"), LAWS)
def test_every_code_survives_decode_then_encode(encode, decode, ref_encode, ref_decode):
    # Except mu-law's "negative zero" 0x7F, which decodes to 0 and re-encodes as 0xFF.
    round_trip = encode(decode(ALL_CODES))
    differs = np.flatnonzero(round_trip != ALL_CODES)
    assert differs.tolist() == ([0x7F] if encode is ulaw_encode else [])


@pytest.mark.parametrize(("encode", "decode", "ref_encode", "ref_decode"), LAWS)
def test_encode_is_monotonic_in_the_decoded_value(encode, decode, ref_encode, ref_decode):
    decoded = decode(encode(ALL_SAMPLES)).astype(np.int32)
    assert np.all(np.diff(decoded) >= 0)
    # 8 bits of code: at most 255 distinct levels beyond the lowest.
    assert len(np.unique(decoded)) <= 256


@pytest.mark.parametrize(
    ("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)]
)
def test_round_trip_error_is_logarithmic(encode, decode):
    samples = ALL_SAMPLES.astype(np.int32)
    error = np.abs(decode(encode(ALL_SAMPLES)).astype(np.int32) - samples)
    # Below the clip level the error is half a step, and a step is at most 1/8 of the
    # level: about 1/16 of the sample, never less than the smallest step.
    inside = np.abs(samples) < 32000
    assert error[inside].max() <= 512
    assert np.all(error[inside] <= np.maximum(np.abs(samples[inside]) >> 4, 16))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-32768, 32767), max_size=400))
def test_bytes_and_arrays_give_the_same_codes(values):
    pcm = np.array(values, dtype=np.int16)
    as_bytes = pcm.astype("<i2").tobytes()
    np.testing.assert_array_equal(ulaw_encode(as_bytes), ulaw_encode(pcm))
    np.testing.assert_array_equal(alaw_encode(as_bytes), alaw_encode(pcm))
    codes = ulaw_encode(pcm)
    np.testing.assert_array_equal(ulaw_decode(codes.tobytes()), ulaw_decode(codes))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-32768, 32767), min_size=1, max_size=200))
def test_decode_encode_decode_is_stable(values):
    pcm = np.array(values, dtype=np.int16)
    for encode, decode in ((ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)):
        once = decode(encode(pcm))
        np.testing.assert_array_equal(decode(encode(once)), once)


def test_known_values():
    # Silence: mu-law 0xFF, A-law 0xD5 (the alternate-bit-inverted +0).
    assert ulaw_encode(np.zeros(1, np.int16)).tolist() == [0xFF]
    assert alaw_encode(np.zeros(1, np.int16)).tolist() == [0xD5]
    assert ulaw_decode(bytes([0x00, 0x80])).tolist() == [-32124, 32124]
    assert alaw_decode(bytes([0x2A, 0xAA])).tolist() == [-32256, 32256]


def test_non_contiguous_input_is_encoded_correctly():
    pcm = np.arange(-3000, 3000, 7, dtype=np.int16)
    strided = np.repeat(pcm, 2)[::2]
    np.testing.assert_array_equal(ulaw_encode(strided), ulaw_encode(pcm.copy()))


def test_rejects_wrong_dtypes_and_odd_byte_counts():
    with pytest.raises(ValueError, match="int16"):
        ulaw_encode(np.zeros(4, dtype=np.int32))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="even length"):
        alaw_encode(b"\x00\x01\x02")
    with pytest.raises(ValueError, match="uint8"):
        ulaw_decode(np.zeros(4, dtype=np.int16))  # type: ignore[arg-type]
