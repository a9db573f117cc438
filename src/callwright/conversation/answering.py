"""Screening an answered outbound call before its conversation: who picked up, and what
to do about a voicemail (``answered_by_enabled``, ``voicemail``, ``voicemail_action``).

Theory of operation: the ``Screener`` reads the port's events from the iterator the
conversation will go on reading (``ResumedPort``), answers every caller frame with one
agent frame (silence while it listens) and feeds the caller's audio, with the call's VAD
score, to ``media.answering.AnsweringDetector``. On its decision:

- ``human`` or ``unknown``, or ``voicemail`` with action ``ignore``: screening ends and
  the conversation starts at once. The caller's greeting ("Hello?") is not replayed into
  the conversation (the agent would take it as a barge-in on its own first sentence);
  it is transcribed on the side and lands in the transcript first.
- ``voicemail`` with ``hangup``: the call is hung up.
- ``voicemail`` with ``leave_message``: the message is synthesised (in the call's
  voice) while the greeting plays; it is spoken after the beep, or once the greeting has
  been followed by ``no_beep_silence_ms`` of silence with no beep, or when
  ``max_wait_ms`` have passed, whichever is first; then a short tail of silence and the
  call is hung up.

Times are frame counts. Screening's frames come first on the call's timeline, so the
conversation's transcript lines (``ShiftedSink``) and recording (``ShiftableRecorder``)
are moved on by the frames screening took.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from callwright.conversation.ports import (
    AudioPort,
    CallerAudio,
    CallerHungUp,
    CallSink,
    Keypress,
    Pcm,
    PortEvent,
    Synthesizer,
    Transcriber,
    TranscriptLine,
    VoiceActivity,
)
from callwright.media.answering import AnsweringConfig, AnsweringDetector, Beep, Decision
from callwright.media.frames import FRAME_MS, AudioFrame, samples_per_frame
from callwright.media.recorder import CallRecorder, Side
from callwright.media.resample import resample_block

log = logging.getLogger("callwright.conversation")

STT_RATE = 16_000

VoicemailAction = Literal["hangup", "leave_message", "ignore"]
Outcome = Literal["converse", "hung_up", "voicemail_left", "caller_hung_up"]
VOICEMAIL_ACTIONS: tuple[VoicemailAction, ...] = ("hangup", "leave_message", "ignore")


@dataclass(frozen=True, slots=True)
class ScreeningPolicy:
    """What a call asks for: detection, and the action on a voicemail."""

    action: VoicemailAction = "hangup"
    message: str | None = None

    @classmethod
    def for_call(cls, params: dict[str, Any], *, inbound: bool) -> ScreeningPolicy | None:
        """The policy of an outbound call that asks for detection, else None.

        Detection is on with ``answered_by_enabled`` (or the older ``amd``), or when the
        call says what to do on a voicemail (``voicemail``, ``voicemail_action``,
        ``voicemail_message``): acting on a voicemail needs knowing it is one. The
        ``voicemail`` object wins over the legacy fields.
        """
        if inbound:
            return None
        voicemail = params.get("voicemail")
        legacy_action = params.get("voicemail_action")
        legacy_message = params.get("voicemail_message")
        wanted = (
            bool(params.get("answered_by_enabled"))
            or bool(params.get("amd"))
            or isinstance(voicemail, dict)
            or legacy_action is not None
            or bool(legacy_message)
        )
        if not wanted:
            return None
        if isinstance(voicemail, dict):
            asked, message = voicemail.get("action"), voicemail.get("message")
        else:
            asked, message = legacy_action, legacy_message
        default: VoicemailAction = "hangup"
        action = next((a for a in VOICEMAIL_ACTIONS if a == asked), default)
        return cls(action, str(message) if message else None)


@dataclass(frozen=True, slots=True)
class MessageTiming:
    no_beep_silence_ms: int = 2000  # greeting over, this much silence and no beep: speak
    max_wait_ms: int = 30_000  # from the decision: speak whatever the greeting does
    tail_ms: int = 400  # silence after the message, so its end leaves before the BYE


@dataclass(slots=True)
class Screened:
    outcome: Outcome
    decision: Decision | None  # None if the line hung up before a decision
    frames: int  # caller frames read (== agent frames sent)
    greeting: Pcm  # the caller side's audio up to the decision (or the message)
    beep: Beep | None = None
    message_frames: tuple[int, int] | None = None  # first, one-past-last agent frame
    pending: list[PortEvent] = field(default_factory=list)  # keypresses for the loop

    @property
    def answered_by(self) -> str:
        return self.decision.answered_by if self.decision is not None else "unknown"


OnDecision = Callable[[Decision], Awaitable[None]]


class Screener:
    def __init__(
        self,
        port: AudioPort,
        events: AsyncIterator[PortEvent],
        policy: ScreeningPolicy,
        *,
        vad: VoiceActivity | None,
        tts: Synthesizer,
        sink: CallSink,
        on_decision: OnDecision | None = None,
        recorder: CallRecorder | None = None,
        config: AnsweringConfig | None = None,
        timing: MessageTiming | None = None,
    ) -> None:
        self.port = port
        self.events = events
        self.policy = policy
        self.vad = vad
        self.tts = tts
        self.sink = sink
        self.on_decision = on_decision
        self.recorder = recorder
        rate = port.sample_rate
        self.detector = AnsweringDetector(config or AnsweringConfig(sample_rate=rate))
        if self.detector.config.sample_rate != rate:
            raise ValueError("the detector's rate must be the port's")
        self.timing = timing or MessageTiming()
        self._frame_samples = samples_per_frame(rate)
        self._silence: Pcm = np.zeros(self._frame_samples, dtype=np.int16)
        self._greeting: list[Pcm] = []
        self._pending: list[PortEvent] = []
        self.frames = 0

    async def run(self) -> Screened:
        decision = await self._listen()
        if decision is None:
            return self._result("caller_hung_up", None)
        voicemail = decision.answered_by == "voicemail"
        if not voicemail or self.policy.action == "ignore":
            return self._result("converse", decision)
        if self.policy.action == "leave_message" and self.policy.message:
            return await self._leave_message(decision, self.policy.message)
        if self.policy.action == "leave_message":
            await self.sink.event(
                "call.voicemail_no_message",
                "Voicemail reached but the call has no voicemail message: hanging up",
            )
        await self.sink.event(
            "call.voicemail_hangup",
            "Voicemail reached: hanging up",
            {"action": self.policy.action, "frame": decision.frame_index},
        )
        await self._hang_up()
        return self._result("hung_up", decision)

    # -- listening ---------------------------------------------------------------------
    async def _listen(self) -> Decision | None:
        async for event in self.events:
            if isinstance(event, CallerHungUp):
                return None
            if isinstance(event, Keypress):
                self._pending.append(event)
                continue
            if not isinstance(event, CallerAudio):
                continue
            self._greeting.append(event.pcm)
            self._hear(event.pcm)
            await self._send(self._silence)
            if self.detector.decision is not None:
                decision = self.detector.decision
                await self._decided(decision)
                return decision
        return None

    def _hear(self, pcm: Pcm) -> list[Beep]:
        probability = self.vad.probability(pcm) if self.vad is not None else None
        if self.recorder is not None:
            at = self.frames * self._frame_samples
            self.recorder.add_caller(AudioFrame(pcm, self.port.sample_rate, at))
        return [e for e in self.detector.push(pcm, probability) if isinstance(e, Beep)]

    async def _decided(self, decision: Decision) -> None:
        data = {
            "answered_by": decision.answered_by,
            "reason": decision.reason,
            "frame": decision.frame_index,
            "at_ms": (decision.frame_index + 1) * FRAME_MS,
            "greeting_ms": decision.greeting_ms,
        }
        await self.sink.event(
            "call.answered_by", f"Answered by {decision.answered_by} ({decision.reason})", data
        )
        if self.on_decision is not None:
            await self.on_decision(decision)

    # -- leaving a message ---------------------------------------------------------------
    async def _leave_message(self, decision: Decision, text: str) -> Screened:
        synthesis = asyncio.create_task(self._render(text), name="voicemail-message")
        try:
            return await self._wait_and_speak(decision, synthesis)
        finally:
            if not synthesis.done():
                synthesis.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await synthesis

    async def _wait_and_speak(self, decision: Decision, synthesis: asyncio.Task[Pcm]) -> Screened:
        cfg = self.timing
        no_beep_frames = _frames(cfg.no_beep_silence_ms)
        give_up_at = decision.frame_index + 1 + _frames(cfg.max_wait_ms)
        tail = _frames(cfg.tail_ms)
        # A beep that ended on the deciding frame was reported while listening.
        beep: Beep | None = self.detector.beeps[0] if self.detector.beeps else None
        why: str | None = None if beep is None else "beep"
        message: list[Pcm] | None = None
        start: int | None = None
        async for event in self.events:
            if isinstance(event, CallerHungUp):
                return self._message_result("caller_hung_up", decision, beep, start)
            if not isinstance(event, CallerAudio):
                continue
            beeps = self._hear(event.pcm)
            if why is None:
                beep = beeps[0] if beeps else None
                detector = self.detector
                if beep is not None:
                    why = "beep"
                elif detector.heard_speech and detector.silence_frames >= no_beep_frames:
                    why = "silence"
                elif self.frames + 1 >= give_up_at:
                    why = "timeout"
                else:
                    self._greeting.append(event.pcm)  # kept for the transcript, to the message
            if why is not None and message is None and synthesis.done():
                try:
                    message = _frames_of(synthesis.result(), self._frame_samples)
                except Exception as exc:
                    log.error("voicemail message synthesis failed", exc_info=exc)
                    await self.sink.event(
                        "call.voicemail_failed", f"Could not speak the voicemail message: {exc}"
                    )
                    await self._hang_up()
                    return self._result("hung_up", decision)
                message.extend([self._silence] * tail)
                start = self.frames
            if message:
                await self._send(message.pop(0))
                if not message:
                    await self._voicemail_left(decision, beep, why, start)
                    await self._hang_up()
                    return self._message_result("voicemail_left", decision, beep, start)
            else:
                await self._send(self._silence)
        return self._message_result("caller_hung_up", decision, beep, start)

    async def _render(self, text: str) -> Pcm:
        chunks = [chunk async for chunk in self.tts.synthesize(text)]
        pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        # A few ms for a long message, as the loop's own resampling: not worth a thread.
        return resample_block(pcm, self.tts.sample_rate, self.port.sample_rate)

    async def _voicemail_left(
        self, decision: Decision, beep: Beep | None, why: str | None, start: int | None
    ) -> None:
        begin = start if start is not None else self.frames
        data = {
            "after": why,
            "beep": beep is not None,
            "beep_frame": None if beep is None else beep.start_frame,
            "beep_hz": None if beep is None else beep.frequency_hz,
            "message_start_ms": begin * FRAME_MS,
            "message_end_ms": self.frames * FRAME_MS,
            "decided_frame": decision.frame_index,
        }
        after = "the beep" if beep is not None else f"the greeting ({why}, no beep)"
        await self.sink.event(
            "call.voicemail_left", f"Left a voicemail message after {after}", data
        )

    # -- housekeeping --------------------------------------------------------------------
    async def _send(self, pcm: Pcm) -> None:
        await self.port.send(pcm)
        if self.recorder is not None:
            at = self.frames * self._frame_samples
            self.recorder.add_agent(AudioFrame(pcm, self.port.sample_rate, at))
        self.frames += 1

    async def _hang_up(self) -> None:
        with contextlib.suppress(Exception):
            await self.port.hang_up()

    def _result(self, outcome: Outcome, decision: Decision | None) -> Screened:
        return Screened(outcome, decision, self.frames, self._heard(), pending=self._pending)

    def _message_result(
        self, outcome: Outcome, decision: Decision, beep: Beep | None, start: int | None
    ) -> Screened:
        span = None if start is None else (start, self.frames)
        return Screened(outcome, decision, self.frames, self._heard(), beep, span, self._pending)

    def _heard(self) -> Pcm:
        if not self._greeting:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self._greeting)


def _frames(ms: int) -> int:
    return math.ceil(ms / FRAME_MS)


def _frames_of(pcm: Pcm, size: int) -> list[Pcm]:
    padded = np.zeros(-(-len(pcm) // size) * size, dtype=np.int16)
    padded[: len(pcm)] = pcm
    return list(padded.reshape(-1, size))


# -- the record ------------------------------------------------------------------------------
async def greeting_line(
    screened: Screened, stt: Transcriber, sink: CallSink, sample_rate: int
) -> None:
    """What the other side said while screened, as the transcript's first line."""
    decision = screened.decision
    if decision is None or decision.greeting_start is None or not len(screened.greeting):
        return
    start = decision.greeting_start * FRAME_MS
    if screened.message_frames is not None:
        end = screened.message_frames[0] * FRAME_MS
    elif decision.answered_by == "voicemail":
        end = screened.frames * FRAME_MS
    else:
        end = start + decision.greeting_ms
    pcm = screened.greeting[: end * sample_rate // 1000]
    try:
        text = (await stt.transcribe(resample_block(pcm, sample_rate, STT_RATE))).strip()
    except Exception:
        log.exception("could not transcribe the screened greeting")
        return
    if text:
        await sink.transcript(TranscriptLine("user", text, start, end))


async def message_line(screened: Screened, message: str, sink: CallSink) -> None:
    """The voicemail message the agent left (as far as it was played)."""
    if screened.message_frames is None:
        return
    first, last = screened.message_frames
    heard = screened.outcome == "voicemail_left"
    line = TranscriptLine("assistant", message, first * FRAME_MS, last * FRAME_MS, not heard)
    await sink.transcript(line)


# -- handing over to the conversation -------------------------------------------------------
class ResumedPort:
    """The port as the conversation sees it after screening: the same transport, its
    events read on from where screening stopped (keypresses made meanwhile first)."""

    def __init__(
        self, port: AudioPort, events: AsyncIterator[PortEvent], pending: list[PortEvent]
    ) -> None:
        self.port = port
        self.sample_rate = port.sample_rate
        self._events = events
        self._pending = list(pending)

    async def events(self) -> AsyncIterator[PortEvent]:
        while self._pending:
            yield self._pending.pop(0)
        async for event in self._events:
            yield event

    async def send(self, pcm: Pcm) -> None:
        await self.port.send(pcm)

    async def send_digits(self, digits: str) -> None:
        await self.port.send_digits(digits)

    async def transfer(self, number: str) -> None:
        await self.port.transfer(number)

    async def hang_up(self) -> None:
        await self.port.hang_up()

    def __getattr__(self, name: str) -> Any:
        # Optional capabilities of the transport (dial and bridge for transfers).
        return getattr(self.port, name)


class ShiftedSink:
    """The conversation's sink after screening: transcript lines move on by the time
    screening took, and wait for ``first`` (the screened greeting's line) to be written."""

    def __init__(self, sink: CallSink, offset_ms: int, first: asyncio.Task[None] | None) -> None:
        self.sink = sink
        self.offset_ms = offset_ms
        self._first = first

    async def transcript(self, line: TranscriptLine) -> None:
        if self._first is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._first)
            self._first = None
        shift = self.offset_ms
        moved = TranscriptLine(
            line.speaker, line.text, line.start_ms + shift, line.end_ms + shift, line.interrupted
        )
        await self.sink.transcript(moved)

    async def event(self, type: str, message: str, data: dict[str, Any] | None = None) -> None:
        await self.sink.event(type, message, data)


class ShiftableRecorder(CallRecorder):
    """A recorder whose frames land ``shift`` samples later: the conversation counts its
    frames from 0, after screening already recorded the first ones."""

    shift = 0

    def add(self, side: Side, frame: AudioFrame) -> None:
        if self.shift:
            frame = AudioFrame(frame.samples, frame.sample_rate, frame.timestamp + self.shift)
        super().add(side, frame)
