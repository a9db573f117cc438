"""Summary and ``analysis_schema`` at the end of a call, through the scripted LLM."""

from __future__ import annotations

from tests.integration.conftest import Api
from tests.support.scripted_llm_server import ScriptedLLM

from callwright.conversation.aftercall import finish_record
from callwright.providers.openai_llm import OpenAICompatibleLLM
from callwright.store import calls
from callwright.store.call_record import append_transcript


async def new_call(api: Api, **fields: object) -> str:
    sent = await api.client.post(
        "/v1/calls",
        json={"phone_number": "+14155550123", "task": "book", **fields},
        headers=api.a(),
    )
    call_id: str = sent.json()["call_id"]
    async with api.services.db.transaction() as session:
        call = await calls.lock_call(session, call_id)
        assert call is not None
        now = api.services.clock.now()
        await append_transcript(session, call, now, "user", "I'd like Tuesday at 3pm.")
        await append_transcript(session, call, now, "assistant", "Booked for Tuesday at 3pm.")
    return call_id


async def details(api: Api, call_id: str) -> dict[str, object]:
    got: dict[str, object] = (await api.client.get(f"/v1/calls/{call_id}", headers=api.a())).json()
    return got


async def events(api: Api, call_id: str) -> list[str]:
    body = (await api.client.get(f"/v1/calls/{call_id}/events", headers=api.a())).json()
    items = body["data"] if isinstance(body, dict) else body
    return [e["type"] for e in items]


async def test_summary_and_schema_answers(api: Api, scripted_llm: ScriptedLLM) -> None:
    call_id = await new_call(
        api, summary_prompt="Say only the booked slot.", analysis_schema={"booked": "boolean"}
    )
    scripted_llm.script(
        {
            "match": {"system_contains": "Say only the booked slot."},
            "reply": {"text": "Tuesday 3pm."},
        },
        {
            "match": {"tool_choice": "record_variables"},
            "reply": {"tool_call": {"name": "record_variables", "arguments": {"booked": True}}},
        },
    )
    llm = OpenAICompatibleLLM(scripted_llm.base_url, "k", "m", timeout=5, retries=0)
    try:
        await finish_record(api.services.db, api.services.clock, llm, call_id)
    finally:
        await llm.aclose()
    got = await details(api, call_id)
    assert got["summary"] == "Tuesday 3pm." and got["analysis"] == {"booked": True}
    assert {"summary.written", "analysis.written"} <= set(await events(api, call_id))


async def test_without_an_llm_the_events_say_why(api: Api) -> None:
    call_id = await new_call(api)
    await finish_record(api.services.db, api.services.clock, None, call_id)
    got = await details(api, call_id)
    assert got["summary"] is None and got["analysis"] is None
    assert "summary.skipped" in await events(api, call_id)


async def test_llm_failure_leaves_null_and_an_error_event(
    api: Api, scripted_llm: ScriptedLLM
) -> None:
    call_id = await new_call(api)
    scripted_llm.script({"match": {}, "reply": {"status": 500, "error": "down"}})
    llm = OpenAICompatibleLLM(scripted_llm.base_url, "k", "m", timeout=5, retries=0)
    try:
        await finish_record(api.services.db, api.services.clock, llm, call_id)
    finally:
        await llm.aclose()
    assert (await details(api, call_id))["summary"] is None
    assert "summary.failed" in await events(api, call_id)
