"""Answering-machine detection: who picked up, and where a voicemail greeting beeps.

Fed an answered outbound call's first seconds as 20 ms frames, ``AnsweringDetector``
decides ``human``, ``voicemail`` or ``unknown`` and reports the beep that ends a
voicemail greeting. Time is the frame count; no clock is read.

Rules:

1. Each frame is a *tone*, *speech* or *silence*. Tone first: its spectrum (Hann
   window, zero-padded FFT) peaks between ``beep_low_hz`` and ``beep_high_hz``, the
   frame reaches ``beep_min_dbfs``, and at least ``beep_purity`` of its power lies
   within two of the frame's frequency resolutions of the peak. Voice spreads its
   power over harmonics and formants; a DTMF key is two tones, each holding about
   half. A tone frame is never speech.
2. Otherwise a frame is speech when the VAD probability passed with it reaches 0.5,
   or, with none, when its level reaches ``speech_dbfs``.
3. Speech goes through the ``Endpointer`` (``min_speech_ms`` to start; pauses shorter
   than ``greeting_pause_ms`` bridged), so a *greeting* is speech without a pause that
   long. Its length runs from its first frame to the current one.
4. One decision, stamped with the frame that made it:
   - ``voicemail`` / ``long-greeting``: the greeting reaches ``machine_greeting_ms``. A
     person answering says a word or two and waits; a machine reads its script on.
   - ``human`` / ``short-greeting``: a shorter greeting is followed by
     ``greeting_pause_ms`` of silence. If a tone is sounding then, the decision waits
     for it: it becomes ``voicemail`` if the tone proves to be a beep.
   - ``voicemail`` / ``beep``: a beep (rule 5) before anything else was decided; it is
     decided as soon as the tone has lasted ``beep_min_ms``.
   - ``unknown`` / ``silence``: nobody spoke within ``initial_silence_ms``;
     ``unknown`` / ``timeout``: nothing decided within ``max_ms``.
5. A beep is a run of tone frames at one pitch (each within ``beep_tolerance_hz`` of
   the run's first) that lasts ``beep_min_ms``. It is reported when the tone stops
   (first and one-past-last frame), or at ``beep_max_ms`` if it goes on. Beeps are
   reported after the decision too: whoever leaves a message waits for one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from callwright.media.frames import FRAME_MS, Int16Array, samples_per_frame
from callwright.media.vad import Endpointer, EndpointerConfig, EndpointState, SpeechEnded

AnsweredBy = Literal["human", "voicemail", "unknown"]
Reason = Literal["short-greeting", "long-greeting", "beep", "silence", "timeout"]

_FULL_SCALE_POWER = 32768.0**2


@dataclass(frozen=True, slots=True)
class AnsweringConfig:
    sample_rate: int = 8000
    frame_ms: int = FRAME_MS
    speech_dbfs: float = -40.0  # level that counts as speech when no VAD score is given
    min_speech_ms: int = 100
    greeting_pause_ms: int = 800  # silence that ends a greeting
    machine_greeting_ms: int = 3000  # a greeting this long is a machine's
    initial_silence_ms: int = 3000
    max_ms: int = 5000
    beep_low_hz: float = 400.0
    beep_high_hz: float = 2000.0
    beep_min_dbfs: float = -45.0
    beep_purity: float = 0.85
    beep_tolerance_hz: float = 25.0
    beep_min_ms: int = 150
    beep_max_ms: int = 3000


@dataclass(frozen=True, slots=True)
class Decision:
    answered_by: AnsweredBy
    reason: Reason
    frame_index: int  # the frame that decided it
    greeting_ms: int  # the greeting's length when decided (0 if there was none)
    greeting_start: int | None = None  # the greeting's first frame, if one started


@dataclass(frozen=True, slots=True)
class Beep:
    start_frame: int
    end_frame: int  # one past its last frame
    frequency_hz: float
    frame_index: int  # the frame that reported it

    @property
    def duration_frames(self) -> int:
        return self.end_frame - self.start_frame


AnsweringEvent = Decision | Beep


@dataclass(frozen=True, slots=True)
class ToneReading:
    """One frame's strongest component: its frequency, share of the power, level."""

    frequency_hz: float
    purity: float
    dbfs: float


