"""Property tests: random pathways and random callers never break the engine."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.pathways.helpers import CONTEXT, NOW

from callwright.pathways import (
    CodeResult,
    Decide,
    Decided,
    Decision,
    Dtmf,
    EngineState,
    HttpRequest,
    HttpResult,
    NodeType,
    PathwayFormatError,
    RunCode,
    Silence,
    UserSaid,
    lint,
    parse_document,
    start,
    step,
)
from callwright.pathways.actions import (
    EndCall,
    Generate,
    Say,
    SendDtmf,
    SendSms,
    Transfer,
    TransferPathway,
    Wait,
)

ACTION_TYPES = (
    Say,
    Generate,
    Decide,
    HttpRequest,
    RunCode,
    Transfer,
    TransferPathway,
    EndCall,
    SendSms,
    SendDtmf,
    Wait,
)
TERMINAL = (EndCall, Transfer, TransferPathway)
NODE_TYPES = [t.value for t in NodeType] + ["Hologram"]
VARIABLES = ["age", "name", "code", "flag", "status"]
OPERATORS = ["is", "==", "!=", ">", "<", "contains", "exists", "is not null", "weird"]
SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

texts = st.text(max_size=20)
values = st.one_of(st.none(), st.booleans(), st.integers(-5, 50), texts)


@st.composite
def pathways(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 8))
    ids = [f"n{i}" for i in range(count)]
    targets = st.sampled_from([*ids, "ghost"])
    condition = st.fixed_dictionaries(
        {
            "field": st.sampled_from(VARIABLES),
            "operator": st.sampled_from(OPERATORS),
            "value": texts,
        }
    )
    nodes: list[dict[str, Any]] = []
    for index, node_id in enumerate(ids):
        data: dict[str, Any] = {"name": node_id}
        if index == 0:
            data["isStart"] = True
        speech = draw(st.sampled_from(["text", "prompt", "none"]))
        if speech != "none":
            data[speech] = draw(st.sampled_from(["Hi {{name}}", "Say {{unknown}}", "Ok", ""]))
        if draw(st.booleans()):
            data["extractVars"] = draw(
                st.lists(
                    st.one_of(
                        st.tuples(
                            st.sampled_from(VARIABLES),
                            st.sampled_from(["string", "integer", "boolean", "odd"]),
                            texts,
                            st.booleans(),
                        ).map(list),
                        st.lists(texts, max_size=2),
                    ),
                    max_size=3,
                )
            )
        if draw(st.booleans()):
            data["condition"] = "Caller confirmed"
        if draw(st.integers(0, 5)) == 0:
            data["isGlobal"] = True
            data["globalLabel"] = draw(st.sampled_from(["asks for help", ""]))
            data["enableGlobalAutoReturn"] = draw(st.booleans())
        kind = draw(st.sampled_from(NODE_TYPES))
        if kind == "Route":
            data["routes"] = draw(
                st.lists(
                    st.fixed_dictionaries(
                        {"conditions": st.lists(condition, max_size=2), "targetNodeId": targets}
                    ),
                    max_size=3,
                )
            )
            data["fallbackNodeId"] = draw(st.one_of(st.none(), targets))
        if kind in ("Webhook", "Custom Tool", "Scheduling"):
            data["url"] = draw(
                st.sampled_from(["https://api.test/{{code}}", "bad url", "{{base}}/x"])
            )
            data["method"] = draw(st.sampled_from(["GET", "POST", "BREW"]))
            data["body"] = draw(st.sampled_from(['{"a": "{{name}}"}', "{{name}}", "{not json"]))
            data["headers"] = draw(
                st.sampled_from([[["k", "{{SECRET.x}}"]], [{"key": "k", "value": "v"}], "junk"])
            )
            data["responseData"] = [
                {"name": "status", "data": "$.status"},
                {"name": "code", "data": "$.a[0].b"},
            ]
            data["responsePathways"] = draw(
                st.lists(
                    st.tuples(
                        st.sampled_from(VARIABLES),
                        st.sampled_from(OPERATORS),
                        texts,
                        st.fixed_dictionaries({"id": targets}),
                    ).map(list),
                    max_size=3,
                )
            )
        if kind == "Custom Code":
            data["code"] = draw(st.sampled_from(["export default {}", ""]))
        if kind in ("Transfer Call", "Transfer Node"):
            data["transferNumber"] = draw(st.sampled_from(["+15550001111", "{{name}}", ""]))
        if kind == "Transfer Pathway":
            data["pathwayId"] = draw(st.sampled_from(["pw-1", ""]))
        if kind == "Press Button":
            data["digits"] = "1#"
        if draw(st.booleans()):
            data["modelOptions"] = {
                "skipUserResponse": draw(st.booleans()),
                "disableSilenceRepeat": draw(st.booleans()),
            }
        nodes.append({"id": node_id, "type": kind, "data": data})
    edge_data = st.fixed_dictionaries(
        {"label": st.sampled_from(["yes", "no", "code == 1", "status is not null", ""])},
        optional={
            "alwaysPick": st.booleans(),
            "condition": st.lists(condition, max_size=2),
        },
    )
    edges = [
        {
            "id": f"e{i}",
            "source": draw(st.sampled_from(ids)),
            "target": draw(targets),
            "data": draw(edge_data),
        }
        for i in range(draw(st.integers(0, 12)))
    ]
    if draw(st.booleans()):
        nodes.append({"globalConfig": {"globalPrompt": "Be brief"}})
    return {"nodes": nodes, "edges": edges}


caller_inputs = st.lists(
    st.one_of(
        st.builds(UserSaid, texts),
        st.builds(Silence, st.floats(0, 10)),
        st.builds(Dtmf, st.sampled_from(["1", "#", "123"])),
        st.just("answer"),
        st.builds(HttpResult, texts, st.integers(0, 599)),
        st.builds(CodeResult, texts, st.booleans()),
    ),
    max_size=15,
)
decisions = st.fixed_dictionaries(
    {
        "pick": st.integers(-1, 6),
        "variables": st.dictionaries(st.sampled_from(VARIABLES), values, max_size=3),
        "met": st.one_of(st.none(), st.booleans()),
    }
)
bodies = st.one_of(
    st.none(),
    texts,
    st.fixed_dictionaries({"status": values, "a": st.just([{"b": 1}])}),
    st.lists(st.integers(), max_size=3),
)


def answer(state: EngineState, pending: Decide | None, draw_decision: dict[str, Any], body: Any):
    """A well-formed reply to whatever the engine waits for."""
    if state.status == "deciding" and pending is not None:
        options = pending.request.options
        pick = draw_decision["pick"]
        option_id = (
            options[pick].option_id
            if 0 <= pick < len(options)
            else ("bogus" if pick == 6 else None)
        )
        return Decided(Decision(option_id, draw_decision["variables"], draw_decision["met"]))
    if state.status == "http":
        return HttpResult(state.pending_id or "", 200, body)
    if state.status == "code":
        return CodeResult(state.pending_id or "", True, draw_decision["variables"])
    return UserSaid("hello")


def check_step(doc_nodes: set[str], state: EngineState, actions: tuple[Any, ...]) -> None:
    assert all(isinstance(a, ACTION_TYPES) for a in actions)
    dumped = json.dumps(state.model_dump(mode="json"), allow_nan=False)
    assert EngineState.model_validate(json.loads(dumped)) == state
    assert state.node_id is None or state.node_id in doc_nodes
    if not actions:
        return  # an ignored event
    if state.status == "deciding":
        assert isinstance(actions[-1], Decide)
    elif state.status == "http":
        assert isinstance(actions[-1], HttpRequest)
        assert actions[-1].request_id == state.pending_id
    elif state.status == "code":
        assert isinstance(actions[-1], RunCode)
        assert actions[-1].request_id == state.pending_id


@SETTINGS
@given(pathways(), caller_inputs, st.lists(decisions, min_size=1, max_size=4), bodies)
def test_random_pathways_and_callers_never_break_the_engine(raw, inputs, choices, body) -> None:
    report = lint(raw, llm_configured=False)
    doc = parse_document(raw)
    node_ids = {n.key for n in doc.real_nodes()}
    first = start(doc, CONTEXT, now=NOW)
    check_step(node_ids, first.state, first.actions)
    state, last_actions = first.state, first.actions
    for position, event in enumerate(inputs):
        was_ended = state.ended
        if event == "answer":
            pending = next((a for a in last_actions if isinstance(a, Decide)), None)
            event = answer(state, pending, choices[position % len(choices)], body)
        out = step(doc, state, event)
        check_step(node_ids, out.state, out.actions)
        if was_ended:
            assert out.actions == () and out.state == state
        elif out.state.ended:
            assert isinstance(out.actions[-1], TERMINAL)
        if out.actions or out.state != state:
            state, last_actions = out.state, out.actions
    # The lint's guarantees hold at run time.
    transitions = [
        e.payload["chosen_node_id"] for e in state.log if e.event_type == "node.transition"
    ]
    assert all(t in node_ids for t in transitions)
    if report.ok:
        assert state.end_reason not in ("no_start_node", "missing_node", "engine_error")
        assert transitions and transitions[0] == doc.index().starts[0].key
    else:
        assert {i.code for i in report.errors} <= {"no_start", "duplicate_id"}
    assert "engine.error" not in {e.event_type for e in state.log}


@SETTINGS
@given(st.one_of(st.text(max_size=50), st.binary(max_size=50)))
def test_random_text_is_rejected_by_name_or_parsed(raw) -> None:
    try:
        parse_document(raw)
    except PathwayFormatError as exc:
        assert exc.code in {"not_json", "not_object", "no_nodes", "invalid_field"}
        assert exc.message
    report = lint(raw, llm_configured=True)
    assert all(i.message for i in report.issues)


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=5),
    ),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


@SETTINGS
@given(
    st.fixed_dictionaries(
        {
            "nodes": st.lists(
                st.one_of(
                    json_values,
                    st.fixed_dictionaries(
                        {"id": st.text(max_size=3)},
                        optional={"data": json_values, "type": json_values},
                    ),
                ),
                max_size=4,
            )
        },
        optional={"edges": json_values, "name": json_values},
    )
)
def test_random_documents_parse_or_fail_by_name_and_round_trip(raw) -> None:
    try:
        parsed = parse_document(raw)
    except PathwayFormatError as exc:
        assert exc.code in {"no_nodes", "invalid_field"}
        return
    from callwright.pathways import export

    assert export(parsed) == raw
    lint(parsed, llm_configured=True)
