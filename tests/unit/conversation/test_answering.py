"""Screening an answered call over a fake 8 kHz port: who answered, and the voicemail
actions (hang up, leave a message after the beep, ignore), counted in frames."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from tests.unit.conversation.fakes import ListSink
from tests.unit.media.test_answering import silence, tone, voice

from callwright.conversation.answering import (
    MessageTiming,
    ResumedPort,
    Screened,
    Screener,
    ScreeningPolicy,
    ShiftableRecorder,
    ShiftedSink,
    greeting_line,
    message_line,
)
from callwright.conversation.ports import (
    BridgingPort,
    CallerAudio,
    CallerHungUp,
    Keypress,
    Pcm,
    PortEvent,
    TranscriptLine,
)
from callwright.media.answering import Decision
from callwright.media.frames import AudioFrame

RATE = 8000
FRAME = 160
MESSAGE_LEVEL = 5000
SETTLE = 5


@dataclass
class PcmPort:
    """Plays ``audio`` (then silence, up to ``max_frames``) as caller frames, with
    keypresses at given frame indexes; records what the agent sends. After ``hang_up``
    the next event is ``CallerHungUp``; at the end of ``audio`` with ``hang_up_at_end``
    the caller hangs up."""

    audio: Pcm
    max_frames: int = 3000
    keys: dict[int, str] = field(default_factory=dict)
    hang_up_at_end: bool = False
    sample_rate: int = RATE
    sent: list[Pcm] = field(default_factory=list)
    hung_up_at: int | None = None
    read: int = 0  # caller frames delivered
    ready: dict[int, asyncio.Event] = field(default_factory=dict)  # set at these frames

    async def events(self) -> AsyncIterator[PortEvent]:
        frames = len(self.audio) // FRAME
        while self.read < self.max_frames:
            if self.hung_up_at is not None or (self.hang_up_at_end and self.read >= frames):
                yield CallerHungUp()
                return
            for _ in range(SETTLE):
                await asyncio.sleep(0)
            index = self.read
            if index in self.ready:
                self.ready[index].set()
            if index in self.keys:
                yield Keypress(self.keys.pop(index))
            pcm = self.audio[index * FRAME : (index + 1) * FRAME]
            self.read += 1
            yield CallerAudio(pcm if len(pcm) == FRAME else np.zeros(FRAME, dtype=np.int16))
        yield CallerHungUp()

    async def send(self, pcm: Pcm) -> None:
        assert len(pcm) == FRAME
        self.sent.append(pcm.copy())

    async def send_digits(self, digits: str) -> None:
        pass

    async def transfer(self, number: str) -> None:
        pass

    async def hang_up(self) -> None:
        if self.hung_up_at is None:
            self.hung_up_at = len(self.sent)

    def loud(self) -> list[int]:
        """Indexes of the agent frames that carried sound."""
        return [i for i, pcm in enumerate(self.sent) if np.abs(pcm).max() > 1000]


class LevelTts:
    """``frames`` frames of a constant level per text, at the port's rate."""

    sample_rate = RATE

    def __init__(self, frames: int = 50, gate: asyncio.Event | None = None) -> None:
        self.frames = frames
        self.gate = gate
        self.spoken: list[str] = []

    async def synthesize(self, text: str) -> AsyncIterator[Pcm]:
        self.spoken.append(text)
        if self.gate is not None:
            await self.gate.wait()
        yield np.full(self.frames * FRAME, MESSAGE_LEVEL, dtype=np.int16)


class BrokenTts(LevelTts):
    async def synthesize(self, text: str) -> AsyncIterator[Pcm]:
        raise RuntimeError("voice not available")
        yield np.zeros(0, dtype=np.int16)  # pragma: no cover


async def screen(
    audio: Pcm,
    policy: ScreeningPolicy,
    *,
    tts: LevelTts | None = None,
    timing: MessageTiming | None = None,
    **port_args: Any,
) -> tuple[Screened, PcmPort, ListSink, list[Decision]]:
    port = PcmPort(audio, **port_args)
    sink = ListSink()
    decided: list[Decision] = []

    async def on_decision(decision: Decision) -> None:
        decided.append(decision)

    screener = Screener(
        port,
        aiter(port.events()),
        policy,
        vad=None,
        tts=tts or LevelTts(),
        sink=sink,
        on_decision=on_decision,
        timing=timing,
    )
    return await screener.run(), port, sink, decided


HELLO = np.concatenate([silence(10), voice(25), silence(200)])  # "Hello?" on frames 10..34
# A 4 s machine greeting, a pause, a 500 ms beep on frames 215..239, then silence.
MACHINE = np.concatenate([voice(200), silence(15), tone(25, 1000.0), silence(300)])


