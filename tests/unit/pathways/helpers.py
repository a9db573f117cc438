"""Small pathway builders and a scripted brain for the pathway tests."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from callwright.pathways import (
    CallContext,
    Decision,
    DecisionRequest,
    PathwayDocument,
    parse_document,
)

REAL_EXPORTS_DIR = Path(__file__).resolve().parents[2] / "data" / "external" / "pathways"
REAL_EXPORTS = sorted(REAL_EXPORTS_DIR.glob("*.json"))
NOW = datetime(2025, 6, 3, 14, 15, tzinfo=UTC)
CONTEXT = CallContext(
    call_id="call-1",
    from_number="+14155550100",
    to_number="+14155550199",
    phone_number="+14155550100",
    timezone="America/New_York",
)


def node(node_id: str, node_type: str = "Default", **data: Any) -> dict[str, Any]:
    return {"id": node_id, "type": node_type, "data": {"name": node_id, **data}}


def edge(
    source: str, target: str, label: str = "", edge_id: str | None = None, **data: Any
) -> dict[str, Any]:
    return {
        "id": edge_id or f"{source}->{target}",
        "source": source,
        "target": target,
        "data": {"label": label or f"go to {target}", **data},
    }


def raw_doc(
    nodes: Iterable[dict[str, Any]], edges: Iterable[dict[str, Any]] = ()
) -> dict[str, Any]:
    return {"name": "test", "nodes": list(nodes), "edges": list(edges)}


def doc(nodes: Iterable[dict[str, Any]], edges: Iterable[dict[str, Any]] = ()) -> PathwayDocument:
    return parse_document(raw_doc(nodes, edges))


def load_real(path: Path) -> PathwayDocument:
    return parse_document(path.read_bytes())


def real_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


class ScriptedBrain:
    """Answers each ``DecisionRequest`` with a rule; records what it was asked."""

    def __init__(self, rule: Callable[[DecisionRequest], Decision] | None = None) -> None:
        self.rule = rule or (lambda request: Decision())
        self.requests: list[DecisionRequest] = []

    def decide(self, request: DecisionRequest) -> Decision:
        self.requests.append(request)
        return self.rule(request)


def pick_label(label: str, **variables: Any) -> Callable[[DecisionRequest], Decision]:
    """A rule choosing the option whose label contains ``label`` (if offered)."""

    def rule(request: DecisionRequest) -> Decision:
        for option in request.options:
            if label.lower() in option.label.lower():
                return Decision(option_id=option.option_id, variables=variables, reason="scripted")
        return Decision(variables=variables)

    return rule


def first_option(request: DecisionRequest) -> Decision:
    return Decision(
        option_id=request.options[0].option_id if request.options else None,
        variables={spec.name: "42" for spec in request.extract},
        condition_met=True,
        reason="first option",
    )
