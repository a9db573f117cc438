"""The demo pathway in the embedded mode (no LLM): MiniLM sentence similarity chooses
the edges and typed extractors fill the variables. This is what ``make run`` offers a
user with no keys, so it is tested as a user would meet it: through the chat API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.integration.conftest import Api

from callwright.conversation.pathway_agent import EmbeddedDecider, FallbackGenerator, PathwayAgent
from callwright.pathways.engine import EngineState
from callwright.pathways.format import parse_document
from callwright.pathways.templating import CallContext
from callwright.providers.embed import MiniLMEmbedder
from callwright.providers.embedded_brain import EmbeddedBrain

REPO = Path(__file__).resolve().parents[2]
DEMO = json.loads((REPO / "src/callwright/pathways/library/demo_appointment.json").read_text())
CONVERSATIONS = REPO / "tests" / "data" / "conversations"
UTTERANCES = json.loads((CONVERSATIONS / "demo_utterances.json").read_text())["utterances"]
SCENARIOS = json.loads((CONVERSATIONS / "demo_appointment.json").read_text())["scenarios"]
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def brain() -> Iterator[EmbeddedBrain]:
    yield EmbeddedBrain(MiniLMEmbedder())


class NoEffects:
    async def http(self, request: Any) -> Any:
        raise AssertionError("the demo makes no requests")

    async def run_code(self, request: Any) -> Any:
        raise AssertionError("the demo runs no code")

    async def load_pathway(self, pathway_id: str, version: str | None) -> None:
        return None


@pytest.mark.parametrize(
    "row", UTTERANCES, ids=[f"{u['node']}:{u['utterance'][:30]}" for u in UTTERANCES]
)
async def test_paraphrases_route_to_the_right_node(
    brain: EmbeddedBrain, row: dict[str, Any]
) -> None:
    agent = PathwayAgent(
        parse_document(DEMO),
        CallContext(call_id="demo"),
        decider=EmbeddedDecider(brain, lambda: NOW, "UTC"),
        generator=FallbackGenerator(),
        effects=NoEffects(),
        now=lambda: NOW,
        state=EngineState(node_id=row["node"], status="listening"),
    )
    async for _ in agent.reply(row["utterance"]):
        pass
    expected = row["expect_target"] or row["node"]  # null: nothing fits, stay and re-ask
    assert agent.node_id == expected, row


def test_the_table_is_big_enough() -> None:
    assert len(UTTERANCES) >= 30
    assert any(u["expect_target"] is None for u in UTTERANCES)


@pytest.fixture
def database_url(sqlite_database: str) -> str:
    return sqlite_database


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
async def test_demo_conversations_through_the_chat_api(api: Api, scenario: dict[str, Any]) -> None:
    created = await api.client.post(
        "/v1/pathway/create", json={"name": "Demo", **DEMO}, headers=api.a()
    )
    assert created.status_code == 200 and created.json()["warnings"] == []
    chat = await api.client.post(
        "/v1/pathway/chat/create",
        json={"pathway_id": created.json()["pathway_id"], "request_data": scenario["request_data"]},
        headers=api.a(),
    )
    chat_id = chat.json()["data"]["chat_id"]
    actions: list[dict[str, Any]] = []
    for turn in scenario["turns"]:
        body = {} if turn["caller"] is None else {"message": turn["caller"]}
        reply = await api.client.post(f"/v1/pathway/chat/{chat_id}", json=body, headers=api.a())
        data = reply.json()["data"]
        where = turn["caller"]
        assert data["current_node_id"] == turn["expect_node"], (where, data)
        assert data["assistant_responses"], where  # the agent always says something
        for name, value in (turn.get("expect_vars") or {}).items():
            assert data["variables"].get(name) == value, (where, name, data["variables"])
        for name in turn.get("expect_vars_set") or []:
            assert data["variables"].get(name) not in (None, ""), (where, name)
        actions += data["actions"]
    final = scenario.get("final_action")
    if final == "end_call":
        assert any(a["type"] == "end_call" for a in actions)
    elif final == "transfer":
        transfer = [a for a in actions if a["type"] == "transfer"]
        assert transfer[-1]["number"] == scenario["final_action_detail"]["transfer_number"]
    else:
        assert not any(a["type"] in ("end_call", "transfer") for a in actions)
