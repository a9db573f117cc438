"""Voice activity: the detector interface and the endpointer state machine.

A ``VoiceActivityDetector`` turns each frame into a speech probability (Silero and
friends plug in here). The ``Endpointer`` turns those probabilities into turn events,
counting time in frames, so it runs on virtual time.

Rules:

1. A frame is *speech* when its probability is at least ``start_threshold``, and
   *silence* when it is below ``end_threshold`` (default: 0.15 lower). In between
   it continues whatever is going on: the gap is hysteresis, so a probability
   hovering near one threshold does not flap.
2. SILENCE -> PENDING on a speech frame. PENDING counts consecutive non-silence
   frames; when they reach ``min_speech_ms`` it emits ``SpeechStarted`` stamped at
   the first of them and moves to SPEAKING. A silence frame in PENDING drops back to
   SILENCE with no event: a cough or click is not a turn.
3. SPEAKING counts consecutive silence frames; any non-silence frame resets the
   count. When they reach ``end_silence_ms`` it emits ``SpeechEnded`` stamped at the
   first silent frame and moves to SILENCE.
4. ``finish`` (end of the audio, e.g. hang-up) ends an open turn at the current frame.

Times are frame indexes since the endpointer began (``frame_ms`` each); events carry
both the index and milliseconds.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Protocol

from callwright.media.frames import FRAME_MS, AudioFrame


class VoiceActivityDetector(Protocol):
    def process(self, frame: AudioFrame) -> float:
        """The probability, 0..1, that ``frame`` holds speech."""
        ...


@dataclass(frozen=True, slots=True)
class EndpointerConfig:
    start_threshold: float = 0.5
    end_threshold: float | None = None  # default: start_threshold - 0.15
    min_speech_ms: int = 250
    end_silence_ms: int = 600
    frame_ms: int = FRAME_MS


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    frame_index: int
    at_ms: int


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    frame_index: int
    at_ms: int
    duration_ms: int  # from SpeechStarted to this end


SpeechEvent = SpeechStarted | SpeechEnded


class EndpointState(enum.Enum):
    SILENCE = "silence"
    PENDING = "pending"
    SPEAKING = "speaking"


class Endpointer:
    def __init__(self, config: EndpointerConfig | None = None):
        self.config = cfg = config or EndpointerConfig()
        end = cfg.start_threshold - 0.15 if cfg.end_threshold is None else cfg.end_threshold
        if not 0.0 <= end <= cfg.start_threshold <= 1.0:
            raise ValueError("need 0 <= end_threshold <= start_threshold <= 1")
        if cfg.frame_ms <= 0 or cfg.min_speech_ms < 0 or cfg.end_silence_ms < 0:
            raise ValueError("durations must be non-negative and frame_ms positive")
        self._end_threshold = end
        self._min_speech_frames = max(1, math.ceil(cfg.min_speech_ms / cfg.frame_ms))
        self._end_silence_frames = max(1, math.ceil(cfg.end_silence_ms / cfg.frame_ms))
        self.state = EndpointState.SILENCE
        self._frame = 0  # index of the next frame
        self._run_start = 0  # first frame of the current speech or silence run
        self._speech_start = 0

    def process(self, probability: float) -> SpeechEvent | None:
        """Advance by one frame with its speech probability."""
        index = self._frame
        self._frame += 1
        is_speech = probability >= self.config.start_threshold
        is_silence = probability < self._end_threshold

        if self.state is EndpointState.SILENCE:
            if is_speech:
                self.state = EndpointState.PENDING
                self._run_start = index
                return self._maybe_start(index)
            return None
        if self.state is EndpointState.PENDING:
            if is_silence:
                self.state = EndpointState.SILENCE
                return None
            return self._maybe_start(index)
        # SPEAKING
        if not is_silence:
            self._run_start = index + 1
            return None
        if index + 1 - self._run_start >= self._end_silence_frames:
            return self._end(self._run_start)
        return None

    def finish(self) -> SpeechEnded | None:
        """End of audio: close an open turn at the current frame."""
        if self.state is not EndpointState.SPEAKING:
            self.state = EndpointState.SILENCE
            return None
        return self._end(self._run_start)

    def _maybe_start(self, index: int) -> SpeechStarted | None:
        if index + 1 - self._run_start < self._min_speech_frames:
            return None
        self.state = EndpointState.SPEAKING
        self._speech_start = self._run_start
        self._run_start = index + 1  # silence run (empty so far) starts after this frame
        return SpeechStarted(self._speech_start, self._ms(self._speech_start))

    def _end(self, end_index: int) -> SpeechEnded:
        self.state = EndpointState.SILENCE
        duration = self._ms(end_index - self._speech_start)
        return SpeechEnded(end_index, self._ms(end_index), duration)

    def _ms(self, frames: int) -> int:
        return frames * self.config.frame_ms
