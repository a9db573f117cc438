"""Chat-turn overhead: what callwright adds to a pathway chat turn beyond the LLM's own
time, with a zero-latency scripted OpenAI-compatible server (a separate process).

Each turn goes through the API (ASGI app in process: auth, routing, validation, the
store on SQLite, loading the chat's engine state, the engine, saving the state) and
makes three LLM requests (extract, choose, streamed reply) over real HTTP. The time
spent awaiting the LLM client is measured per turn and subtracted: what is left is the
platform's overhead. Target: p95 <= 10 ms.

    flock /tmp/cw-bench.lock .venv/bin/python bench/chat_turn.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.scripted_llm_server import scripted_llm_server  # noqa: E402

from callwright import netguard  # noqa: E402
from callwright.config import Settings  # noqa: E402
from callwright.conversation.agents import AgentFactory  # noqa: E402
from callwright.providers.llm import ChatMessage, Completion, LLMChunk  # noqa: E402
from callwright.providers.openai_llm import OpenAICompatibleLLM  # noqa: E402
from callwright.server import build_test_app, running_services  # noqa: E402

CHATS = 40  # a chat of TURNS turns each: the state and history grow as in real chats
TURNS = 10
WARMUP_CHATS = 3
PATHWAY = {
    "nodes": [
        {
            "id": "ask",
            "type": "Default",
            "data": {
                "name": "Ask",
                "isStart": True,
                "prompt": "Ask what the caller needs.",
                "extractVars": [["need", "string", "What the caller needs", False]],
            },
        },
        {
            "id": "more",
            "type": "Default",
            "data": {
                "name": "More",
                "prompt": "Ask if there is anything else.",
                "extractVars": [["more", "boolean", "Anything else?", False]],
            },
        },
    ],
    "edges": [
        {"id": "e1", "source": "ask", "target": "more", "data": {"label": "next"}},
        {"id": "e2", "source": "more", "target": "ask", "data": {"label": "again"}},
    ],
}


class TimedLLM(OpenAICompatibleLLM):
    """The real client, with the time spent awaiting the server added up."""

    spent = 0.0

    async def stream(  # type: ignore[override]
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> AsyncIterator[LLMChunk]:
        started = time.perf_counter()
        try:
            async for chunk in super().stream(messages, **kwargs):
                yield chunk
        finally:
            TimedLLM.spent += time.perf_counter() - started

    async def _complete(self, payload: dict[str, Any]) -> Completion:  # choose / extract
        started = time.perf_counter()
        try:
            return await super()._complete(payload)  # type: ignore[misc]
        finally:
            TimedLLM.spent += time.perf_counter() - started


async def run(base_url: str) -> list[float]:
    data = Path(tempfile.mkdtemp(prefix="cw-chat-bench-"))
    settings = Settings(data_dir=data, database_url=f"sqlite+aiosqlite:///{data}/bench.db")
    llm = TimedLLM(base_url, "k", "bench", timeout=10, retries=0)
    overheads: list[float] = []
    async with running_services(settings, start_dispatcher=False) as (svc, key):
        svc.agents = AgentFactory(
            svc.db, svc.clock, svc.box, netguard.OutboundPolicy.parse([]), llm
        )
        app = build_test_app(svc)
        transport = httpx.ASGITransport(app=app)
        headers = {"authorization": key or ""}
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            made = await client.post(
                "/v1/pathway/create", json={"name": "bench", **PATHWAY}, headers=headers
            )
            pid = made.json()["pathway_id"]
            for number in range(CHATS + WARMUP_CHATS):
                chat = await client.post(
                    "/v1/pathway/chat/create", json={"pathway_id": pid}, headers=headers
                )
                chat_id = chat.json()["data"]["chat_id"]
                await client.post(f"/v1/pathway/chat/{chat_id}", json={}, headers=headers)
                for turn in range(TURNS):
                    TimedLLM.spent = 0.0
                    started = time.perf_counter()
                    reply = await client.post(
                        f"/v1/pathway/chat/{chat_id}",
                        json={"message": f"I need help with order {turn}"},
                        headers=headers,
                    )
                    total = time.perf_counter() - started
                    assert reply.status_code == 200, reply.text
                    if number >= WARMUP_CHATS:
                        overheads.append((total - TimedLLM.spent) * 1000)
    await llm.aclose()
    return overheads


def main() -> None:
    with scripted_llm_server() as server:
        server.script(
            {
                "match": {"tool_choice": "choose_option", "contains": "| again"},
                "reply": {
                    "tool_call": {"name": "choose_option", "arguments": {"option_id": "again"}}
                },
            },
            {
                "match": {"tool_choice": "choose_option"},
                "reply": {
                    "tool_call": {"name": "choose_option", "arguments": {"option_id": "next"}}
                },
            },
            {
                "match": {"tool_choice": "record_variables"},
                "reply": {"tool_call": {"name": "record_variables", "arguments": {"need": "help"}}},
            },
            {"match": {"stream": True}, "reply": {"text": "Sure, what else?"}},
        )
        overheads = asyncio.run(run(server.base_url))
    overheads.sort()

    def pct(p: float) -> float:
        return overheads[min(len(overheads) - 1, int(p * len(overheads)))]

    print(
        f"chat turns: {len(overheads)} ({CHATS} chats of {TURNS} turns, after "
        f"{WARMUP_CHATS} warm-up chats), 3 LLM requests each"
    )
    print(
        f"platform overhead per turn: p50 {statistics.median(overheads):.2f} ms, "
        f"p95 {pct(0.95):.2f} ms, p99 {pct(0.99):.2f} ms, max {overheads[-1]:.2f} ms"
    )


if __name__ == "__main__":
    main()
