"""Transfers in the conversation loop, in virtual time: the cold fallback when the line
refuses a blind transfer, warm transfers (hold, brief, merge; no answer; the caller
leaving), and the brief written for the human."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from tests.unit.conversation.fakes import (
    AGENT_LEVEL,
    FRAME,
    RATE,
    CodeStt,
    LevelTts,
    LevelVad,
    ListSink,
    ScriptedAgent,
    ScriptedPort,
)

from callwright.conversation.loop import TRANSFER_NOT_REACHED_LINE, CallLoop, LoopResult
from callwright.conversation.pathway_agent import FallbackGenerator, LLMGenerator, PathwayAgent
from callwright.conversation.ports import (
    AudioPort,
    CallerAudio,
    CallerHungUp,
    NotReached,
    Pcm,
    PortEvent,
    TransferTo,
    WarmTransfer,
)
from callwright.conversation.transfers import make_brief, plain_brief
from callwright.conversation.turns import TurnConfig
from callwright.pathways.actions import Decision, DecisionRequest
from callwright.pathways.format import PathwayDocument, parse_document
from callwright.pathways.templating import CallContext
from callwright.providers.llm import ChatMessage
from callwright.providers.scripted import ScriptedLLM

NUMBER = "+14155550100"
BRIEF = "Caller needs a refund."  # LevelTts: two frames a word -> 8 frames


class Line:
    """One call's frames, however many readers take turns: ``frames`` quiet frames,
    then a hang-up (or, with ``frames=None``, until hung up). Counts what it was sent."""

    sample_rate = RATE

    def __init__(self, frames: int | None) -> None:
        self.left = frames
        self.sent: list[int] = []  # peak of each frame sent to this line
        self.hung_up = False

    async def events(self) -> AsyncIterator[PortEvent]:
        while True:
            for _ in range(20):
                await asyncio.sleep(0)
            if self.hung_up or self.left == 0:
                yield CallerHungUp()
                return
            if self.left is not None:
                self.left -= 1
            yield CallerAudio(np.zeros(FRAME, dtype=np.int16))

    async def send(self, pcm: Pcm) -> None:
        self.sent.append(int(np.abs(pcm).max(initial=0)))

    async def send_digits(self, digits: str) -> None:
        pass

    async def transfer(self, number: str) -> None:
        raise RuntimeError("REFER refused (403)")

    async def hang_up(self) -> None:
        self.hung_up = True

    def spoken_frames(self) -> int:
        return sum(peak == AGENT_LEVEL for peak in self.sent)


class BridgingLine(Line):
    """The caller's line: refuses REFER, can call a target (answered after ``ring``
    frames, or ``NotReached``) and bridge to it."""

    def __init__(self, frames: int | None, target: Line | None, ring: int = 10) -> None:
        super().__init__(frames)
        self.target = target
        self.ring = ring
        self.dialed: list[tuple[str, str | None]] = []
        self.bridged: list[AudioPort] = []

    async def dial(
        self, number: str, *, caller_id: str | None = None, stop: asyncio.Event | None = None
    ) -> AudioPort:
        self.dialed.append((number, caller_id))
        sent = len(self.sent)
        while len(self.sent) < sent + self.ring:
            if stop is not None and stop.is_set():
                raise NotReached("canceled", "stopped while ringing")
            await asyncio.sleep(0)
        if self.target is None:
            raise NotReached("no-answer", "no answer from the callee")
        return self.target

    async def bridge(self, other: AudioPort) -> str:
        self.bridged.append(other)
        return "target"


async def run(port: Line, agent: ScriptedAgent) -> tuple[LoopResult, ListSink, LevelTts]:
    sink = ListSink()
    tts = LevelTts()
    loop = CallLoop(
        port,
        agent,
        stt=CodeStt(ScriptedPort([])),
        tts=tts,
        vad=LevelVad(),
        sink=sink,
        turns=TurnConfig(silence_timeout_ms=None),
    )
    result = await asyncio.wait_for(loop.run(), 10)
    return result, sink, tts


def warm_to(number: str = NUMBER) -> TransferTo:
    return TransferTo(
        number,
        WarmTransfer(
            brief=BRIEF, waiting_prompt="Please hold.", merge_prompt="Connected.", from_number="+1"
        ),
    )


def states(sink: ListSink) -> list[str]:
    return [
        data["warm_transfer_call"]["state"]
        for kind, _, data in sink.events
        if kind == "call.warm_transfer" and data is not None
    ]


# -- blind, cold fallback --------------------------------------------------------------------
async def test_a_refused_refer_falls_back_to_calling_and_bridging() -> None:
    target = Line(None)
    caller = BridgingLine(None, target)
    agent = ScriptedAgent(greeting=["Connecting you.", TransferTo(NUMBER)])
    result, sink, _ = await run(caller, agent)
    assert result.ended_by == "transfer" and result.transferred_to == NUMBER
    assert caller.dialed == [(NUMBER, None)] and caller.bridged == [target]
    kinds = [k for k in sink.types() if k.startswith("call.")]
    assert kinds == [
        "call.transfer",
        "call.transfer_failed",
        "call.transfer_fallback",
        "call.bridged",
        "call.bridge_ended",
    ]
    # While the target rang the caller's frames were answered with silence.
    assert caller.sent[-10:] == [0] * 10
    assert not caller.hung_up  # the bridge, not the loop, ends a bridged call


async def test_an_unreached_cold_target_leaves_the_conversation_going() -> None:
    caller = BridgingLine(60, target=None)
    agent = ScriptedAgent(greeting=["Connecting you.", TransferTo(NUMBER)])
    result, sink, _ = await run(caller, agent)
    assert result.ended_by == "caller" and result.transferred_to is None
    failed = [(m, d) for k, m, d in sink.events if k == "call.transfer_failed"]
    assert len(failed) == 2 and failed[1][1] == {
        "number": NUMBER,
        "method": "bridge",
        "status": "no-answer",
    }
    assert caller.bridged == []


async def test_a_port_that_cannot_dial_only_records_the_failure() -> None:
    caller = Line(50)
    agent = ScriptedAgent(greeting=["Connecting you.", TransferTo(NUMBER)])
    result, sink, _ = await run(caller, agent)
    assert result.ended_by == "caller" and result.transferred_to is None
    assert "call.transfer_fallback" not in sink.types()


# -- warm ------------------------------------------------------------------------------------
async def test_warm_transfer_holds_briefs_and_merges() -> None:
    target = Line(None)
    caller = BridgingLine(None, target)
    result, sink, tts = await run(caller, ScriptedAgent(greeting=["One moment.", warm_to()]))
    assert result.ended_by == "transfer" and result.transferred_to == NUMBER
    assert caller.dialed == [(NUMBER, "+1")] and caller.bridged == [target]
    assert tts.spoken[:4] == ["One moment.", "Please hold.", BRIEF, "Connected."]
    # The target heard the brief and the merge prompt, nothing else; the caller heard
    # the greeting, the waiting prompt and the merge prompt.
    assert target.spoken_frames() == 2 * len(f"{BRIEF} Connected.".split())
    assert caller.spoken_frames() == 2 * 5  # "One moment. Please hold. Connected."
    assert states(sink) == ["STARTED", "STARTED", "MERGED"]
    assert result.warm_transfer == {
        "state": "MERGED",
        "proxy_agent_calls": [{"state": "MERGED", "call_id": None, "phone_number": NUMBER}],
    }


async def test_warm_transfer_not_answered_returns_to_the_caller() -> None:
    caller = BridgingLine(200, target=None)
    result, sink, tts = await run(caller, ScriptedAgent(greeting=["One moment.", warm_to()]))
    assert result.ended_by == "caller" and result.transferred_to is None
    assert states(sink) == ["STARTED", "NO_ANSWER"]
    assert result.warm_transfer is not None
    assert result.warm_transfer["proxy_agent_calls"][0]["state"] == "NO_ANSWER"
    assert tts.spoken[-1] == TRANSFER_NOT_REACHED_LINE
    assert caller.bridged == []


async def test_the_caller_hanging_up_on_hold_cancels_the_transfer() -> None:
    target = Line(None)
    caller = BridgingLine(30, target, ring=10_000)
    result, sink, _ = await run(caller, ScriptedAgent(greeting=["One moment.", warm_to()]))
    assert result.ended_by == "caller" and result.transferred_to is None
    assert states(sink) == ["STARTED", "CANCELLED"]
    assert caller.bridged == [] and target.sent == []


async def test_the_target_hanging_up_during_the_brief_returns_to_the_caller() -> None:
    target = Line(3)  # hangs up three frames into the brief
    caller = BridgingLine(300, target)
    result, sink, tts = await run(caller, ScriptedAgent(greeting=["One moment.", warm_to()]))
    assert result.transferred_to is None and caller.bridged == []
    assert states(sink) == ["STARTED", "STARTED", "NO_ANSWER"]
    assert result.warm_transfer is not None
    assert result.warm_transfer["proxy_agent_calls"][0]["state"] == "HUNG_UP"
    assert tts.spoken[-1] == TRANSFER_NOT_REACHED_LINE


# -- the brief -------------------------------------------------------------------------------
HISTORY = [
    ChatMessage("assistant", "Hi, how can I help?"),
    ChatMessage("user", "My crown broke."),
    ChatMessage("user", "I'm Maria."),
]


def test_plain_brief_quotes_the_caller_and_the_variables() -> None:
    brief = plain_brief(HISTORY, {"first_name": "Maria", "_private": "x", "nested": {"a": 1}})
    assert "The caller said: My crown broke. I'm Maria." in brief
    assert "first name: Maria" in brief and "private" not in brief and "nested" not in brief


async def test_make_brief_asks_the_llm_and_falls_back_without_one() -> None:
    llm = ScriptedLLM(replies=["Maria's crown broke; she needs a repair."])
    written = await make_brief(HISTORY, {}, instructions="Mention urgency.", llm=llm)
    assert written == "Maria's crown broke; she needs a repair."
    system: Any = llm.calls[0][1][0]
    assert "Mention urgency." in system.content
    failing = ScriptedLLM(replies=[])
    assert await make_brief(HISTORY, {}, llm=failing) == plain_brief(HISTORY, {})


# -- the pathway's Transfer Call node ----------------------------------------------------------
def transfer_node(warm: dict[str, Any]) -> PathwayDocument:
    data = {"name": "T", "isStart": True, "text": "Hold on.", "transferNumber": NUMBER}
    data["warmTransferFields"] = warm
    node = {"id": "t", "type": "Transfer Call", "data": data}
    return parse_document({"name": "t", "nodes": [node], "edges": []})


async def greet(doc: PathwayDocument, llm: ScriptedLLM | None = None) -> list[Any]:
    generator: Any = LLMGenerator(llm) if llm is not None else FallbackGenerator()
    agent = PathwayAgent(
        doc,
        CallContext(call_id="c", from_number="+1", to_number="+2", phone_number="+1"),
        decider=Any,  # type: ignore[arg-type]  # never asked: the start node transfers
        generator=generator,
        effects=Any,  # type: ignore[arg-type]
    )
    return [item async for item in agent.greet() if isinstance(item, TransferTo)]


async def test_a_warm_transfer_node_with_a_static_prompt_briefs_with_it() -> None:
    warm = {
        "isEnabled": True,
        "agentPrompt": "  Static brief.  ",
        "isAgentPromptStatic": True,
        "waitingPrompt": "Hold please.",
        "mergeCallPrompt": "",
        "fromNumber": "+15550000",
    }
    [transfer] = await greet(transfer_node(warm))
    assert transfer == TransferTo(
        NUMBER, WarmTransfer("Static brief.", "Hold please.", None, "+15550000")
    )


async def test_a_warm_transfer_node_without_a_static_prompt_asks_the_llm() -> None:
    warm = {"isEnabled": True, "agentPrompt": "Be brief.", "useCustomFromNumber": False}
    llm = ScriptedLLM(replies=["A caller wants help."])  # the node says static text
    [transfer] = await greet(transfer_node(warm), llm)
    assert transfer.warm is not None and transfer.warm.brief == "A caller wants help."
    assert transfer.warm.from_number is None
    [plain] = await greet(transfer_node({"isEnabled": True}))
    assert plain.warm is not None and plain.warm.brief == plain_brief([], {})


async def test_a_disabled_warm_transfer_is_blind() -> None:
    [transfer] = await greet(transfer_node({"isEnabled": False, "agentPrompt": "x"}))
    assert transfer == TransferTo(NUMBER)


class FirstEdge:
    """Always takes the first option offered."""

    async def decide(self, request: DecisionRequest) -> Decision:
        return Decision(request.options[0].option_id if request.options else None)


async def test_a_pathway_picks_up_where_it_was_when_the_transfer_fails() -> None:
    nodes = [
        {"id": "a", "type": "Default", "data": {"name": "A", "isStart": True, "text": "Hi."}},
        {"id": "t", "type": "Transfer Call", "data": {"name": "T", "transferNumber": NUMBER}},
    ]
    edges = [{"id": "a-t", "source": "a", "target": "t", "data": {"label": "human"}}]
    doc = parse_document({"name": "p", "nodes": nodes, "edges": edges})
    agent = PathwayAgent(
        doc,
        CallContext(call_id="c"),
        decider=FirstEdge(),
        generator=FallbackGenerator(),
        effects=Any,  # type: ignore[arg-type]
    )
    _ = [item async for item in agent.greet()]
    transfers = [i async for i in agent.reply("a human please") if isinstance(i, TransferTo)]
    assert transfers == [TransferTo(NUMBER)] and agent.ended
    agent.transfer_failed(NUMBER)
    assert not agent.ended and agent.node_id == "a"
    again = [i async for i in agent.reply("a human please") if isinstance(i, TransferTo)]
    assert again == [TransferTo(NUMBER)]
