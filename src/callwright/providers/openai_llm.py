"""``OpenAICompatibleLLM``: any server speaking OpenAI's ``POST {base}/chat/completions``
(OpenAI, vLLM, Ollama, llama.cpp server, LM Studio...).

- ``stream`` sends ``"stream": true`` and reads Server-Sent Events (``data: {...}`` lines
  up to ``data: [DONE]``): text deltas are yielded as they come, tool-call fragments
  are assembled and yielded whole when the choice finishes.
- ``choose`` and ``extract`` ask for a forced function call (``tool_choice``); with a
  server that has no tool support (it refuses the request, or answers in prose) they
  fall back to asking for a JSON object in the text and read the first one in the
  reply, ```json fences tolerated. ``structured="json"`` skips the tool attempt.
- Requests time out after ``timeout`` seconds (per connect / read / write); 408, 409,
  425, 429, 5xx and connection errors or timeouts are retried ``retries`` times with
  exponential backoff and jitter (``Retry-After`` honoured, capped). A stream is
  retried only before its first byte. Whatever is left raises ``LLMError`` with a
  message naming the cause; 401/403 and other 4xx are not retried.

The API key travels only in the ``Authorization`` header of the client; it is never
logged, and neither are prompts or replies (log records carry model, status, attempt).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from callwright.config import Settings
from callwright.providers.extractors import coerce_value
from callwright.providers.llm import (
    ChatMessage,
    Completion,
    Context,
    LLMChunk,
    LLMError,
    Option,
    TextDelta,
    ToolCall,
    ToolSpec,
    VarSpec,
    as_messages,
)

log = logging.getLogger(__name__)

Structured = Literal["auto", "tools", "json"]

_RETRY_STATUSES = {408, 409, 425, 429}
_CHOOSE_TOOL = "choose_option"
_EXTRACT_TOOL = "record_variables"
_NONE = "none"


class _ToolsUnsupported(LLMError):
    """The server refused a request because it carried tools."""


def chat_completions_url(base_url: str) -> str:
    """``http://host:11434/v1`` -> ``.../v1/chat/completions``; a bare host gets ``/v1``."""
    base = base_url.rstrip("/")
    if base.endswith("/chat/completions"):
        return base
    if urlsplit(base).path in ("", "/"):
        base += "/v1"
    return base + "/chat/completions"


