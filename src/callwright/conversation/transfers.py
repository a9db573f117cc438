"""Handing the caller to someone else: blind, cold and warm transfers.

The loop calls ``Transfers.blind`` or ``Transfers.warm`` from its own frame loop, so
while a transfer runs it is the only reader of the port's events: every caller frame is
answered by exactly one frame (hold audio, a prompt, or silence), as in the loop.

1. Blind: ``port.transfer`` (SIP REFER: the caller's side calls the target). If the
   line refuses or the transfer fails and the port can place calls itself
   (``BridgingPort``), the agent falls back to a cold transfer: the caller hears
   silence while the target is called, then the two calls are bridged in process
   until one side hangs up. If the target is not reached the conversation goes on.
2. Warm: the caller is put on hold (the waiting prompt, then silence), the target is
   called, the human hears the brief, the merge prompt is said to both, and the calls
   are bridged. The target not answering (or hanging up before the merge) brings the
   agent back to the caller; the caller hanging up cancels the transfer.

Each step is recorded as an event; the warm transfer's record (``warm_transfer_call``:
``state`` and one ``proxy_agent_calls`` attempt) is given in every
``call.warm_transfer`` event and returned in the outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np

from callwright.conversation.ports import (
    AudioPort,
    BridgingPort,
    CallerAudio,
    CallerHungUp,
    NotReached,
    Pcm,
    Synthesizer,
    WarmTransfer,
)
from callwright.media.frames import AudioFrame, Framer, samples_per_frame
from callwright.media.resample import StreamingResampler
from callwright.providers.llm import LLM, ChatMessage, LLMError, TextDelta

Note = Callable[[str, str, dict[str, Any] | None], None]
Pumped = Literal["hung_up", "done"]
T = TypeVar("T")


@dataclass(slots=True)
class TransferOutcome:
    transferred: bool  # the caller was handed over (the agent's part is over)
    caller_gone: bool = False  # the caller hung up during the transfer
    warm_record: dict[str, Any] | None = None


class Speech:
    """A prompt as 20 ms frames at the port's rate, synthesized in a task while the
    frames already made are played."""

    def __init__(self, tts: Synthesizer, rate: int) -> None:
        self.tts = tts
        self.rate = rate
        self._frames: deque[Pcm] = deque()
        self._silence: Pcm = np.zeros(samples_per_frame(rate), dtype=np.int16)
        self._task: asyncio.Task[None] | None = None
        self.frames_played = 0

    def say(self, text: str | None) -> Speech:
        if text:
            self._task = asyncio.create_task(self._synthesize(text), name="transfer-speech")
        return self

    @property
    def finished(self) -> bool:
        return (self._task is None or self._task.done()) and not self._frames

    def next_frame(self) -> Pcm:
        if self._frames:
            self.frames_played += 1
            return self._frames.popleft()
        return self._silence

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _synthesize(self, text: str) -> None:
        resampler = StreamingResampler(self.tts.sample_rate, self.rate, quality="MQ")
        framer = Framer(self.rate)
        async for chunk in self.tts.synthesize(text):
            out = resampler.process(AudioFrame(chunk, self.tts.sample_rate, 0))
            if out is not None:
                self._frames.extend(f.samples for f in framer.push(out.samples))
        tail = resampler.flush()
        if tail is not None:
            self._frames.extend(f.samples for f in framer.push(tail.samples))
        last = framer.flush()
        if last is not None:
            padded = self._silence.copy()
            padded[: last.num_samples] = last.samples
            self._frames.append(padded)


async def pump(port: AudioPort, speech: Speech, done: Callable[[], bool]) -> Pumped:
    """Answer each of the port's frames with the next frame of ``speech`` (silence when
    there is none) until ``done()`` or the line hangs up. Key presses are ignored."""
    async for event in port.events():
        if isinstance(event, CallerHungUp):
            return "hung_up"
        if isinstance(event, CallerAudio):
            await port.send(speech.next_frame())
            if done():
                return "done"
    return "hung_up"


class Transfers:
    """Carries out one call's transfers (see the module docstring)."""

    def __init__(self, port: AudioPort, tts: Synthesizer, note: Note) -> None:
        self.port = port
        self.tts = tts
        self.note = note

    # -- blind, with the cold fallback ---------------------------------------------------
    async def blind(self, number: str) -> TransferOutcome:
        try:
            await self.port.transfer(number)
        except Exception as exc:  # the line refused (REFER declined, failed NOTIFY...)
            self.note(
                "call.transfer_failed",
                f"Transfer to {number} failed: {exc}",
                {"number": number, "method": "refer"},
            )
        else:
            return TransferOutcome(transferred=True)
        port = self.port
        if not isinstance(port, BridgingPort):
            return TransferOutcome(transferred=False)
        self.note(
            "call.transfer_fallback",
            f"Calling {number} to bridge the caller (cold transfer)",
            {"number": number, "method": "bridge"},
        )
        hold = _Hold(port, Speech(self.tts, port.sample_rate))
        stop = asyncio.Event()
        try:
            target = await hold.during(port.dial(number, stop=stop), stop)
        except NotReached as exc:
            self.note(
                "call.transfer_failed",
                f"Transfer to {number} failed: {exc}",
                {"number": number, "method": "bridge", "status": exc.status},
            )
            return TransferOutcome(transferred=False)
        except _CallerLeft:
            return TransferOutcome(transferred=False, caller_gone=True)
        finally:
            await hold.stop()
        return await self._bridge(port, target, number)

    async def _bridge(self, port: BridgingPort, target: AudioPort, number: str) -> TransferOutcome:
        self.note("call.bridged", f"Caller bridged to {number}", {"number": number})
        ended_by = await port.bridge(target)
        self.note(
            "call.bridge_ended",
            f"Bridge to {number} ended: the {ended_by} hung up",
            {"number": number, "ended_by": ended_by},
        )
        return TransferOutcome(transferred=True)

    # -- warm ----------------------------------------------------------------------------
    async def warm(self, number: str, warm: WarmTransfer) -> TransferOutcome:
        port = self.port
        record: dict[str, Any] = {
            "state": "STARTED",
            "proxy_agent_calls": [{"state": "ATTEMPTING", "call_id": None, "phone_number": number}],
        }
        attempt = record["proxy_agent_calls"][0]

        def state(overall: str, attempt_state: str, message: str) -> None:
            record["state"] = overall
            attempt["state"] = attempt_state
            self.note("call.warm_transfer", message, {"warm_transfer_call": _copy(record)})

        state("STARTED", "ATTEMPTING", f"Warm transfer to {number}: calling")
        if not isinstance(port, BridgingPort):
            state("NO_ANSWER", "FAILED", "Warm transfer: this line cannot place calls")
            return TransferOutcome(transferred=False, warm_record=record)
        hold = _Hold(port, Speech(self.tts, port.sample_rate).say(warm.waiting_prompt))
        target: AudioPort | None = None
        stop = asyncio.Event()
        try:
            try:
                dialing = port.dial(number, caller_id=warm.from_number, stop=stop)
                target = await hold.during(dialing, stop)
            except NotReached as exc:
                state("NO_ANSWER", "NO_ANSWER" if exc.status != "failed" else "FAILED", str(exc))
                return TransferOutcome(transferred=False, warm_record=record)
            state("STARTED", "STARTED", f"Warm transfer: {number} answered; briefing")
            self.note(
                "call.warm_transfer_brief", "Brief for the transfer target", {"text": warm.brief}
            )
            brief = Speech(self.tts, target.sample_rate).say(warm.brief)
            try:
                briefed = await hold.during(pump(target, brief, _finished(brief)))
            finally:
                await brief.close()
            if briefed == "hung_up":
                state("NO_ANSWER", "HUNG_UP", f"Warm transfer: {number} hung up before the merge")
                target = None
                return TransferOutcome(transferred=False, warm_record=record)
        except _CallerLeft:
            state("CANCELLED", "CANCELLED", "Warm transfer cancelled: the caller hung up")
            if target is not None:
                with contextlib.suppress(Exception):
                    await target.hang_up()
            return TransferOutcome(transferred=False, caller_gone=True, warm_record=record)
        finally:
            await hold.stop()
        if warm.merge_prompt:
            gone = await self._both_hear(port, target, warm.merge_prompt)
            if gone is not None:
                state("CANCELLED", "HUNG_UP", f"Warm transfer: the {gone} hung up at the merge")
                other = target if gone == "caller" else port
                with contextlib.suppress(Exception):
                    await other.hang_up()
                return TransferOutcome(
                    transferred=False, caller_gone=gone == "caller", warm_record=record
                )
        state("MERGED", "MERGED", f"Warm transfer: caller merged with {number}")
        outcome = await self._bridge(port, target, number)
        outcome.warm_record = record
        return outcome

    async def _both_hear(self, caller: AudioPort, target: AudioPort, text: str) -> str | None:
        """Say ``text`` to both calls at once; who hung up meanwhile, if anyone."""
        speeches = [Speech(self.tts, p.sample_rate).say(text) for p in (caller, target)]
        try:
            results = await asyncio.gather(
                *(pump(p, s, _finished(s)) for p, s in zip((caller, target), speeches, strict=True))
            )
        finally:
            for speech in speeches:
                await speech.close()
        if results[0] == "hung_up":
            return "caller"
        if results[1] == "hung_up":
            return "target"
        return None


