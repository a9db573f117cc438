"""The four real exports in tests/data/external/pathways can be chatted with, unchanged, in
the embedded mode (no LLM): every turn answers, nothing fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import EXTERNAL_DATA
from tests.integration.conftest import Api

EXPORTS = sorted((EXTERNAL_DATA / "pathways").glob("*.json"))
CALLER = ["Hi, yes, I'd like some help please.", "My name is Sam Lee.", "yes", "no thanks"]


@pytest.fixture
def database_url(sqlite_database: str) -> str:
    return sqlite_database


@pytest.mark.parametrize("path", EXPORTS, ids=[p.stem for p in EXPORTS])
async def test_chat_with_a_real_export(api: Api, path: Path) -> None:
    document = json.loads(path.read_text())
    body = {**document, "name": path.stem}
    created = await api.client.post("/v1/pathway/create", json=body, headers=api.a())
    assert created.status_code == 200, created.text
    chat = await api.client.post(
        "/v1/pathway/chat/create",
        json={"pathway_id": created.json()["pathway_id"], "request_data": {"name": "Sam"}},
        headers=api.a(),
    )
    chat_id = chat.json()["data"]["chat_id"]
    first = await api.client.post(f"/v1/pathway/chat/{chat_id}", json={}, headers=api.a())
    assert first.status_code == 200, first.text
    nodes = {first.json()["data"]["current_node_id"]}
    for line in CALLER:
        reply = await api.client.post(
            f"/v1/pathway/chat/{chat_id}", json={"message": line}, headers=api.a()
        )
        if reply.status_code == 400:  # the pathway ended the chat (End Call, transfer)
            assert "ended" in reply.text
            break
        assert reply.status_code == 200, reply.text
        data = reply.json()["data"]
        assert data["assistant_responses"] or data["actions"], data
        nodes.add(data["current_node_id"])
    assert None not in nodes