class ToneMeter:
    """Finds the dominant pure tone of a frame (rule 1's measurements)."""

    def __init__(self, sample_rate: int, frame_samples: int) -> None:
        self.sample_rate = sample_rate
        self._size = 1 << max(10, math.ceil(math.log2(frame_samples * 8)))
        self._window = np.hanning(frame_samples)
        self._window_power = float(np.sum(self._window**2))
        self._hz_per_bin = sample_rate / self._size
        # A Hann window's main lobe spans +-2 resolution steps (sample_rate / frame).
        self._half_band = math.ceil(2 * (sample_rate / frame_samples) / self._hz_per_bin)

    def read(self, pcm: Int16Array) -> ToneReading:
        x = pcm.astype(np.float64)
        x -= x.mean()
        power = float(np.mean(x * x))
        dbfs = 10 * math.log10(power / _FULL_SCALE_POWER) if power > 0 else -200.0
        spectrum: npt.NDArray[np.float64] = np.abs(np.fft.rfft(x * self._window, n=self._size)) ** 2
        total = float(spectrum.sum())
        if total <= 0:
            return ToneReading(0.0, 0.0, dbfs)
        peak = int(np.argmax(spectrum))
        lo, hi = max(peak - self._half_band, 0), peak + self._half_band + 1
        purity = float(spectrum[lo:hi].sum()) / total
        return ToneReading(self._interpolate(spectrum, peak), purity, dbfs)

    def _interpolate(self, spectrum: npt.NDArray[np.float64], peak: int) -> float:
        """The peak's frequency between bins (parabola through the log magnitudes)."""
        offset = 0.0
        if 0 < peak < len(spectrum) - 1:
            a, b, c = (math.log(max(float(v), 1e-12)) for v in spectrum[peak - 1 : peak + 2])
            denominator = a - 2 * b + c
            if denominator < 0:
                offset = 0.5 * (a - c) / denominator
        return (peak + offset) * self._hz_per_bin


