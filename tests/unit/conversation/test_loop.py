"""The conversation loop in virtual time: a scripted caller, zero-latency fakes, and
assertions on which 20 ms frames carried agent speech."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.unit.conversation.fakes import (
    CodeStt,
    LevelTts,
    LevelVad,
    ListSink,
    ScriptedAgent,
    ScriptedPort,
)

from callwright.conversation.loop import CallLoop, LoopResult
from callwright.conversation.ports import EndCall, Note, PressDigits, ReplyItem, TransferTo
from callwright.conversation.turns import TurnConfig

LONG = " ".join(["word"] * 60) + "."  # 120 frames of agent speech


async def run(
    script: list[tuple[Any, ...]],
    agent: ScriptedAgent,
    *,
    turns: TurnConfig | None = None,
    wait_for_greeting: bool = False,
) -> tuple[LoopResult, ScriptedPort, ListSink]:
    port = ScriptedPort(script)
    sink = ListSink()
    loop = CallLoop(
        port,
        agent,
        stt=CodeStt(port),
        tts=LevelTts(),
        vad=LevelVad(),
        sink=sink,
        turns=turns or TurnConfig(silence_timeout_ms=None),
        wait_for_greeting=wait_for_greeting,
    )
    result = await loop.run()
    return result, port, sink


async def test_greets_then_answers_the_caller_right_after_the_endpoint() -> None:
    agent = ScriptedAgent(
        greeting=["Hi there."], replies={"book me in": ["Sure.", " What day suits you?"]}
    )
    result, port, sink = await run(
        [("quiet", 40), ("say", "book me in", 50), ("quiet", 80), ("hang_up",)], agent
    )
    assert result.ended_by == "caller"
    runs = port.speech_runs()
    assert runs[0][0] <= 2  # the greeting leaves at once
    # Speech frames 40..89; 500 ms of silence ends the turn on frame 114 (0-based);
    # the reply's first frame is the next one sent.
    assert runs[1][0] - 114 <= 2, runs
    assert agent.heard == ["book me in"]
    assert [(line.speaker, line.text) for line in sink.lines] == [
        ("assistant", "Hi there."),
        ("user", "book me in"),
        ("assistant", "Sure. What day suits you?"),
    ]
    assert sink.lines[1].start_ms == 40 * 20 and sink.lines[1].end_ms == 90 * 20
    latency = [d for t, _, d in sink.events if t == "turn.latency"]
    assert len(latency) == 1 and latency[0] is not None
    assert set(latency[0]) >= {"stt_ms", "llm_first_token_ms", "tts_first_audio_ms"}


async def test_barge_in_silences_the_agent_within_ten_frames() -> None:
    agent = ScriptedAgent(greeting=[LONG], replies={"stop stop": ["Okay."]})
    _, port, sink = await run(
        [("quiet", 20), ("say", "stop stop", 30), ("quiet", 60), ("hang_up",)], agent
    )
    greeting = port.speech_runs()[0]
    assert greeting[0] <= 2
    assert greeting[1] < 20 + 10  # caller onset at frame 20
    lines = [(line.speaker, line.interrupted) for line in sink.lines]
    assert lines[:2] == [("assistant", True), ("user", False)]
    assert "turn.interrupted" in sink.types()
    assert agent.heard == ["stop stop"]


async def test_backchannels_do_not_stop_the_agent() -> None:
    for word in ("uh-huh", "mm-hmm", "okay", "yeah", "right"):
        agent = ScriptedAgent(greeting=[LONG])
        _, port, sink = await run([("quiet", 20), ("say", word, 12), ("quiet", 150)], agent)
        runs = port.speech_runs()
        assert len(runs) == 1 and runs[0][1] - runs[0][0] + 1 == 120, (word, runs)
        assert agent.heard == []
        assert not any(line.interrupted for line in sink.lines)


async def test_block_interruptions_keeps_talking_over_anything() -> None:
    agent = ScriptedAgent(greeting=[LONG])
    turns = TurnConfig.for_call(block_interruptions=True, silence_timeout_ms=None)
    _, port, _ = await run([("say", "stop talking now", 60), ("quiet", 100)], agent, turns=turns)
    runs = port.speech_runs()
    assert len(runs) == 1 and runs[0][1] - runs[0][0] + 1 == 120
    assert agent.heard == []


async def test_silence_reprompts_once_then_hangs_up() -> None:
    agent = ScriptedAgent(greeting=["Hello."])
    turns = TurnConfig(silence_timeout_ms=1000)
    result, port, _ = await run([("quiet", 400)], agent, turns=turns)
    assert result.ended_by == "silence" and port.hung_up
    assert agent.reprompts == 1
    assert len(port.speech_runs()) == 2  # greeting, re-prompt


async def test_max_duration_ends_the_call() -> None:
    agent = ScriptedAgent(greeting=[LONG])
    turns = TurnConfig.for_call(max_duration_minutes=1 / 60, silence_timeout_ms=None)
    result, port, _ = await run([("quiet", 500)], agent, turns=turns)
    assert result.ended_by == "max_duration" and port.hung_up
    assert result.frames == 51


async def test_end_call_waits_for_the_goodbye_to_be_heard() -> None:
    goodbye: list[ReplyItem] = [Note("node", "entered End"), "Goodbye.", EndCall()]
    agent = ScriptedAgent(greeting=goodbye)
    result, port, sink = await run([("quiet", 100)], agent)
    assert result.ended_by == "agent" and port.hung_up
    assert result.frames == len(port.sent) and port.sent[-1] is True  # ended on its last frame
    assert "node" in sink.types() and "call.end_requested" in sink.types()


async def test_transfer_and_digits() -> None:
    agent = ScriptedAgent(
        greeting=[PressDigits("12#"), "Connecting you.", TransferTo("+14155550100")]
    )
    result, port, _ = await run([("quiet", 100)], agent)
    assert port.digits_sent == ["12#"]
    assert result.ended_by == "transfer" and port.transferred == ["+14155550100"]
    assert result.transferred_to == "+14155550100" and not port.hung_up


async def test_keypress_reaches_the_agent() -> None:
    agent = ScriptedAgent(greeting=[LONG])
    result, _, sink = await run([("quiet", 10), ("press", "3"), ("quiet", 100)], agent)
    assert agent.keys == ["3"]
    assert result.ended_by == "agent"
    assert "call.dtmf" in sink.types()


async def test_wait_for_greeting_lets_the_callee_speak_first() -> None:
    agent = ScriptedAgent(replies={"hello who is this": ["This is Elm Clinic."]})
    _, port, _ = await run(
        [("quiet", 10), ("say", "hello who is this", 30), ("quiet", 60)],
        agent,
        wait_for_greeting=True,
    )
    assert port.speech_runs()[0][0] > 40
    assert agent.heard == ["hello who is this"]


async def test_hang_up_mid_speech_leaves_no_task_running() -> None:
    before = asyncio.all_tasks()
    agent = ScriptedAgent(greeting=[LONG])
    result, _, sink = await run([("quiet", 5), ("hang_up",)], agent)
    assert result.ended_by == "caller"
    assert asyncio.all_tasks() == before
    assert sink.lines[0].interrupted and sink.types()[-1] == "conversation.ended"


async def test_a_refused_transfer_is_recorded_and_the_call_goes_on() -> None:
    class RefusingPort(ScriptedPort):
        async def transfer(self, number: str) -> None:
            raise RuntimeError("REFER declined (603)")

    agent = ScriptedAgent(greeting=["Connecting you.", TransferTo("+14155550100")])
    port = RefusingPort([("quiet", 80), ("hang_up",)])
    sink = ListSink()
    loop = CallLoop(
        port,
        agent,
        stt=CodeStt(port),
        tts=LevelTts(),
        vad=LevelVad(),
        sink=sink,
        turns=TurnConfig(silence_timeout_ms=None),
    )
    result = await loop.run()
    assert result.ended_by == "caller" and result.transferred_to is None
    failed = [m for t, m, _ in sink.events if t == "call.transfer_failed"]
    assert failed and "603" in failed[0]
