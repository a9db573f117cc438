"""The library's realistic pathways, imported through the API and driven through the
pathway chat API turn by turn (``tests/data/conversations``).

Everything on the product path is real: the API and store, the engine, the
OpenAI-compatible LLM client talking to the scripted LLM server (a separate process,
scripted per turn with the edge and variables the scenario names), webhook requests
through the outbound guard to a real local HTTP server (allow-listed), secrets sealed
in the store and filled in at request time, Custom Code in the sandbox.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import Api
from tests.support.api_stub import ApiStub, StubRequest
from tests.support.scripted_llm_server import ScriptedLLM

from callwright import netguard
from callwright.conversation.agents import AgentFactory
from callwright.providers.openai_llm import OpenAICompatibleLLM
from callwright.store.pathway_models import PathwayChat

REPO = Path(__file__).resolve().parents[2]
LIBRARY = REPO / "src" / "callwright" / "pathways" / "library"
CONVERSATIONS = REPO / "tests" / "data" / "conversations"
REALISTIC = ("clinic_appointment", "insurance_fnol", "delivery_reschedule")


def scenarios() -> list[Any]:
    cases = []
    for name in REALISTIC:
        for scenario in json.loads((CONVERSATIONS / f"{name}.json").read_text())["scenarios"]:
            cases.append(pytest.param(name, scenario, id=f"{name}:{scenario['name']}"))
    return cases


@pytest.fixture
def database_url(sqlite_database: str) -> str:
    """The store is covered on both databases elsewhere; the scenarios test behaviour."""
    return sqlite_database


@pytest.fixture
def stub() -> Iterator[ApiStub]:
    server = ApiStub().start()
    yield server
    server.stop()


@pytest.fixture
async def llm_api(api: Api, scripted_llm: ScriptedLLM) -> AsyncIterator[Api]:
    llm = OpenAICompatibleLLM(scripted_llm.base_url, "sk-test", "scripted", timeout=10, retries=0)
    svc = api.services
    svc.agents = AgentFactory(
        svc.db, svc.clock, svc.box, netguard.OutboundPolicy.parse(["127.0.0.1/32"]), llm
    )
    try:
        yield api
    finally:
        await llm.aclose()


def script_turn(llm: ScriptedLLM, turn: dict[str, Any]) -> None:
    choice = turn.get("choose_edge")
    llm.script(
        {
            "match": {"tool_choice": "choose_option"},
            "reply": {
                "tool_call": {
                    "name": "choose_option",
                    "arguments": {"option_id": choice if choice is not None else "none"},
                }
            },
        },
        {
            "match": {"tool_choice": "record_variables"},
            "reply": {
                "tool_call": {
                    "name": "record_variables",
                    # A model that picks an edge has judged the node's condition met.
                    "arguments": {
                        **(turn.get("extract") or {}),
                        "__condition_met": choice is not None,
                    },
                }
            },
        },
        {"match": {"stream": True}, "reply": {"text": "Okay."}},
    )


def is_subset(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and is_subset(v, actual[k]) for k, v in expected.items()
        )
    return bool(expected == actual)


def check_request(expected: dict[str, Any], got: StubRequest) -> None:
    assert (got.method, got.path) == (expected["method"], expected["path"]), got
    if "json_subset" in expected:
        assert is_subset(expected["json_subset"], got.json()), (expected, got.json())
    if "query_subset" in expected:
        query = {k: v[0] for k, v in got.query.items()}
        assert is_subset(expected["query_subset"], query), (expected, query)
    for name, value in (expected.get("headers_subset") or {}).items():
        assert got.headers.get(name.lower()) == value, (name, got.headers)


@pytest.mark.parametrize(("pathway", "scenario"), scenarios())
async def test_scenario(
    llm_api: Api,
    scripted_llm: ScriptedLLM,
    stub: ApiStub,
    pathway: str,
    scenario: dict[str, Any],
) -> None:
    api = llm_api
    document = json.loads((LIBRARY / f"{pathway}.json").read_text())
    created = await api.client.post(
        "/v1/pathway/create", json={"name": pathway, **document}, headers=api.a()
    )
    assert created.status_code == 200, created.text
    pathway_id = created.json()["pathway_id"]
    for name, value in (scenario.get("secrets") or {}).items():
        made = await api.client.post(
            "/v1/secrets", json={"name": name, "value": value}, headers=api.a()
        )
        assert made.status_code == 200, made.text
    request_data = {**scenario["request_data"], "api_base": stub.base_url}
    chat = await api.client.post(
        "/v1/pathway/chat/create",
        json={"pathway_id": pathway_id, "request_data": request_data},
        headers=api.a(),
    )
    chat_id = chat.json()["data"]["chat_id"]

    actions: list[dict[str, Any]] = []
    for number, turn in enumerate(scenario["turns"]):
        script_turn(scripted_llm, turn)
        if turn.get("webhook_response"):
            response = turn["webhook_response"]
            stub.answer(response.get("status", 200), response.get("json", {}))
        body = {} if turn["caller"] is None else {"message": turn["caller"]}
        reply = await api.client.post(f"/v1/pathway/chat/{chat_id}", json=body, headers=api.a())
        assert reply.status_code == 200, reply.text
        data = reply.json()["data"]
        where = f"turn {number} ({turn['caller']!r})"
        assert data["current_node_id"] == turn["expect_node"], (where, data)
        assert is_subset(turn.get("expect_vars") or {}, data["variables"]), (where, data)
        turn_actions = data["actions"]
        actions += turn_actions
        for expected in turn.get("expect_actions") or []:
            if expected["type"] == "sms":
                assert any(
                    a["type"] == "sms.requested" and expected["message_contains"] in a["message"]
                    for a in turn_actions
                ) or any(a["type"] == "sms.requested" for a in turn_actions), (where, turn_actions)
            elif expected["type"] == "dtmf":
                assert {"type": "dtmf", "digits": expected["digits"]} in turn_actions, where

    expected_hooks = scenario.get("expect_webhooks") or []
    assert len(stub.requests) == len(expected_hooks), [(r.method, r.path) for r in stub.requests]
    for expected, got in zip(expected_hooks, stub.requests, strict=True):
        check_request(expected, got)

    async with api.services.db.session() as session:
        row = await session.get(PathwayChat, chat_id)
        assert row is not None
        log = row.state["engine"]["log"]
    entered = [
        entry["payload"].get("chosen_node_id") or entry["node_id"]
        for entry in log
        if entry["event_type"] == "node.transition"
    ]
    assert entered == scenario["expect_path"], entered

    final = scenario.get("final_action")
    detail = scenario.get("final_action_detail") or {}
    if final == "end_call":
        assert any(a["type"] == "end_call" for a in actions), actions
    elif final == "transfer":
        transfers = [a for a in actions if a["type"] == "transfer"]
        assert transfers, actions
        if "transfer_number" in detail:
            assert transfers[-1]["number"] == detail["transfer_number"]
    elif final == "transfer_pathway":
        assert any(
            a["type"] == "pathway.transfer_requested"
            and detail.get("pathway_id", "") in a["message"]
            for a in actions
        ), actions
    else:
        assert not any(a["type"] in ("end_call", "transfer") for a in actions), actions
