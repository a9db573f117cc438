"""What the engine says to its driver (actions), what the driver tells it (events), and
the decisions it asks a brain for.

All are small frozen dataclasses; ``to_dict`` gives their JSON form for logs and tests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from callwright.pathways.format import ExtractSpec

# ---------------------------------------------------------------------------
# Decisions
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EdgeOption:
    """A way out of the current node the brain may choose: an edge, or a global node
    (``is_global``; entered from anywhere, returning afterwards)."""

    option_id: str
    label: str
    description: str
    target_id: str
    target_name: str
    is_global: bool = False


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    """Everything the brain needs to answer for one caller turn at one node.

    - ``extract``: variables to pull out of ``utterance`` (typed; required ones are
      re-asked by the engine when missing).
    - ``condition``: the node's loop condition, if any: the call stays on the node until
      the brain says it holds.
    - ``options``: where the call may go; ``None`` as the answer means "stay here".
    - ``context``: extra facts for the choice (e.g. the webhook response just received).
    """

    node_id: str
    node_name: str
    node_prompt: str
    utterance: str
    options: tuple[EdgeOption, ...]
    extract: tuple[ExtractSpec, ...]
    condition: str | None
    variables: Mapping[str, Any]
    context: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The brain's answer. ``option_id`` is one of the request's options or ``None``;
    ``condition_met`` is ``None`` when the brain has no opinion (treated as met);
    ``variables`` holds the extracted values by name (raw; the engine coerces them)."""

    option_id: str | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)
    condition_met: bool | None = None
    reason: str = ""


class Brain(Protocol):
    """A synchronous decision maker, for drivers that can answer in-line (the embedded
    brain, scripted test brains). An async LLM driver answers ``Decide`` actions itself
    and feeds a :class:`Decided` event back; see ``engine`` for the loop."""

    def decide(self, request: DecisionRequest) -> Decision: ...


# ---------------------------------------------------------------------------
# Actions (engine -> driver)
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Say:
    """Speak ``text`` verbatim (a node's static ``text``)."""

    node_id: str
    text: str
    kind: Literal["say"] = "say"


@dataclass(frozen=True, slots=True)
class Generate:
    """Generate the agent's words from the node prompt (already templated).

    ``purpose`` tells the LLM why it speaks: ``respond`` (normal turn), ``reask`` (ask
    again for ``missing`` required variables), ``silence`` (the caller said nothing),
    ``return`` (back from a global node). ``fallback_text`` is what to say when no LLM is
    available."""

    node_id: str
    prompt: str
    purpose: Literal["respond", "reask", "silence", "return"]
    global_prompt: str | None = None
    condition: str | None = None
    missing: tuple[str, ...] = ()
    knowledge: str | None = None
    knowledge_base: str | None = None
    tools: tuple[Any, ...] = ()
    model_options: Mapping[str, Any] = field(default_factory=dict)
    fallback_text: str = ""
    kind: Literal["generate"] = "generate"


@dataclass(frozen=True, slots=True)
class Decide:
    """Ask the brain; answer with a :class:`Decided` event."""

    request: DecisionRequest
    kind: Literal["decide"] = "decide"


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """Send a request and answer with :class:`HttpResult` (same ``request_id``).
    ``{{SECRET.NAME}}`` placeholders are still in url, headers and body: resolve them
    when sending, never earlier."""

    request_id: str
    node_id: str
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: str | None
    timeout_s: float
    retries: int
    purpose: Literal["webhook", "tool", "scheduling"]
    kind: Literal["http"] = "http"


@dataclass(frozen=True, slots=True)
class RunCode:
    """Run Custom Code JavaScript (``sandbox.run_code``) and answer with
    :class:`CodeResult`. ``input`` is the request payload the code reads."""

    request_id: str
    node_id: str
    code: str
    input: Mapping[str, Any]
    now_ms: int
    kind: Literal["code"] = "code"


@dataclass(frozen=True, slots=True)
class Transfer:
    node_id: str
    number: str
    warm: Mapping[str, Any] | None = None
    kind: Literal["transfer"] = "transfer"


@dataclass(frozen=True, slots=True)
class TransferPathway:
    node_id: str
    pathway_id: str
    version: str | None
    start_node_id: str | None
    kind: Literal["transfer_pathway"] = "transfer_pathway"


@dataclass(frozen=True, slots=True)
class EndCall:
    node_id: str | None
    reason: str
    kind: Literal["end_call"] = "end_call"


@dataclass(frozen=True, slots=True)
class SendSms:
    node_id: str
    to: str
    message: str
    kind: Literal["sms"] = "sms"


@dataclass(frozen=True, slots=True)
class SendDtmf:
    node_id: str
    digits: str
    kind: Literal["dtmf"] = "dtmf"


@dataclass(frozen=True, slots=True)
class Wait:
    """Keep listening without speaking (a "hold on" at a Wait for Response node, or
    silence where repeating is disabled)."""

    node_id: str
    reason: str
    kind: Literal["wait"] = "wait"


Action = (
    Say
    | Generate
    | Decide
    | HttpRequest
    | RunCode
    | Transfer
    | TransferPathway
    | EndCall
    | SendSms
    | SendDtmf
    | Wait
)
TERMINAL_ACTIONS = (Transfer, TransferPathway, EndCall)


def to_dict(item: Any) -> dict[str, Any]:
    """JSON form of an action, event or decision."""
    out: dict[str, Any] = dataclasses.asdict(item)
    return out


# ---------------------------------------------------------------------------
# Events (driver -> engine)
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserSaid:
    text: str
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Silence:
    seconds: float = 0.0
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Dtmf:
    digits: str
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Decided:
    decision: Decision
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class HttpResult:
    """``status`` 0 with ``error`` set when no response came (timeout, refused...)."""

    request_id: str
    status: int
    body: Any = None
    error: str | None = None
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CodeResult:
    request_id: str
    ok: bool
    variables: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    at: datetime | None = None


Event = UserSaid | Silence | Dtmf | Decided | HttpResult | CodeResult
