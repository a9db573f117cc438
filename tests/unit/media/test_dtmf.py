from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callwright.media.dtmf import (
    COLUMNS_HZ,
    DIGITS,
    ROWS_HZ,
    DtmfConfig,
    DtmfDetector,
    generate_dtmf,
    goertzel_basis,
)
from callwright.media.frames import AudioFrame, Framer

RATE = 8000


def detect(samples: np.ndarray, config: DtmfConfig | None = None) -> list[tuple[str, int]]:
    detector = DtmfDetector(RATE, config)
    framer = Framer(RATE)
    events = []
    for frame in framer.push(samples):
        events += detector.process(frame)
    tail = framer.flush()
    if tail is not None:
        events += detector.process(tail)
    return [(e.digit, e.timestamp) for e in events]


def digits_of(samples: np.ndarray, config: DtmfConfig | None = None) -> str:
    return "".join(d for d, _ in detect(samples, config))


def with_noise(samples: np.ndarray, rms: float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, rms, len(samples))
    return np.clip(samples + noise, -32768, 32767).astype(np.int16)


def two_tones(row_hz: float, col_hz: float, row_dbfs: float, col_dbfs: float, ms: float):
    t = np.arange(int(RATE * ms / 1000)) / RATE
    row = 32768 * 10 ** (row_dbfs / 20) * np.sin(2 * np.pi * row_hz * t)
    col = 32768 * 10 ** (col_dbfs / 20) * np.sin(2 * np.pi * col_hz * t)
    silence = np.zeros(800)
    return np.concatenate([silence, row + col, silence]).astype(np.int16)


def speech_like(seed: int, seconds: float = 2.0) -> np.ndarray:
    """Voiced speech caricature: a gliding harmonic series shaped by moving formants."""
    rng = np.random.default_rng(seed)
    vowels = [(730, 1090), (270, 2290), (300, 870), (530, 1840), (570, 840), (640, 1190)]
    n = int(RATE * seconds)
    t = np.arange(n) / RATE
    f0 = rng.uniform(90, 230) * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    chosen = np.array([vowels[i] for i in rng.integers(0, len(vowels), int(seconds / 0.15) + 2)])
    position = np.arange(n) / (0.15 * RATE)
    formants = [np.interp(position, np.arange(len(chosen)), chosen[:, j]) for j in range(2)]
    signal = np.zeros(n)
    for k in range(1, 40):
        fk = k * f0
        gain = 1.0 / k
        for formant, bandwidth in zip(formants, (90.0, 110.0), strict=True):
            gain = gain / np.sqrt(1 + ((fk - formant) / (bandwidth / 2)) ** 2)
        signal += np.where(fk < 3800, gain, 0.0) * np.sin(k * phase)
    syllables = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t), 0, None) ** 0.5
    signal *= syllables
    return (signal / np.abs(signal).max() * 20000).astype(np.int16)


@settings(max_examples=120, deadline=None)
@given(
    digits=st.text(alphabet=DIGITS, min_size=1, max_size=8),
    tone_ms=st.integers(55, 150),
    gap_ms=st.integers(70, 150),
    level=st.floats(-25.0, -5.0),
    snr_db=st.floats(15.0, 40.0),
    lead=st.integers(0, 400),
    seed=st.integers(0, 2**16),
)
def test_generated_sequences_are_detected_through_noise(
    digits, tone_ms, gap_ms, level, snr_db, lead, seed
):
    tones = generate_dtmf(digits, tone_ms=tone_ms, gap_ms=gap_ms, level_dbfs=level)
    signal = np.concatenate([np.zeros(lead, np.int16), tones])
    tone_rms = 32768 * 10 ** (level / 20)  # two tones of amplitude A: rms A
    noisy = with_noise(signal, tone_rms / 10 ** (snr_db / 20), seed)
    events = detect(noisy)
    assert "".join(d for d, _ in events) == digits
    # Each press is stamped within one analysis window of its tone's true start.
    period = (tone_ms + gap_ms) * RATE // 1000
    for n, (_, timestamp) in enumerate(events):
        assert abs(timestamp - (lead + n * period)) <= 205


def test_all_sixteen_keys_at_the_shortest_reliable_length():
    assert digits_of(generate_dtmf(DIGITS, tone_ms=55, gap_ms=60)) == DIGITS


