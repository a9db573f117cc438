"""The pathway format: real exports round-trip unchanged; faults are named."""

from __future__ import annotations

import json

import pytest
from tests.unit.pathways.helpers import REAL_EXPORTS, doc, edge, load_real, node, real_json

from callwright.pathways import PathwayFormatError, export, export_json, parse_document
from callwright.pathways.format import (
    Node,
    PseudoNode,
    extract_specs,
    header_pairs,
    http_spec,
    response_routes,
    route_branches,
    timeout_seconds,
)


def test_the_four_real_exports_are_present() -> None:
    assert len(REAL_EXPORTS) == 4


@pytest.mark.parametrize("path", REAL_EXPORTS, ids=lambda p: p.name)
def test_real_export_round_trips_exactly(path) -> None:
    original = real_json(path)
    exported = export(load_real(path))
    assert exported == original
    # Same keys in the same order, same value types (no 10 -> 10.0, no "true" -> True).
    assert json.dumps(exported, ensure_ascii=False) == json.dumps(original, ensure_ascii=False)
    assert json.loads(export_json(load_real(path))) == original


@pytest.mark.parametrize("path", REAL_EXPORTS, ids=lambda p: p.name)
def test_real_export_keeps_the_global_config_pseudo_node(path) -> None:
    parsed = load_real(path)
    pseudo = [n for n in parsed.nodes if isinstance(n, PseudoNode)]
    assert len(pseudo) == 1
    assert parsed.global_prompt
    assert all(isinstance(n, Node) for n in parsed.real_nodes())


def test_unknown_fields_survive_everywhere() -> None:
    raw = {
        "nodes": [
            {
                "id": "a",
                "type": "Mystery",
                "data": {"isStart": True, "zzz": [1, {"x": None}], "modelOptions": {"q": 1}},
                "extra": 1.5,
            }
        ],
        "edges": [{"id": "e", "source": "a", "target": "a", "weird": True, "data": {"k": "v"}}],
        "top": {"deep": [1, 2]},
    }
    assert export(parse_document(json.dumps(raw))) == raw


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", "not_json"),
        (b"\xff\xfe", "not_json"),
        ("[1, 2]", "not_object"),
        ("{}", "no_nodes"),
        ('{"nodes": {}}', "no_nodes"),
        ('{"nodes": []}', "no_nodes"),
        ('{"nodes": [{"globalConfig": {}}]}', "no_nodes"),
        ('{"nodes": [1]}', "invalid_field"),
        ('{"nodes": [{"id": ["x"]}]}', "invalid_field"),
        ('{"nodes": [{"id": "a", "data": {"isStart": "yes"}}]}', "invalid_field"),
        ('{"nodes": [{"id": "a"}], "edges": {}}', "invalid_field"),
        ('{"nodes": [{"id": "a"}], "edges": [{"source": ["a"]}]}', "invalid_field"),
    ],
)
def test_format_errors_name_the_fault(raw, code) -> None:
    with pytest.raises(PathwayFormatError) as caught:
        parse_document(raw)
    assert caught.value.code == code
    assert caught.value.message


def test_a_type_error_names_the_node_and_field() -> None:
    with pytest.raises(PathwayFormatError, match=r"node n1: data\.isStart"):
        parse_document({"nodes": [{"id": "n1", "data": {"isStart": "yes"}}]})


def test_edge_label_top_level_or_under_data() -> None:
    parsed = doc(
        [node("a", isStart=True), node("b")],
        [
            edge("a", "b", "under data"),
            {"id": "t", "source": "a", "target": "b", "label": "top", "description": "d"},
        ],
    )
    labels = [(e.edge_label, e.edge_description) for e in parsed.edge_list()]
    assert labels == [("under data", ""), ("top", "d")]


def test_extract_specs_read_three_to_six_elements() -> None:
    n = parse_document(
        {
            "nodes": [
                node(
                    "a",
                    extractVars=[
                        ["a", "string", "three"],
                        ["b", "integer", "four", True],
                        ["c", "boolean", "five", False, False],
                        ["d", "string", "six", False, False, True],
                        {"name": "e", "type": "number", "required": True},
                        ["too", "short"],
                        [1, "string", "bad name"],
                        ["f", "date", "odd type"],
                        "nonsense",
                    ],
                )
            ]
        }
    ).nodes[0]
    assert isinstance(n, Node)
    specs, problems = extract_specs(n)
    assert [(s.name, s.type, s.required) for s in specs] == [
        ("a", "string", False),
        ("b", "integer", True),
        ("c", "boolean", False),
        ("d", "string", False),
        ("e", "number", True),
        ("f", "string", False),
    ]
    assert len(problems) == 4


def test_real_extract_vars_all_parse() -> None:
    for path in REAL_EXPORTS:
        for n in load_real(path).real_nodes():
            _, problems = extract_specs(n)
            assert problems == [], (path.name, n.key)


def test_response_pathways_both_shapes() -> None:
    routes, problems = response_routes(
        [
            ["code", "==", "0000", {"id": "n2", "name": "Next"}],
            {
                "variable": "ok",
                "condition": "is",
                "value": True,
                "targetId": "n3",
                "targetName": "T",
            },
            {
                "variable": "Default/Webhook Completion",
                "condition": "",
                "value": "",
                "targetId": "",
            },
            42,
        ]
    )
    assert [(r.variable, r.operator, r.value, r.target_id, r.is_default) for r in routes] == [
        ("code", "==", "0000", "n2", False),
        ("ok", "is", "True", "n3", False),
        ("Default/Webhook Completion", "", "", None, True),
    ]
    assert len(problems) == 1


def test_headers_three_shapes() -> None:
    assert header_pairs([["a", "1"], ["b", 2]])[0] == [("a", "1"), ("b", "2")]
    assert header_pairs([{"key": "a", "value": "1"}])[0] == [("a", "1")]
    assert header_pairs({"a": "1"})[0] == [("a", "1")]
    pairs, problems = header_pairs([["only one"], {"value": "x"}])
    assert pairs == [] and len(problems) == 2


def test_timeout_value_units() -> None:
    assert timeout_seconds(10) == 10.0
    assert timeout_seconds(20000) == 20.0
    assert timeout_seconds(None) == 10.0
    assert timeout_seconds(True) == 10.0


def test_http_spec_from_node_fields_and_from_embedded_tool() -> None:
    parsed = doc(
        [
            node("w", "Webhook", url="https://x.test/a", method="post", headers=[["k", "v"]]),
            node(
                "t",
                "Custom Tool",
                tool={"tool": {"url": "https://x.test/t", "query": {"q": 1}, "timeout": 5000}},
            ),
        ]
    )
    w, t = list(parsed.real_nodes())
    spec, _ = http_spec(w)
    assert spec is not None and (spec.method, spec.headers) == ("POST", [("k", "v")])
    spec, _ = http_spec(t)
    assert spec is not None and (spec.method, spec.query, spec.timeout_s) == (
        "GET",
        {"q": "1"},
        5.0,
    )


def test_route_branches_of_the_real_route_node() -> None:
    parsed = load_real(next(p for p in REAL_EXPORTS if p.name.startswith("pathwalk")))
    route = next(n for n in parsed.real_nodes() if n.type == "Route")
    branches, problems = route_branches(route)
    assert problems == []
    assert [(b.conditions[0].field, b.conditions[0].value) for b in branches] == [
        ("validation_failed", "false"),
        ("validation_failed", "true"),
    ]
