"""A pathway as an agent: drives the pure engine and carries out what it asks.

The engine (``callwright.pathways.engine``) never does I/O; this driver does it for
the engine, and is shared by the voice loop (``PathwayAgent`` is a ``ports.Agent``)
and the text chat API (``PathwayAgent.turn`` collects a reply).

Rules:
1. ``Decide`` goes to a ``Decider``: the embedded similarity brain (no LLM) or the
   LLM. A decider failure is a decision with no choice (the call stays on its node).
2. ``Generate`` goes to a ``Generator``: the LLM streams the words, or, with no LLM,
   the node's fallback text is spoken.
3. ``HttpRequest`` and ``RunCode`` go to ``Effects`` (the outbound guard, the JS
   sandbox); their results go back into the engine at once.
4. Every new pathway log entry is passed on as a ``Note("pathway.log", ...)`` so the
   call's ``pathway_logs`` fill as the call runs.
5. A step chain is bounded (``MAX_CHAIN``): a pathway that keeps requesting without
   speaking ends the call instead of spinning.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from callwright.conversation.ports import (
    EndCall,
    Note,
    PressDigits,
    ReplyItem,
    TransferTo,
    WarmTransfer,
)
from callwright.conversation.transfers import make_brief
from callwright.pathways.actions import (
    CodeResult,
    Decide,
    Decided,
    Decision,
    DecisionRequest,
    Dtmf,
    Event,
    Generate,
    HttpRequest,
    HttpResult,
    RunCode,
    Say,
    SendDtmf,
    SendSms,
    Silence,
    Transfer,
    TransferPathway,
    UserSaid,
    Wait,
)
from callwright.pathways.actions import EndCall as EngineEndCall
from callwright.pathways.engine import EngineState, start, step, variables_view
from callwright.pathways.format import PathwayDocument
from callwright.pathways.templating import CallContext
from callwright.providers.embedded_brain import EmbeddedBrain
from callwright.providers.llm import LLM, ChatMessage, LLMError, Option, TextDelta, VarSpec

MAX_CHAIN = 64
NO_LLM_LINE = "Sorry, I can't help with that right now."


class Decider(Protocol):
    async def decide(self, request: DecisionRequest) -> Decision: ...


class Generator(Protocol):
    def generate(self, action: Generate, history: Sequence[ChatMessage]) -> AsyncIterator[str]: ...


class Effects(Protocol):
    async def http(self, request: HttpRequest) -> HttpResult: ...

    async def run_code(self, request: RunCode) -> CodeResult: ...

    async def load_pathway(
        self, pathway_id: str, version: str | None
    ) -> PathwayDocument | None: ...


# -- deciders ------------------------------------------------------------------------------
def _options(request: DecisionRequest) -> list[Option]:
    return [Option(o.option_id, o.label, o.description) for o in request.options]


def _specs(request: DecisionRequest) -> list[VarSpec]:
    return [VarSpec(s.name, s.type, s.description, s.required) for s in request.extract]


class EmbeddedDecider:
    """No LLM: the edge by sentence similarity, variables by typed extractors."""

    def __init__(self, brain: EmbeddedBrain, now: Callable[[], datetime], tz: str | None) -> None:
        self.brain = brain
        self.now = now
        self.tz = tz

    async def decide(self, request: DecisionRequest) -> Decision:
        return await asyncio.to_thread(self._decide, request)

    def _decide(self, request: DecisionRequest) -> Decision:
        variables = (
            self.brain.extract(request.utterance, _specs(request), self.now(), self.tz)
            if request.extract
            else {}
        )
        chosen, score = self.brain.choose(request.utterance, _options(request))
        if chosen is None and request.extract and self._answered(request, variables):
            # The caller gave what this node asks for: move on by the closest of the
            # node's own edges, even at a lower similarity ("I'm Tom" to "gave a name").
            own = [o for o in _options(request) if not o.id.startswith("global:")]
            if len(own) == 1:
                return Decision(own[0].id, variables, None, "variables given; only edge")
            chosen, score = self.brain.choose(
                request.utterance, own, threshold=self.ANSWERED_THRESHOLD
            )
        return Decision(chosen, variables, None, f"similarity {score:.2f}")

    ANSWERED_THRESHOLD = 0.15

    @staticmethod
    def _answered(request: DecisionRequest, found: dict[str, Any]) -> bool:
        known = {**request.variables, **found}
        required = [s.name for s in request.extract if s.required] or [
            s.name for s in request.extract
        ]
        return all(known.get(name) not in (None, "") for name in required)


class LLMDecider:
    """The LLM reads the conversation and picks the edge and the variables."""

    def __init__(self, llm: LLM, history: Callable[[], Sequence[ChatMessage]]) -> None:
        self.llm = llm
        self.history = history

    async def decide(self, request: DecisionRequest) -> Decision:
        context = [
            ChatMessage(
                "system", f"You are on the step '{request.node_name}': {request.node_prompt}"
            ),
            *self.history(),
        ]
        if request.context:
            context.append(ChatMessage("system", request.context))
        try:
            variables: dict[str, Any] = {}
            specs = _specs(request)
            if request.condition:
                specs.append(
                    VarSpec("__condition_met", "boolean", f"Has this happened: {request.condition}")
                )
            if specs:
                variables = await self.llm.extract(context, specs)
            met = variables.pop("__condition_met", None)
            chosen = (
                await self.llm.choose(
                    context,
                    _options(request),
                    instruction="Pick where the conversation should go next, or none to stay.",
                )
                if request.options
                else None
            )
        except LLMError as exc:
            return Decision(reason=f"LLM failed: {exc}")
        return Decision(chosen, variables, met if isinstance(met, bool) else None, "llm")


# -- generators ----------------------------------------------------------------------------
class FallbackGenerator:
    """No LLM: say the node's fallback text (lint warns about prompt nodes here)."""

    async def generate(
        self, action: Generate, history: Sequence[ChatMessage]
    ) -> AsyncIterator[str]:
        yield action.fallback_text or NO_LLM_LINE