async def test_a_human_goes_on_to_the_conversation_at_once() -> None:
    screened, port, sink, decided = await screen(HELLO, ScreeningPolicy("leave_message", "Hi."))
    assert screened.outcome == "converse"
    assert decided == [Decision("human", "short-greeting", 74, 500, 10)]
    # Every caller frame read was answered by one (silent) agent frame; nothing more.
    assert screened.frames == port.read == len(port.sent) == 75
    assert port.loud() == [] and port.hung_up_at is None
    assert len(screened.greeting) == 75 * FRAME
    [(kind, _, data)] = sink.events
    assert kind == "call.answered_by"
    assert data == {
        "answered_by": "human",
        "reason": "short-greeting",
        "frame": 74,
        "at_ms": 1500,
        "greeting_ms": 500,
    }


async def test_a_voicemail_is_hung_up_on_by_default() -> None:
    screened, port, sink, decided = await screen(MACHINE, ScreeningPolicy())
    assert screened.outcome == "hung_up" and screened.answered_by == "voicemail"
    assert decided[0].reason == "long-greeting" and decided[0].frame_index == 149
    assert port.hung_up_at == 150 and port.loud() == []
    assert sink.types() == ["call.answered_by", "call.voicemail_hangup"]


async def test_a_message_is_left_after_the_beep() -> None:
    tts = LevelTts(frames=60)
    policy = ScreeningPolicy("leave_message", "Please call Elm Clinic back.")
    screened, port, sink, _ = await screen(MACHINE, policy, tts=tts)
    assert screened.outcome == "voicemail_left"
    assert tts.spoken == ["Please call Elm Clinic back."]
    # The beep (frames 215..239) is reported on frame 240, and the agent frame that
    # answers it is the message's first: 60 frames of message, then a 400 ms tail.
    assert screened.beep is not None and screened.beep.start_frame == 215
    assert port.loud() == list(range(240, 300))
    assert screened.message_frames == (240, 320)
    assert port.hung_up_at == 320 == len(port.sent)
    left = [data for kind, _, data in sink.events if kind == "call.voicemail_left"]
    assert left == [
        {
            "after": "beep",
            "beep": True,
            "beep_frame": 215,
            "beep_hz": 1000.0,
            "message_start_ms": 4800,
            "message_end_ms": 6400,
            "decided_frame": 149,
        }
    ]
    # The greeting kept (for the transcript) runs up to the message.
    assert len(screened.greeting) == 240 * FRAME


async def test_without_a_beep_the_message_follows_the_greeting_and_a_silence() -> None:
    greeting = np.concatenate([voice(200), silence(400)])
    screened, port, sink, _ = await screen(greeting, ScreeningPolicy("leave_message", "Hi."))
    # Silence from frame 200; 2 s of it (100 frames) is reached on frame 299.
    assert port.loud()[0] == 299 and screened.message_frames == (299, 299 + 50 + 20)
    assert screened.beep is None
    [data] = [d for kind, _, d in sink.events if kind == "call.voicemail_left"]
    assert data is not None and data["after"] == "silence" and data["beep"] is False


async def test_a_greeting_that_never_ends_gets_the_message_at_the_limit() -> None:
    endless = voice(1000)
    timing = MessageTiming(max_wait_ms=2000)
    screened, port, _, _ = await screen(
        endless, ScreeningPolicy("leave_message", "Hi."), timing=timing
    )
    # Decided on frame 149; 2 s (100 frames) later, on frame 249, the message starts.
    assert port.loud()[0] == 249 and screened.outcome == "voicemail_left"


async def test_a_slow_voice_delays_the_message_not_the_listening() -> None:
    gate = asyncio.Event()
    tts = LevelTts(frames=10, gate=gate)
    policy = ScreeningPolicy("leave_message", "Hi.")
    # The synthesis finishes only after frame 259 is read, 20 frames after the beep.
    screened, port, _, _ = await screen(MACHINE, policy, tts=tts, ready={259: gate})
    assert port.loud()[0] == 260 and screened.message_frames == (260, 260 + 10 + 20)


async def test_the_callee_hanging_up_mid_message_is_recorded() -> None:
    greeting = np.concatenate([voice(200), silence(15), tone(25, 1000.0), silence(30)])
    policy = ScreeningPolicy("leave_message", "Hi.")
    screened, port, sink, _ = await screen(greeting, policy, hang_up_at_end=True)
    assert screened.outcome == "caller_hung_up"
    assert screened.message_frames == (240, 270)  # 30 of the message's 70 frames went out
    assert "call.voicemail_left" not in sink.types()
    line_sink = ListSink()
    await message_line(screened, "Hi.", line_sink)
    assert line_sink.lines == [TranscriptLine("assistant", "Hi.", 4800, 5400, True)]


