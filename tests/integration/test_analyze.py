"""``POST /v1/calls/{call_id}/analyze`` against the scripted OpenAI-compatible server:
typed answers, a clear 400 without an LLM, a 502 when the LLM fails, tenant scoping."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tests.integration.conftest import Api
from tests.support.scripted_llm_server import ScriptedLLM

from callwright.providers.openai_llm import OpenAICompatibleLLM
from callwright.store import calls
from callwright.store.call_record import append_transcript

QUESTIONS = [["Did the caller book an appointment?", "boolean"], ["Which day?", "string"]]


@pytest.fixture
async def with_llm(api: Api, scripted_llm: ScriptedLLM) -> AsyncIterator[ScriptedLLM]:
    api.services.llm = OpenAICompatibleLLM(
        scripted_llm.base_url, "sk-test", "scripted", timeout=5, retries=0
    )
    try:
        yield scripted_llm
    finally:
        await api.services.llm.aclose()
        api.services.llm = None


async def call_with_transcript(api: Api) -> str:
    sent = await api.client.post(
        "/v1/calls", json={"phone_number": "+14155550123", "task": "book"}, headers=api.a()
    )
    call_id: str = sent.json()["call_id"]
    async with api.services.db.transaction() as session:
        call = await calls.lock_call(session, call_id)
        assert call is not None
        now = api.services.clock.now()
        await append_transcript(session, call, now, "assistant", "Elm Clinic, how can I help?")
        await append_transcript(session, call, now, "user", "Book me for Tuesday please.")
    return call_id


async def test_typed_answers_from_the_llm(api: Api, with_llm: ScriptedLLM) -> None:
    call_id = await call_with_transcript(api)
    with_llm.script(
        {
            "match": {"tool_choice": "record_variables", "contains": "Book me for Tuesday"},
            "reply": {
                "tool_call": {
                    "name": "record_variables",
                    "arguments": {"answer_1": "true", "answer_2": "Tuesday"},
                }
            },
        }
    )
    answered = await api.client.post(
        f"/v1/calls/{call_id}/analyze",
        json={"goal": "Was a visit booked?", "questions": QUESTIONS},
        headers=api.a(),
    )
    assert answered.status_code == 200, answered.text
    assert answered.json() == {
        "status": "success",
        "message": "Successfully analyzed call",
        "answers": [True, "Tuesday"],
        "credits_used": 0,
    }
    [request] = with_llm.requests()
    prompt = str(request["body"]["messages"])
    assert "Was a visit booked?" in prompt and "Which day?" in prompt
    events = (await api.client.get(f"/v1/calls/{call_id}/events", headers=api.a())).json()
    items = events["data"] if isinstance(events, dict) else events
    assert items[-1]["type"] == "analysis.answered"

    foreign = await api.client.post(
        f"/v1/calls/{call_id}/analyze", json={"goal": "x", "questions": QUESTIONS}, headers=api.b()
    )
    assert foreign.status_code == 404


async def test_llm_failure_is_a_502_naming_it(api: Api, with_llm: ScriptedLLM) -> None:
    call_id = await call_with_transcript(api)
    with_llm.script({"match": {}, "reply": {"status": 500, "error": "model crashed"}})
    failed = await api.client.post(
        f"/v1/calls/{call_id}/analyze", json={"goal": "x", "questions": QUESTIONS}, headers=api.a()
    )
    assert failed.status_code == 502 and "LLM" in failed.json()["message"]


async def test_without_an_llm_the_request_names_the_setting(api: Api) -> None:
    call_id = await call_with_transcript(api)
    refused = await api.client.post(
        f"/v1/calls/{call_id}/analyze", json={"goal": "x", "questions": QUESTIONS}, headers=api.a()
    )
    assert refused.status_code == 400 and "CALLWRIGHT_LLM_BASE_URL" in refused.text


async def test_malformed_questions_name_the_field(api: Api) -> None:
    call_id = await call_with_transcript(api)
    bad = await api.client.post(
        f"/v1/calls/{call_id}/analyze", json={"questions": [["only one"]]}, headers=api.a()
    )
    assert bad.status_code == 400 and "questions" in bad.text
