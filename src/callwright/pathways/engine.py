"""The pathway step engine: ``state + event -> new state + actions``, nothing else.

No network, no clock, no LLM. A driver (the live conversation, the chat API, a test)
feeds events and carries out the actions it gets back.

Theory of operation
-------------------

1. ``start(doc, context, now=...)`` enters the start node; ``step(doc, state, event)``
   handles one event. Both return a :class:`Step` (new :class:`EngineState`, actions).
   ``EngineState`` is a pydantic model: ``model_dump(mode="json")`` stores it, and
   ``EngineState.model_validate`` reads it back.
2. The state's ``status`` says what the engine waits for:

   ``listening``  the caller's next words (``UserSaid``, ``Dtmf``, ``Silence``);
   ``deciding``   a ``Decided`` event answering the last ``Decide`` action;
   ``http``       an ``HttpResult`` with the pending ``request_id``;
   ``code``       a ``CodeResult`` with the pending ``request_id``;
   ``ended``      nothing: the last step emitted ``EndCall``, ``Transfer`` or
                  ``TransferPathway``, and every later event is ignored.

   An event that does not fit the status is logged and ignored (no actions), so a late
   HTTP response or a stray utterance can never derail a call. A caller turn while
   ``deciding`` supersedes the pending decision (a new ``Decide`` is emitted).
3. **Decisions come from a brain through events.** When the caller speaks at a
   conversational node, the engine emits ``Decide(DecisionRequest)`` (variables to
   extract, the loop condition, the edges and global nodes to choose from) and waits for
   ``Decided(Decision)``. This one shape serves both kinds of brain:

   - a synchronous brain (the embedded similarity brain, scripted test brains)
     implements :class:`~callwright.pathways.actions.Brain` and is driven in-line by
     :func:`run_turn`;
   - an async LLM brain is driven by the conversation: on ``Decide`` it awaits the LLM
     and calls ``step(doc, state, Decided(...))``.

   Nodes that decide without a brain never emit ``Decide``: Route nodes, structured edge
   conditions, ``alwaysPick`` edges, webhook ``responsePathways``, single edges out of
   action nodes.
4. Entering a node may chain through several nodes in one step (a Custom Code node's
   result into a Route into a Transfer). A step takes at most ``MAX_HOPS`` hops; more
   means a cycle without conversation: the step's other actions are dropped and the call
   ends with ``loop_detected``.
5. Every node entered, edge taken (with why), variable set and request made is appended
   to ``state.log`` (the call's ``pathway_logs``), using the event names of the
   platform's pathway log (``node.transition``, ``webhook.invoke``, ...).
6. ``step`` never raises on an event: an internal failure is logged as ``engine.error``
   and the call ends with ``EndCall(reason="engine_error")``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from callwright.pathways.actions import (
    TERMINAL_ACTIONS,
    Action,
    Brain,
    CodeResult,
    Decide,
    Decided,
    Decision,
    DecisionRequest,
    Dtmf,
    EdgeOption,
    EndCall,
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
from callwright.pathways.format import (
    Edge,
    ExtractSpec,
    GraphIndex,
    HttpSpec,
    Node,
    NodeType,
    PathwayDocument,
    extract_specs,
    http_spec,
    legacy_tool,
    route_branches,
    route_conditions,
)
from callwright.pathways.templating import CallContext, builtin_variables, render, render_body
from callwright.pathways.values import coerce, compare, json_path, lookup, to_text

MAX_HOPS = 64
MAX_REASKS = 2
MAX_SILENCES = 3
MAX_LOG_TEXT = 2000

Status = Literal["listening", "deciding", "http", "code", "ended"]

# Nodes that act and move on by themselves; every other type (Default, the knowledge
# base nodes, Wait for Response, Scheduling, unknown types) converses with the caller.
_ACTION_TYPES = frozenset(
    {
        NodeType.END_CALL,
        NodeType.TRANSFER_CALL,
        NodeType.TRANSFER_NODE,
        NodeType.TRANSFER_PATHWAY,
        NodeType.WEBHOOK,
        NodeType.CUSTOM_CODE,
        NodeType.ROUTE,
        NodeType.SMS,
        NodeType.PRESS_BUTTON,
        NodeType.CUSTOM_TOOL,
    }
)
_HOLD = re.compile(
    r"\b(hold on|hang on|one (sec|second|moment|minute)|just a (sec|second|moment|minute)|"
    r"give me a (sec|second|moment|minute)|wait a (sec|second|moment|minute)|bear with me|"
    r"let me (check|see|look|find|grab))\b",
    re.IGNORECASE,
)
# An edge label that reads as a comparison ("code == 0000", "netDue is not null").
_LABEL_CONDITION = re.compile(
    r"^\s*([\w.$-]+)\s+(==|!=|>=|<=|>|<|is not null|is null|is not|is|contains)\s*(.*?)\s*$",
    re.IGNORECASE,
)
_SCHEDULING_SPEC = ExtractSpec(
    "chosen_datetime", "string", "The slot the caller chose, as an ISO date-time", False
)


class LogEntry(BaseModel):
    """One line of the call's pathway log."""

    model_config = ConfigDict(extra="forbid")

    sequence: int
    event_type: str
    node_id: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    at: str | None = None
    operation_id: int | None = None