async def test_leave_message_without_a_message_hangs_up() -> None:
    screened, port, sink, _ = await screen(MACHINE, ScreeningPolicy("leave_message", None))
    assert screened.outcome == "hung_up" and port.hung_up_at == 150
    assert sink.types() == [
        "call.answered_by",
        "call.voicemail_no_message",
        "call.voicemail_hangup",
    ]


async def test_a_voice_that_fails_hangs_up_without_a_message() -> None:
    policy = ScreeningPolicy("leave_message", "Hi.")
    screened, port, sink, _ = await screen(MACHINE, policy, tts=BrokenTts())
    assert screened.outcome == "hung_up" and port.loud() == []
    assert port.hung_up_at == 240  # once the beep was heard and the message was due
    assert "call.voicemail_failed" in sink.types()


async def test_ignore_goes_on_to_the_conversation() -> None:
    screened, port, _, _ = await screen(MACHINE, ScreeningPolicy("ignore"))
    assert screened.outcome == "converse" and screened.answered_by == "voicemail"
    assert screened.frames == 150 and port.hung_up_at is None


async def test_hanging_up_before_a_decision() -> None:
    short = np.concatenate([silence(10), voice(30)])
    screened, _, sink, decided = await screen(short, ScreeningPolicy(), hang_up_at_end=True)
    assert screened.outcome == "caller_hung_up" and screened.decision is None
    assert screened.answered_by == "unknown" and decided == [] and sink.events == []


async def test_the_conversation_reads_on_where_screening_stopped() -> None:
    port = PcmPort(HELLO, max_frames=100, keys={30: "5"})
    events = aiter(port.events())
    screener = Screener(port, events, ScreeningPolicy(), vad=None, tts=LevelTts(), sink=ListSink())
    screened = await screener.run()
    assert screened.frames == 75 and screened.pending == [Keypress("5")]
    resumed = ResumedPort(port, events, screened.pending)
    rest = [event async for event in resumed.events()]
    # The keypress first, then frames 75..99 (none lost, none read twice), then the end.
    assert rest[0] == Keypress("5") and isinstance(rest[-1], CallerHungUp)
    audio = [e for e in rest if isinstance(e, CallerAudio)]
    assert len(audio) == 25 and port.read == 100
    await resumed.send(np.zeros(FRAME, dtype=np.int16))
    await resumed.hang_up()
    assert len(port.sent) == 76 and port.hung_up_at == 76
    assert resumed.max_frames == 100  # the transport's own attributes show through


@dataclass
class DialingPort(PcmPort):
    dialed: list[str] = field(default_factory=list)

    async def dial(
        self, number: str, *, caller_id: str | None = None, stop: asyncio.Event | None = None
    ) -> PcmPort:
        self.dialed.append(number)
        return PcmPort(silence(10))

    async def bridge(self, other: Any) -> str:
        return "caller"


async def test_a_resumed_port_keeps_the_transports_transfer_powers() -> None:
    plain = PcmPort(HELLO)
    assert not isinstance(ResumedPort(plain, aiter(plain.events()), []), BridgingPort)
    port = DialingPort(HELLO, max_frames=20)
    resumed = ResumedPort(port, aiter(port.events()), [])
    assert isinstance(resumed, BridgingPort)
    await resumed.dial("+15550100")
    assert port.dialed == ["+15550100"]
    # A transfer reads the port while the conversation's own reader waits: both read
    # on in the one stream, no frame twice.
    conversation = resumed.events()
    assert isinstance(await anext(conversation), CallerAudio)
    transfer = [e async for e in _take(resumed.events(), 5)]
    assert len(transfer) == 5 and port.read == 6
    rest = [e async for e in conversation]
    assert len(rest) == 15 and isinstance(rest[-1], CallerHungUp) and port.read == 20


async def _take(events: AsyncIterator[PortEvent], n: int) -> AsyncIterator[PortEvent]:
    async for event in events:
        yield event
        n -= 1
        if not n:
            return


async def test_the_vad_score_is_used_when_there_is_one() -> None:
    class DeafVad:
        def probability(self, pcm: Pcm) -> float:
            return 0.0

    port = PcmPort(HELLO)
    screener = Screener(
        port,
        aiter(port.events()),
        ScreeningPolicy(),
        vad=DeafVad(),
        tts=LevelTts(),
        sink=ListSink(),
    )
    screened = await screener.run()
    # The VAD hears nobody, so the level does not count: unknown after 3 s of "silence".
    assert screened.decision == Decision("unknown", "silence", 149, 0, None)