class LLMGenerator:
    PURPOSES = {
        "respond": "Reply to the caller following the instructions.",
        "reask": "Politely ask again for what is still missing.",
        "silence": "The caller has gone quiet: check they are still there.",
        "return": "Pick the conversation back up where it was.",
    }

    def __init__(self, llm: LLM, *, persona: str | None = None) -> None:
        self.llm = llm
        self.persona = persona

    async def generate(
        self, action: Generate, history: Sequence[ChatMessage]
    ) -> AsyncIterator[str]:
        parts = [
            "You are a phone agent. Speak in short, natural sentences; no lists or markdown.",
            self.persona or "",
            action.global_prompt or "",
            f"Instructions for this step: {action.prompt}",
            self.PURPOSES.get(action.purpose, ""),
        ]
        if action.missing:
            parts.append(f"Still needed from the caller: {', '.join(action.missing)}.")
        if action.knowledge:
            parts.append(f"Facts you may use:\n{action.knowledge}")
        system = "\n".join(p for p in parts if p)
        temperature = action.model_options.get("temperature")
        try:
            async for chunk in self.llm.stream(
                [ChatMessage("system", system), *history],
                temperature=float(temperature) if isinstance(temperature, int | float) else None,
            ):
                if isinstance(chunk, TextDelta) and chunk.text:
                    yield chunk.text
        except LLMError:
            yield action.fallback_text or NO_LLM_LINE


