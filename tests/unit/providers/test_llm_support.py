"""Pure pieces of the LLM layer: settings, URL, JSON fallback parsing, the fakes."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from callwright.config import Settings
from callwright.providers.llm import LLMError, Option, TextDelta, ToolCall, VarSpec
from callwright.providers.openai_llm import (
    OpenAICompatibleLLM,
    chat_completions_url,
    first_json_object,
    llm_from_settings,
)
from callwright.providers.scripted import HashingEmbedder, ScriptedLLM


async def test_no_base_url_means_embedded_mode() -> None:
    assert llm_from_settings(Settings(llm_base_url=None)) is None


async def test_settings_build_the_client_without_showing_the_key() -> None:
    llm = llm_from_settings(
        Settings(
            llm_base_url="http://127.0.0.1:11434/v1",
            llm_model="llama3.1",
            llm_api_key=SecretStr("sk-hidden"),
        )
    )
    assert isinstance(llm, OpenAICompatibleLLM)
    assert llm.model == "llama3.1"
    assert "sk-hidden" not in repr(llm)
    await llm.aclose()


def test_a_base_url_needs_a_model() -> None:
    with pytest.raises(ValueError, match="CALLWRIGHT_LLM_MODEL"):
        llm_from_settings(Settings(llm_base_url="http://127.0.0.1:8080/v1", llm_model=None))


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("http://127.0.0.1:11434/v1", "http://127.0.0.1:11434/v1/chat/completions"),
        ("http://127.0.0.1:11434/v1/", "http://127.0.0.1:11434/v1/chat/completions"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/v1/chat/completions"),
        ("https://api.example.com/openai/v1", "https://api.example.com/openai/v1/chat/completions"),
        ("http://h/v1/chat/completions", "http://h/v1/chat/completions"),
    ],
)
def test_chat_completions_url(base: str, url: str) -> None:
    assert chat_completions_url(base) == url


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"option_id": "a"}', {"option_id": "a"}),
        ('```json\n{"option_id": "b"}\n```', {"option_id": "b"}),
        ('Sure! Here: {"a": {"b": [1, 2]}} and {"c": 3}', {"a": {"b": [1, 2]}}),
        ('set {braces} then {"ok": true}', {"ok": True}),
        ("[1, 2, 3]", None),
        ("no json here", None),
        ('{"unterminated": ', None),
    ],
)
def test_first_json_object(text: str, expected: dict[str, object] | None) -> None:
    assert first_json_object(text) == expected


async def test_scripted_fake_plays_replies_in_order() -> None:
    fake = ScriptedLLM(
        replies=["Hello there.", ["One sec.", ToolCall("c1", "lookup", {"id": 7})], LLMError("x")],
        choices={"cancel": "cancel", "weird": "not-an-option"},
        extractions={"four": {"party": 4, "other": 1}},
    )
    chunks = [c async for c in fake.stream([])]
    assert chunks == [TextDelta("Hello "), TextDelta("there.")]
    completion = await fake.complete([])
    assert completion.text == "One sec." and completion.tool_calls[0].name == "lookup"
    with pytest.raises(LLMError):
        await fake.complete([])
    with pytest.raises(LLMError, match="no reply left"):
        await fake.complete([])
    options = [Option("book", "book"), Option("cancel", "cancel")]
    assert await fake.choose("please CANCEL it", options) == "cancel"
    assert await fake.choose("weird", options) is None
    assert await fake.choose("hm", options) is None
    assert await fake.extract("four of us", [VarSpec("party", "integer")]) == {"party": 4}
    assert [name for name, _ in fake.calls][-4:] == ["choose", "choose", "choose", "extract"]


def test_hashing_embedder_is_deterministic_and_normalised() -> None:
    embedder = HashingEmbedder(dim=64)
    a, b, c = embedder.embed(["cancel my visit", "cancel my visit", "stock prices"])
    assert (a == b).all() and abs(float(a @ a) - 1.0) < 1e-6
    assert float(a @ c) < float(a @ b)
    assert embedder.embed([]).shape == (0, 64)
