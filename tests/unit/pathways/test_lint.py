"""The lint: hard errors only for unrunnable pathways, warnings name the node."""

from __future__ import annotations

import pytest
from tests.unit.pathways.helpers import REAL_EXPORTS, edge, node, raw_doc

from callwright.pathways import lint


def codes(raw, *, llm: bool = True) -> list[str]:
    return [i.code for i in lint(raw, llm_configured=llm).issues]


def issue(raw, code: str, *, llm: bool = True):
    found = [i for i in lint(raw, llm_configured=llm).issues if i.code == code]
    assert found, f"no {code} in {codes(raw, llm=llm)}"
    return found[0]


def minimal(*extra_nodes, edges=()):
    return raw_doc([node("start", isStart=True, text="Hi"), *extra_nodes], edges)


EXPECTED_REAL_WARNINGS = {
    "bland-docs-car-rental.json": {"edge_missing_target", "response_route_missing_target"},
    "pathwalk-nu-admissions.json": {"unreachable"},
    "bland-golden-service-scheduling.json": {"unreachable", "dead_end"},
    "apex-auto-receptionist.json": set(),
}


@pytest.mark.parametrize("path", REAL_EXPORTS, ids=lambda p: p.name)
def test_real_exports_lint_without_errors(path) -> None:
    report = lint(path.read_bytes(), llm_configured=True)
    assert report.ok, report.errors
    assert report.errors == []
    found = {i.code for i in report.warnings}
    assert EXPECTED_REAL_WARNINGS[path.name] <= found
    assert "llm_required" not in found
    for warning in report.warnings:
        assert warning.node_id or warning.edge_id or warning.code == "unknown_entry"


def test_real_quirks_are_named() -> None:
    by_name = {p.name: p for p in REAL_EXPORTS}
    car = lint(by_name["bland-docs-car-rental.json"].read_bytes(), llm_configured=True)
    dangling = next(i for i in car.issues if i.code == "edge_missing_target")
    assert "c21a8d20-e48c-4c29-8004-6e21d3d9766b" in dangling.message
    assert dangling.edge_id is not None and dangling.edge_id.startswith("reactflow__edge-ecb6de50")
    walk = lint(by_name["pathwalk-nu-admissions.json"].read_bytes(), llm_configured=True)
    assert [i.node_id for i in walk.issues if i.code == "unreachable"] == [
        "c5767693-fd03-465c-ba69-1e3b2e3b6441"
    ]
    golden = lint(by_name["bland-golden-service-scheduling.json"].read_bytes(), llm_configured=True)
    assert {i.node_id for i in golden.issues if i.code in ("unreachable", "dead_end")} == {
        "node-general-concierge-faq"
    }


def test_prompt_nodes_warn_when_no_llm_is_configured() -> None:
    for path in REAL_EXPORTS:
        report = lint(path.read_bytes(), llm_configured=False)
        assert report.ok
        assert "llm_required" in report.codes()
    raw = minimal(node("p", prompt="Ask things"), edges=[edge("start", "p")])
    assert issue(raw, "llm_required", llm=False).node_id == "p"
    assert "llm_required" not in codes(raw, llm=True)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("not json", "not_json"),
        ('{"nodes": []}', "no_nodes"),
        (raw_doc([node("a", text="x")]), "no_start"),
        (raw_doc([node("a", isStart=True), node("a")]), "duplicate_id"),
    ],
)
def test_hard_errors(raw, code) -> None:
    report = lint(raw, llm_configured=True)
    assert not report.ok
    assert code in {i.code for i in report.errors}


def test_duplicate_id_names_the_node() -> None:
    report = lint(raw_doc([node("x1", isStart=True), node("x1")]), llm_configured=True)
    assert report.errors[0].node_id == "x1"
    assert "x1" in report.errors[0].message


def test_several_start_nodes_are_a_warning() -> None:
    raw = raw_doc([node("a", isStart=True, text="a"), node("b", isStart=True, text="b")])
    report = lint(raw, llm_configured=True)
    assert report.ok
    assert issue(raw, "several_starts").node_id == "b"


def test_edges_to_missing_nodes_and_unreachable_nodes_warn() -> None:
    raw = minimal(node("lost", "End Call", text="bye"), edges=[edge("start", "ghost", "x")])
    report = lint(raw, llm_configured=True)
    assert report.ok
    assert issue(raw, "edge_missing_target").edge_id == "start->ghost"
    assert issue(raw, "unreachable").node_id == "lost"


