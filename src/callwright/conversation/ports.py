"""What the live loop talks to: the audio port of a transport, the speech back-ends, the
agent that decides what to say, and the sink that records the call.

These are the loop's own narrow interfaces. Transports (SIP, Twilio, browser) implement
``AudioPort``; the provider packages are adapted to ``Transcriber``/``Synthesizer``/
``VoiceActivity``; the pathway engine and the task-prompt agent implement ``Agent``;
the store implements ``CallSink``. Tests use small scripted versions of each.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Pcm = npt.NDArray[np.int16]


# -- the transport's side --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CallerAudio:
    """One 20 ms frame from the caller (after the transport's jitter buffer and codec)."""

    pcm: Pcm


@dataclass(frozen=True, slots=True)
class Keypress:
    digit: str


@dataclass(frozen=True, slots=True)
class CallerHungUp:
    pass


PortEvent = CallerAudio | Keypress | CallerHungUp


@runtime_checkable
class AudioPort(Protocol):
    """A live call's audio at ``sample_rate``. The transport delivers one caller frame
    every 20 ms (concealment or silence when nothing arrived) and the loop answers each
    with exactly one agent frame, so both directions share the transport's clock."""

    sample_rate: int

    def events(self) -> AsyncIterator[PortEvent]: ...

    async def send(self, pcm: Pcm) -> None: ...

    async def send_digits(self, digits: str) -> None: ...

    async def transfer(self, number: str) -> None: ...

    async def hang_up(self) -> None: ...


class NotReached(Exception):
    """A second call (a transfer target) was not answered: ``status`` is busy,
    no-answer or failed."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@runtime_checkable
class BridgingPort(AudioPort, Protocol):
    """A port whose transport can call someone else and join the two calls in process
    (cold transfer when the line refuses a blind transfer, warm transfer)."""

    async def dial(
        self, number: str, *, caller_id: str | None = None, stop: asyncio.Event | None = None
    ) -> AudioPort:
        """The answered call to ``number`` (``NotReached`` if it was not answered)."""
        ...

    async def bridge(self, other: AudioPort) -> str:
        """Join this call and ``other`` until one hangs up ("caller" or "target": who
        did), then hang up the other."""
        ...


# -- speech ------------------------------------------------------------------------------
class VoiceActivity(Protocol):
    """Speech probability of one 20 ms frame at the port's sample rate."""

    def probability(self, pcm: Pcm) -> float: ...


class Transcriber(Protocol):
    async def transcribe(self, pcm16k: Pcm) -> str: ...


class Synthesizer(Protocol):
    sample_rate: int

    def synthesize(self, text: str) -> AsyncIterator[Pcm]: ...


# -- the agent ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class EndCall:
    reason: str = "agent"


@dataclass(frozen=True, slots=True)
class WarmTransfer:
    """How to hand the caller to a human: hold the caller (``waiting_prompt`` said,
    then silence), call the target (from ``from_number``), tell the human ``brief``,
    join the calls (``merge_prompt`` said to both first)."""

    brief: str
    waiting_prompt: str | None = None
    merge_prompt: str | None = None
    from_number: str | None = None


@dataclass(frozen=True, slots=True)
class TransferTo:
    number: str
    warm: WarmTransfer | None = None


@dataclass(frozen=True, slots=True)
class PressDigits:
    digits: str


@dataclass(frozen=True, slots=True)
class Note:
    """Something the agent did that belongs in the call's events (node entered, tool
    called, variables set...)."""

    type: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)


ReplyItem = str | EndCall | TransferTo | PressDigits | Note


class Agent(Protocol):
    """Decides what to say. Each method streams a reply: text pieces (spoken as they
    come) and actions (done once what precedes them has been heard)."""

    def greet(self) -> AsyncIterator[ReplyItem]: ...

    def reply(self, caller_text: str) -> AsyncIterator[ReplyItem]: ...

    def keypress(self, digit: str) -> AsyncIterator[ReplyItem]: ...

    def reprompt(self) -> AsyncIterator[ReplyItem]: ...


@runtime_checkable
class ResumesAfterTransfer(Protocol):
    """An agent that can pick the conversation up again when a transfer it asked for
    did not happen (the pathway goes back to where it was before the transfer)."""

    def transfer_failed(self, number: str) -> None: ...


# -- the record --------------------------------------------------------------------------
Speaker = Literal["user", "assistant"]


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    speaker: Speaker
    text: str
    start_ms: int
    end_ms: int
    interrupted: bool = False


class CallSink(Protocol):
    """Where the loop records the call as it happens (the store in production)."""

    async def transcript(self, line: TranscriptLine) -> None: ...

    async def event(self, type: str, message: str, data: dict[str, Any] | None = None) -> None: ...
