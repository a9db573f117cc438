"""A real OpenAI-compatible chat-completions server for tests, scripted by the test.

It runs in its own process (``python -m tests.support.scripted_llm_server --port N``,
Starlette on uvicorn, 127.0.0.1 only) so the product's HTTP client code is exercised
exactly as against vLLM or Ollama. Tests drive it over HTTP:

- ``PUT /_script`` sets the script (and clears the request log)::

      {"rules": [{"match": {...}, "reply": {...}, "times": 1}, ...],
       "refuse_tools": false,      # true: any request with "tools" gets HTTP 400
       "latency": 0.0}             # seconds added before every reply (0: benchmarks)

  A request takes the first rule whose ``match`` holds and whose ``times`` (default:
  unlimited) is not used up; no rule -> HTTP 500 "no scripted reply", so an
  unexpected request fails loudly. ``match`` keys (all optional, all must hold):
  ``contains`` (substring of any message), ``last_user_contains``, ``system_contains``,
  ``stream`` (bool), ``has_tools`` (bool), ``tool_choice`` (forced function name),
  ``model``. ``reply`` keys: ``text`` (streamed word by word, or as ``chunks``),
  ``tool_calls`` ([{"name", "arguments"}]) or ``tool_call`` (one), ``status`` + ``error``
  (an OpenAI-style error body), ``retry_after`` (header), ``delay`` (seconds before
  answering), ``chunk_delay`` (seconds between stream events), ``drop_after`` (close
  the stream after that many events, without ``[DONE]``).
- ``GET /_requests`` -> every chat request received: ``{"path", "headers", "body"}``.
- ``GET /_health`` -> 200 once it serves.

``scripted_llm_server()`` starts one process and yields a ``ScriptedLLM`` handle. The
module is also a pytest plugin (``pytest_plugins = ["tests.support.scripted_llm_server"]``
in the root conftest) giving the fixtures ``scripted_llm_process`` (one per session)
and ``scripted_llm`` (the same server, script reset for each test).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

REPO = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------------------- server


class _State:
    def __init__(self) -> None:
        self.rules: list[dict[str, Any]] = []
        self.used: list[int] = []
        self.refuse_tools = False
        self.latency = 0.0
        self.requests: list[dict[str, Any]] = []
        self.counter = 0


def _contents(body: dict[str, Any], role: str | None = None) -> list[str]:
    return [
        str(m.get("content") or "")
        for m in body.get("messages") or []
        if role is None or m.get("role") == role
    ]


def _matches(match: dict[str, Any], body: dict[str, Any]) -> bool:
    if "contains" in match and not any(match["contains"] in c for c in _contents(body)):
        return False
    if "last_user_contains" in match:
        users = _contents(body, "user")
        if not users or match["last_user_contains"] not in users[-1]:
            return False
    if "system_contains" in match and not any(
        match["system_contains"] in c for c in _contents(body, "system")
    ):
        return False
    if "stream" in match and bool(body.get("stream")) != match["stream"]:
        return False
    if "has_tools" in match and bool(body.get("tools")) != match["has_tools"]:
        return False
    if "tool_choice" in match:
        choice = body.get("tool_choice")
        name = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
        if name != match["tool_choice"]:
            return False
    return not ("model" in match and body.get("model") != match["model"])


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": "scripted_error", "code": status}},
        status_code=status,
        headers=headers,
    )


def _tool_calls(reply: dict[str, Any]) -> list[dict[str, Any]]:
    calls = list(reply.get("tool_calls") or [])
    if reply.get("tool_call"):
        calls.append(reply["tool_call"])
    return calls


def build_app() -> Starlette:
    state = _State()

    async def put_script(request: Request) -> Response:
        script = await request.json()
        state.rules = list(script.get("rules") or [])
        state.used = [0] * len(state.rules)
        state.refuse_tools = bool(script.get("refuse_tools", False))
        state.latency = float(script.get("latency", 0.0))
        state.requests.clear()
        return JSONResponse({"ok": True})

    async def get_requests(request: Request) -> Response:
        return JSONResponse(state.requests)

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def completions(request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(400, "body is not JSON")
        state.requests.append(
            {"path": request.url.path, "headers": dict(request.headers), "body": body}
        )
        if state.latency:
            await asyncio.sleep(state.latency)
        if state.refuse_tools and body.get("tools"):
            return _error(400, "this model does not support tools")
        for index, rule in enumerate(state.rules):
            times = rule.get("times")
            if times is not None and state.used[index] >= times:
                continue
            if _matches(rule.get("match") or {}, body):
                state.used[index] += 1
                return await _reply(state, rule.get("reply") or {}, body)
        return _error(500, "no scripted reply matches this request")

    return Starlette(
        routes=[
            Route("/_script", put_script, methods=["PUT"]),
            Route("/_requests", get_requests, methods=["GET"]),
            Route("/_health", health, methods=["GET"]),
            Route("/v1/chat/completions", completions, methods=["POST"]),
            Route("/chat/completions", completions, methods=["POST"]),
        ]
    )


async def _reply(state: _State, reply: dict[str, Any], body: dict[str, Any]) -> Response:
    if reply.get("delay"):
        await asyncio.sleep(float(reply["delay"]))
    if reply.get("status"):
        headers = {"retry-after": str(reply["retry_after"])} if "retry_after" in reply else None
        return _error(int(reply["status"]), str(reply.get("error", "scripted error")), headers)
    state.counter += 1
    ident = f"chatcmpl-{state.counter}"
    model = str(body.get("model", "scripted"))
    calls = _tool_calls(reply)
    if body.get("stream"):
        return StreamingResponse(
            _events(ident, model, reply, calls), media_type="text/event-stream"
        )
    message: dict[str, Any] = {"role": "assistant", "content": reply.get("text")}
    if calls:
        message["tool_calls"] = [
            {
                "id": f"call_{i + 1}",
                "type": "function",
                "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments", {}))},
            }
            for i, c in enumerate(calls)
        ]
    return JSONResponse(
        {
            "id": ident,
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if calls else "stop",
                }
            ],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }
    )


async def _events(
    ident: str, model: str, reply: dict[str, Any], calls: list[dict[str, Any]]
) -> AsyncIterator[bytes]:
    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(chunk)}\n\n".encode()

    pieces: list[bytes] = [event({"role": "assistant", "content": ""})]
    text = reply.get("text")
    if text:
        chunks = reply.get("chunks") or [w + " " for w in str(text).split(" ")]
        if not reply.get("chunks"):
            chunks[-1] = chunks[-1][:-1]
        pieces += [event({"content": c}) for c in chunks]
    for i, call in enumerate(calls):
        arguments = json.dumps(call.get("arguments", {}))
        half = len(arguments) // 2
        head = {"index": i, "id": f"call_{i + 1}", "type": "function"}
        pieces.append(
            event({"tool_calls": [{**head, "function": {"name": call["name"], "arguments": ""}}]})
        )
        # Arguments arrive in fragments, as real servers send them.
        for part in (arguments[:half], arguments[half:]):
            pieces.append(event({"tool_calls": [{"index": i, "function": {"arguments": part}}]}))
    pieces.append(event({}, "tool_calls" if calls else "stop"))
    pieces.append(b"data: [DONE]\n\n")
    drop_after = reply.get("drop_after")
    for n, piece in enumerate(pieces):
        if drop_after is not None and n >= int(drop_after):
            raise ConnectionAbortedError("scripted drop")
        if n and reply.get("chunk_delay"):
            await asyncio.sleep(float(reply["chunk_delay"]))
        yield piece


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        build_app(),
        host="127.0.0.1",
        port=args.port,
        log_level="critical",
        lifespan="off",
        access_log=False,
    )


# ---------------------------------------------------------------------------- client side


@dataclass
class ScriptedLLM:
    """Handle on a running scripted server."""

    port: int

    @property
    def base_url(self) -> str:
        """What ``CALLWRIGHT_LLM_BASE_URL`` should be."""
        return f"http://127.0.0.1:{self.port}/v1"

    def script(
        self, *rules: dict[str, Any], refuse_tools: bool = False, latency: float = 0.0
    ) -> None:
        """Replace the script (and forget past requests)."""
        payload = {"rules": list(rules), "refuse_tools": refuse_tools, "latency": latency}
        httpx.put(
            f"http://127.0.0.1:{self.port}/_script", json=payload, timeout=5
        ).raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        """Chat requests received since the last ``script``: ``{"path", "headers", "body"}``."""
        response = httpx.get(f"http://127.0.0.1:{self.port}/_requests", timeout=5)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result


def _wait_healthy(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"scripted LLM server exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/_health", timeout=0.5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError("scripted LLM server did not start")


@contextmanager
def scripted_llm_server() -> Iterator[ScriptedLLM]:
    """Start the server in a subprocess on a free loopback port; stop it on exit."""
    from tests.conftest import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.scripted_llm_server", "--port", str(port)],
        cwd=REPO,
    )
    try:
        _wait_healthy(port, process)
        yield ScriptedLLM(port)
    finally:
        # Nothing to flush, and a graceful stop would wait for scripted delays to end.
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def scripted_llm_process() -> Iterator[ScriptedLLM]:
    with scripted_llm_server() as server:
        yield server


@pytest.fixture
def scripted_llm(scripted_llm_process: ScriptedLLM) -> ScriptedLLM:
    """The session's scripted server with an empty script."""
    scripted_llm_process.script()
    return scripted_llm_process


if __name__ == "__main__":
    main()
