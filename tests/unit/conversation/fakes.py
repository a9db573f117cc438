"""Scripted stand-ins for the loop's ports (unit tests only).

Audio code: a caller utterance is a run of frames filled with one sample value, and the
scripted STT knows which text each value stands for; agent speech is frames of
``AGENT_LEVEL``. The port runs at 16 kHz, so the loop's resamplers pass audio through
unchanged and these codes survive.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from callwright.conversation.ports import (
    CallerAudio,
    CallerHungUp,
    EndCall,
    Keypress,
    Pcm,
    PortEvent,
    ReplyItem,
    TranscriptLine,
)

RATE = 16_000
FRAME = 320
AGENT_LEVEL = 7000
SETTLE = 20  # event-loop turns given to the loop's tasks per frame: fakes finish in fewer


@dataclass
class ScriptedPort:
    """Plays a caller script: ``("say", text, frames)``, ``("quiet", frames)``,
    ``("press", digit)``, ``("hang_up",)``. Records every agent frame sent."""

    script: list[tuple[Any, ...]]
    codes: dict[int, str] = field(default_factory=dict)
    sample_rate: int = RATE
    sent: list[bool] = field(default_factory=list)  # per frame: was it agent speech?
    digits_sent: list[str] = field(default_factory=list)
    transferred: list[str] = field(default_factory=list)
    hung_up: bool = False

    def code_for(self, text: str) -> int:
        code = 1000 + 100 * (len(self.codes) + 1)
        self.codes[code] = text
        return code

    async def events(self) -> AsyncIterator[PortEvent]:
        for step in self.script:
            kind = step[0]
            if kind == "hang_up":
                yield CallerHungUp()
                return
            if kind == "press":
                yield Keypress(step[1])
                continue
            level, frames = (self.code_for(step[1]), step[2]) if kind == "say" else (0, step[1])
            for _ in range(frames):
                for _ in range(SETTLE):
                    await asyncio.sleep(0)
                yield CallerAudio(np.full(FRAME, level, dtype=np.int16))

    async def send(self, pcm: Pcm) -> None:
        self.sent.append(bool(np.any(pcm == AGENT_LEVEL)))

    async def send_digits(self, digits: str) -> None:
        self.digits_sent.append(digits)

    async def transfer(self, number: str) -> None:
        self.transferred.append(number)

    async def hang_up(self) -> None:
        self.hung_up = True

    def speech_runs(self) -> list[tuple[int, int]]:
        """(first, last) frame index of each run of agent speech sent."""
        runs: list[tuple[int, int]] = []
        for i, speaking in enumerate(self.sent):
            if speaking and (not runs or runs[-1][1] != i - 1):
                runs.append((i, i))
            elif speaking:
                runs[-1] = (runs[-1][0], i)
        return runs


class LevelVad:
    def probability(self, pcm16k: Pcm) -> float:
        return 1.0 if int(np.abs(pcm16k).max(initial=0)) >= 1000 else 0.0


@dataclass
class CodeStt:
    port: ScriptedPort
    calls: int = 0

    async def transcribe(self, pcm16k: Pcm) -> str:
        self.calls += 1
        values, counts = np.unique(pcm16k[pcm16k >= 1000], return_counts=True)
        return self.port.codes.get(int(values[counts.argmax()]), "") if len(values) else ""


class LevelTts:
    """Two frames of speech per word; ``delay`` turns of the event loop before each."""

    sample_rate = RATE

    def __init__(self, chunk_frames: int = 2) -> None:
        self.chunk_frames = chunk_frames
        self.spoken: list[str] = []

    async def synthesize(self, text: str) -> AsyncIterator[Pcm]:
        self.spoken.append(text)
        for _ in text.split():
            await asyncio.sleep(0)
            yield np.full(FRAME * self.chunk_frames, AGENT_LEVEL, dtype=np.int16)


@dataclass
class ScriptedAgent:
    greeting: list[ReplyItem] = field(default_factory=lambda: ["Hello, how can I help?"])
    replies: dict[str, list[ReplyItem]] = field(default_factory=dict)
    heard: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    reprompts: int = 0

    async def _items(self, items: list[ReplyItem]) -> AsyncIterator[ReplyItem]:
        for item in items:
            await asyncio.sleep(0)
            yield item

    def greet(self) -> AsyncIterator[ReplyItem]:
        return self._items(self.greeting)

    def reply(self, caller_text: str) -> AsyncIterator[ReplyItem]:
        self.heard.append(caller_text)
        return self._items(self.replies.get(caller_text, ["Sorry, could you say that again?"]))

    def keypress(self, digit: str) -> AsyncIterator[ReplyItem]:
        self.keys.append(digit)
        return self._items([f"You pressed {digit}.", EndCall("keypad")])

    def reprompt(self) -> AsyncIterator[ReplyItem]:
        self.reprompts += 1
        return self._items(["Are you still there?"])


@dataclass
class ListSink:
    lines: list[TranscriptLine] = field(default_factory=list)
    events: list[tuple[str, str, dict[str, Any] | None]] = field(default_factory=list)

    async def transcript(self, line: TranscriptLine) -> None:
        self.lines.append(line)

    async def event(self, type: str, message: str, data: dict[str, Any] | None = None) -> None:
        self.events.append((type, message, data))

    def types(self) -> list[str]:
        return [t for t, _, _ in self.events]


__all__ = ["CallerHungUp", "ScriptedPort"]