class EngineState(BaseModel):
    """Everything the engine needs between events; plain JSON when dumped."""

    model_config = ConfigDict(extra="forbid")

    status: Status = "listening"
    node_id: str | None = None
    variables: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    now: str | None = None
    return_stack: list[str] = Field(default_factory=list)
    pending_id: str | None = None
    pending_operation: int | None = None
    pending_utterance: str = ""
    # What the pending decision is for: a caller turn, or leaving an action node.
    decision_kind: Literal["turn", "choice"] = "turn"
    last_user_message: str = ""
    prev_node_prompt: str = ""
    reasks: int = 0
    silences: int = 0
    requests: int = 0
    tags: list[str] = Field(default_factory=list)
    log: list[LogEntry] = Field(default_factory=list)
    end_reason: str | None = None

    @property
    def ended(self) -> bool:
        return self.status == "ended"


@dataclass(frozen=True, slots=True)
class Step:
    state: EngineState
    actions: tuple[Action, ...]

    @property
    def decide(self) -> Decide | None:
        """The pending ``Decide`` action, if the engine waits for a decision."""
        for action in self.actions:
            if isinstance(action, Decide):
                return action
        return None


def start(
    doc: PathwayDocument,
    context: CallContext,
    *,
    now: datetime | None = None,
    variables: Mapping[str, Any] | None = None,
    start_node_id: str | None = None,
) -> Step:
    """Begin a call: request data and ``variables`` become call variables, then the start
    node (or ``start_node_id`` when it exists) is entered."""
    initial = {**dict(context.request_data), **dict(variables or {})}
    state = EngineState(
        variables=_jsonable(initial),
        context=context.to_json(),
        now=_iso(now),
    )
    run = _Run(doc, state)
    try:
        index = run.index
        first = index.nodes.get(start_node_id) if start_node_id else None
        first = first or index.start
        run.log(
            "conversation.init",
            None,
            start_node_id=first.key if first else None,
            initial_variables=sorted(initial),
        )
        if first is None:
            run.end(None, "no_start_node")
        else:
            run.enter(first.key, label=None, reason="start")
    except Exception as exc:  # the engine must never take a call down
        run.crash(exc)
    return run.finish()


def step(doc: PathwayDocument, state: EngineState, event: Event) -> Step:
    """Handle one event; see the module rules."""
    run = _Run(doc, state)
    try:
        at = getattr(event, "at", None)
        if at is not None:
            run.now = _iso(at)
        run.handle(event)
    except Exception as exc:
        run.crash(exc)
    return run.finish()


def run_turn(doc: PathwayDocument, state: EngineState, event: Event, brain: Brain) -> Step:
    """``step``, answering every ``Decide`` with ``brain`` in-line. Other actions
    (HTTP, code, speech) are returned for the driver; ``Decide`` actions are not."""
    current = step(doc, state, event)
    actions = [a for a in current.actions if not isinstance(a, Decide)]
    for _ in range(MAX_HOPS):
        pending = current.decide
        if pending is None:
            break
        try:
            decision = brain.decide(pending.request)
        except Exception as exc:
            decision = Decision(reason=f"brain failed: {type(exc).__name__}")
        current = step(doc, current.state, Decided(decision))
        actions += [a for a in current.actions if not isinstance(a, Decide)]
    return Step(current.state, tuple(actions))


def variables_view(state: EngineState) -> dict[str, Any]:
    """All variables a template can read: built-ins, then the call's own (which win)."""
    context = CallContext.from_json(state.context)
    now = _parse_iso(state.now)
    view = builtin_variables(context, now)
    view["lastUserMessage"] = state.last_user_message
    view["prevNodePrompt"] = state.prev_node_prompt
    view.update(state.variables)
    return view