# -- the record ----------------------------------------------------------------------------
@dataclass
class FixedStt:
    text: str
    heard: list[int] = field(default_factory=list)

    async def transcribe(self, pcm16k: Pcm) -> str:
        self.heard.append(len(pcm16k))
        return self.text


async def test_the_greeting_becomes_the_first_line() -> None:
    screened, _, _, _ = await screen(HELLO, ScreeningPolicy())
    sink, stt = ListSink(), FixedStt("Hello?")
    await greeting_line(screened, stt, sink, RATE)
    # From the greeting's first frame (10) for its 500 ms; audio up to its end, at 16 kHz.
    assert sink.lines == [TranscriptLine("user", "Hello?", 200, 700)]
    assert stt.heard == [700 * 16]


async def test_a_voicemail_greeting_line_runs_to_the_message() -> None:
    screened, _, _, _ = await screen(MACHINE, ScreeningPolicy("leave_message", "Hi."))
    sink = ListSink()
    await greeting_line(screened, FixedStt("You have reached Smith."), sink, RATE)
    await message_line(screened, "Hi.", sink)
    assert sink.lines == [
        TranscriptLine("user", "You have reached Smith.", 0, 4800),
        TranscriptLine("assistant", "Hi.", 4800, 6200),
    ]


async def test_no_line_for_silence_or_no_words() -> None:
    screened, _, _, _ = await screen(silence(200), ScreeningPolicy())
    sink = ListSink()
    await greeting_line(screened, FixedStt("noise"), sink, RATE)
    screened, _, _, _ = await screen(HELLO, ScreeningPolicy())
    await greeting_line(screened, FixedStt("  "), sink, RATE)
    assert sink.lines == []


async def test_the_shifted_sink_moves_lines_and_writes_the_greeting_first() -> None:
    sink = ListSink()
    release = asyncio.Event()

    async def greeting() -> None:
        await release.wait()
        await sink.transcript(TranscriptLine("user", "Hello?", 200, 700))

    first = asyncio.create_task(greeting())
    shifted = ShiftedSink(sink, 1500, first)
    writing = asyncio.create_task(shifted.transcript(TranscriptLine("assistant", "Hi.", 0, 900)))
    await shifted.event("turn.latency", "Turn latency", {"x": 1})  # events need not wait
    for _ in range(5):
        await asyncio.sleep(0)
    assert sink.lines == [] and sink.types() == ["turn.latency"]
    release.set()
    await writing
    assert sink.lines == [
        TranscriptLine("user", "Hello?", 200, 700),
        TranscriptLine("assistant", "Hi.", 1500, 2400),
    ]


def test_the_shiftable_recorder_places_later_frames_after_screening() -> None:
    recorder = ShiftableRecorder(RATE)
    recorder.add_caller(AudioFrame(np.full(FRAME, 100, dtype=np.int16), RATE, 0))
    recorder.shift = 10 * FRAME
    recorder.add_agent(AudioFrame(np.full(FRAME, 200, dtype=np.int16), RATE, 0))
    stereo, _ = recorder.render()
    assert stereo.shape == (11 * FRAME, 2)
    assert stereo[0, 0] == 100 and stereo[10 * FRAME, 1] == 200 and stereo[FRAME, 1] == 0


# -- which calls are screened ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "inbound", "expected"),
    [
        ({}, False, None),
        ({"answered_by_enabled": False, "voicemail": None}, False, None),
        ({"answered_by_enabled": True}, False, ScreeningPolicy("hangup", None)),
        ({"answered_by_enabled": True}, True, None),
        ({"amd": True}, False, ScreeningPolicy("hangup", None)),
        (
            {"voicemail": {"action": "leave_message", "message": "Call us."}},
            False,
            ScreeningPolicy("leave_message", "Call us."),
        ),
        ({"voicemail": {"action": "ignore"}}, False, ScreeningPolicy("ignore", None)),
        ({"voicemail_action": "leave_message"}, False, ScreeningPolicy("leave_message", None)),
        ({"voicemail_message": "Hi."}, False, ScreeningPolicy("hangup", "Hi.")),
        (
            {
                "voicemail": {"action": "hangup", "message": None},
                "voicemail_action": "leave_message",
                "voicemail_message": "old",
            },
            False,
            ScreeningPolicy("hangup", None),
        ),
        ({"voicemail_action": "shout"}, False, ScreeningPolicy("hangup", None)),
    ],
)
def test_which_calls_are_screened(
    params: dict[str, Any], inbound: bool, expected: ScreeningPolicy | None
) -> None:
    assert ScreeningPolicy.for_call(params, inbound=inbound) == expected
