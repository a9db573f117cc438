"""Structural checks on the shipped example pathways and their scripted conversations.

Plain JSON on purpose: these files are written in the hosted platform's export format, and
they must stay valid exports whatever the `pathways` package makes of them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "src" / "callwright" / "pathways" / "library"
CONVERSATIONS = ROOT / "tests" / "data" / "conversations"

REALISTIC = ("clinic_appointment.json", "insurance_fnol.json", "delivery_reschedule.json")
DEMO = "demo_appointment.json"
ALL = (*REALISTIC, DEMO)

# Every node `type` string the reference (../shared/reference/bland-api.md §3.2) and the
# platform's docs name; the three realistic pathways must use each at least once.
REFERENCE_TYPES = frozenset(
    {
        "Default",
        "End Call",
        "Transfer Call",
        "Webhook",
        "Custom Code",
        "Route",
        "Knowledge Base",
        "Vector DB Knowledge Base",
        "Wait for Response",
        "Press Button",
        "SMS",
        "Custom Tool",
        "Transfer Pathway",
        "Schedule Meeting",
        "Scheduling",
    }
)
TERMINAL = frozenset({"End Call", "Transfer Call", "Transfer Pathway"})
FINAL_ACTIONS = {
    "End Call": "end_call",
    "Transfer Call": "transfer",
    "Transfer Pathway": "transfer_pathway",
}
HTTP_TYPES = frozenset({"Webhook", "Scheduling", "Schedule Meeting"})
EXTRACT_TYPES = frozenset({"string", "integer", "boolean"})
TEMPLATE = re.compile(r"\{\{\s*([^}]+?)\s*\}\}")


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def real_nodes(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """`nodes[]` minus the editor's `globalConfig` pseudo-entry."""
    return [n for n in doc["nodes"] if "id" in n]


def response_targets(data: dict[str, Any]) -> Iterator[str]:
    for rule in data.get("responsePathways") or []:
        if isinstance(rule, dict):
            if rule.get("targetId"):
                yield rule["targetId"]
        else:
            yield rule[3]["id"]


def links(node: dict[str, Any], edges: list[dict[str, Any]]) -> set[str]:
    """Every node this one can hand the call to: edges, Route routes, response routing."""
    data = node["data"]
    out = {e["target"] for e in edges if e["source"] == node["id"]}
    out.update(r["targetNodeId"] for r in data.get("routes") or [])
    if data.get("fallbackNodeId"):
        out.add(data["fallbackNodeId"])
    out.update(response_targets(data))
    return out


def edge_label(edge: dict[str, Any]) -> str:
    return str(edge.get("data", {}).get("label") or edge.get("label") or "")