class AnsweringDetector:
    """Push every caller frame; read the decision and beeps off the returned events."""

    def __init__(self, config: AnsweringConfig | None = None) -> None:
        self.config = cfg = config or AnsweringConfig()
        self.frame_samples = samples_per_frame(cfg.sample_rate, cfg.frame_ms)
        self._meter = ToneMeter(cfg.sample_rate, self.frame_samples)
        self._endpointer = Endpointer(
            EndpointerConfig(
                start_threshold=0.5,
                end_threshold=0.5,
                min_speech_ms=cfg.min_speech_ms,
                end_silence_ms=cfg.greeting_pause_ms,
                frame_ms=cfg.frame_ms,
            )
        )
        self._machine_frames = self._frames(cfg.machine_greeting_ms)
        self._initial_silence_frames = self._frames(cfg.initial_silence_ms)
        self._max_frames = self._frames(cfg.max_ms)
        self._beep_min_frames = self._frames(cfg.beep_min_ms)
        self._beep_max_frames = self._frames(cfg.beep_max_ms)
        self.frames = 0  # frames pushed
        self.decision: Decision | None = None
        self.beeps: list[Beep] = []
        self.silence_frames = 0  # consecutive frames, up to the last, of neither speech nor tone
        self.heard_speech = False  # a greeting has started
        self._greeting_start: int | None = None
        self._last_speech = -1  # the last speech frame
        self._human_pending: int | None = None  # greeting length, waiting on a tone
        self._tone_start: int | None = None
        self._tone_hz = 0.0
        self._tone_reported = False

    def push(
        self, pcm: Int16Array, speech_probability: float | None = None
    ) -> list[AnsweringEvent]:
        """Classify one frame; the decisions and beeps it completes."""
        if len(pcm) != self.frame_samples:
            raise ValueError(f"a frame is {self.frame_samples} samples, got {len(pcm)}")
        index = self.frames
        self.frames += 1
        events: list[AnsweringEvent] = []
        reading = self._meter.read(pcm)
        tonal = self._is_tone(reading)
        self._track_tone(index, tonal, reading.frequency_hz, events)
        if tonal:
            speech = False
        elif speech_probability is not None:
            speech = speech_probability >= 0.5
        else:
            speech = reading.dbfs >= self.config.speech_dbfs
        self.silence_frames = 0 if speech or tonal else self.silence_frames + 1
        self._track_greeting(index, speech, events)
        if self.decision is None:
            self._check_limits(index, events)
        return events

    # -- tones -------------------------------------------------------------------------
    def _is_tone(self, reading: ToneReading) -> bool:
        cfg = self.config
        return (
            reading.dbfs >= cfg.beep_min_dbfs
            and reading.purity >= cfg.beep_purity
            and cfg.beep_low_hz <= reading.frequency_hz <= cfg.beep_high_hz
        )

    def _track_tone(self, index: int, tonal: bool, hz: float, events: list[AnsweringEvent]) -> None:
        start = self._tone_start
        same = (
            tonal and start is not None and abs(hz - self._tone_hz) <= self.config.beep_tolerance_hz
        )
        if start is not None and not same:
            self._tone_ended(start, index, events)
            start = None
        if tonal and start is None:
            self._tone_start, self._tone_hz, self._tone_reported = index, hz, False
            start = index
        if start is None or self._tone_reported:
            return
        length = index + 1 - start
        if length == self._beep_min_frames and self.decision is None:
            self._decide("voicemail", "beep", index, self._greeting_length(), events)
        if length >= self._beep_max_frames:
            self._report_beep(start, index + 1, index, events)

    def _tone_ended(self, start: int, index: int, events: list[AnsweringEvent]) -> None:
        self._tone_start = None
        if self._tone_reported:
            return
        if index - start >= self._beep_min_frames:
            self._report_beep(start, index, index, events)
        elif self._human_pending is not None and self.decision is None:
            self._decide("human", "short-greeting", index, self._human_pending, events)
        self._human_pending = None

    def _report_beep(self, start: int, end: int, index: int, events: list[AnsweringEvent]) -> None:
        self._tone_reported = True
        beep = Beep(start, end, round(self._tone_hz, 1), index)
        self.beeps.append(beep)
        events.append(beep)

    # -- the greeting ------------------------------------------------------------------
    def _track_greeting(self, index: int, speech: bool, events: list[AnsweringEvent]) -> None:
        event = self._endpointer.process(1.0 if speech else 0.0)
        if speech:
            self._last_speech = index
        if event is not None and not isinstance(event, SpeechEnded):
            self.heard_speech = True
            if self._greeting_start is None:
                self._greeting_start = event.frame_index
        if self.decision is not None or self._greeting_start is None:
            return
        if isinstance(event, SpeechEnded):
            length = event.frame_index - self._greeting_start
            if self._tone_start is not None:
                self._human_pending = length  # a beep would make it a machine after all
            else:
                self._decide("human", "short-greeting", index, length, events)
        elif self._endpointer.state is EndpointState.SPEAKING:
            length = index + 1 - self._greeting_start
            if length >= self._machine_frames:
                self._decide("voicemail", "long-greeting", index, length, events)

    def _check_limits(self, index: int, events: list[AnsweringEvent]) -> None:
        quiet = (
            self._greeting_start is None
            and self._endpointer.state is EndpointState.SILENCE
            and self._tone_start is None
        )
        if quiet and index + 1 >= self._initial_silence_frames:
            self._decide("unknown", "silence", index, 0, events)
        elif index + 1 >= self._max_frames:
            self._decide("unknown", "timeout", index, self._greeting_length(), events)

    def _greeting_length(self) -> int:
        """Frames from the greeting's first to its last speech frame so far."""
        return 0 if self._greeting_start is None else self._last_speech + 1 - self._greeting_start

    def _decide(
        self,
        answered_by: AnsweredBy,
        reason: Reason,
        index: int,
        greeting_frames: int,
        events: list[AnsweringEvent],
    ) -> None:
        ms = greeting_frames * self.config.frame_ms
        self.decision = Decision(answered_by, reason, index, ms, self._greeting_start)
        events.append(self.decision)

    def _frames(self, ms: int) -> int:
        return max(1, math.ceil(ms / self.config.frame_ms))
