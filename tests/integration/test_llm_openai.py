"""OpenAICompatibleLLM against the scripted OpenAI-compatible server (a real HTTP peer)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from tests.conftest import free_port
from tests.support.scripted_llm_server import ScriptedLLM, scripted_llm_server

from callwright.providers.llm import (
    ChatMessage,
    LLMError,
    Option,
    TextDelta,
    ToolCall,
    ToolSpec,
    VarSpec,
    answer_questions,
)
from callwright.providers.openai_llm import OpenAICompatibleLLM

KEY = "sk-test-very-secret-4242"
HELLO = [ChatMessage("system", "You are Sam."), ChatMessage("user", "Hi there")]
OPTIONS = [
    Option("book", "caller wants a new appointment"),
    Option("cancel", "caller wants to cancel"),
]


@pytest.fixture(scope="module")
def llm_server() -> Iterator[ScriptedLLM]:
    with scripted_llm_server() as server:
        yield server


@pytest.fixture
def scripted_llm(llm_server: ScriptedLLM) -> ScriptedLLM:
    llm_server.script()
    return llm_server


@pytest.fixture
async def llm(scripted_llm: ScriptedLLM) -> AsyncIterator[OpenAICompatibleLLM]:
    client = OpenAICompatibleLLM(
        scripted_llm.base_url, KEY, "test-model", timeout=5, retries=2, backoff=0.01
    )
    yield client
    await client.aclose()


async def test_streams_text_deltas(scripted_llm: ScriptedLLM, llm: OpenAICompatibleLLM) -> None:
    scripted_llm.script({"match": {"stream": True}, "reply": {"text": "Hello, how can I help?"}})
    chunks = [chunk async for chunk in llm.stream(HELLO, temperature=0.2, max_tokens=50)]
    assert all(isinstance(c, TextDelta) for c in chunks)
    assert len(chunks) == 5
    assert "".join(c.text for c in chunks if isinstance(c, TextDelta)) == "Hello, how can I help?"
    (request,) = scripted_llm.requests()
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == f"Bearer {KEY}"
    body = request["body"]
    assert body["model"] == "test-model" and body["stream"] is True
    assert body["temperature"] == 0.2 and body["max_tokens"] == 50
    assert body["messages"] == [
        {"role": "system", "content": "You are Sam."},
        {"role": "user", "content": "Hi there"},
    ]


async def test_streamed_tool_call_is_assembled_from_fragments(
    scripted_llm: ScriptedLLM, llm: OpenAICompatibleLLM
) -> None:
    scripted_llm.script(
        {
            "match": {"has_tools": True},
            "reply": {
                "text": "One moment.",
                "tool_call": {"name": "lookup_order", "arguments": {"order_id": "A-17", "n": 2}},
            },
        }
    )
    tool = ToolSpec("lookup_order", "Find an order", {"type": "object"})
    chunks = [chunk async for chunk in llm.stream(HELLO, tools=[tool])]
    assert chunks[-1] == ToolCall("call_1", "lookup_order", {"order_id": "A-17", "n": 2})
    assert "".join(c.text for c in chunks if isinstance(c, TextDelta)) == "One moment."
    sent = scripted_llm.requests()[0]["body"]["tools"]
    assert sent == [
        {
            "type": "function",
            "function": {
                "name": "lookup_order",
                "description": "Find an order",
                "parameters": {"type": "object"},
            },
        }
    ]


async def test_complete_gathers_text_and_tool_calls(
    scripted_llm: ScriptedLLM, llm: OpenAICompatibleLLM
) -> None:
    scripted_llm.script(
        {"match": {"stream": False}, "reply": {"text": "Sure.", "tool_call": {"name": "t"}}}
    )
    completion = await llm.complete(HELLO)
    assert completion.text == "Sure."
    assert completion.tool_calls == (ToolCall("call_1", "t", {}),)
    assert completion.finish_reason == "tool_calls"


async def test_choose_uses_a_forced_tool_call(
    scripted_llm: ScriptedLLM, llm: OpenAICompatibleLLM
) -> None:
    scripted_llm.script(
        {
            "match": {"tool_choice": "choose_option", "contains": "cancel my visit"},
            "reply": {"tool_call": {"name": "choose_option", "arguments": {"option_id": "cancel"}}},
        }
    )
    chosen = await llm.choose([ChatMessage("user", "please cancel my visit")], OPTIONS)
    assert chosen == "cancel"
    body = scripted_llm.requests()[0]["body"]
    assert body["temperature"] == 0.0
    schema = body["tools"][0]["function"]["parameters"]["properties"]["option_id"]
    assert schema["enum"] == ["book", "cancel", "none"]


async def test_choose_none_and_unknown_ids_give_none(
    scripted_llm: ScriptedLLM, llm: OpenAICompatibleLLM
) -> None:
    scripted_llm.script(
        {
            "match": {"contains": "weather"},
            "reply": {"tool_call": {"name": "choose_option", "arguments": {"option_id": "none"}}},
        },
        {
            "match": {"contains": "banana"},
            "reply": {"tool_call": {"name": "choose_option", "arguments": {"option_id": "x9"}}},
        },
    )
    assert await llm.choose("what's the weather", OPTIONS) is None
    assert await llm.choose("banana", OPTIONS) is None


async def test_extract_coerces_types(scripted_llm: ScriptedLLM, llm: OpenAICompatibleLLM) -> None:
    arguments = {
        "party_size": "four",
        "wants_window": "yes",
        "day": "2025-03-05",
        "budget": 120.5,
        "name": "Ana Lopez",
        "email": None,
    }
    scripted_llm.script(
        {
            "match": {"tool_choice": "record_variables"},
            "reply": {"tool_call": {"name": "record_variables", "arguments": arguments}},
        }
    )
    specs = [
        VarSpec("party_size", "integer", "how many people"),
        VarSpec("wants_window", "boolean", "wants a window seat"),
        VarSpec("day", "date", "day of the booking"),
        VarSpec("budget", "number"),
        VarSpec("name", "string", "caller's name"),
        VarSpec("email", "email"),
    ]
    found = await llm.extract("Caller: table for four by the window, Wednesday", specs)
    assert found == {
        "party_size": 4,
        "wants_window": True,
        "day": "2025-03-05",
        "budget": 120.5,
        "name": "Ana Lopez",
    }
    properties = scripted_llm.requests()[0]["body"]["tools"][0]["function"]["parameters"][
        "properties"
    ]
    assert properties["party_size"]["type"] == ["integer", "null"]
    assert "YYYY-MM-DD" in properties["day"]["description"]


async def test_falls_back_to_json_when_the_server_refuses_tools(
    scripted_llm: ScriptedLLM, llm: OpenAICompatibleLLM
) -> None:
    scripted_llm.script(
        {
            "match": {"has_tools": False, "system_contains": "JSON object"},
            "reply": {"text": 'Here you go:\n```json\n{"option_id": "book"}\n```'},
        },
        refuse_tools=True,
    )
    assert await llm.choose("I'd like to come in on Monday", OPTIONS) == "book"
    # The refusal is remembered: the next call goes straight to the JSON form.
    assert await llm.choose("I'd like to come in on Tuesday", OPTIONS) == "book"
    requests = scripted_llm.requests()
    assert [bool(r["body"].get("tools")) for r in requests] == [True, False, False]


async def test_reads_json_from_prose_when_the_server_ignores_tools(
    scripted_llm: ScriptedLLM, llm: OpenAICompatibleLLM
) -> None:
    scripted_llm.script(
        {"reply": {"text": 'Sure! {"party_size": 3, "note": "x"} Anything else?'}},
    )
    found = await llm.extract("table for three", [VarSpec("party_size", "integer")])
    assert found == {"party_size": 3}
    assert len(scripted_llm.requests()) == 1


async def test_json_mode_accepts_a_bare_option_id(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.script({"match": {"has_tools": False}, "reply": {"text": "cancel"}})
    async with OpenAICompatibleLLM(
        scripted_llm.base_url, None, "m", structured="json", backoff=0.01
    ) as client:
        assert await client.choose("call it off", OPTIONS) == "cancel"
    (request,) = scripted_llm.requests()
    assert "authorization" not in request["headers"]


async def test_retries_a_500_then_succeeds(
    scripted_llm: ScriptedLLM, llm: OpenAICompatibleLLM
) -> None:
    scripted_llm.script(
        {"reply": {"status": 500, "error": "overloaded"}, "times": 1},
        {"reply": {"status": 429, "error": "slow down", "retry_after": 0}, "times": 1},
        {"reply": {"text": "Back again."}},
    )
    completion = await llm.complete(HELLO)
    assert completion.text == "Back again."
    assert len(scripted_llm.requests()) == 3


async def test_gives_up_after_the_retries_with_a_clear_error(
    scripted_llm: ScriptedLLM, llm: OpenAICompatibleLLM
) -> None:
    scripted_llm.script({"reply": {"status": 503, "error": "maintenance"}})
    with pytest.raises(LLMError, match=r"HTTP 503: maintenance \(after 3 attempts\)") as caught:
        await llm.complete(HELLO)
    assert caught.value.retryable and caught.value.status == 503
    assert len(scripted_llm.requests()) == 3


async def test_a_stream_is_retried_before_its_first_byte(
    scripted_llm: ScriptedLLM, llm: OpenAICompatibleLLM
) -> None:
    scripted_llm.script(
        {"reply": {"status": 502, "error": "bad gateway"}, "times": 1},
        {"reply": {"text": "ok then"}},
    )
    chunks = [c async for c in llm.stream(HELLO)]
    assert "".join(c.text for c in chunks if isinstance(c, TextDelta)) == "ok then"


async def test_timeout_raises_llm_error(scripted_llm: ScriptedLLM) -> None:
    scripted_llm.script({"reply": {"text": "too late", "delay": 3}})
    async with OpenAICompatibleLLM(
        scripted_llm.base_url, KEY, "m", timeout=0.2, retries=1, backoff=0.01
    ) as client:
        with pytest.raises(LLMError, match="did not answer within 0.2s") as caught:
            await client.complete(HELLO)
    assert caught.value.retryable
    assert len(scripted_llm.requests()) == 2


async def test_401_is_not_retried(scripted_llm: ScriptedLLM, llm: OpenAICompatibleLLM) -> None:
    scripted_llm.script({"reply": {"status": 401, "error": "invalid api key"}})
    with pytest.raises(LLMError, match="refused the API key") as caught:
        await llm.choose("hello", OPTIONS)
    assert not caught.value.retryable and caught.value.status == 401
    assert len(scripted_llm.requests()) == 1


async def test_stream_broken_off_midway_raises(
    scripted_llm: ScriptedLLM, llm: OpenAICompatibleLLM
) -> None:
    scripted_llm.script({"reply": {"text": "one two three four five", "drop_after": 3}})
    received: list[str] = []
    with pytest.raises(LLMError, match="broke off"):
        async for chunk in llm.stream(HELLO):
            assert isinstance(chunk, TextDelta)
            received.append(chunk.text)
    assert received == ["one ", "two "]


async def test_unreachable_server_raises_after_retries() -> None:
    async with OpenAICompatibleLLM(
        f"http://127.0.0.1:{free_port()}/v1", KEY, "m", retries=1, backoff=0.01
    ) as client:
        with pytest.raises(LLMError, match=r"cannot reach the LLM server .* \(after 2 attempts\)"):
            await client.complete(HELLO)


async def test_api_key_is_sent_but_never_logged(
    scripted_llm: ScriptedLLM, llm: OpenAICompatibleLLM, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    scripted_llm.script(
        {"reply": {"status": 500, "error": "boom"}, "times": 1},
        {"reply": {"status": 400, "error": "bad request"}},
    )
    with pytest.raises(LLMError) as caught:
        await llm.complete(HELLO)
    assert all(r["headers"]["authorization"] == f"Bearer {KEY}" for r in scripted_llm.requests())
    assert any("retrying" in r.getMessage() for r in caplog.records)
    assert KEY not in caplog.text
    assert KEY not in str(caught.value) and KEY not in repr(llm)


async def test_answer_questions_gives_typed_answers_in_order(
    scripted_llm: ScriptedLLM, llm: OpenAICompatibleLLM
) -> None:
    scripted_llm.script(
        {
            "match": {"contains": "Goal of the analysis: qualify the lead"},
            "reply": {
                "tool_call": {
                    "name": "record_variables",
                    "arguments": {"answer_1": "true", "answer_2": "12", "answer_3": None},
                }
            },
        }
    )
    answers = await answer_questions(
        llm,
        "user: yes we have about twelve trucks\nassistant: great",
        "qualify the lead",
        [
            ("Is the caller interested?", "boolean"),
            ("Fleet size?", "integer"),
            ("Budget?", "string"),
        ],
    )
    assert answers == [True, 12, None]