def test_dead_end_is_a_non_terminal_node_without_a_way_out() -> None:
    raw = minimal(
        node("talk", prompt="x"),
        node("bye", "End Call", text="bye"),
        node("g", isGlobal=True, globalLabel="help", prompt="help"),
        edges=[edge("start", "talk"), edge("start", "bye")],
    )
    dead = [i.node_id for i in lint(raw, llm_configured=True).issues if i.code == "dead_end"]
    assert dead == ["talk"]


def test_malformed_extract_vars_warn() -> None:
    raw = minimal(edges=[])
    raw["nodes"][0]["data"]["extractVars"] = [["name", "string"], ["age", "float", "x"]]
    found = [i for i in lint(raw, llm_configured=True).issues if i.code == "extract_vars"]
    assert len(found) == 2 and all(i.node_id == "start" for i in found)


def test_unknown_variables_warn_but_set_and_builtin_ones_do_not() -> None:
    raw = minimal(
        node("ask", text="Your order {{order_id}}?", extractVars=[["order_id", "string", "id"]]),
        node(
            "hook",
            "Webhook",
            url="https://api.test/{{order_id}}?c={{call_id}}",
            body='{"t": "{{SECRET.token}}", "m": "{{mystery}}", "s": "{{status}}"}',
            responseData=[{"name": "status", "data": "$.status"}],
        ),
        edges=[edge("start", "ask"), edge("ask", "hook")],
    )
    undefined = [i for i in lint(raw, llm_configured=True).issues if i.code == "undefined_variable"]
    assert [(i.node_id, "mystery" in i.message) for i in undefined] == [("hook", True)]


def test_webhook_url_and_method_are_checked() -> None:
    raw = minimal(
        node("bad", "Webhook", url="ftp:/nope", method="FETCH"),
        node("tpl", "Webhook", url="{{base_url}}/x", method="POST"),
        node("none", "Webhook"),
        edges=[edge("start", "bad"), edge("bad", "tpl"), edge("tpl", "none")],
    )
    report = lint(raw, llm_configured=True)
    found = {(i.code, i.node_id) for i in report.issues}
    assert {("webhook_url", "bad"), ("webhook_method", "bad"), ("webhook_no_url", "none")} <= found
    assert ("webhook_url", "tpl") not in found


def test_inline_rest_tools_are_checked() -> None:
    tool = {
        "name": "Lookup",
        "type": "custom_tool",
        "config": {
            "tool": {
                "tool": {
                    "integration": "rest_api",
                    "body": {"url": "not a url", "method": "BREW", "headers": [{"value": "x"}]},
                }
            }
        },
    }
    raw = minimal(edges=[])
    raw["nodes"][0]["data"]["tools"] = [tool, "junk"]
    found = {i.code for i in lint(raw, llm_configured=True).issues if i.node_id == "start"}
    assert {"webhook_url", "webhook_method", "tool_invalid"} <= found


def test_global_nodes_need_a_label() -> None:
    raw = minimal(node("g", isGlobal=True, prompt="x"), edges=[])
    assert issue(raw, "global_no_label").node_id == "g"


def test_route_checks() -> None:
    raw = minimal(
        node(
            "r",
            "Route",
            routes=[
                {
                    "conditions": [{"field": "x", "operator": "~=", "value": "1"}],
                    "targetNodeId": "zz",
                }
            ],
            fallbackNodeId="missing",
        ),
        edges=[edge("start", "r")],
    )
    found = {i.code for i in lint(raw, llm_configured=True).issues if i.node_id == "r"}
    assert {"route_missing_target", "unknown_operator", "dead_end"} <= found


def test_other_node_checks() -> None:
    raw = minimal(
        node("t", "Transfer Call", text="bye"),
        node("c", "Custom Code", snippet_id="s1"),
        node("odd", "Hologram", text="x"),
        edges=[edge("start", "t"), edge("start", "c"), edge("c", "odd"), edge("odd", "t")],
    )
    found = {(i.code, i.node_id) for i in lint(raw, llm_configured=True).issues}
    assert {
        ("transfer_no_number", "t"),
        ("code_missing", "c"),
        ("unknown_node_type", "odd"),
    } <= found


def test_report_shape_matches_the_api_adapter() -> None:
    report = lint(minimal(edges=[edge("start", "nowhere")]), llm_configured=True)
    first = report.issues[0]
    assert first.to_dict().keys() == {"severity", "code", "node_id", "edge_id", "message"}
    assert report.ok and report.warnings and not report.errors