class OpenAICompatibleLLM:
    def __init__(
        self,
        base_url: str,
        api_key: str | SecretStr | None,
        model: str,
        *,
        timeout: float = 30.0,
        retries: int = 2,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        structured: Structured = "auto",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.model = model
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.structured: Structured = structured
        self._url = chat_completions_url(base_url)
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.AsyncClient(
            headers=headers, timeout=httpx.Timeout(timeout), transport=transport
        )

    def __repr__(self) -> str:
        return f"OpenAICompatibleLLM(url={self._url!r}, model={self.model!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> OpenAICompatibleLLM:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ chat

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> AsyncIterator[LLMChunk]:
        payload = self._payload(messages, tools, temperature, max_tokens, stream=True)
        response = await self._send(payload, stream=True)
        calls: dict[int, dict[str, str]] = {}
        try:
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                event = _json_event(data)
                for choice in event.get("choices") or []:
                    delta = choice.get("delta") or {}
                    if delta.get("content"):
                        yield TextDelta(str(delta["content"]))
                    for fragment in delta.get("tool_calls") or []:
                        _merge_fragment(calls, fragment)
                    if choice.get("finish_reason") and calls:
                        for call in _assembled(calls):
                            yield call
                        calls.clear()
        except httpx.TimeoutException as exc:
            raise LLMError(
                f"the LLM stream stalled for more than {self.timeout:g}s", retryable=True
            ) from exc
        except httpx.TransportError as exc:
            raise LLMError(
                f"the LLM stream broke off: {type(exc).__name__}", retryable=True
            ) from exc
        finally:
            await response.aclose()
        for call in _assembled(calls):
            yield call

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> Completion:
        payload = self._payload(messages, tools, temperature, max_tokens, stream=False)
        return await self._complete(payload)

    async def _complete(self, payload: dict[str, Any]) -> Completion:
        response = await self._send(payload, stream=False)
        try:
            body = response.json()
            choice = body["choices"][0]
            message = choice.get("message") or {}
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise LLMError("the LLM server sent a reply that is not a chat completion") from exc
        calls: dict[int, dict[str, str]] = {}
        for index, raw in enumerate(message.get("tool_calls") or []):
            _merge_fragment(calls, {"index": index, **raw})
        return Completion(
            text=str(message.get("content") or ""),
            tool_calls=tuple(_assembled(calls)),
            finish_reason=choice.get("finish_reason"),
        )

    def _payload(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] | None,
        temperature: float | None,
        max_tokens: int | None,
        *,
        stream: bool,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": stream,
        }
        if tools:
            payload["tools"] = [_tool_json(t) for t in tools]
        if temperature is not None:
            payload["temperature"] = temperature
        if max_tokens is not None:
            payload["max_tokens"] = max_tokens
        return payload

    # ------------------------------------------------------------------ transport

    async def _send(self, payload: dict[str, Any], *, stream: bool) -> httpx.Response:
        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                request = self._client.build_request("POST", self._url, json=payload)
                response = await self._client.send(request, stream=stream)
            except httpx.TimeoutException:
                error = LLMError(
                    f"the LLM server did not answer within {self.timeout:g}s", retryable=True
                )
            except httpx.TransportError as exc:
                error = LLMError(
                    f"cannot reach the LLM server ({type(exc).__name__})", retryable=True
                )
            else:
                if response.status_code < 400:
                    return response
                body = await response.aread()
                await response.aclose()
                error = _status_error(response.status_code, body, tools="tools" in payload)
                retry_after = _retry_after(response.headers.get("retry-after"))
            if not error.retryable or attempt >= self.retries:
                if attempt:
                    raise type(error)(
                        f"{error} (after {attempt + 1} attempts)",
                        retryable=error.retryable,
                        status=error.status,
                    )
                raise error
            delay = min(self.max_backoff, self.backoff * 2**attempt) * random.uniform(0.8, 1.2)
            if retry_after is not None:
                delay = min(self.max_backoff, max(delay, retry_after))
            attempt += 1
            log.warning(
                "LLM request failed; retrying",
                extra={"llm_model": self.model, "llm_status": error.status, "llm_attempt": attempt},
            )
            await asyncio.sleep(delay)

    # ------------------------------------------------------------------ structured

    async def choose(
        self, context: Context, options: Sequence[Option], *, instruction: str | None = None
    ) -> str | None:
        if not options:
            return None
        ids = [o.id for o in options]
        listing = "\n".join(
            f"- id: {o.id} | {o.label}" + (f" | {o.description}" if o.description else "")
            for o in options
        )
        task = (
            instruction or "Decide which option fits what the caller said last."
        ) + f"\nOptions:\n{listing}\nIf no option fits, the answer is {_NONE!r}."
        tool = ToolSpec(
            _CHOOSE_TOOL,
            "Record the option that fits the conversation.",
            {
                "type": "object",
                "properties": {"option_id": {"type": "string", "enum": [*ids, _NONE]}},
                "required": ["option_id"],
            },
        )
        json_shape = '{"option_id": "<one option id, or none>"}'
        found = await self._structured(context, task, tool, json_shape)
        raw = found.get("option_id") if found is not None else None
        return _match_option(raw, options)

    async def extract(
        self, context: Context, specs: Sequence[VarSpec], *, instruction: str | None = None
    ) -> dict[str, Any]:
        if not specs:
            return {}
        lines = "\n".join(f"- {s.name} ({s.type}): {s.description}".rstrip(": ") for s in specs)
        task = (
            (instruction or "Extract these variables from the conversation.")
            + f"\nVariables:\n{lines}\nUse null for anything the conversation does not say; "
            "never guess. Dates as YYYY-MM-DD, times as HH:MM (24 h), datetimes as ISO 8601."
        )
        tool = ToolSpec(
            _EXTRACT_TOOL,
            "Record the variables found in the conversation.",
            {
                "type": "object",
                "properties": {s.name: _schema_for(s) for s in specs},
            },
        )
        json_shape = "{" + ", ".join(f'"{s.name}": ...' for s in specs) + "}"
        found = await self._structured(context, task, tool, json_shape)
        values: dict[str, Any] = {}
        for spec in specs:
            value = coerce_value(spec.type, (found or {}).get(spec.name))
            if value is not None:
                values[spec.name] = value
        return values

    async def _structured(
        self, context: Context, task: str, tool: ToolSpec, json_shape: str
    ) -> dict[str, Any] | None:
        """The tool call's arguments, or the JSON object a tool-less server wrote."""
        transcript = _render(as_messages(context))
        if self.structured != "json":
            messages = [
                ChatMessage("system", task),
                ChatMessage("user", f"{transcript}\n\nCall {tool.name} with your answer."),
            ]
            payload = self._payload(messages, [tool], 0.0, None, stream=False)
            payload["tool_choice"] = {"type": "function", "function": {"name": tool.name}}
            try:
                completion = await self._complete(payload)
            except _ToolsUnsupported:
                if self.structured == "tools":
                    raise
                log.info(
                    "LLM server refuses tools; using JSON replies", extra={"llm_model": self.model}
                )
                self.structured = "json"
            else:
                for call in completion.tool_calls:
                    if call.name == tool.name:
                        return call.arguments
                found = first_json_object(completion.text)
                if found is not None:
                    return found
        messages = [
            ChatMessage(
                "system",
                f"{task}\nReply with only a JSON object of this shape and nothing else: "
                f"{json_shape}",
            ),
            ChatMessage("user", transcript),
        ]
        completion = await self._complete(self._payload(messages, None, 0.0, None, stream=False))
        found = first_json_object(completion.text)
        if found is None and tool.name == _CHOOSE_TOOL and completion.text.strip():
            # A bare answer ("book_appointment") is still an answer.
            return {"option_id": completion.text.strip().strip("`'\".")}
        return found


