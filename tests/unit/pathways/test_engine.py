"""The step engine, node type by node type, driven by a scripted brain."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from tests.unit.pathways.helpers import (
    CONTEXT,
    NOW,
    REAL_EXPORTS,
    ScriptedBrain,
    doc,
    edge,
    first_option,
    load_real,
    node,
    pick_label,
)

from callwright.pathways import (
    CodeResult,
    Decide,
    Decided,
    Decision,
    DecisionRequest,
    Dtmf,
    EndCall,
    EngineState,
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
    run_turn,
    start,
    step,
    variables_view,
)
from callwright.pathways import engine as engine_module


def kinds(actions) -> list[str]:
    return [a.kind for a in actions]


def events(state: EngineState) -> list[str]:
    return [e.event_type for e in state.log]


def path(state: EngineState) -> list[str]:
    return [e.node_id for e in state.log if e.event_type == "node.transition"]


GREETING = [
    node("greet", isStart=True, text="Hello {{name}}, how can I help?"),
    node("book", prompt="Book for {{name}} at {{now}}"),
    node("bye", "End Call", text="Goodbye!"),
]


def test_static_text_is_said_verbatim_and_prompts_are_generated() -> None:
    d = doc(GREETING, [edge("greet", "book", "wants to book"), edge("greet", "bye", "done")])
    first = start(d, CONTEXT, now=NOW, variables={"name": "Ada"})
    assert first.actions == (Say("greet", "Hello Ada, how can I help?"),)
    assert first.state.status == "listening"
    brain = ScriptedBrain(pick_label("book"))
    turn = run_turn(d, first.state, UserSaid("I want to book"), brain)
    (generate,) = turn.actions
    assert isinstance(generate, Generate)
    assert generate.prompt == "Book for Ada at Tuesday, June 3, 2025 10:15 AM EDT"
    assert generate.purpose == "respond"
    assert path(turn.state) == ["greet", "book"]
    transition = [e for e in turn.state.log if e.event_type == "node.transition"][-1]
    assert transition.payload["chosen_label"] == "wants to book"
    assert transition.payload["reason"] == "scripted"
    request = brain.requests[0]
    assert [o.label for o in request.options] == ["wants to book", "done"]
    assert request.utterance == "I want to book"


def test_unknown_variables_are_not_spoken() -> None:
    d = doc([node("a", isStart=True, text="Hi {{who}}.")])
    assert start(d, CONTEXT, now=NOW).actions == (Say("a", "Hi ."),)


def test_global_prompt_reaches_generate() -> None:
    d = doc(
        [
            node("a", isStart=True, prompt="Greet"),
            {"globalConfig": {"globalPrompt": "Be kind, {{name}}"}},
        ]
    )
    (generate,) = start(d, CONTEXT, now=NOW, variables={"name": "Ada"}).actions
    assert isinstance(generate, Generate) and generate.global_prompt == "Be kind, Ada"


def test_no_start_node_ends_the_call_and_start_node_id_overrides() -> None:
    d = doc([node("a", text="A"), node("b", text="B")])
    first = start(d, CONTEXT, now=NOW)
    assert first.actions == (EndCall(None, "no_start_node"),) and first.state.ended
    chosen = start(d, CONTEXT, now=NOW, start_node_id="b")
    assert chosen.actions == (Say("b", "B"),)


def test_extraction_is_typed_and_required_variables_are_asked_again() -> None:
    d = doc(
        [
            node(
                "ask",
                isStart=True,
                text="How old are you?",
                extractVars=[["age", "integer", "age", True]],
            ),
            node("next", text="Thanks"),
        ],
        [edge("ask", "next", "gave age")],
    )
    answers = iter(["not sure", "forty two-ish", "42"])

    def decide(r: DecisionRequest) -> Decision:
        # A brain moves on only once it has the age (an explicit choice is followed).
        age = next(answers)
        return Decision(
            option_id=r.options[0].option_id if age.isdigit() else None, variables={"age": age}
        )

    brain = ScriptedBrain(decide)
    state = start(d, CONTEXT, now=NOW).state
    turn = run_turn(d, state, UserSaid("dunno"), brain)
    (reask,) = turn.actions
    assert isinstance(reask, Generate) and reask.purpose == "reask" and reask.missing == ("age",)
    assert "age" in reask.fallback_text
    assert turn.state.node_id == "ask"
    turn = run_turn(d, turn.state, UserSaid("forty two-ish"), brain)
    assert turn.state.node_id == "ask"
    turn = run_turn(d, turn.state, UserSaid("42"), brain)
    assert turn.state.variables["age"] == 42
    assert turn.actions == (Say("next", "Thanks"),)
    assert "var_extraction.warning" in events(turn.state)


def test_reasking_stops_after_a_limit() -> None:
    d = doc(
        [
            node("ask", isStart=True, text="Email?", extractVars=[["email", "string", "e", True]]),
            node("n", text="ok"),
        ],
        [edge("ask", "n", "next")],
    )
    brain = ScriptedBrain(lambda r: Decision())
    state = start(d, CONTEXT, now=NOW).state
    for _ in range(engine_module.MAX_REASKS):
        state = run_turn(d, state, UserSaid("no"), brain).state
        assert state.node_id == "ask"
    assert run_turn(d, state, UserSaid("no"), brain).state.node_id == "n"


def test_node_loops_until_its_condition_holds() -> None:
    d = doc(
        [
            node("q", isStart=True, prompt="Ask for the date", condition="Caller gave a date"),
            node("n", text="ok"),
        ],
        [edge("q", "n", "date given")],
    )
    met = iter([False, True])
    brain = ScriptedBrain(
        lambda r: Decision(option_id=r.options[0].option_id, condition_met=next(met))
    )
    state = start(d, CONTEXT, now=NOW).state
    turn = run_turn(d, state, UserSaid("hmm"), brain)
    assert turn.state.node_id == "q" and kinds(turn.actions) == ["generate"]
    assert brain.requests[0].condition == "Caller gave a date"
    turn = run_turn(d, turn.state, UserSaid("the 5th"), brain)
    assert turn.state.node_id == "n"
    assert [
        e.payload["met"] for e in turn.state.log if e.event_type == "loop_condition.result"
    ] == [False, True]


def test_staying_repeats_the_node_and_dangling_edges_are_never_offered() -> None:
    d = doc(
        [node("a", isStart=True, text="Pick one"), node("b", text="B")],
        [edge("a", "b", "b"), edge("a", "ghost", "ghost")],
    )
    brain = ScriptedBrain()
    turn = run_turn(d, start(d, CONTEXT, now=NOW).state, UserSaid("?"), brain)
    assert turn.actions == (Say("a", "Pick one"),) and turn.state.node_id == "a"
    assert [o.target_id for o in brain.requests[0].options] == ["b"]


def test_unknown_option_from_the_brain_keeps_the_call_on_the_node() -> None:
    d = doc([node("a", isStart=True, text="A"), node("b", text="B")], [edge("a", "b", "b")])
    brain = ScriptedBrain(lambda r: Decision(option_id="not-an-edge"))
    turn = run_turn(d, start(d, CONTEXT, now=NOW).state, UserSaid("x"), brain)
    assert turn.state.node_id == "a" and "engine.warning" in events(turn.state)


def test_always_pick_edges_skip_the_brain() -> None:
    d = doc(
        [node("a", isStart=True, text="A"), node("b", text="B")],
        [edge("a", "b", "any", alwaysPick=True)],
    )
    brain = ScriptedBrain()
    turn = run_turn(d, start(d, CONTEXT, now=NOW).state, UserSaid("x"), brain)
    assert turn.state.node_id == "b" and brain.requests == []


def test_global_node_is_entered_from_anywhere_and_returns() -> None:
    d = doc(
        [
            node("a", isStart=True, prompt="Collect the order"),
            node("b", text="B"),
            node(
                "human",
                isGlobal=True,
                globalLabel="asks if talking to a bot",
                text="I'm an AI assistant.",
            ),
        ],
        [edge("a", "b", "order collected")],
    )
    brain = ScriptedBrain(pick_label("bot"))
    state = start(d, CONTEXT, now=NOW).state
    turn = run_turn(d, state, UserSaid("are you a robot?"), brain)
    assert turn.actions == (Say("human", "I'm an AI assistant."),)
    assert turn.state.return_stack == ["a"]
    assert any(o.is_global and o.target_id == "human" for o in brain.requests[0].options)
    # The caller's next words belong to the node the call came from: handled there.
    brain.rule = pick_label("order collected")
    turn = run_turn(d, turn.state, UserSaid("two pizzas please"), brain)
    assert turn.state.node_id == "b" and turn.state.return_stack == []
    assert brain.requests[-1].node_id == "a"
    assert "node.return" in events(turn.state)


def test_global_node_without_auto_return_follows_its_own_edges() -> None:
    d = doc(
        [
            node("a", isStart=True, text="A"),
            node(
                "g",
                isGlobal=True,
                globalLabel="wants a human",
                enableGlobalAutoReturn=False,
                text="Sure",
            ),
            node("t", "Transfer Call", text="Transferring", transferNumber="+15550001111"),
        ],
        [edge("g", "t", "confirmed")],
    )
    brain = ScriptedBrain(pick_label("human"))
    turn = run_turn(d, start(d, CONTEXT, now=NOW).state, UserSaid("human please"), brain)
    assert turn.state.node_id == "g" and turn.state.return_stack == []
    brain.rule = pick_label("confirmed")
    turn = run_turn(d, turn.state, UserSaid("yes"), brain)
    assert turn.actions == (Say("t", "Transferring"), Transfer("t", "+15550001111", None))
    assert turn.state.ended


def test_end_call_speaks_then_hangs_up_and_ignores_later_events() -> None:
    d = doc([node("bye", "End Call", isStart=True, text="Bye {{name}}")])
    first = start(d, CONTEXT, now=NOW, variables={"name": "Ada"})
    assert first.actions == (Say("bye", "Bye Ada"), EndCall("bye", "end_call_node"))
    assert first.state.ended and first.state.end_reason == "end_call_node"
    for event in (UserSaid("hello?"), Silence(), HttpResult("x", 200), CodeResult("x", True)):
        later = step(d, first.state, event)
        assert later.actions == () and later.state == first.state


def test_transfer_number_is_templated_and_a_missing_one_ends_the_call() -> None:
    warm = {"isEnabled": True, "agentPrompt": "Brief the agent"}
    d = doc(
        [
            node(
                "t",
                "Transfer Call",
                isStart=True,
                transferNumber="{{transferPhone}}",
                warmTransferFields=warm,
            )
        ]
    )
    done = start(d, CONTEXT, now=NOW, variables={"transferPhone": "+15551234567"})
    assert done.actions == (Transfer("t", "+15551234567", warm),)
    missing = start(d, CONTEXT, now=NOW)
    assert missing.actions == (EndCall("t", "transfer_number_missing"),)


WEBHOOK = node(
    "hook",
    "Webhook",
    isStart=True,
    url="https://api.test/orders/{{order_id}}?caller={{from}}",
    method="POST",
    headers=[["Authorization", "Bearer {{SECRET.api}}"], ["X-Order", "{{order_id}}"]],
    body='{"id": "{{order_id}}", "note": "{{note}}"}',
    timeoutValue=20000,
    responseData=[
        {"name": "status", "data": "$.result.status", "context": ""},
        {"name": "eta", "data": "$.eta"},
    ],
    responsePathways=[
        ["status", "==", "shipped", {"id": "shipped", "name": "Shipped"}],
        ["status", "!=", "shipped", {"id": "other", "name": "Other"}],
        ["status", "==", "lost", {"id": "missing-node", "name": "Gone"}],
        ["eta", "is", "not null", {"id": "eta", "name": "ETA"}],
    ],
)
WEBHOOK_TARGETS = [
    node("shipped", text="Shipped"),
    node("other", text="Other"),
    node("eta", text="ETA {{eta}}"),
]


def test_webhook_request_is_templated_and_keeps_secrets_for_request_time() -> None:
    d = doc([WEBHOOK, *WEBHOOK_TARGETS])
    first = start(d, CONTEXT, now=NOW, variables={"order_id": "A7", "note": 'fragile "glass"'})
    (request,) = first.actions
    assert isinstance(request, HttpRequest)
    assert request.url == "https://api.test/orders/A7?caller=+14155550100"
    assert request.method == "POST" and request.timeout_s == 20.0 and request.purpose == "webhook"
    assert request.headers == (("Authorization", "Bearer {{SECRET.api}}"), ("X-Order", "A7"))
    assert request.body is not None and json.loads(request.body) == {
        "id": "A7",
        "note": 'fragile "glass"',
    }
    assert first.state.status == "http" and first.state.pending_id == request.request_id
    assert "webhook.invoke" in events(first.state)


@pytest.mark.parametrize(
    ("body", "target"),
    [
        ({"result": {"status": "shipped"}}, "shipped"),
        ('{"result": {"status": "packing"}}', "other"),
        # "lost" matches the 2nd and the 3rd route; the 3rd goes to a missing node and is
        # skipped, so the last *followable* true route wins.
        ({"result": {"status": "lost"}}, "other"),
        ({"result": {"status": "shipped"}, "eta": "Friday"}, "eta"),
    ],
)
def test_webhook_response_is_mapped_and_routed(body, target) -> None:
    d = doc([WEBHOOK, *WEBHOOK_TARGETS])
    first = start(d, CONTEXT, now=NOW, variables={"order_id": "A7"})
    request = first.actions[0]
    assert isinstance(request, HttpRequest)
    result = step(d, first.state, HttpResult(request.request_id, 200, body))
    assert result.state.node_id == target
    assert result.state.variables["BlandStatusCode"] == 200
    mapping = next(e for e in result.state.log if e.event_type == "webhook.mapping")
    assert mapping.operation_id == next(
        e.sequence for e in result.state.log if e.event_type == "webhook.invoke"
    )


def test_webhook_without_a_matching_route_follows_its_edge_and_stale_results_are_ignored() -> None:
    d = doc(
        [node("hook", "Webhook", isStart=True, url="https://api.test/x"), node("n", text="next")],
        [edge("hook", "n", "done")],
    )
    first = start(d, CONTEXT, now=NOW)
    stale = step(d, first.state, HttpResult("other-id", 200, {}))
    assert stale.actions == () and stale.state.status == "http"
    failed = step(d, first.state, HttpResult(first.state.pending_id or "", 0, error="timed out"))
    assert failed.state.node_id == "n" and "webhook.error" in events(failed.state)


def test_webhook_edges_labelled_as_conditions_route_without_a_brain() -> None:
    d = doc(
        [
            node(
                "hook",
                "Webhook",
                isStart=True,
                url="https://api.test/x",
                responseData=[{"name": "code", "data": "$.code"}],
            ),
            node("ok", text="ok"),
            node("bad", text="bad"),
        ],
        [edge("hook", "ok", "code == 0000"), edge("hook", "bad", "code == E1")],
    )
    first = start(d, CONTEXT, now=NOW)
    result = step(d, first.state, HttpResult(first.state.pending_id or "", 200, {"code": "E1"}))
    assert result.state.node_id == "bad"


def test_webhook_with_several_unconditional_edges_asks_the_brain_with_the_response() -> None:
    d = doc(
        [
            node("hook", "Webhook", isStart=True, url="https://api.test/x"),
            node("a", text="A"),
            node("b", text="B"),
        ],
        [edge("hook", "a", "in stock"), edge("hook", "b", "sold out")],
    )
    first = start(d, CONTEXT, now=NOW)
    result = step(d, first.state, HttpResult(first.state.pending_id or "", 200, {"stock": 0}))
    (decide,) = result.actions
    assert isinstance(decide, Decide) and decide.request.context is not None
    assert '"stock": 0' in decide.request.context
    chosen = step(d, result.state, Decided(Decision(option_id="hook->b")))
    assert chosen.state.node_id == "b"
    nothing = step(d, result.state, Decided(Decision()))
    assert nothing.state.node_id == "a"


def test_custom_code_runs_then_a_route_branches_on_its_result() -> None:
    d = doc(
        [
            node(
                "code",
                "Custom Code",
                isStart=True,
                code="export default {}",
                snippet_variables={"when": "{{slot}}"},
            ),
            node(
                "route",
                "Route",
                routes=[
                    {
                        "conditions": [{"field": "valid", "operator": "is", "value": "true"}],
                        "targetNodeId": "yes",
                    },
                    {
                        "conditions": [{"field": "valid", "operator": "is", "value": "false"}],
                        "targetNodeId": "no",
                    },
                ],
                fallbackNodeId="unknown",
            ),
            node("yes", text="Valid"),
            node("no", text="Invalid"),
            node("unknown", text="Unknown"),
        ],
        [edge("code", "route", "continue", alwaysPick=True)],
    )
    first = start(d, CONTEXT, now=NOW, variables={"slot": "9am"})
    (run,) = first.actions
    assert isinstance(run, RunCode)
    assert run.input["when"] == "9am" and run.input["call_id"] == "call-1"
    assert run.now_ms == int(NOW.timestamp() * 1000)
    ok = step(d, first.state, CodeResult(run.request_id, True, {"valid": True}))
    assert ok.actions == (Say("yes", "Valid"),) and ok.state.variables["valid"] is True
    assert path(ok.state) == ["code", "route", "yes"]
    failed = step(d, first.state, CodeResult(run.request_id, False, error="ReferenceError"))
    assert failed.state.node_id == "unknown" and "custom_code.error" in events(failed.state)


def test_custom_code_without_embedded_code_is_skipped() -> None:
    d = doc(
        [node("c", "Custom Code", isStart=True, snippet_id="s1"), node("n", text="N")],
        [edge("c", "n", "go")],
    )
    first = start(d, CONTEXT, now=NOW)
    assert first.actions == (Say("n", "N"),)


@pytest.mark.parametrize(
    ("operator", "value", "variables", "matches"),
    [
        ("is", "gold", {"tier": "Gold"}, True),
        ("equals", "3", {"tier": 3}, True),
        ("!=", "gold", {"tier": "silver"}, True),
        ("contains", "old", {"tier": "gold"}, True),
        (">", "10", {"tier": "11"}, True),
        ("<", "10", {"tier": 11}, False),
        (">=", "11", {"tier": 11.0}, True),
        ("exists", "", {"tier": "x"}, True),
        ("exists", "", {}, False),
        ("is", "null", {}, True),
        ("is", "not null", {"tier": ""}, False),
        ("does not contain", "z", {"tier": "abc"}, True),
        ("starts with", "AB", {"tier": "abc"}, True),
        ("~~", "x", {"tier": "x"}, False),
    ],
)
def test_route_operators(operator, value, variables, matches) -> None:
    d = doc(
        [
            node(
                "r",
                "Route",
                isStart=True,
                routes=[
                    {
                        "conditions": [{"field": "tier", "operator": operator, "value": value}],
                        "targetNodeId": "hit",
                    }
                ],
                fallbackNodeId="miss",
            ),
            node("hit", text="hit"),
            node("miss", text="miss"),
        ]
    )
    assert start(d, CONTEXT, now=NOW, variables=variables).state.node_id == (
        "hit" if matches else "miss"
    )


def test_route_with_no_match_and_no_fallback_ends_the_call() -> None:
    d = doc(
        [
            node("r", "Route", isStart=True, routes=[], fallbackNodeId=None),
            node("x", text="x"),
            node("y", text="y"),
        ],
        [edge("r", "x", "a"), edge("r", "y", "b")],
    )
    first = start(d, CONTEXT, now=NOW)
    assert first.actions == (EndCall("r", "no_route"),)


def test_edge_conditions_route_without_the_brain() -> None:
    d = doc(
        [node("a", isStart=True, text="A"), node("b", text="B"), node("c", text="C")],
        [
            edge(
                "a",
                "b",
                "flag is true",
                condition=[{"field": "flag", "value": "true", "operator": "is"}],
            ),
            edge(
                "a",
                "c",
                "flag is false",
                condition=[{"field": "flag", "value": "false", "operator": "is"}],
            ),
        ],
    )
    brain = ScriptedBrain()
    turn = run_turn(
        d, start(d, CONTEXT, now=NOW, variables={"flag": False}).state, UserSaid("x"), brain
    )
    assert turn.state.node_id == "c" and brain.requests == []


def test_route_cycles_are_detected() -> None:
    d = doc(
        [
            node("r1", "Route", isStart=True, routes=[], fallbackNodeId="r2"),
            node("r2", "Route", routes=[], fallbackNodeId="r1"),
        ]
    )
    first = start(d, CONTEXT, now=NOW)
    assert first.actions in ((EndCall("r1", "loop_detected"),), (EndCall("r2", "loop_detected"),))
    assert first.state.ended and "engine.loop" in events(first.state)


def test_an_action_cycle_sends_nothing() -> None:
    d = doc([node("s", "SMS", isStart=True, message="spam")], [edge("s", "s", "again")])
    assert start(d, CONTEXT, now=NOW).actions == (EndCall("s", "loop_detected"),)


def test_wait_for_response_tolerates_hold_requests_and_silence() -> None:
    d = doc(
        [node("w", "Wait for Response", isStart=True, text="Take your time."), node("n", text="N")],
        [edge("w", "n", "ready")],
    )
    brain = ScriptedBrain(pick_label("ready"))
    state = start(d, CONTEXT, now=NOW).state
    held = run_turn(d, state, UserSaid("hold on, let me check"), brain)
    assert held.actions == (Wait("w", "caller asked to hold"),) and brain.requests == []
    quiet = step(d, held.state, Silence(5))
    assert quiet.actions == (Wait("w", "silence"),)
    moved = run_turn(d, quiet.state, UserSaid("ok I found it"), brain)
    assert moved.state.node_id == "n"


def test_silence_repeats_then_ends_the_call() -> None:
    d = doc([node("a", isStart=True, prompt="Ask")])
    state = start(d, CONTEXT, now=NOW).state
    first = step(d, state, Silence(4))
    (again,) = first.actions
    assert isinstance(again, Generate) and again.purpose == "silence"
    second = step(d, first.state, Silence(4))
    third = step(d, second.state, Silence(4))
    assert third.actions == (EndCall("a", "silence"),)


def test_silence_repeat_can_be_disabled() -> None:
    d = doc([node("a", isStart=True, text="A", modelOptions={"disableSilenceRepeat": True})])
    assert step(d, start(d, CONTEXT, now=NOW).state, Silence()).actions == (Wait("a", "silence"),)


def test_skip_user_response_moves_on_at_once() -> None:
    d = doc(
        [
            node("a", isStart=True, text="Welcome.", modelOptions={"skipUserResponse": True}),
            node("b", text="Question?"),
        ],
        [edge("a", "b", "next")],
    )
    assert start(d, CONTEXT, now=NOW).actions == (Say("a", "Welcome."), Say("b", "Question?"))


def test_press_button_sms_and_transfer_pathway_are_actions() -> None:
    d = doc(
        [
            node("menu", "Press Button", isStart=True, digits="{{ext}}#"),
            node("sms", "SMS", message="Your code is {{code}}"),
            node("hand", "Transfer Pathway", pathwayId="pw-2", startNodeId="n9", text="One moment"),
        ],
        [edge("menu", "sms", "then"), edge("sms", "hand", "then")],
    )
    first = start(d, CONTEXT, now=NOW, variables={"ext": "12", "code": "9911"})
    assert first.actions == (
        SendDtmf("menu", "12#"),
        SendSms("sms", "+14155550100", "Your code is 9911"),
        Say("hand", "One moment"),
        TransferPathway("hand", "pw-2", None, "n9"),
    )
    assert first.state.ended and first.state.end_reason == "transferred_pathway"


def test_custom_tool_node_calls_its_tool_and_maps_the_response() -> None:
    tool = {
        "tool": {
            "name": "Weather",
            "url": "https://api.test/weather",
            "method": "GET",
            "query": {"city": "{{city}}"},
            "headers": {"Authorization": "Bearer {{SECRET.weather}}"},
            "response": {"temp": "$.now.temp"},
        }
    }
    d = doc(
        [
            node("t", "Custom Tool", isStart=True, tool=tool),
            node("n", text="It is {{temp}} degrees"),
        ],
        [edge("t", "n", "done")],
    )
    first = start(d, CONTEXT, now=NOW, variables={"city": "San José"})
    (request,) = first.actions
    assert isinstance(request, HttpRequest) and request.purpose == "tool"
    assert request.url == "https://api.test/weather?city=San%20Jos%C3%A9"
    assert request.headers == (("Authorization", "Bearer {{SECRET.weather}}"),)
    done = step(d, first.state, HttpResult(request.request_id, 200, {"now": {"temp": 21}}))
    assert done.actions == (Say("n", "It is 21 degrees"),)


def test_scheduling_node_offers_slots_and_extracts_the_choice() -> None:
    d = doc(
        [
            node(
                "s",
                "Scheduling",
                isStart=True,
                url="https://cal.test/slots",
                prompt="Offer {{available_slots}}",
            ),
            node("ok", "End Call", text="Booked for {{chosen_datetime}}"),
        ],
        [edge("s", "ok", "slot chosen")],
    )
    first = start(d, CONTEXT, now=NOW)
    (request,) = first.actions
    assert isinstance(request, HttpRequest) and request.purpose == "scheduling"
    offered = step(d, first.state, HttpResult(request.request_id, 200, ["2025-06-04T09:00:00Z"]))
    (generate,) = offered.actions
    assert isinstance(generate, Generate) and "2025-06-04T09:00:00Z" in generate.prompt
    brain = ScriptedBrain(
        lambda r: Decision(
            option_id=r.options[0].option_id, variables={"chosen_datetime": "2025-06-04T09:00:00Z"}
        )
    )
    booked = run_turn(d, offered.state, UserSaid("the 4th at 9"), brain)
    assert [s.name for s in brain.requests[0].extract] == ["chosen_datetime"]
    assert booked.actions == (
        Say("ok", "Booked for 2025-06-04T09:00:00Z"),
        EndCall("ok", "end_call_node"),
    )


def test_knowledge_base_nodes_pass_their_knowledge() -> None:
    d = doc(
        [
            node("kb", "Knowledge Base", isStart=True, prompt="Answer", kb="Open 9-5"),
            node("vkb", "Vector DB Knowledge Base", prompt="Answer", kbTool="{{kb_id}}"),
        ],
        [edge("kb", "vkb", "more")],
    )
    (generate,) = start(d, CONTEXT, now=NOW).actions
    assert isinstance(generate, Generate) and generate.knowledge == "Open 9-5"
    turn = run_turn(
        d,
        start(d, CONTEXT, now=NOW, variables={"kb_id": "KB-1"}).state,
        UserSaid("more"),
        ScriptedBrain(first_option),
    )
    (generate,) = turn.actions
    assert isinstance(generate, Generate) and generate.knowledge_base == "KB-1"


def test_dtmf_is_a_caller_turn() -> None:
    d = doc(
        [node("a", isStart=True, text="Press 1"), node("b", text="B")],
        [edge("a", "b", "pressed 1")],
    )
    brain = ScriptedBrain(
        lambda r: Decision(option_id=r.options[0].option_id if r.utterance == "1" else None)
    )
    turn = run_turn(d, start(d, CONTEXT, now=NOW).state, Dtmf("1"), brain)
    assert turn.state.node_id == "b" and "button.press" in events(turn.state)


def test_events_out_of_turn_are_ignored() -> None:
    d = doc([node("a", isStart=True, text="A")])
    state = start(d, CONTEXT, now=NOW).state
    for event in (Decided(Decision()), HttpResult("x", 200), CodeResult("x", True)):
        out = step(d, state, event)
        assert out.actions == () and out.state.status == "listening"
        assert out.state.log[-1].event_type == "engine.warning"


def test_state_round_trips_through_json_mid_call() -> None:
    d = doc(GREETING, [edge("greet", "book", "book"), edge("greet", "bye", "done")])
    brain = ScriptedBrain(pick_label("book", anything=1))
    first = start(d, CONTEXT, now=NOW, variables={"name": "Ada"})
    decide = step(d, first.state, UserSaid("book please", at=NOW + timedelta(seconds=5)))
    stored = json.loads(json.dumps(decide.state.model_dump(mode="json")))
    restored = EngineState.model_validate(stored)
    assert restored == decide.state
    a = step(d, restored, Decided(brain.decide(decide.actions[0].request)))  # type: ignore[union-attr]
    b = step(d, decide.state, Decided(brain.decide(decide.actions[0].request)))  # type: ignore[union-attr]
    assert a == b
    assert decide.state.now == (NOW + timedelta(seconds=5)).isoformat()


def test_variables_view_has_builtins_and_call_variables_win() -> None:
    d = doc([node("a", isStart=True, text="A")])
    state = start(d, CONTEXT, now=NOW, variables={"voice_id": "mine", "x": 1}).state
    view = variables_view(state)
    assert view["call_id"] == "call-1" and view["voice_id"] == "mine" and view["x"] == 1


def test_non_json_values_are_made_storable() -> None:
    d = doc([node("a", isStart=True, text="A")])
    state = start(
        d, CONTEXT, now=NOW, variables={"t": (1, 2), "n": float("nan"), "o": object()}
    ).state
    json.dumps(state.model_dump(mode="json"), allow_nan=False)


def test_an_internal_failure_ends_the_call_instead_of_raising(monkeypatch) -> None:
    d = doc([node("a", isStart=True, text="A"), node("b", text="B")], [edge("a", "b", "b")])
    state = start(d, CONTEXT, now=NOW).state

    def boom(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(engine_module._Run, "ask", boom)
    out = step(d, state, UserSaid("x"))
    assert out.actions == (EndCall("a", "engine_error"),) and out.state.ended
    assert out.state.log[-2].event_type == "engine.error"


def test_a_failing_brain_counts_as_no_decision() -> None:
    d = doc([node("a", isStart=True, text="A"), node("b", text="B")], [edge("a", "b", "b")])

    class Broken:
        def decide(self, request):
            raise ValueError("llm down")

    turn = run_turn(d, start(d, CONTEXT, now=NOW).state, UserSaid("x"), Broken())
    assert turn.actions == (Say("a", "A"),)


# -- real exports ----------------------------------------------------------------------


def real(prefix: str):
    return load_real(next(p for p in REAL_EXPORTS if p.name.startswith(prefix)))


def test_pathwalk_custom_code_feeds_its_route_node() -> None:
    d = real("pathwalk")
    first = start(
        d,
        CONTEXT,
        now=NOW,
        start_node_id="64afcd8d-a5db-4adc-9623-b6f70c2869ad",
        variables={"callback_time": "2025-06-04T18:00:00Z"},
    )
    (run,) = first.actions
    assert isinstance(run, RunCode) and run.input["callback_time"] == "2025-06-04T18:00:00Z"
    out = step(d, first.state, CodeResult(run.request_id, True, {"validation_failed": True}))
    assert path(out.state)[-2:] == [
        "f0607df6-abb3-46fb-8b45-d3229dd52c38",
        "440cf183-1645-4934-b15b-6fb497a8349d",
    ]
    out = step(d, first.state, CodeResult(run.request_id, True, {"validation_failed": False}))
    assert out.state.node_id == "230bc593-9cf8-424f-8a30-b1c469c91e48"
    assert out.state.ended


def test_car_rental_webhook_routes_on_the_response() -> None:
    d = real("bland-docs-car-rental")
    first = start(
        d,
        CONTEXT,
        now=NOW,
        start_node_id="4f39d355-a53c-4f43-a2f0-0a8657c6659f",
        variables={"rental_id": "R1", "last_name": "Downie"},
    )
    (request,) = first.actions
    assert isinstance(request, HttpRequest)
    assert (
        request.url == "https://express-ts-fauna-starter.fly.dev/R1/info?customer_last_name=Downie"
    )
    out = step(
        d,
        first.state,
        HttpResult(request.request_id, 200, {"counterSystemError": {"code": "RA_NOT_FOUND"}}),
    )
    assert out.state.node_id == "57fd03d5-3bb8-4d32-8ed0-4222c313c481"
    assert out.state.variables["code"] == "RA_NOT_FOUND"


def test_car_rental_route_to_the_missing_node_is_skipped() -> None:
    d = real("bland-docs-car-rental")
    first = start(
        d,
        CONTEXT,
        now=NOW,
        start_node_id="ecb6de50-44a4-4677-b699-a2f17a1d39b0",
        variables={"rental_id": "R1", "new_date": "2025-06-09"},
    )
    request = next(a for a in first.actions if isinstance(a, HttpRequest))
    assert request.body == '{"newDropoffTime": "2025-06-09"}'
    out = step(
        d,
        first.state,
        HttpResult(
            request.request_id,
            200,
            {"counterSystemError": {"code": "CREDIT_CARD_DECLINED", "message": "declined"}},
        ),
    )
    # "errors != 0000" holds, then the last true route (to the missing node) is skipped;
    # "Transfer API Error" skips the caller's response and moves on to its End Call.
    assert path(out.state)[1:] == [
        "43806b33-f987-4f5b-97be-94c2d220c65e",
        "d5f9e67f-8ae6-493b-82e4-11d76cec7f9a",
    ]
    assert "webhook.warning" in events(out.state)


def test_receptionist_webhook_uses_pair_headers_and_status_code_routing() -> None:
    d = real("apex")
    first = start(
        d,
        CONTEXT,
        now=NOW,
        start_node_id="e5000000-0000-4000-8000-000000000005",
        variables={"appointment_day": "Tuesday", "appointment_time": "9:00 AM"},
    )
    request = next(a for a in first.actions if isinstance(a, HttpRequest))
    assert ("Content-Type", "application/json") in request.headers
    body = json.loads(request.body or "")
    assert body["user_number"] == "+14155550100" and "Tuesday at 9:00 AM" in body["agent_message"]
    out = step(d, first.state, HttpResult(request.request_id, 500, {"error": "x"}))
    assert out.state.node_id == "g9000000-0000-4000-8000-000000000009"


@pytest.mark.parametrize("path_", REAL_EXPORTS, ids=lambda p: p.name)
def test_real_exports_can_be_chatted_to_the_end(path_) -> None:
    d = load_real(path_)
    brain = ScriptedBrain(first_option)
    turn = start(d, CONTEXT, now=NOW)
    for _ in range(40):
        state = turn.state
        if state.ended:
            break
        if state.status == "http":
            turn = run_turn(d, state, HttpResult(state.pending_id or "", 200, {}), brain)
        elif state.status == "code":
            turn = run_turn(
                d, state, CodeResult(state.pending_id or "", False, error="no network"), brain
            )
        else:
            turn = run_turn(d, state, UserSaid("yes"), brain)
    assert turn.state.ended
    json.dumps(turn.state.model_dump(mode="json"))
