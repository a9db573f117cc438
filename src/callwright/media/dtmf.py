"""In-band DTMF: a Goertzel detector and a tone generator.

A key press is two simultaneous sines, one from the low (row) group and one from the
high (column) group. The detector looks at sliding windows of ``WINDOW_MS`` (205
samples at 8 kHz, the classic size whose bins fit the DTMF grid) every ``HOP_MS`` and
asks, per window:

1. Energy: both tones are above ``min_tone_dbfs``.
2. Dominance: the strongest row beats every other row, and the strongest column
   every other column, by ``group_margin_db``.
3. Twist: the level difference between the two tones stays within ``max_twist_db``
   (column louder) and ``max_reverse_twist_db`` (row louder), as telephone lines tilt.
4. Purity: the two tones carry at least ``min_tone_share`` of the window's energy, and
   the column tone's second harmonic stays ``harmonic_margin_db`` below it. Voice has
   harmonics and spreads its energy; a tone does neither. (Row harmonics are not
   checked: 2 x 697 Hz and 2 x 770 Hz sit too close to the 1336 and 1477 Hz columns to
   tell apart in one window.)

A press is reported once, when the same digit has passed enough consecutive windows to
fill ``min_duration_ms``. It is released after ``release_windows`` consecutive windows
without it (or with another digit), so a long press never reports twice and a short
dropout inside a press does not split it. A window that is partly silence fails the
purity check, so a gap of G ms fails about (G + 10) / 10 windows: the default of 4
bridges 10 ms dropouts and still separates presses 40 ms apart (ITU-T Q.24's limits).

Goertzel's recurrence evaluates one DFT term at an arbitrary frequency. Over a fixed
window that term is a dot product with a complex exponential, so all twelve terms
(8 tones, 4 harmonics) for a window come from one matrix product: the same powers the
recurrence gives (``s1^2 + s2^2 - coeff*s1*s2``), without a Python loop per sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from callwright.media.frames import AudioFrame, Int16Array

ROWS_HZ = (697.0, 770.0, 852.0, 941.0)
COLUMNS_HZ = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = ("123A", "456B", "789C", "*0#D")
DIGITS = "".join(KEYPAD)
WINDOW_MS = 25.625  # 205 samples at 8 kHz
HOP_MS = 10.0

_FULL_SCALE = 32768.0


@dataclass(frozen=True, slots=True)
class DtmfConfig:
    min_tone_dbfs: float = -40.0
    group_margin_db: float = 8.0
    max_twist_db: float = 8.0
    max_reverse_twist_db: float = 6.0
    min_tone_share: float = 0.7
    harmonic_margin_db: float = 15.0
    min_duration_ms: float = 40.0
    release_windows: int = 4


@dataclass(frozen=True, slots=True)
class DtmfDigit:
    """A detected press: the key and the sample timestamp where its first window began."""

    digit: str
    timestamp: int


def goertzel_basis(
    frequencies: npt.ArrayLike, window: int, sample_rate: int
) -> npt.NDArray[np.complex128]:
    """Rows of ``exp(-2j*pi*f*n/fs)``: ``basis @ x`` is each frequency's DFT term over x."""
    n = np.arange(window)
    freqs = np.asarray(frequencies, dtype=np.float64)[:, None]
    basis: npt.NDArray[np.complex128] = np.exp(-2j * np.pi * freqs * n / sample_rate)
    return basis