def llm_from_settings(settings: Settings) -> OpenAICompatibleLLM | None:
    """The configured LLM, or ``None`` when no ``llm_base_url`` is set (embedded mode)."""
    if not settings.llm_base_url:
        return None
    if not settings.llm_model:
        raise ValueError("CALLWRIGHT_LLM_MODEL must be set when CALLWRIGHT_LLM_BASE_URL is")
    return OpenAICompatibleLLM(settings.llm_base_url, settings.llm_api_key, settings.llm_model)


# ---------------------------------------------------------------------- helpers


def first_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in ``text`` (prose and ```json fences around it allowed)."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    return None


def _match_option(raw: Any, options: Sequence[Option]) -> str | None:
    if raw is None:
        return None
    answer = str(raw).strip()
    if not answer or answer.lower() in (_NONE, "null"):
        return None
    for option in options:
        if option.id == answer:
            return option.id
    lowered = answer.lower()
    for option in options:
        if option.id.lower() == lowered or option.label.strip().lower() == lowered:
            return option.id
    log.warning("LLM chose an option that does not exist", extra={"llm_options": len(options)})
    return None


def _schema_for(spec: VarSpec) -> dict[str, Any]:
    kind = spec.type.strip().lower()
    json_type = {
        "integer": "integer",
        "int": "integer",
        "number": "number",
        "float": "number",
        "decimal": "number",
        "boolean": "boolean",
        "bool": "boolean",
    }.get(kind, "string")
    formats = {
        "date": " (YYYY-MM-DD)",
        "time": " (HH:MM, 24 h)",
        "datetime": " (ISO 8601)",
        "email": " (email address)",
        "phone": " (phone number, E.164)",
    }
    return {"type": [json_type, "null"], "description": spec.description + formats.get(kind, "")}


def _render(messages: Sequence[ChatMessage]) -> str:
    names = {"system": "Agent instructions", "user": "Caller", "assistant": "Agent", "tool": "Tool"}
    return "\n".join(f"{names[m.role]}: {m.content}" for m in messages)


def _tool_json(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        },
    }


def _json_event(data: str) -> dict[str, Any]:
    try:
        event = json.loads(data)
    except ValueError as exc:
        raise LLMError("the LLM server sent a malformed stream event") from exc
    if not isinstance(event, dict):
        raise LLMError("the LLM server sent a malformed stream event")
    if event.get("error"):
        message = event["error"].get("message") if isinstance(event["error"], dict) else None
        raise LLMError(f"the LLM server failed mid-stream: {str(message or 'error')[:200]}")
    return event


def _merge_fragment(calls: dict[int, dict[str, str]], fragment: dict[str, Any]) -> None:
    slot = calls.setdefault(int(fragment.get("index", 0)), {"id": "", "name": "", "args": ""})
    if fragment.get("id"):
        slot["id"] = str(fragment["id"])
    function = fragment.get("function") or {}
    if function.get("name"):
        slot["name"] += str(function["name"])
    arguments = function.get("arguments")
    if isinstance(arguments, dict):  # some servers send parsed arguments
        slot["args"] += json.dumps(arguments)
    elif arguments:
        slot["args"] += str(arguments)


def _assembled(calls: dict[int, dict[str, str]]) -> list[ToolCall]:
    out = []
    for index in sorted(calls):
        slot = calls[index]
        text = slot["args"].strip() or "{}"
        try:
            arguments = json.loads(text)
        except ValueError:
            arguments = first_json_object(text)
        if not isinstance(arguments, dict):
            raise LLMError(f"the LLM sent malformed arguments for tool {slot['name']!r}")
        out.append(
            ToolCall(id=slot["id"] or f"call_{index}", name=slot["name"], arguments=arguments)
        )
    return out


def _status_error(status: int, body: bytes, *, tools: bool) -> LLMError:
    detail = _error_detail(body)
    if tools and status in (400, 404, 422, 500, 501) and "tool" in detail.lower():
        return _ToolsUnsupported(f"the LLM server does not support tools: {detail}", status=status)
    if status in (401, 403):
        return LLMError(
            f"the LLM server refused the API key (HTTP {status}); check CALLWRIGHT_LLM_API_KEY",
            status=status,
        )
    if status == 404:
        return LLMError(
            f"the LLM server has no such model or endpoint (HTTP 404): {detail}", status=status
        )
    retryable = status in _RETRY_STATUSES or status >= 500
    return LLMError(
        f"the LLM server answered HTTP {status}: {detail}", retryable=retryable, status=status
    )


def _error_detail(body: bytes) -> str:
    text = body.decode("utf-8", "replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        return text.strip()[:200] or "no detail"
    if isinstance(parsed, dict):
        error = parsed.get("error", parsed)
        if isinstance(error, dict):
            return str(error.get("message") or error)[:200]
        return str(error)[:200]
    return text[:200]


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