class _Run:
    """One step's work on a private copy of the state."""

    def __init__(self, doc: PathwayDocument, state: EngineState) -> None:
        self.doc = doc
        self.index: GraphIndex = doc.index()
        self.state = state
        self.status: Status = state.status
        self.node_id = state.node_id
        self.variables = dict(state.variables)
        self.now = state.now
        self.return_stack = list(state.return_stack)
        self.pending_id = state.pending_id
        self.pending_operation = state.pending_operation
        self.pending_utterance = state.pending_utterance
        self.decision_kind = state.decision_kind
        self.last_user_message = state.last_user_message
        self.prev_node_prompt = state.prev_node_prompt
        self.reasks = state.reasks
        self.silences = state.silences
        self.requests = state.requests
        self.tags = list(state.tags)
        self.entries = list(state.log)
        self.end_reason = state.end_reason
        self.actions: list[Action] = []
        self.hops = 0
        self._view: dict[str, Any] | None = None

    def finish(self) -> Step:
        new = self.state.model_copy(
            update={
                "status": self.status,
                "node_id": self.node_id,
                "variables": self.variables,
                "now": self.now,
                "return_stack": self.return_stack,
                "pending_id": self.pending_id,
                "pending_operation": self.pending_operation,
                "pending_utterance": self.pending_utterance,
                "decision_kind": self.decision_kind,
                "last_user_message": self.last_user_message,
                "prev_node_prompt": self.prev_node_prompt,
                "reasks": self.reasks,
                "silences": self.silences,
                "requests": self.requests,
                "tags": self.tags,
                "log": self.entries,
                "end_reason": self.end_reason,
            }
        )
        return Step(new, tuple(self.actions))

    # -- bookkeeping ------------------------------------------------------------

    def log(self, event_type: str, node_id: str | None, **payload: Any) -> int:
        sequence = len(self.entries) + 1
        self.entries.append(
            LogEntry(
                sequence=sequence,
                event_type=event_type,
                node_id=node_id,
                payload=payload,
                at=self.now,
                operation_id=payload.pop("operation_id", None),
            )
        )
        return sequence

    def view(self) -> dict[str, Any]:
        if self._view is None:
            context = CallContext.from_json(self.state.context)
            view = builtin_variables(context, _parse_iso(self.now))
            view["lastUserMessage"] = self.last_user_message
            view["prevNodePrompt"] = self.prev_node_prompt
            view.update(self.variables)
            self._view = view
        return self._view

    def set_variables(self, values: Mapping[str, Any]) -> None:
        if values:
            self.variables.update(values)
            self._view = None

    def render(self, text: str | None, *, spoken: bool = False) -> str:
        if not text:
            return ""
        if "{{" not in text:
            return text
        return render(text, self.view(), missing="empty" if spoken else "keep")

    def crash(self, exc: Exception) -> None:
        self.actions = [a for a in self.actions if not isinstance(a, TERMINAL_ACTIONS)]
        self.log("engine.error", self.node_id, message=f"{type(exc).__name__}: {exc}"[:500])
        self.end(self.node_id, "engine_error")

    def end(self, node_id: str | None, reason: str) -> None:
        self.actions.append(EndCall(node_id, reason))
        self.log("call.end", node_id, reason=reason)
        self.finish_call(reason)

    def finish_call(self, reason: str) -> None:
        self.status = "ended"
        self.end_reason = reason
        self.pending_id = None

    def node(self) -> Node | None:
        return self.index.nodes.get(self.node_id) if self.node_id is not None else None

    # -- events -------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        if self.status == "ended":
            return
        if isinstance(event, UserSaid):
            self.on_user(event.text)
        elif isinstance(event, Dtmf):
            self.log("button.press", self.node_id, digits=event.digits)
            self.on_user(event.digits)
        elif isinstance(event, Silence):
            self.on_silence()
        elif isinstance(event, Decided):
            self.on_decided(event.decision)
        elif isinstance(event, HttpResult):
            self.on_http(event)
        elif isinstance(event, CodeResult):
            self.on_code(event)
        else:
            self.log("engine.warning", self.node_id, message="unknown event ignored")

    def on_user(self, text: str) -> None:
        node = self.node()
        if node is None:
            self.end(None, "no_current_node")
            return
        if self.status not in ("listening", "deciding"):
            self.log("engine.warning", node.key, message=f"caller spoke while {self.status}")
            return
        self.last_user_message = text
        self.silences = 0
        self._view = None
        if node.type == NodeType.WAIT_FOR_RESPONSE and _HOLD.search(text):
            self.status = "listening"
            self.actions.append(Wait(node.key, "caller asked to hold"))
            return
        origin = self.returning_from(node)
        if origin is not None:
            node = origin
        self.ask(node, text)

    def on_silence(self) -> None:
        node = self.node()
        if self.status != "listening" or node is None:
            return
        self.silences += 1
        if self.silences >= MAX_SILENCES:
            self.end(node.key, "silence")
            return
        options = node.d.modelOptions
        if node.type == NodeType.WAIT_FOR_RESPONSE or (
            options is not None and options.disableSilenceRepeat is True
        ):
            self.actions.append(Wait(node.key, "silence"))
            return
        self.speak(node, "silence")

    def on_decided(self, decision: Decision) -> None:
        node = self.node()
        if self.status != "deciding" or node is None:
            self.log("engine.warning", self.node_id, message="decision arrived while not deciding")
            return
        self.status = "listening"
        if self.decision_kind == "turn":
            self.apply_turn(node, decision)
        else:
            self.apply_choice(node, decision)

    def on_http(self, result: HttpResult) -> None:
        node = self.node()
        if self.status != "http" or result.request_id != self.pending_id or node is None:
            self.log("engine.warning", self.node_id, message="unexpected HTTP result ignored")
            return
        operation = self.pending_operation
        self.pending_id = None
        self.status = "listening"
        body = _decode_body(result.body)
        if result.error is not None:
            self.log("webhook.error", node.key, message=result.error[:500], operation_id=operation)
        else:
            self.log("webhook.result", node.key, status=result.status, operation_id=operation)
        self.set_variables({"BlandStatusCode": result.status})
        if node.type in (NodeType.SCHEDULING, NodeType.SCHEDULE_MEETING):
            self.after_scheduling(node, body, result, operation)
        elif node.type == NodeType.CUSTOM_TOOL:
            self.after_tool(node, body, operation)
        else:
            self.after_webhook(node, body, result, operation)

    def on_code(self, result: CodeResult) -> None:
        node = self.node()
        if self.status != "code" or result.request_id != self.pending_id or node is None:
            self.log("engine.warning", self.node_id, message="unexpected code result ignored")
            return
        operation = self.pending_operation
        self.pending_id = None
        self.status = "listening"
        if result.ok:
            values = {str(k): v for k, v in result.variables.items()}
            self.set_variables(_jsonable(values))
            self.log(
                "custom_code.result",
                node.key,
                output_variables=sorted(values),
                operation_id=operation,
            )
        else:
            self.log(
                "custom_code.error",
                node.key,
                message=(result.error or "failed")[:500],
                operation_id=operation,
            )
        self.advance(node, context=None)

    # -- entering nodes -------------------------------------------------------------

    def enter(self, node_id: str, *, label: str | None, reason: str) -> None:
        node = self.index.nodes.get(node_id)
        if node is None:
            self.log("engine.warning", self.node_id, message=f"edge to missing node {node_id}")
            self.end(self.node_id, "missing_node")
            return
        self.hops += 1
        if self.hops > MAX_HOPS:
            # A cycle of nodes that never wait for the caller: none of what it queued in
            # this step (repeated SMS, speech) is carried out.
            self.actions = []
            self.log("engine.loop", node.key, message="too many hops without the caller")
            self.end(node.key, "loop_detected")
            return
        previous = self.node_id
        self.node_id = node.key
        self.reasks = 0
        self.silences = 0
        self.log(
            "node.transition",
            node.key,
            chosen_node_id=node.key,
            chosen_node_name=node.name,
            previous_node_id=previous,
            chosen_label=label,
            reason=reason[:MAX_LOG_TEXT],
        )
        tag = node.d.tag
        if isinstance(tag, dict) and isinstance(tag.get("name"), str):
            self.log("node.tag", node.key, tag=tag)
            if tag["name"] not in self.tags:
                self.tags.append(tag["name"])
        self.run_node(node)

    def run_node(self, node: Node) -> None:
        kind = node.type
        d = node.d
        if kind == NodeType.ROUTE:
            self.route(node)
        elif kind == NodeType.END_CALL:
            self.speak(node, "respond")
            self.end(node.key, "end_call_node")
        elif kind in (NodeType.TRANSFER_CALL, NodeType.TRANSFER_NODE):
            self.speak(node, "respond")
            number = self.render(d.transferNumber, spoken=True).strip()
            if not number:
                self.log("transfer_call.error", node.key, message="no transfer number")
                self.end(node.key, "transfer_number_missing")
                return
            warm = d.warmTransferFields if (d.warmTransferFields or {}).get("isEnabled") else None
            self.log("transfer_call.invoke", node.key, number=number)
            self.actions.append(Transfer(node.key, number, warm))
            self.finish_call("transferred")
        elif kind == NodeType.TRANSFER_PATHWAY:
            self.speak(node, "respond")
            pathway_id = self.render(d.text_field("pathwayId")).strip()
            if not pathway_id:
                self.log("transfer_pathway.error", node.key, message="no pathwayId")
                self.end(node.key, "transfer_pathway_missing")
                return
            version = d.text_field("pathwayVersion")
            self.log("transfer_pathway.invoke", node.key, pathway_id=pathway_id)
            self.actions.append(
                TransferPathway(node.key, pathway_id, version, d.text_field("startNodeId"))
            )
            self.finish_call("transferred_pathway")
        elif kind == NodeType.WEBHOOK:
            self.speak(node, "respond")
            spec, _ = http_spec(node)
            if spec is None:
                self.log("webhook.error", node.key, message="node has no url")
                self.advance(node, context=None)
            else:
                self.request(node, spec, "webhook")
        elif kind == NodeType.CUSTOM_CODE:
            self.run_code(node)
        elif kind == NodeType.SMS:
            message = self.render(d.text_field("message") or d.text, spoken=True)
            to = self.render(d.text_field("to"), spoken=True).strip()
            to = to or to_text(self.view().get("phone_number"))
            self.log("sms.invoke", node.key, to=to)
            self.actions.append(SendSms(node.key, to, message))
            self.advance(node, context=None)
        elif kind == NodeType.PRESS_BUTTON:
            digits = self.render(d.text_field("digits"), spoken=True).strip()
            self.log("button.press", node.key, digits=digits, outgoing=True)
            if digits:
                self.actions.append(SendDtmf(node.key, digits))
            self.speak(node, "respond")
            self.advance(node, context=None)
        elif kind == NodeType.CUSTOM_TOOL:
            spec, _ = http_spec(node)
            if spec is None:
                self.log("tool.error", node.key, message="node has no tool with a url")
                self.advance(node, context=None)
            else:
                self.speak(node, "respond")
                self.request(node, spec, "tool")
        elif kind in (NodeType.SCHEDULING, NodeType.SCHEDULE_MEETING) and d.url:
            spec, _ = http_spec(node)
            if spec is not None:
                self.request(node, spec, "scheduling")
            else:
                self.converse(node)
        else:
            self.converse(node)

    def converse(self, node: Node, purpose: Literal["respond", "return"] = "respond") -> None:
        """Speak at a conversational node, then wait for the caller (or move on at once
        when the node skips the caller's response)."""
        self.speak(node, purpose)
        options = node.d.modelOptions
        if options is not None and options.skipUserResponse is True:
            self.advance(node, context=None)
        else:
            self.status = "listening"

    def speak(
        self,
        node: Node,
        purpose: Literal["respond", "reask", "silence", "return"],
        missing: tuple[str, ...] = (),
    ) -> None:
        d = node.d
        text = self.render(d.text, spoken=True).strip()
        prompt = self.render(d.prompt).strip()
        if text and purpose in ("respond", "silence", "return"):
            self.actions.append(Say(node.key, text))
            self.prev_node_prompt = text
            return
        if not prompt and not text and purpose != "reask":
            return
        fallback = text
        if purpose == "reask":
            fallback = (
                "Sorry, could you tell me your "
                + " and ".join(m.replace("_", " ") for m in missing)
                + "?"
            )
        options = d.modelOptions
        self.actions.append(
            Generate(
                node_id=node.key,
                prompt=prompt or text,
                purpose=purpose,
                global_prompt=self.render(self.index.global_prompt) or None,
                condition=self.render(d.condition) or None,
                missing=missing,
                knowledge=self.render(d.kb) or None,
                knowledge_base=self.render(d.kbTool) if isinstance(d.kbTool, str) else None,
                tools=tuple(d.tools or ()),
                model_options=options.model_dump(exclude_unset=True) if options else {},
                fallback_text=fallback,
            )
        )
        if prompt:
            self.prev_node_prompt = prompt

    # -- decisions ------------------------------------------------------------------

    @staticmethod
    def is_conversational(node: Node) -> bool:
        return node.type not in _ACTION_TYPES

    def specs(self, node: Node) -> tuple[ExtractSpec, ...]:
        specs, _ = extract_specs(node)
        if node.type in (NodeType.SCHEDULING, NodeType.SCHEDULE_MEETING) and not any(
            s.name == _SCHEDULING_SPEC.name for s in specs
        ):
            specs.append(_SCHEDULING_SPEC)
        return tuple(specs)

    def options(self, node: Node, *, with_globals: bool) -> list[EdgeOption]:
        out = [
            EdgeOption(
                option_id=edge_id,
                label=self.render(edge.edge_label),
                description=self.render(edge.edge_description),
                target_id=edge.target_key or "",
                target_name=self.index.nodes[edge.target_key or ""].name,
            )
            for edge_id, edge in self.index.followable(node.key)
        ]
        if with_globals:
            out += [
                EdgeOption(
                    option_id=f"global:{g.key}",
                    label=self.render(g.d.globalLabel or g.name),
                    description=self.render(g.d.globalDescription),
                    target_id=g.key,
                    target_name=g.name,
                    is_global=True,
                )
                for g in self.index.globals
                if g.key != node.key
            ]
        return out

    def ask(self, node: Node, utterance: str) -> None:
        """The caller spoke: decide what happens at the current node."""
        specs = self.specs(node)
        options = self.options(node, with_globals=True)
        condition = self.render(node.d.condition).strip() or None
        if not specs and condition is None:
            chosen = self.deterministic_edge(node)
            if chosen is not None:
                edge_id, edge, why = chosen
                self.take_edge(edge_id, edge, why)
                return
        if not specs and condition is None and not options:
            if self.auto_return(node):
                return
            self.converse(node)
            return
        self.status = "deciding"
        self.decision_kind = "turn"
        self.pending_utterance = utterance
        self.actions.append(
            Decide(
                DecisionRequest(
                    node_id=node.key,
                    node_name=node.name,
                    node_prompt=self.render(node.d.prompt or node.d.text),
                    utterance=utterance,
                    options=tuple(options),
                    extract=specs,
                    condition=condition,
                    variables=dict(self.variables),
                )
            )
        )

    def apply_turn(self, node: Node, decision: Decision) -> None:
        """The brain's answer to a caller turn.

        1. A global node the brain chose is entered at once ("let me talk to a person"
           leaves whatever the node still wanted).
        2. A loop condition the brain judged unmet keeps the call on the node.
        3. An edge the brain chose is followed: edges are the author's explicit ways out
           (a "caller needs a moment" edge leaves without the policy number). The LLM is
           shown the node's required variables and condition; the embedded brain only
           chooses above its similarity threshold.
        4. With no choice, missing required variables are asked for again (up to
           ``MAX_REASKS``), then a deterministic edge, then the call stays.
        """
        specs = self.specs(node)
        if specs:
            self.extract(node, specs, decision.variables)
        option = self.find_option(node, decision.option_id, with_globals=True)
        if option is not None and option.is_global:
            self.follow(node, option, decision.reason)
            return
        condition = (node.d.condition or "").strip()
        if condition:
            met = decision.condition_met is not False
            self.log("loop_condition.result", node.key, met=met)
            if not met:
                self.speak(node, "respond")
                self.status = "listening"
                return
        if option is not None:
            self.follow(node, option, decision.reason)
            return
        if decision.option_id is not None:
            self.log("engine.warning", node.key, message="brain chose an unknown option")
        if specs:
            missing = tuple(
                s.name for s in specs if s.required and not _present(self.variables.get(s.name))
            )
            if missing and self.reasks < MAX_REASKS:
                self.reasks += 1
                self.log("var_extraction.warning", node.key, missing=list(missing))
                self.speak(node, "reask", missing)
                self.status = "listening"
                return
            edges = self.index.followable(node.key)
            if missing and len(edges) == 1:
                # Asked enough: a node with one way out does not trap the caller.
                edge_id, edge = edges[0]
                self.take_edge(edge_id, edge, f"still missing {', '.join(missing)}; moving on")
                return
        chosen = self.deterministic_edge(node)
        if chosen is not None:
            edge_id, edge, why = chosen
            self.take_edge(edge_id, edge, why)
            return
        if self.auto_return(node):
            return
        self.speak(node, "respond")
        self.status = "listening"

    def apply_choice(self, node: Node, decision: Decision) -> None:
        """A decision at an action node (several edges, nothing deterministic): it must
        move on, so an empty answer takes the first edge."""
        option = self.find_option(node, decision.option_id, with_globals=False)
        if option is not None:
            self.follow(node, option, decision.reason)
            return
        edges = self.index.followable(node.key)
        if edges:
            edge_id, edge = edges[0]
            self.take_edge(edge_id, edge, "no choice made: first edge")
        else:
            self.end(node.key, "dead_end")

    def extract(self, node: Node, specs: tuple[ExtractSpec, ...], raw: Mapping[str, Any]) -> None:
        values: dict[str, Any] = {}
        invalid: list[str] = []
        for spec in specs:
            if spec.name not in raw:
                continue
            ok, value = coerce(raw[spec.name], spec.type)
            if ok:
                values[spec.name] = value
            elif raw[spec.name] not in (None, ""):
                invalid.append(spec.name)
        if values or invalid:
            self.set_variables(values)
            self.log("var_extraction.result", node.key, set=sorted(values), invalid=sorted(invalid))

    def find_option(
        self, node: Node, option_id: str | None, *, with_globals: bool
    ) -> EdgeOption | None:
        if option_id is None:
            return None
        for option in self.options(node, with_globals=with_globals):
            if option.option_id == option_id:
                return option
        return None

    def follow(self, node: Node, option: EdgeOption, reason: str) -> None:
        why = reason or "chosen by the brain"
        if option.is_global:
            target = self.index.nodes[option.target_id]
            if target.d.enableGlobalAutoReturn is not False:
                if not self.return_stack or self.return_stack[-1] != node.key:
                    self.return_stack.append(node.key)
                del self.return_stack[:-16]
            self.enter(option.target_id, label=option.label, reason=f"global node: {why}")
            return
        self.enter(option.target_id, label=option.label, reason=why)

    def take_edge(self, edge_id: str, edge: Edge, why: str) -> None:
        self.log("edge.taken", edge.source_key, edge_id=edge_id, reason=why)
        self.enter(edge.target_key or "", label=edge.edge_label, reason=why)

    def returning_from(self, node: Node) -> Node | None:
        """On an auto-return global node with no way out of its own, the caller's next
        words belong to the node the call came from: go back there (quietly: it is a
        return, not a new entry) and handle them there."""
        if not node.is_global or node.d.enableGlobalAutoReturn is False:
            return None
        if self.index.followable(node.key) or self.specs(node):
            return None
        while self.return_stack:
            target = self.index.nodes.get(self.return_stack.pop())
            if target is not None and self.is_conversational(target):
                self.node_id = target.key
                self.reasks = 0
                self.log("node.return", target.key, from_node_id=node.key)
                return target
        return None

    def auto_return(self, node: Node) -> bool:
        """Leave a global node for the node the call came from."""
        if not node.is_global or node.d.enableGlobalAutoReturn is False:
            return False
        while self.return_stack:
            back = self.return_stack.pop()
            target = self.index.nodes.get(back)
            if target is not None:
                self.hops += 1
                self.node_id = target.key
                self.reasks = 0
                self.log(
                    "node.transition",
                    target.key,
                    chosen_node_id=target.key,
                    chosen_node_name=target.name,
                    previous_node_id=node.key,
                    chosen_label=None,
                    reason="return from global node",
                )
                if self.is_conversational(target):
                    self.converse(target, "return")
                else:
                    self.run_node(target)
                return True
        return False

    def deterministic_edge(self, node: Node) -> tuple[str, Edge, str] | None:
        """An edge chosen without a brain: ``alwaysPick``, then structured conditions,
        then labels that read as comparisons (``code == 0000``)."""
        edges = self.index.followable(node.key)
        for edge_id, edge in edges:
            if edge.always_pick:
                return edge_id, edge, "alwaysPick edge"
        view = self.view()
        for edge_id, edge in edges:
            raw = edge.data.condition if edge.data is not None else None
            conditions, _ = route_conditions(raw)
            if conditions and all(
                compare(*lookup(view, c.field), c.operator, c.value) for c in conditions
            ):
                return edge_id, edge, "edge condition holds"
        return None

    def label_condition_edge(self, node: Node) -> tuple[str, Edge, str] | None:
        view = self.view()
        for edge_id, edge in self.index.followable(node.key):
            match = _LABEL_CONDITION.match(edge.edge_label)
            if match is None:
                continue
            name, operator, value = match.groups()
            found, actual = lookup(view, name)
            if operator.lower() in ("is null", "is not null"):
                operator, value = "is", operator.lower()[3:]
            if found and compare(found, actual, operator, value):
                return edge_id, edge, f"label condition {edge.edge_label!r} holds"
        return None

    def advance(self, node: Node, *, context: str | None) -> None:
        """Leave an action node: deterministic edges first, a single edge next, the brain
        when several remain; a node with nowhere to go talks or ends the call."""
        chosen = self.deterministic_edge(node) or self.label_condition_edge(node)
        if chosen is not None:
            edge_id, edge, why = chosen
            self.take_edge(edge_id, edge, why)
            return
        edges = self.index.followable(node.key)
        if len(edges) == 1:
            edge_id, edge = edges[0]
            self.take_edge(edge_id, edge, "only edge")
            return
        if edges:
            self.status = "deciding"
            self.decision_kind = "choice"
            self.pending_utterance = self.last_user_message
            self.actions.append(
                Decide(
                    DecisionRequest(
                        node_id=node.key,
                        node_name=node.name,
                        node_prompt=self.render(node.d.prompt or node.d.text),
                        utterance=self.last_user_message,
                        options=tuple(self.options(node, with_globals=False)),
                        extract=(),
                        condition=None,
                        variables=dict(self.variables),
                        context=context,
                    )
                )
            )
            return
        if self.auto_return(node):
            return
        if node.d.prompt or node.d.text:
            if not any(
                isinstance(a, Say | Generate) and a.node_id == node.key for a in self.actions
            ):
                self.speak(node, "respond")
            self.status = "listening"
            return
        self.end(node.key, "dead_end")

    # -- Route, Webhook, Custom Code, tools --------------------------------------------

    def route(self, node: Node) -> None:
        view = self.view()
        branches, _ = route_branches(node)
        for position, branch in enumerate(branches):
            if branch.target_id is None or branch.target_id not in self.index.nodes:
                continue
            if all(compare(*lookup(view, c.field), c.operator, c.value) for c in branch.conditions):
                self.enter(branch.target_id, label=None, reason=f"route {position} holds")
                return
        fallback = node.d.fallbackNodeId
        if fallback is not None and fallback in self.index.nodes:
            self.enter(fallback, label=None, reason="route fallback")
            return
        chosen = self.deterministic_edge(node) or self.label_condition_edge(node)
        if chosen is not None:
            edge_id, edge, why = chosen
            self.take_edge(edge_id, edge, why)
            return
        if not branches and len(self.index.followable(node.key)) == 1:
            edge_id, edge = self.index.followable(node.key)[0]
            self.take_edge(edge_id, edge, "only edge")
            return
        self.log("route.warning", node.key, message="no route matched and no fallback")
        self.end(node.key, "no_route")

    def request(
        self, node: Node, spec: HttpSpec, purpose: Literal["webhook", "tool", "scheduling"]
    ) -> None:
        view = self.view()
        url = render(spec.url, view)
        if spec.query:
            pairs = "&".join(f"{k}={_quote(render(v, view))}" for k, v in spec.query.items())
            url = url + ("&" if "?" in url else "?") + pairs
        headers = tuple((k, render(v, view)) for k, v in spec.headers)
        body = render_body(spec.body, view) if spec.method not in ("GET", "HEAD") else None
        self.requests += 1
        request_id = f"{node.key}#{self.requests}"
        self.pending_id = request_id
        self.pending_operation = self.log(
            "webhook.invoke" if purpose != "tool" else "tool.invoke",
            node.key,
            url=url,
            method=spec.method,
            response_mappings=[{"name": m.name, "path": m.path} for m in spec.mappings],
        )
        self.status = "http"
        self.actions.append(
            HttpRequest(
                request_id=request_id,
                node_id=node.key,
                method=spec.method,
                url=url,
                headers=headers,
                body=body,
                timeout_s=spec.timeout_s,
                retries=spec.retries,
                purpose=purpose,
            )
        )

    def map_response(
        self, node: Node, spec: HttpSpec | None, body: Any, operation: int | None
    ) -> None:
        if spec is None or not spec.mappings:
            return
        values: dict[str, Any] = {}
        outcomes = []
        for mapping in spec.mappings:
            found, value = json_path(body, mapping.path)
            if found and value is not None:
                values[mapping.name] = value
                outcomes.append({"name": mapping.name, "path": mapping.path, "outcome": "set"})
            else:
                outcomes.append({"name": mapping.name, "path": mapping.path, "outcome": "empty"})
        self.set_variables(_jsonable(values))
        self.log("webhook.mapping", node.key, mappings=outcomes, operation_id=operation)

    def after_webhook(
        self, node: Node, body: Any, result: HttpResult, operation: int | None
    ) -> None:
        spec, _ = http_spec(node)
        self.map_response(node, spec, body, operation)
        view = self.view()
        winner = None
        for route in spec.routes if spec else []:
            if route.is_default or route.target_id is None:
                continue
            if not compare(*lookup(view, route.variable), route.operator, route.value):
                continue
            if route.target_id not in self.index.nodes:
                self.log(
                    "webhook.warning",
                    node.key,
                    message=f"route to missing node {route.target_id} skipped",
                )
                continue
            # The reference: routes are evaluated in order and the last true one wins.
            winner = route
        if winner is not None and winner.target_id is not None:
            self.enter(
                winner.target_id,
                label=winner.target_name,
                reason=f"response route: {winner.variable} {winner.operator} {winner.value}",
            )
            return
        summary = f"HTTP {result.status}: {to_text(body)[:500]}" if result.error is None else None
        self.advance(node, context=summary or f"request failed: {result.error}")

    def after_tool(self, node: Node, body: Any, operation: int | None) -> None:
        spec, _ = http_spec(node)
        if spec is not None and spec.mappings:
            self.map_response(node, spec, body, operation)
        else:
            self.set_variables({"data": _jsonable(body)})
        tool = legacy_tool(node.d.tool)
        self.log(
            "tool.result", node.key, tool_name=(tool or {}).get("name"), operation_id=operation
        )
        self.advance(node, context=f"tool result: {to_text(body)[:500]}")

    def after_scheduling(
        self, node: Node, body: Any, result: HttpResult, operation: int | None
    ) -> None:
        spec, _ = http_spec(node)
        if spec is not None and spec.mappings:
            self.map_response(node, spec, body, operation)
        elif isinstance(body, list):
            self.set_variables({"available_slots": _jsonable(body)})
        self.log("scheduling.result", node.key, status=result.status, operation_id=operation)
        self.converse(node)

    def run_code(self, node: Node) -> None:
        code = node.d.code or ""
        if not code.strip():
            self.log(
                "custom_code.error",
                node.key,
                message=f"snippet {node.d.snippet_id!r} is not embedded in the pathway",
            )
            self.advance(node, context=None)
            return
        view = self.view()
        payload = {k: v for k, v in view.items() if k not in ("lastUserMessage", "prevNodePrompt")}
        for name, template in (node.d.snippet_variables or {}).items():
            payload[str(name)] = render(template, view) if isinstance(template, str) else template
        self.requests += 1
        request_id = f"{node.key}#{self.requests}"
        self.pending_id = request_id
        self.pending_operation = self.log(
            "custom_code.invoke", node.key, input_variables=sorted(payload)
        )
        self.status = "code"
        now = _parse_iso(self.now) or datetime(1970, 1, 1, tzinfo=UTC)
        self.actions.append(
            RunCode(
                request_id=request_id,
                node_id=node.key,
                code=code,
                input=_jsonable(payload),
                now_ms=int(now.timestamp() * 1000),
            )
        )


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _decode_body(body: Any) -> Any:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body.strip()[:1] in ("{", "["):
        try:
            return json.loads(body)
        except ValueError:
            return body
    return body


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON, so the state always dumps: string keys, lists for
    tuples, ``None`` for NaN/infinity, text for anything else."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def _quote(text: str) -> str:
    safe = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~{}")
    return "".join(ch if ch in safe else "".join(f"%{b:02X}" for b in ch.encode()) for ch in text)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.isoformat()


def _parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