class DtmfDetector:
    def __init__(self, sample_rate: int = 8000, config: DtmfConfig | None = None):
        self.sample_rate = sample_rate
        self.config = cfg = config or DtmfConfig()
        self.window = round(WINDOW_MS * sample_rate / 1000)
        self.hop = round(HOP_MS * sample_rate / 1000)
        frequencies = ROWS_HZ + COLUMNS_HZ + tuple(2 * f for f in COLUMNS_HZ)
        self._basis = goertzel_basis(frequencies, self.window, sample_rate)
        # A full-scale sine's DFT term has magnitude N/2: scale powers to "tone amplitude^2".
        self._power_scale = (2.0 / self.window) ** 2
        self._min_power = (_FULL_SCALE * 10 ** (cfg.min_tone_dbfs / 20)) ** 2
        self._margin = 10 ** (cfg.group_margin_db / 10)
        self._twist = 10 ** (cfg.max_twist_db / 10)
        self._reverse_twist = 10 ** (cfg.max_reverse_twist_db / 10)
        self._harmonic = 10 ** (cfg.harmonic_margin_db / 10)
        window_ms = 1000 * self.window / sample_rate
        hop_ms = 1000 * self.hop / sample_rate
        self._needed = 1 + max(0, math.ceil((cfg.min_duration_ms - window_ms) / hop_ms - 1e-9))
        self._buffer = np.zeros(0, dtype=np.float64)
        self._buffer_start: int | None = None  # timestamp of _buffer[0]
        self._candidate: str | None = None
        self._candidate_start = 0
        self._run = 0
        self._pressed: str | None = None
        self._misses = 0

    def process(self, frame: AudioFrame) -> list[DtmfDigit]:
        """Feed a frame; returns the presses confirmed by it (rarely more than one).

        Frames are taken as contiguous: event timestamps count samples from the first
        frame's timestamp.
        """
        if frame.sample_rate != self.sample_rate:
            raise ValueError(
                f"frame is {frame.sample_rate} Hz, detector expects {self.sample_rate}"
            )
        if self._buffer_start is None:
            self._buffer_start = frame.timestamp
        self._buffer = np.concatenate([self._buffer, frame.samples.astype(np.float64)])
        count = 1 + (self._buffer.shape[0] - self.window) // self.hop
        if count <= 0:
            return []
        starts = np.arange(count) * self.hop
        windows = sliding_window_view(self._buffer, self.window)[:: self.hop][:count]
        digits = self._classify(windows)
        events = []
        for start, digit in zip(starts, digits, strict=True):
            event = self._step(digit, self._buffer_start + int(start))
            if event is not None:
                events.append(event)
        consumed = count * self.hop
        self._buffer = self._buffer[consumed:]
        self._buffer_start += consumed
        return events

    def _classify(self, windows: npt.NDArray[np.float64]) -> list[str | None]:
        """The digit each window holds, or None."""
        power = np.abs(windows @ self._basis.T) ** 2 * self._power_scale
        rows, cols, harmonics = power[:, :4], power[:, 4:8], power[:, 8:]
        row = np.argmax(rows, axis=1)
        col = np.argmax(cols, axis=1)
        index = np.arange(windows.shape[0])
        row_power = rows[index, row]
        col_power = cols[index, col]
        rows_rest = np.where(np.arange(4) == row[:, None], 0.0, rows).max(axis=1)
        cols_rest = np.where(np.arange(4) == col[:, None], 0.0, cols).max(axis=1)
        # Mean square of the window, in the same amplitude^2 units (a sine of A has A^2/2).
        energy = 2.0 * np.mean(windows**2, axis=1)
        ok = (
            (row_power >= self._min_power)
            & (col_power >= self._min_power)
            & (row_power >= self._margin * rows_rest)
            & (col_power >= self._margin * cols_rest)
            & (col_power <= self._twist * row_power)
            & (row_power <= self._reverse_twist * col_power)
            & (row_power + col_power >= self.config.min_tone_share * energy)
            & (harmonics[index, col] * self._harmonic <= col_power)
        )
        return [KEYPAD[r][c] if good else None for r, c, good in zip(row, col, ok, strict=True)]

    def _step(self, digit: str | None, timestamp: int) -> DtmfDigit | None:
        """Advance the press state machine by one window."""
        if digit != self._candidate:
            self._candidate = digit
            self._candidate_start = timestamp
            self._run = 0
        if digit is not None:
            self._run += 1
        if self._pressed is not None:
            if digit == self._pressed:
                self._misses = 0
                return None
            self._misses += 1
            if self._misses < self.config.release_windows:
                return None
            self._pressed = None
        if digit is None or self._run < self._needed:
            return None
        self._pressed = digit
        self._misses = 0
        return DtmfDigit(digit, self._candidate_start)


def generate_dtmf(
    digits: str,
    *,
    sample_rate: int = 8000,
    tone_ms: float = 100.0,
    gap_ms: float = 100.0,
    level_dbfs: float = -10.0,
) -> Int16Array:
    """Tones for ``digits``, each followed by ``gap_ms`` of silence; each tone at ``level_dbfs``."""
    amplitude = _FULL_SCALE * 10 ** (level_dbfs / 20)
    t = np.arange(round(tone_ms * sample_rate / 1000)) / sample_rate
    gap = np.zeros(round(gap_ms * sample_rate / 1000))
    parts = []
    for digit in digits:
        row, col = _position(digit)
        low = np.sin(2 * np.pi * ROWS_HZ[row] * t)
        high = np.sin(2 * np.pi * COLUMNS_HZ[col] * t)
        parts += [amplitude * (low + high), gap]
    signal = np.concatenate(parts) if parts else np.zeros(0)
    clipped: npt.NDArray[np.float64] = np.clip(np.round(signal), -32768, 32767)
    return clipped.astype(np.int16)


def _position(digit: str) -> tuple[int, int]:
    for row, keys in enumerate(KEYPAD):
        col = keys.find(digit.upper())
        if col >= 0 and len(digit) == 1:
            return row, col
    raise ValueError(f"not a DTMF digit: {digit!r}")
