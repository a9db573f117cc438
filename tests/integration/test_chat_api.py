"""Pathway chat API (reference §3.5) beyond the scenarios: tenancy, history, ended
chats, task-prompt chats on the scripted LLM server, and invalid pathways refused with
a 400 that names the fault."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.integration.conftest import Api
from tests.support.scripted_llm_server import ScriptedLLM

from callwright import netguard
from callwright.conversation.agents import AgentFactory
from callwright.conversation.task_agent import NO_LLM_LINE
from callwright.providers.openai_llm import OpenAICompatibleLLM

GREETER = {
    "nodes": [
        {
            "id": "hi",
            "type": "Default",
            "data": {"name": "Hi", "isStart": True, "text": "Hello! Say bye to finish."},
        },
        {"id": "bye", "type": "End Call", "data": {"name": "Bye", "text": "Goodbye."}},
    ],
    "edges": [{"id": "e", "source": "hi", "target": "bye", "data": {"label": "caller says bye"}}],
}


@pytest.fixture
async def with_llm(api: Api, scripted_llm: ScriptedLLM) -> AsyncIterator[ScriptedLLM]:
    llm = OpenAICompatibleLLM(scripted_llm.base_url, "k", "m", timeout=5, retries=0)
    svc = api.services
    svc.agents = AgentFactory(svc.db, svc.clock, svc.box, netguard.OutboundPolicy.parse([]), llm)
    try:
        yield scripted_llm
    finally:
        await llm.aclose()


async def new_chat(api: Api, body: dict[str, Any]) -> str:
    created = await api.client.post("/v1/pathway/chat/create", json=body, headers=api.a())
    assert created.status_code == 200, created.text
    chat_id: str = created.json()["data"]["chat_id"]
    return chat_id


async def test_chat_history_tenancy_and_the_end(api: Api) -> None:
    pid = (
        await api.client.post(
            "/v1/pathway/create", json={"name": "Greeter", **GREETER}, headers=api.a()
        )
    ).json()["pathway_id"]
    refused = await api.client.post(
        "/v1/pathway/chat/create", json={"pathway_id": pid}, headers=api.b()
    )
    assert refused.status_code == 404
    chat_id = await new_chat(api, {"pathway_id": pid, "request_data": {"name": "Ada"}})

    first = (await api.client.post(f"/v1/pathway/chat/{chat_id}", json={}, headers=api.a())).json()
    assert first["data"]["assistant_responses"] == ["Hello! Say bye to finish."]
    assert first["data"]["current_node_id"] == "hi" and first["data"]["completed"] is False
    assert first["data"]["variables"]["name"] == "Ada"

    for method, url, body in [
        ("GET", f"/v1/pathway/chat/{chat_id}", None),
        ("POST", f"/v1/pathway/chat/{chat_id}", {"message": "bye"}),
    ]:
        other = await api.client.request(method, url, json=body, headers=api.b())
        assert other.status_code == 404

    done = await api.client.post(
        f"/v1/pathway/chat/{chat_id}", json={"message": "ok bye then"}, headers=api.a()
    )
    data = done.json()["data"]
    assert data["current_node_id"] == "bye" and data["completed"] is True
    assert data["assistant_responses"] == ["Goodbye."]
    assert {"type": "end_call", "reason": "end_call_node"} in data["actions"]
    history = (await api.client.get(f"/v1/pathway/chat/{chat_id}", headers=api.a())).json()
    assert [m["role"] for m in history["data"]] == ["assistant", "user", "assistant"]
    again = await api.client.post(
        f"/v1/pathway/chat/{chat_id}", json={"message": "hello?"}, headers=api.a()
    )
    assert again.status_code == 400


async def test_task_chat_on_the_llm(api: Api, with_llm: ScriptedLLM) -> None:
    with_llm.script(
        {
            "match": {"last_user_contains": "that's all"},
            "reply": {"text": "Goodbye!", "tool_call": {"name": "end_call", "arguments": {}}},
        },
        {"match": {"stream": True}, "reply": {"text": "Hi, this is Elm Clinic."}},
    )
    chat_id = await new_chat(api, {"task": "You answer for Elm Clinic."})
    first = (await api.client.post(f"/v1/pathway/chat/{chat_id}", json={}, headers=api.a())).json()
    assert first["data"]["assistant_responses"] == ["Hi, this is Elm Clinic."]
    last = (
        await api.client.post(
            f"/v1/pathway/chat/{chat_id}", json={"message": "that's all"}, headers=api.a()
        )
    ).json()["data"]
    assert last["completed"] is True
    system = with_llm.requests()[0]["body"]["messages"][0]["content"]
    assert "Elm Clinic" in system


async def test_task_chat_without_an_llm_says_why(api: Api) -> None:
    chat_id = await new_chat(api, {"task": "Sell insurance."})
    reply = (await api.client.post(f"/v1/pathway/chat/{chat_id}", json={}, headers=api.a())).json()
    assert reply["data"]["assistant_responses"] == [NO_LLM_LINE]
    assert reply["data"]["completed"] is True
    assert any(a["type"] == "agent.no_llm" for a in reply["data"]["actions"])


node_ids = st.sampled_from(["a", "b", "c"])
broken_nodes = st.lists(
    st.fixed_dictionaries(
        {"id": node_ids, "type": st.sampled_from(["Default", "End Call", 7, None])},
        optional={"data": st.one_of(st.none(), st.just({}), st.just({"isStart": "yes"}))},
    ),
    max_size=4,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        st.fixed_dictionaries({"nodes": broken_nodes, "edges": st.just([])}),
        st.fixed_dictionaries({"nodes": st.one_of(st.text(), st.integers(), st.just([1, 2]))}),
    )
)
async def test_invalid_pathways_get_a_400_naming_the_fault(api: Api, body: dict[str, Any]) -> None:
    created = await api.client.post(
        "/v1/pathway/create", json={"name": "fuzz", **body}, headers=api.a()
    )
    assert created.status_code in (200, 400), created.text
    if created.status_code == 400:
        message = json.dumps(created.json())
        assert any(word in message for word in ("node", "start", "nodes", "duplicate")), message