# -- the agent -----------------------------------------------------------------------------
class PathwayAgent:
    def __init__(
        self,
        doc: PathwayDocument,
        context: CallContext,
        *,
        decider: Decider,
        generator: Generator,
        effects: Effects,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        variables: dict[str, Any] | None = None,
        start_node_id: str | None = None,
        state: EngineState | None = None,
    ) -> None:
        self.doc = doc
        self.context = context
        self.decider = decider
        self.generator = generator
        self.effects = effects
        self.now = now
        self.variables = variables
        self.start_node_id = start_node_id
        self.state = state
        self.history: list[ChatMessage] = []
        self._logged = len(state.log) if state is not None else 0
        # The state before the step that asked for a transfer: where the conversation
        # picks up if the transfer does not happen.
        self._before_transfer: EngineState | None = None

    @property
    def node_id(self) -> str | None:
        return None if self.state is None else self.state.node_id

    @property
    def ended(self) -> bool:
        return self.state is not None and self.state.ended

    def current_variables(self) -> dict[str, Any]:
        return {} if self.state is None else dict(self.state.variables)

    def template_variables(self) -> dict[str, Any]:
        return {} if self.state is None else variables_view(self.state)

    # -- ports.Agent -------------------------------------------------------------------
    def greet(self) -> AsyncIterator[ReplyItem]:
        return self._run(None)

    def reply(self, caller_text: str) -> AsyncIterator[ReplyItem]:
        self.history.append(ChatMessage("user", caller_text))
        return self._run(UserSaid(caller_text, self.now()))

    def keypress(self, digit: str) -> AsyncIterator[ReplyItem]:
        return self._run(Dtmf(digit, self.now()))

    def reprompt(self) -> AsyncIterator[ReplyItem]:
        return self._run(Silence(0.0, self.now()))

    def transfer_failed(self, number: str) -> None:
        if self._before_transfer is not None:
            self.state, self._before_transfer = self._before_transfer, None
            self._logged = len(self.state.log)

    # -- text chat ---------------------------------------------------------------------
    async def turn(self, caller_text: str | None) -> tuple[str, list[ReplyItem]]:
        """One chat turn: the agent's words joined, and the actions besides them."""
        items = self.greet() if caller_text is None else self.reply(caller_text)
        words: list[str] = []
        actions: list[ReplyItem] = []
        async for item in items:
            if isinstance(item, str):
                words.append(item)
            else:
                actions.append(item)
        return "".join(words).strip(), actions

    # -- the driver --------------------------------------------------------------------
    async def _run(self, event: Event | None) -> AsyncIterator[ReplyItem]:
        before = self.state
        if event is None or self.state is None:
            current = start(
                self.doc,
                self.context,
                now=self.now(),
                variables=self.variables,
                start_node_id=self.start_node_id,
            )
            if event is not None:  # a first event before any greeting
                current = step(self.doc, current.state, event)
        else:
            current = step(self.doc, self.state, event)
        spoken: list[str] = []
        for _ in range(MAX_CHAIN):
            self.state = current.state
            for note in self._new_log():
                yield note
            follow: Event | None = None
            for action in current.actions:
                if isinstance(action, Say):
                    spoken.append(action.text)
                    yield action.text + " "
                elif isinstance(action, Generate):
                    async for text in self.generator.generate(action, self.history):
                        spoken.append(text)
                        yield text
                    yield " "
                elif isinstance(action, Decide):
                    follow = Decided(await self._decide(action.request), self.now())
                elif isinstance(action, HttpRequest):
                    follow = await self.effects.http(action)
                elif isinstance(action, RunCode):
                    follow = await self.effects.run_code(action)
                elif isinstance(action, TransferPathway):
                    async for item in self._transfer_pathway(action):
                        yield item
                    return
                elif isinstance(action, Transfer):
                    self._before_transfer = before
                    if action.warm:
                        yield await self._warm_transfer(action, action.warm)
                    else:
                        yield TransferTo(action.number)
                else:
                    other = _reply_item(action)
                    if other is not None:
                        yield other
            if follow is None:
                break
            current = step(self.doc, self.state, follow)
        else:
            yield EndCall("pathway_loop")
        if spoken:
            self.history.append(ChatMessage("assistant", "".join(spoken).strip()))

    async def _decide(self, request: DecisionRequest) -> Decision:
        try:
            return await self.decider.decide(request)
        except Exception as exc:  # a brain failure must not end the call
            return Decision(reason=f"decider failed: {type(exc).__name__}")

    async def _transfer_pathway(self, action: TransferPathway) -> AsyncIterator[ReplyItem]:
        yield Note(
            "pathway.transfer_requested",
            f"Transfer to pathway {action.pathway_id}",
            {"pathway_id": action.pathway_id, "start_node_id": action.start_node_id},
        )
        doc = await self.effects.load_pathway(action.pathway_id, action.version)
        if doc is None:
            yield Note(
                "pathway.transfer_failed",
                f"Pathway {action.pathway_id} is not available",
                {"pathway_id": action.pathway_id},
            )
            yield EndCall("transfer_pathway_missing")
            return
        variables = self.current_variables()
        self.doc, self.state, self._logged = doc, None, 0
        self.variables, self.start_node_id = variables, action.start_node_id
        yield Note(
            "pathway.transferred",
            f"Continuing in pathway {action.pathway_id}",
            {"pathway_id": action.pathway_id},
        )
        async for item in self._run(None):
            yield item

    async def _warm_transfer(self, action: Transfer, fields: Mapping[str, Any]) -> TransferTo:
        """The node's ``warmTransferFields`` as a warm transfer: the brief is the agent
        prompt itself when static, else written from the conversation so far."""

        def text(name: str) -> str | None:
            value = fields.get(name)
            return value.strip() or None if isinstance(value, str) else None

        prompt = text("agentPrompt")
        if prompt and fields.get("isAgentPromptStatic"):
            brief = prompt
        else:
            llm = self.generator.llm if isinstance(self.generator, LLMGenerator) else None
            brief = await make_brief(
                self.history, self.current_variables(), instructions=prompt, llm=llm
            )
        custom_from = fields.get("useCustomFromNumber") is not False
        return TransferTo(
            action.number,
            WarmTransfer(
                brief=brief,
                waiting_prompt=text("waitingPrompt"),
                merge_prompt=text("mergeCallPrompt"),
                from_number=text("fromNumber") if custom_from else None,
            ),
        )

    def _new_log(self) -> list[Note]:
        assert self.state is not None
        entries = self.state.log[self._logged :]
        self._logged = len(self.state.log)
        notes = []
        for entry in entries:
            payload = entry.payload
            notes.append(
                Note(
                    "pathway.log",
                    entry.event_type,
                    {
                        "role": "assistant",
                        "text": entry.event_type,
                        "chosen_node_id": payload.get("chosen_node_id") or entry.node_id,
                        "decision": payload,
                        "pathway_info": {"sequence": entry.sequence, "node_id": entry.node_id},
                    },
                )
            )
        return notes


def _reply_item(action: Any) -> ReplyItem | None:
    if isinstance(action, EngineEndCall):
        return EndCall(action.reason)
    if isinstance(action, Transfer):
        return TransferTo(action.number)
    if isinstance(action, SendDtmf):
        return PressDigits(action.digits)
    if isinstance(action, SendSms):
        # No SMS gateway ships; the request is kept in the call's events.
        return Note(
            "sms.requested", f"SMS to {action.to}", {"to": action.to, "message": action.message}
        )
    if isinstance(action, Wait):
        return None
    return None