def _finished(speech: Speech) -> Callable[[], bool]:
    return lambda: speech.finished


class _CallerLeft(Exception):
    """The caller hung up while on hold."""


class _Hold:
    """The caller on hold: their frames answered with the hold speech (then silence)
    while something else runs."""

    def __init__(self, port: AudioPort, speech: Speech) -> None:
        self.speech = speech
        self._release = False
        self._task = asyncio.create_task(
            pump(port, speech, lambda: self._release), name="transfer-hold"
        )

    async def during(self, work: Awaitable[T], stop: asyncio.Event | None = None) -> T:
        """``work``'s result; ``_CallerLeft`` if the caller hangs up first (``stop`` is
        set for ``work`` to give up cleanly, else it is cancelled; a call it still
        returns is hung up)."""
        job = asyncio.ensure_future(work)
        if not self._task.done():
            await asyncio.wait({job, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if job.done():
            return job.result()
        if stop is not None:
            stop.set()
        else:
            job.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            result = await job
            if isinstance(result, AudioPort):
                await result.hang_up()
        raise _CallerLeft

    async def stop(self) -> None:
        self._release = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self.speech.close()


def _copy(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "proxy_agent_calls": [dict(a) for a in record["proxy_agent_calls"]]}


# -- the brief ---------------------------------------------------------------------------
BRIEF_SYSTEM = (
    "You are a phone agent handing a caller over to a human colleague, who will hear "
    "what you write read aloud before the caller joins. In two or three short spoken "
    "sentences say who is calling and what they need. No lists or markdown."
)
BRIEF_LINES = 3  # the caller's last lines quoted in a brief made without an LLM


async def make_brief(
    history: Sequence[ChatMessage],
    variables: Mapping[str, Any],
    *,
    instructions: str | None = None,
    llm: LLM | None = None,
) -> str:
    """What the human hears before the merge: from the LLM when there is one (with the
    node's ``instructions``), else (or if it fails) the caller's last lines and the
    variables gathered."""
    if llm is not None:
        system = "\n".join(p for p in (BRIEF_SYSTEM, instructions) if p)
        words: list[str] = []
        with contextlib.suppress(LLMError):
            async for chunk in llm.stream([ChatMessage("system", system), *history]):
                if isinstance(chunk, TextDelta):
                    words.append(chunk.text)
        if "".join(words).strip():
            return "".join(words).strip()
    return plain_brief(history, variables)


def plain_brief(history: Sequence[ChatMessage], variables: Mapping[str, Any]) -> str:
    """A brief with no model: deterministic, from what the caller said and gave."""
    said = [m.content.strip() for m in history if m.role == "user" and m.content.strip()]
    parts = ["You have a call transferred from the phone agent."]
    if said:
        quoted = " ".join(said[-BRIEF_LINES:])
        parts.append(f"The caller said: {quoted}")
    facts = [
        f"{name.replace('_', ' ')}: {value}"
        for name, value in variables.items()
        if not name.startswith("_") and isinstance(value, str | int | float) and str(value)
    ]
    if facts:
        parts.append("Details: " + "; ".join(facts) + ".")
    parts.append("Connecting you now.")
    return " ".join(parts)