@pytest.fixture(params=ALL)
def pathway(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return request.param, load(LIBRARY / request.param)


def test_library_holds_exactly_the_documented_files() -> None:
    assert sorted(p.name for p in LIBRARY.glob("*.json")) == sorted(ALL)
    readme = (LIBRARY / "README.md").read_text(encoding="utf-8")
    for name in ALL:
        assert name in readme


def test_export_shape(pathway: tuple[str, dict[str, Any]]) -> None:
    name, doc = pathway
    assert set(doc) >= {"name", "description", "nodes", "edges"}, name
    pseudo = [n for n in doc["nodes"] if "id" not in n]
    assert len(pseudo) == 1 and pseudo[0]["globalConfig"]["globalPrompt"], name
    for node in real_nodes(doc):
        assert set(node) == {"id", "type", "data", "position"}, node["id"]
        assert node["data"]["name"], node["id"]
    for edge in doc["edges"]:
        assert edge["id"] and edge["type"] == "custom", edge["id"]
        assert edge["data"]["label"], edge["id"]


def test_unique_ids_and_one_start(pathway: tuple[str, dict[str, Any]]) -> None:
    name, doc = pathway
    ids = [n["id"] for n in real_nodes(doc)]
    assert len(ids) == len(set(ids)), name
    edge_ids = [e["id"] for e in doc["edges"]]
    assert len(edge_ids) == len(set(edge_ids)), name
    starts = [n["id"] for n in real_nodes(doc) if n["data"].get("isStart") is True]
    assert len(starts) == 1, (name, starts)


def test_links_point_at_existing_nodes(pathway: tuple[str, dict[str, Any]]) -> None:
    name, doc = pathway
    ids = {n["id"] for n in real_nodes(doc)}
    for edge in doc["edges"]:
        assert edge["source"] in ids and edge["target"] in ids, (name, edge["id"])
    for node in real_nodes(doc):
        assert links(node, doc["edges"]) <= ids, (name, node["id"])


def test_every_link_is_drawn_as_an_edge(pathway: tuple[str, dict[str, Any]]) -> None:
    """The editor draws Route routes and response routing as edges too; a pathway whose
    links all exist as edges lints clean even under an edges-only reachability check."""
    name, doc = pathway
    for node in real_nodes(doc):
        drawn = {e["target"] for e in doc["edges"] if e["source"] == node["id"]}
        assert links(node, doc["edges"]) <= drawn, (name, node["id"])


def test_every_node_reachable_from_start(pathway: tuple[str, dict[str, Any]]) -> None:
    name, doc = pathway
    nodes = {n["id"]: n for n in real_nodes(doc)}
    # Global nodes can be entered from anywhere, so they are roots as well.
    frontier = [
        i for i, n in nodes.items() if n["data"].get("isStart") or n["data"].get("isGlobal")
    ]
    seen = set(frontier)
    while frontier:
        for nxt in links(nodes[frontier.pop()], doc["edges"]):
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(nodes), (name, sorted(set(nodes) - seen))


def test_non_terminal_nodes_lead_somewhere(pathway: tuple[str, dict[str, Any]]) -> None:
    name, doc = pathway
    for node in real_nodes(doc):
        data = node["data"]
        if node["type"] in TERMINAL or (
            data.get("isGlobal") and data.get("enableGlobalAutoReturn")
        ):
            continue
        assert links(node, doc["edges"]), (name, node["id"])


def test_globals_have_labels_and_descriptions(pathway: tuple[str, dict[str, Any]]) -> None:
    name, doc = pathway
    globals_ = [n for n in real_nodes(doc) if n["data"].get("isGlobal")]
    assert globals_, name
    labels = [n["data"]["globalLabel"] for n in globals_]
    assert all(labels) and len(labels) == len(set(labels)), name
    assert all(n["data"].get("globalDescription") for n in globals_), name


def test_extract_vars_are_well_formed(pathway: tuple[str, dict[str, Any]]) -> None:
    name, doc = pathway
    for node in real_nodes(doc):
        for var in node["data"].get("extractVars") or []:
            assert 3 <= len(var) <= 6, (name, node["id"], var)
            assert re.fullmatch(r"[a-z][a-z0-9_]*", var[0]), var
            assert var[1] in EXTRACT_TYPES and var[2], var
            assert all(isinstance(flag, bool) for flag in var[3:]), var


def test_http_nodes_are_templated_requests(pathway: tuple[str, dict[str, Any]]) -> None:
    name, doc = pathway
    for node in real_nodes(doc):
        data = node["data"]
        if node["type"] in HTTP_TYPES:
            request = data
        elif node["type"] == "Custom Tool":
            request = data["tool"]["tool"]
        else:
            continue
        # Tests point every request at a local server through this one variable.
        assert request["url"].startswith("{{api_base}}/"), (name, node["id"])
        assert request["method"] in {"GET", "POST", "PUT", "PATCH", "DELETE"}, node["id"]
        if isinstance(request.get("body"), str):
            json.loads(TEMPLATE.sub("x", request["body"]))
        for rule in data.get("responsePathways") or []:
            if isinstance(rule, list):
                assert len(rule) == 4 and rule[1] in {"==", "!=", "is", ">", "<", "contains"}


def test_custom_code_is_a_fetch_handler(pathway: tuple[str, dict[str, Any]]) -> None:
    name, doc = pathway
    for node in real_nodes(doc):
        if node["type"] == "Custom Code":
            code = node["data"]["code"]
            assert "export default" in code and "async fetch(request" in code, node["id"]
            assert "Response.json(" in code, node["id"]
            for value in node["data"]["snippet_variables"].values():
                assert TEMPLATE.fullmatch(value), (name, node["id"], value)


def test_realistic_pathways_are_big_and_cover_every_node_type() -> None:
    used: set[str] = set()
    for name in REALISTIC:
        nodes = real_nodes(load(LIBRARY / name))
        assert len(nodes) >= 15, name
        used.update(n["type"] for n in nodes)
    assert used >= REFERENCE_TYPES, sorted(REFERENCE_TYPES - used)


def test_demo_runs_without_an_llm() -> None:
    doc = load(LIBRARY / DEMO)
    for node in real_nodes(doc):
        if node["type"] in {"Default", "End Call", "Transfer Call"}:
            assert node["data"].get("text") and "prompt" not in node["data"], node["id"]
        assert node["type"] in {"Default", "End Call", "Transfer Call"}, node["id"]
    by_source: dict[str, list[str]] = {}
    for edge in doc["edges"]:
        assert edge["data"].get("description"), edge["id"]
        by_source.setdefault(edge["source"], []).append(edge_label(edge))
    for source, labels in by_source.items():
        assert len(labels) == len(set(labels)), source


@pytest.mark.parametrize("name", ALL)
def test_conversations_match_their_pathway(name: str) -> None:
    doc = load(LIBRARY / name)
    conv = load(CONVERSATIONS / name)
    assert conv["pathway"] == name
    assert conv["brain"] == ("embedded" if name == DEMO else "scripted")
    nodes = {n["id"]: n for n in real_nodes(doc)}
    labels = {edge_label(e) for e in doc["edges"]}
    labels |= {n["data"]["globalLabel"] for n in nodes.values() if n["data"].get("isGlobal")}
    assert len(conv["scenarios"]) >= 4, name
    for sc in conv["scenarios"]:
        turns = sc["turns"]
        assert turns[0]["caller"] is None, sc["name"]
        for turn in turns:
            assert turn["expect_node"] in nodes, (sc["name"], turn["expect_node"])
            if conv["brain"] == "scripted" and turn["caller"] is not None:
                assert "choose_edge" in turn, (sc["name"], turn["caller"])
                assert turn["choose_edge"] is None or turn["choose_edge"] in labels, turn
        for node_id in sc.get("expect_path", []):
            assert node_id in nodes, (sc["name"], node_id)
        last = nodes[turns[-1]["expect_node"]]
        assert sc["final_action"] == FINAL_ACTIONS.get(last["type"]), sc["name"]
        for hook in sc["expect_webhooks"]:
            assert hook["method"] in {"GET", "POST"} and hook["path"].startswith("/v1/"), hook


def test_demo_utterance_table() -> None:
    doc = load(LIBRARY / DEMO)
    table = load(CONVERSATIONS / "demo_utterances.json")["utterances"]
    assert len(table) >= 40
    nodes = {n["id"]: n for n in real_nodes(doc)}
    globals_ = {i for i, n in nodes.items() if n["data"].get("isGlobal")}
    seen: set[tuple[str, str]] = set()
    for row in table:
        key = (row["node"], row["utterance"])
        assert key not in seen, key
        seen.add(key)
        assert row["node"] in nodes, row
        targets = {e["target"] for e in doc["edges"] if e["source"] == row["node"]}
        assert row["expect_target"] is None or row["expect_target"] in targets | globals_, row
    assert sum(row["expect_target"] is None for row in table) >= 3