def test_a_long_press_is_reported_once():
    assert digits_of(generate_dtmf("5", tone_ms=3000)) == "5"


def test_a_short_dropout_inside_a_press_does_not_split_it():
    press = generate_dtmf("7", tone_ms=400, gap_ms=0)
    press[1600:1680] = 0  # 10 ms of silence in the middle
    assert digits_of(np.concatenate([press, np.zeros(800, np.int16)])) == "7"


def test_the_same_key_pressed_twice_is_two_presses():
    assert digits_of(generate_dtmf("55", tone_ms=80, gap_ms=80)) == "55"


def test_a_tone_shorter_than_the_minimum_is_ignored():
    assert digits_of(generate_dtmf("1", tone_ms=25, gap_ms=100)) == ""
    assert digits_of(generate_dtmf("1", tone_ms=25), DtmfConfig(min_duration_ms=20)) == "1"


def test_tones_below_the_energy_floor_are_ignored():
    assert digits_of(generate_dtmf("8", level_dbfs=-50)) == ""
    assert digits_of(generate_dtmf("8", level_dbfs=-35)) == "8"


@pytest.mark.parametrize(
    ("row_dbfs", "col_dbfs", "accepted"),
    [
        (-12.0, -6.0, True),  # column 6 dB louder: normal twist, allowed
        (-16.0, -6.0, False),  # column 10 dB louder
        (-6.0, -10.0, True),  # row 4 dB louder: reverse twist, allowed
        (-6.0, -14.0, False),  # row 8 dB louder
    ],
)
def test_twist_limits(row_dbfs, col_dbfs, accepted):
    signal = two_tones(ROWS_HZ[1], COLUMNS_HZ[2], row_dbfs, col_dbfs, 100)
    assert digits_of(signal) == ("6" if accepted else "")


def test_a_single_tone_is_not_a_digit():
    t = np.arange(8000) / RATE
    for freq in (*ROWS_HZ, *COLUMNS_HZ):
        assert digits_of((10000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)) == ""


def test_noise_is_not_a_digit():
    assert digits_of(with_noise(np.zeros(5 * RATE), 3000, seed=1)) == ""


@pytest.mark.parametrize("seed", range(30))
def test_speech_like_audio_is_not_a_digit(seed):
    assert digits_of(speech_like(seed)) == ""


def test_digits_survive_speech_between_them():
    speech = speech_like(3, seconds=1.0)
    parts = [speech, generate_dtmf("42", tone_ms=80, gap_ms=80), speech]
    assert digits_of(np.concatenate(parts)) == "42"


def test_the_matrix_form_equals_the_goertzel_recurrence():
    x = np.random.default_rng(0).normal(0, 1000, 205)
    freqs = np.array([*ROWS_HZ, *COLUMNS_HZ])
    matrix_power = np.abs(goertzel_basis(freqs, 205, RATE) @ x) ** 2
    for f, expected in zip(freqs, matrix_power, strict=True):
        coeff = 2 * np.cos(2 * np.pi * f / RATE)
        s1 = s2 = 0.0
        for sample in x:
            s1, s2 = sample + coeff * s1 - s2, s1
        assert s1 * s1 + s2 * s2 - coeff * s1 * s2 == pytest.approx(expected, rel=1e-9)


def test_generator_lengths_and_levels():
    signal = generate_dtmf("12", tone_ms=100, gap_ms=50, level_dbfs=-6)
    assert signal.dtype == np.int16
    assert len(signal) == 2 * (800 + 400)
    assert not signal[800:1200].any()
    peak = 2 * 32768 * 10 ** (-6 / 20)
    assert 0.9 * peak <= np.abs(signal[:800].astype(int)).max() <= peak + 1
    assert len(generate_dtmf("")) == 0


def test_generator_rejects_unknown_digits():
    with pytest.raises(ValueError, match="not a DTMF digit"):
        generate_dtmf("1E")


def test_detector_rejects_frames_at_another_rate():
    with pytest.raises(ValueError, match="16000 Hz"):
        DtmfDetector(RATE).process(AudioFrame.silence(320, 16000, 0))


def test_lowercase_letters_generate_the_same_keys():
    np.testing.assert_array_equal(generate_dtmf("abcd"), generate_dtmf("ABCD"))
