"""Turn-taking: who holds the floor, decided one 20 ms frame at a time.

The live loop feeds every caller frame's speech probability to ``TurnTaker.frame`` and
tells it when the agent starts and stops talking; it answers with actions. It reads no
clock: time is the frame count, so tests run it in virtual time and count frames.

Rules:

1. Caller speech is found by an ``Endpointer`` (hysteresis, ``min_speech_ms``); a caller
   turn ends after ``end_silence_ms`` of silence: the call's ``interruption_threshold``
   ("how long to wait before replying", reference §2.1, in ms).
2. While the agent holds the floor (a reply is being produced or played), caller speech
   that lasts ``barge_in_ms`` is a barge-in candidate. The loop is asked to transcribe
   what was said so far (``CheckBackchannel``); a backchannel ("uh-huh", "okay", ...)
   lets the agent go on; anything else interrupts it at once (``Interrupt``).
   A candidate whose transcript is empty (noise, or too little audio for the STT) does
   not interrupt by itself, but speech that goes on past ``backchannel_max_ms`` always
   does: nobody says "uh-huh" for a full second.
3. Under ``block_interruptions`` (or ``interruptibility`` 0) nothing the caller says while
   the agent talks interrupts it, and that speech is not answered.
4. A caller turn that began while the agent talked is answered only if it interrupted.
   Backchannels are never answered.
5. Silence: when nobody has spoken for ``silence_timeout_ms`` after the agent finished,
   the agent re-prompts once (``Reprompt``); the next such silence ends the call.
6. The call ends at ``max_duration_ms`` whatever is happening.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from callwright.media.frames import FRAME_MS
from callwright.media.vad import (
    Endpointer,
    EndpointerConfig,
    EndpointState,
    SpeechEnded,
    SpeechStarted,
)

DEFAULT_BACKCHANNELS = (
    "uh-huh",
    "uh huh",
    "mm-hmm",
    "mhm",
    "mm",
    "hmm",
    "okay",
    "ok",
    "yeah",
    "yep",
    "yes",
    "right",
    "sure",
    "got it",
    "i see",
    "alright",
    "all right",
)

# interruptibility (reference §2.1: 0 block, 1 difficult, 2 balanced, 3 easy) -> how long
# the caller must speak over the agent before it is a barge-in candidate.
BARGE_IN_MS = {1: 480, 2: 160, 3: 80}


@dataclass(frozen=True, slots=True)
class TurnConfig:
    end_silence_ms: int = 500
    min_speech_ms: int = 100
    start_threshold: float = 0.5
    barge_in_ms: int | None = 160  # None: interruptions blocked
    backchannel_max_ms: int = 1000
    backchannels: tuple[str, ...] = DEFAULT_BACKCHANNELS
    silence_timeout_ms: int | None = 10_000  # None: never re-prompt or hang up on silence
    max_duration_ms: int | None = 30 * 60_000
    frame_ms: int = FRAME_MS

    @classmethod
    def for_call(
        cls,
        *,
        interruption_threshold: float | None = None,
        interruptibility: int | None = None,
        block_interruptions: bool = False,
        max_duration_minutes: float | None = None,
        backchannels: tuple[str, ...] | None = None,
        silence_timeout_ms: int | None = 10_000,
    ) -> TurnConfig:
        """From a call's parameters (defaults as the reference: 500 ms, balanced, 30 min)."""
        level = 2 if interruptibility is None else interruptibility
        blocked = block_interruptions or level == 0
        end_ms = 500 if interruption_threshold is None else int(interruption_threshold)
        return cls(
            # Fewer than 100 ms answers before a breath ends; over 5 s is a dead line.
            end_silence_ms=min(max(end_ms, 100), 5000),
            barge_in_ms=None if blocked else BARGE_IN_MS.get(level, BARGE_IN_MS[2]),
            backchannels=DEFAULT_BACKCHANNELS if backchannels is None else backchannels,
            silence_timeout_ms=silence_timeout_ms,
            max_duration_ms=None
            if max_duration_minutes is None
            else int(max_duration_minutes * 60_000),
        )


@dataclass(frozen=True, slots=True)
class CallerSpeechStarted:
    frame: int  # first frame of the speech


@dataclass(frozen=True, slots=True)
class CheckBackchannel:
    """Transcribe the caller's audio from ``start_frame`` up to now and report it with
    ``TurnTaker.backchannel_checked(token, text)``."""

    token: int
    start_frame: int


@dataclass(frozen=True, slots=True)
class Interrupt:
    """Stop the agent now: drop queued audio and cancel the reply being produced."""

    frame: int


@dataclass(frozen=True, slots=True)
class CallerTurn:
    """A finished caller utterance to answer: frames ``start_frame`` .. ``end_frame``."""

    start_frame: int
    end_frame: int


@dataclass(frozen=True, slots=True)
class Reprompt:
    frame: int


@dataclass(frozen=True, slots=True)
class HangUp:
    frame: int
    reason: str  # "silence" | "max_duration"


TurnAction = CallerSpeechStarted | CheckBackchannel | Interrupt | CallerTurn | Reprompt | HangUp


def is_backchannel(text: str, backchannels: tuple[str, ...]) -> bool:
    """True when every word of ``text`` belongs to some listed backchannel phrase and the
    whole is short: "uh-huh", "okay okay", "yeah, right"."""
    words = re.sub(r"[^a-z' ]+", " ", text.lower().replace("-", " ")).split()
    if not words or len(words) > 4:
        return False
    vocabulary = {w for phrase in backchannels for w in phrase.lower().replace("-", " ").split()}
    return all(w in vocabulary for w in words)


