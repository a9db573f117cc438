"""G.711 mu-law (PCMU) and A-law (PCMA), bit-exact with the ITU-T G.191 reference.

Theory: both laws are piecewise-linear approximations of a logarithm. A code byte is
sign (1 bit), segment/exponent (3 bits) and mantissa (4 bits); within segment ``s`` the
step doubles relative to segment ``s - 1``. The reference (G.191 ``g711.c``) works on
16-bit samples and uses only their top bits: 13 for A-law, 14 for mu-law. Negative
samples are folded with the one's complement (``~x``), not negation, which is why
``-1`` encodes like ``0`` apart from the sign bit.

Both directions are table lookups: decoding indexes a 256-entry table by code byte,
encoding a 65536-entry table by the sample's 16-bit pattern. The tables are computed
here, vectorised, from the segment arithmetic, and built once on first use.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt

from callwright.media.frames import Int16Array, as_pcm

UInt8Array = npt.NDArray[np.uint8]
_Int32Array = npt.NDArray[np.int32]

# Bit length of 0..255: the segment search of the reference, as a table.
_BIT_LENGTH = np.array([int(i).bit_length() for i in range(256)], dtype=np.int32)


def _all_int16() -> _Int32Array:
    """Every int16 value, ordered by its unsigned 16-bit pattern (the encode table index)."""
    return np.arange(1 << 16, dtype=np.uint16).view(np.int16).astype(np.int32)


def _folded(samples: _Int32Array, drop_bits: int) -> _Int32Array:
    """Magnitude in the reference's sense: one's complement for negatives, then shifted."""
    return np.where(samples < 0, ~samples, samples) >> drop_bits


@cache
def _ulaw_encode_table() -> UInt8Array:
    samples = _all_int16()
    # 33 is the bias that makes mu-law segment edges powers of two.
    magnitude = np.minimum(_folded(samples, 2) + 33, 0x1FFF)
    segment = 1 + _BIT_LENGTH[magnitude >> 6]
    high = 8 - segment
    low = 0x0F - ((magnitude >> segment) & 0x0F)
    codes = (high << 4) | low
    signed: _Int32Array = np.where(samples >= 0, codes | 0x80, codes)
    return signed.astype(np.uint8)


@cache
def _ulaw_decode_table() -> Int16Array:
    codes = np.arange(256, dtype=np.int32)
    inverted = ~codes & 0xFF
    exponent = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    step = 4 << (exponent + 1)
    magnitude = (0x80 << exponent) + step * mantissa + step // 2 - 4 * 33
    signed: _Int32Array = np.where(codes < 0x80, -magnitude, magnitude)
    return signed.astype(np.int16)


@cache
def _alaw_encode_table() -> UInt8Array:
    samples = _all_int16()
    magnitude = _folded(samples, 4)  # 0..2047
    # Segments 0 and 1 share a step; above that the exponent is where the top bit sits.
    exponent = np.where(magnitude > 15, _BIT_LENGTH[magnitude >> 4], 0)
    mantissa = np.where(exponent > 0, (magnitude >> np.maximum(exponent - 1, 0)) - 16, magnitude)
    codes = (exponent << 4) + mantissa
    signed: _Int32Array = np.where(samples >= 0, codes | 0x80, codes)
    return (signed ^ 0x55).astype(np.uint8)


@cache
def _alaw_decode_table() -> Int16Array:
    codes = np.arange(256, dtype=np.int32)
    toggled = (codes ^ 0x55) & 0x7F
    exponent = toggled >> 4
    mantissa = toggled & 0x0F
    mantissa = np.where(exponent > 0, mantissa + 16, mantissa)
    magnitude = ((mantissa << 4) + 8) << np.maximum(exponent - 1, 0)
    signed: _Int32Array = np.where(codes > 127, magnitude, -magnitude)
    return signed.astype(np.int16)


def _as_codes(payload: bytes | bytearray | memoryview | UInt8Array) -> UInt8Array:
    if isinstance(payload, bytes | bytearray | memoryview):
        return np.frombuffer(payload, dtype=np.uint8)
    codes = np.asarray(payload)
    if codes.dtype != np.uint8 or codes.ndim != 1:
        raise ValueError(f"G.711 codes must be a 1-D uint8 array, got {codes.dtype}")
    return codes


def _as_index(pcm: bytes | bytearray | memoryview | Int16Array) -> npt.NDArray[np.uint16]:
    return as_pcm(pcm).view(np.uint16)


def ulaw_encode(pcm: bytes | bytearray | memoryview | Int16Array) -> UInt8Array:
    """Linear int16 PCM to mu-law code bytes (one per sample)."""
    return _ulaw_encode_table()[_as_index(pcm)]


def ulaw_decode(payload: bytes | bytearray | memoryview | UInt8Array) -> Int16Array:
    """Mu-law code bytes to linear int16 PCM."""
    return _ulaw_decode_table()[_as_codes(payload)]


def alaw_encode(pcm: bytes | bytearray | memoryview | Int16Array) -> UInt8Array:
    """Linear int16 PCM to A-law code bytes (one per sample)."""
    return _alaw_encode_table()[_as_index(pcm)]


def alaw_decode(payload: bytes | bytearray | memoryview | UInt8Array) -> Int16Array:
    """A-law code bytes to linear int16 PCM."""
    return _alaw_decode_table()[_as_codes(payload)]
