"""The live conversation loop: one call, from greeting to hang-up.

Theory of operation: the transport delivers a caller frame every 20 ms and the loop
answers each with one agent frame (queued speech, else silence), so the transport's
clock paces both directions and tests can run the loop in virtual time by counting
frames. Each caller frame is scored by the VAD at the port's own rate (Silero scores
8 kHz natively), kept in a ring of recent audio and handed to the ``TurnTaker``, whose
actions start work in tasks:

- ``CallerTurn``: transcribe the utterance (only now resampled to 16 kHz for the
  recognizer), record it, ask the agent for a reply;
- a reply streams text pieces through the ``SentenceChunker`` to the synthesizer, and
  its audio is framed into the playout queue as it arrives, so the first frame leaves
  while the rest of the reply is still being written and spoken;
- ``CheckBackchannel``: transcribe the overlap so far and report it to the turn-taker;
- ``Interrupt``: cancel the reply, drop queued audio, record what was actually heard;
- ``Reprompt`` / ``HangUp``: silence and duration rules.

Work started by a frame gets one turn of the event loop before that frame is answered,
so a reply whose providers answer at once leaves on the very frame that ended the turn
rather than 20 ms later.

Agent actions (end the call, transfer, press digits) run once the speech before them
has been played. A transfer runs in the frame loop itself (``conversation.transfers``):
while it holds, briefs or bridges, it is the only reader of the port, and the loop
either ends (handed over, or the caller left) or picks the conversation up again. Every transcript line and event goes to the ``CallSink`` when it
happens. Closing the loop (hang-up, error, cancellation) cancels every task it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from callwright.conversation.chunker import SentenceChunker
from callwright.conversation.ports import (
    Agent,
    AudioPort,
    CallerAudio,
    CallerHungUp,
    CallSink,
    EndCall,
    Keypress,
    Note,
    Pcm,
    PressDigits,
    ReplyItem,
    ResumesAfterTransfer,
    Synthesizer,
    Transcriber,
    TranscriptLine,
    TransferTo,
    VoiceActivity,
)
from callwright.conversation.transfers import Transfers
from callwright.conversation.turns import (
    CallerTurn,
    CheckBackchannel,
    HangUp,
    Interrupt,
    Reprompt,
    TurnAction,
    TurnConfig,
    TurnTaker,
)
from callwright.media.frames import FRAME_MS, AudioFrame, Framer, samples_per_frame
from callwright.media.recorder import CallRecorder
from callwright.media.resample import StreamingResampler, resample_block

log = logging.getLogger("callwright.conversation")

STT_RATE = 16_000
HEARD_SECONDS = 30  # caller audio kept for transcription (Whisper's window)
# Audio before a turn's first speech frame sent to the recognizer with it: the VAD
# needs some speech before it is sure, and a soft onset ("hello") would be cut off.
PREROLL_FRAMES = 300 // FRAME_MS
RECORD_DRAIN_SECONDS = 30.0
# Said when a transfer did not happen and the agent is back with the caller.
TRANSFER_NOT_REACHED_LINE = "I'm sorry, I couldn't reach anyone right now."


@dataclass(slots=True)
class LoopResult:
    ended_by: str  # "agent" | "caller" | "silence" | "max_duration" | "transfer" | "error"
    frames: int
    transferred_to: str | None = None
    warm_transfer: dict[str, Any] | None = None  # the call's ``warm_transfer_call``


@dataclass(slots=True)
class _Piece:
    text: str
    frames_left: int = 0
    heard: bool = False
    complete: bool = False


@dataclass(slots=True)
class _Reply:
    kind: str
    turn_start: int | None = None  # first frame of the caller turn being answered
    task: asyncio.Task[None] | None = None
    pieces: list[_Piece] = field(default_factory=list)
    actions: list[ReplyItem] = field(default_factory=list)
    done: bool = False
    first_frame_at: int | None = None  # agent frame index of the first audio sent
    # Latency marks (loop clock, seconds).
    turn_at: float | None = None
    stt_s: float | None = None
    started_at: float = 0.0
    first_text_at: float | None = None
    first_audio_at: float | None = None


class CallLoop:
    def __init__(
        self,
        port: AudioPort,
        agent: Agent,
        *,
        stt: Transcriber,
        tts: Synthesizer,
        vad: VoiceActivity,
        sink: CallSink,
        turns: TurnConfig | None = None,
        wait_for_greeting: bool = False,
        recorder: CallRecorder | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.port = port
        self.agent = agent
        self.stt = stt
        self.tts = tts
        self.vad = vad
        self.sink = sink
        self.turns = TurnTaker(turns or TurnConfig())
        self.wait_for_greeting = wait_for_greeting
        self.recorder = recorder
        self.clock = clock
        rate = port.sample_rate
        self._frame_samples = samples_per_frame(rate)
        self._silence: Pcm = np.zeros(self._frame_samples, dtype=np.int16)
        self._silence.flags.writeable = False  # frames built on it need no defensive copy
        # The caller's recent audio at the port's rate, one row per frame (frame k in
        # row k % rows): one array, however long the call, instead of an object a frame.
        rows = HEARD_SECONDS * 1000 // FRAME_MS
        self._heard = np.zeros((rows, self._frame_samples), dtype=np.int16)
        self._playout: deque[tuple[Pcm, _Piece]] = deque()
        self._reply: _Reply | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unanswered_from: int | None = None  # a turn cut short before any reply audio
        self._ending: str | None = None
        self._transferred_to: str | None = None
        self._transfer: TransferTo | None = None  # requested, to run in the frame loop
        self._warm_transfer: dict[str, Any] | None = None
        self.frames = 0  # caller frames processed == agent frames sent
        self._records: asyncio.Queue[tuple[str, tuple[Any, ...]]] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    # -- the loop ------------------------------------------------------------------------
    async def run(self) -> LoopResult:
        ended_by = "caller"
        try:
            self._writer = asyncio.create_task(self._write_records(), name="call-record")
            self._note("conversation.started", "Conversation started")
            if not self.wait_for_greeting:
                self._start_reply("greeting", self.agent.greet())
            async for event in self.port.events():
                if isinstance(event, CallerHungUp):
                    break
                if isinstance(event, Keypress):
                    await self._keypress(event.digit)
                elif isinstance(event, CallerAudio):
                    await self._tick(event.pcm)
                if self._transfer is not None:
                    await self._run_transfer(self._transfer)
                if self._ending is not None:
                    ended_by = self._ending
                    break
        except asyncio.CancelledError:
            ended_by = "canceled"
            raise
        except Exception as exc:
            ended_by = "error"
            log.exception("conversation failed")
            self._note("conversation.error", f"Conversation failed: {exc}")
        finally:
            await self._close()
            self._note(
                "conversation.ended", f"Conversation ended by {ended_by}", {"ended_by": ended_by}
            )
            await self._drain_records()
        if ended_by in ("agent", "silence", "max_duration"):
            with contextlib.suppress(Exception):
                await self.port.hang_up()
        return LoopResult(ended_by, self.frames, self._transferred_to, self._warm_transfer)

    async def _tick(self, pcm: Pcm) -> None:
        index = self.frames
        self.frames += 1
        if self.recorder is not None:
            self.recorder.add_caller(AudioFrame(pcm, self.port.sample_rate, index * len(pcm)))
        self._heard[index % self._heard.shape[0]] = pcm
        if self._apply(self.turns.frame(self.vad.probability(pcm))):
            await asyncio.sleep(0)  # let the work just started fill this frame if it can
        await self._send_one()

    async def _send_one(self) -> None:
        reply = self._reply
        if self._playout:
            pcm, piece = self._playout.popleft()
            piece.frames_left -= 1
            piece.heard = True
            if reply is not None and reply.first_frame_at is None:
                reply.first_frame_at = self.frames - 1
                self._latency(reply)
        else:
            pcm = self._silence
        await self.port.send(pcm)
        if self.recorder is not None:
            at = (self.frames - 1) * self._frame_samples
            self.recorder.add_agent(AudioFrame(pcm, self.port.sample_rate, at))
        if reply is not None and reply.done and not self._playout:
            await self._reply_finished(reply)

    # -- turn actions --------------------------------------------------------------------
    def _apply(self, actions: list[TurnAction]) -> bool:
        """Act on the turn-taker's actions; True when work was started in a task."""
        started = False
        for action in actions:
            if isinstance(action, CallerTurn):
                self._spawn(self._answer(action), "answer")
                started = True
            elif isinstance(action, CheckBackchannel):
                self._spawn(self._check_backchannel(action), "backchannel")
                started = True
            elif isinstance(action, Interrupt):
                self._interrupt()
            elif isinstance(action, Reprompt):
                self._start_reply("reprompt", self.agent.reprompt())
                started = True
            elif isinstance(action, HangUp):
                self._ending = action.reason
        return started

    async def _check_backchannel(self, action: CheckBackchannel) -> None:
        text = await self.stt.transcribe(self._audio(action.start_frame, self.turns.frame_index))
        self._apply(self.turns.backchannel_checked(action.token, text))

    async def _answer(self, turn: CallerTurn) -> None:
        start = turn.start_frame
        if self._unanswered_from is not None:
            start, self._unanswered_from = min(start, self._unanswered_from), None
        reply = _Reply("answer", turn_start=start, turn_at=self.clock())
        self._replace_reply(reply)
        pcm = self._audio(start, turn.end_frame)
        text = (await self.stt.transcribe(pcm)).strip()
        reply.stt_s = self.clock() - (reply.turn_at or 0.0)
        if not text:
            self._note("turn.unheard", "Caller audio had no words", {"frame": start})
            self._reply_abandoned(reply)
            return
        self.turns.caller_spoke()
        self._line(TranscriptLine("user", text, start * FRAME_MS, turn.end_frame * FRAME_MS))
        reply.started_at = self.clock()
        await self._speak(reply, self.agent.reply(text))

    def _interrupt(self) -> None:
        reply = self._reply
        self._playout.clear()
        if reply is None:
            return
        if reply.first_frame_at is None and reply.kind == "answer":
            # Nothing was heard yet: the caller was still talking. Answer it all at once.
            self._unanswered_from = reply.turn_start
        self._reply = None
        if reply.task is not None:
            reply.task.cancel()
        self._record_agent_line(reply, interrupted=True)
        self._note("turn.interrupted", "Caller interrupted the agent")

    # -- replies -------------------------------------------------------------------------
    def _start_reply(self, kind: str, items: AsyncIterator[ReplyItem]) -> None:
        reply = _Reply(kind, started_at=self.clock())
        self._replace_reply(reply)
        reply.task = self._spawn(self._speak(reply, items), kind)

    def _replace_reply(self, reply: _Reply) -> None:
        old = self._reply
        if old is not None and old.task is not None and old.task is not asyncio.current_task():
            old.task.cancel()
        self._playout.clear()
        self._reply = reply
        if reply.task is None and reply.kind == "answer":
            reply.task = asyncio.current_task()
        self.turns.agent_started()

    async def _speak(self, reply: _Reply, items: AsyncIterator[ReplyItem]) -> None:
        chunker = SentenceChunker()
        try:
            async for item in items:
                if isinstance(item, str):
                    if reply.first_text_at is None:
                        reply.first_text_at = self.clock()
                    for piece in chunker.push(item):
                        await self._say(reply, piece)
                elif isinstance(item, Note):
                    self._note(item.type, item.message, item.data)
                else:
                    for piece in chunker.flush():
                        await self._say(reply, piece)
                    reply.actions.append(item)
            for piece in chunker.flush():
                await self._say(reply, piece)
        finally:
            reply.done = True
        if not reply.pieces and self._reply is reply:
            await self._reply_finished(reply)  # nothing to play: act at once

    async def _say(self, reply: _Reply, text: str) -> None:
        piece = _Piece(text)
        reply.pieces.append(piece)
        resampler = StreamingResampler(self.tts.sample_rate, self.port.sample_rate, quality="MQ")
        framer = Framer(self.port.sample_rate)
        async for chunk in self.tts.synthesize(text):
            out = resampler.process(AudioFrame(chunk, self.tts.sample_rate, 0))
            self._queue(reply, piece, framer.push(out.samples) if out is not None else [])
        tail = resampler.flush()
        frames = framer.push(tail.samples) if tail is not None else []
        last = framer.flush()
        if last is not None:
            padded = np.zeros(self._frame_samples, dtype=np.int16)
            padded[: last.num_samples] = last.samples
            frames.append(AudioFrame(padded, self.port.sample_rate, 0))
        self._queue(reply, piece, frames)
        piece.complete = True

    def _queue(self, reply: _Reply, piece: _Piece, frames: list[AudioFrame]) -> None:
        if self._reply is not reply or not frames:
            return
        if reply.first_audio_at is None:
            reply.first_audio_at = self.clock()
        for frame in frames:
            self._playout.append((frame.samples, piece))
        piece.frames_left += len(frames)

    async def _reply_finished(self, reply: _Reply) -> None:
        if self._reply is not reply:
            return
        self._reply = None
        self.turns.agent_finished()
        self._record_agent_line(reply, interrupted=False)
        for action in reply.actions:
            await self._act(action)

    def _reply_abandoned(self, reply: _Reply) -> None:
        if self._reply is reply:
            self._reply = None
            self.turns.agent_finished()

    async def _act(self, action: ReplyItem) -> None:
        if isinstance(action, EndCall):
            self._note("call.end_requested", f"Agent ended the call ({action.reason})")
            self._ending = "agent"
        elif isinstance(action, TransferTo):
            self._transfer = action
        elif isinstance(action, PressDigits):
            self._note("call.dtmf_sent", f"Agent pressed {action.digits}")
            await self.port.send_digits(action.digits)

    async def _run_transfer(self, action: TransferTo) -> None:
        self._transfer = None
        self._interrupt()  # nothing the agent queued is heard across a transfer
        kind = "warm" if action.warm is not None else "blind"
        self._note(
            "call.transfer",
            f"Transferring to {action.number} ({kind})",
            {"number": action.number, "kind": kind},
        )
        transfers = Transfers(self.port, self.tts, self._note)
        if action.warm is not None:
            outcome = await transfers.warm(action.number, action.warm)
        else:
            outcome = await transfers.blind(action.number)
        if outcome.warm_record is not None:
            self._warm_transfer = outcome.warm_record
        if outcome.transferred:
            self._transferred_to = action.number
            self._ending = "transfer"
        elif outcome.caller_gone:
            self._ending = "caller"
        else:
            if isinstance(self.agent, ResumesAfterTransfer):
                self.agent.transfer_failed(action.number)
            self._start_reply("transfer_failed", _say(TRANSFER_NOT_REACHED_LINE))

    async def _keypress(self, digit: str) -> None:
        self._note("call.dtmf", f"Caller pressed {digit}", {"digit": digit})
        if self._reply is not None:
            self._interrupt()
        self._start_reply("keypress", self.agent.keypress(digit))

    # -- the record ----------------------------------------------------------------------
    def _record_agent_line(self, reply: _Reply, *, interrupted: bool) -> None:
        heard = [p.text for p in reply.pieces if p.heard]
        if not heard:
            return
        start = (reply.first_frame_at or 0) * FRAME_MS
        self._line(
            TranscriptLine("assistant", " ".join(heard), start, self.frames * FRAME_MS, interrupted)
        )

    def _latency(self, reply: _Reply) -> None:
        if reply.turn_at is None:
            return
        now = self.clock()

        def ms(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else round((b - a) * 1000, 2)

        data = {
            "endpoint_ms": self.turns.config.end_silence_ms,
            "stt_ms": None if reply.stt_s is None else round(reply.stt_s * 1000, 2),
            "llm_first_token_ms": ms(reply.started_at, reply.first_text_at),
            "tts_first_audio_ms": ms(reply.first_text_at, reply.first_audio_at),
            "platform_ms": ms(reply.turn_at, now),
        }
        self._note("turn.latency", "Turn latency", data)

    # Records are written in order by one task, off the reply's critical path: a
    # database round trip must not delay the agent's first audio.
    def _note(self, type: str, message: str, data: dict[str, Any] | None = None) -> None:
        self._records.put_nowait(("event", (type, message, data)))

    def _line(self, line: TranscriptLine) -> None:
        self._records.put_nowait(("transcript", (line,)))

    async def _write_records(self) -> None:
        while True:
            kind, args = await self._records.get()
            try:
                if kind == "event":
                    await self.sink.event(*args)
                elif kind == "transcript":
                    await self.sink.transcript(*args)
                else:
                    return
            except Exception:
                log.exception("could not record %s for the call", kind)

    async def _drain_records(self) -> None:
        writer = self._writer
        if writer is None:
            return
        self._records.put_nowait(("stop", ()))
        try:
            await asyncio.wait_for(asyncio.shield(writer), timeout=RECORD_DRAIN_SECONDS)
        except TimeoutError:
            log.error("call record writes did not finish; the rest are lost")
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    # -- housekeeping --------------------------------------------------------------------
    def _audio(self, start_frame: int, end_frame: int) -> Pcm:
        """The caller's frames ``start_frame`` .. ``end_frame`` (exclusive, with the
        pre-roll before, as far as the ring still holds them) at the recognizer's rate."""
        rows = self._heard.shape[0]
        hi = min(end_frame, self.frames)
        lo = max(start_frame - PREROLL_FRAMES, hi - rows, 0)
        if hi <= lo:
            return np.zeros(0, dtype=np.int16)
        pcm = self._heard[np.arange(lo, hi) % rows].reshape(-1)
        return resample_block(pcm, self.port.sample_rate, STT_RATE)

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=f"call-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("conversation task failed", exc_info=task.exception())
            self._ending = self._ending or "error"

    async def _close(self) -> None:
        for action in self.turns.finish():
            if isinstance(action, CallerTurn):
                self._note("turn.unanswered", "Caller hung up mid-sentence")
        reply = self._reply
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if reply is not None:
            self._record_agent_line(reply, interrupted=True)


async def _say(text: str) -> AsyncIterator[ReplyItem]:
    yield text