@dataclass(slots=True)
class _Overlap:
    """Caller speech that began while the agent held the floor."""

    start_frame: int
    voiced_frames: int = 0  # frames of it that were not silence
    token: int | None = None  # CheckBackchannel asked, not yet answered
    verdict: str | None = None  # "backchannel" | "empty" | "interrupt"


@dataclass
class TurnTaker:
    config: TurnConfig = field(default_factory=TurnConfig)

    def __post_init__(self) -> None:
        cfg = self.config
        self._endpointer = Endpointer(
            EndpointerConfig(
                start_threshold=cfg.start_threshold,
                min_speech_ms=cfg.min_speech_ms,
                end_silence_ms=cfg.end_silence_ms,
                frame_ms=cfg.frame_ms,
            )
        )
        self.frame_index = -1
        self.agent_busy = False
        self.ended = False
        self._speech_start: int | None = None  # an open caller utterance
        self._overlap: _Overlap | None = None
        self._next_token = 0
        self._silent_frames = 0
        self._reprompted = False
        # The endpointer's end threshold: below it a frame is silence.
        self._silence_below = cfg.start_threshold - 0.15

    def _frames(self, ms: int) -> int:
        return max(1, math.ceil(ms / self.config.frame_ms))

    # -- what the loop tells us ------------------------------------------------------
    def agent_started(self) -> None:
        self.agent_busy = True
        self._silent_frames = 0

    def agent_finished(self) -> None:
        self.agent_busy = False
        self._silent_frames = 0

    def backchannel_checked(self, token: int, text: str) -> list[TurnAction]:
        overlap = self._overlap
        if self.ended or overlap is None or overlap.token != token:
            return []  # stale: that speech already ended or was decided
        overlap.token = None
        if not text.strip():
            overlap.verdict = "empty"
            return []
        if is_backchannel(text, self.config.backchannels):
            overlap.verdict = "backchannel"
            return []
        return self._interrupt(overlap)

    # -- one frame -------------------------------------------------------------------
    def frame(self, speech_probability: float) -> list[TurnAction]:
        if self.ended:
            return []
        self.frame_index += 1
        now = self.frame_index
        cfg = self.config
        if cfg.max_duration_ms is not None and now >= self._frames(cfg.max_duration_ms):
            return self._hang_up("max_duration")
        actions: list[TurnAction] = []
        event = self._endpointer.process(speech_probability)
        if isinstance(event, SpeechStarted):
            self._speech_start = event.frame_index
            self._silent_frames = 0
            actions.append(CallerSpeechStarted(event.frame_index))
            if self.agent_busy:
                self._overlap = _Overlap(event.frame_index)
        elif isinstance(event, SpeechEnded):
            actions.extend(self._speech_ended(event))
        if self._overlap is not None and self._speech_start is not None:
            if speech_probability >= self._silence_below:
                self._overlap.voiced_frames += 1
            actions.extend(self._judge_overlap())
        actions.extend(self._silence(now))
        return actions

    def finish(self) -> list[TurnAction]:
        """The caller hung up: an utterance in progress still counts."""
        event = self._endpointer.finish()
        actions = self._speech_ended(event) if event is not None else []
        self.ended = True
        return actions

    # -- rules -----------------------------------------------------------------------
    def _judge_overlap(self) -> list[TurnAction]:
        overlap = self._overlap
        cfg = self.config
        assert overlap is not None
        if cfg.barge_in_ms is None or overlap.verdict == "interrupt":
            return []
        # SpeechStarted comes min_speech frames after the onset: count those too.
        spoken = overlap.voiced_frames + self._frames(cfg.min_speech_ms) - 1
        if spoken >= self._frames(cfg.backchannel_max_ms):
            return self._interrupt(overlap)  # rule 2: too long for a backchannel
        if (
            overlap.verdict is None
            and overlap.token is None
            and spoken >= self._frames(cfg.barge_in_ms)
        ):
            overlap.token = self._next_token
            self._next_token += 1
            return [CheckBackchannel(overlap.token, overlap.start_frame)]
        return []

    def _interrupt(self, overlap: _Overlap) -> list[TurnAction]:
        overlap.verdict = "interrupt"
        overlap.token = None
        self.agent_busy = False
        return [Interrupt(self.frame_index)]

    def _speech_ended(self, event: SpeechEnded) -> list[TurnAction]:
        start = self._speech_start
        overlap = self._overlap
        self._speech_start = None
        self._overlap = None
        self._silent_frames = 0
        if start is None:
            return []
        if overlap is not None and overlap.verdict != "interrupt":
            return []  # rules 3 and 4: not answered
        return [CallerTurn(start, event.frame_index)]

    def _silence(self, now: int) -> list[TurnAction]:
        cfg = self.config
        caller_audible = self._endpointer.state is not EndpointState.SILENCE
        if cfg.silence_timeout_ms is None or self.agent_busy or caller_audible:
            self._silent_frames = 0
            return []
        self._silent_frames += 1
        if self._silent_frames < self._frames(cfg.silence_timeout_ms):
            return []
        self._silent_frames = 0
        if self._reprompted:
            return self._hang_up("silence")
        self._reprompted = True
        return [Reprompt(now)]

    def caller_spoke(self) -> None:
        """A caller turn was answered: the next long silence re-prompts again."""
        self._reprompted = False

    def _hang_up(self, reason: str) -> list[TurnAction]:
        self.ended = True
        return [HangUp(self.frame_index, reason)]
