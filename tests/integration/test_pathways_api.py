"""Pathways API (reference §3.1): CRUD, aliases, versions, publishing, folders, the lint
on every save, real exports imported unchanged, and two-org isolation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import EXTERNAL_DATA
from tests.integration.conftest import Api

EXPORTS = sorted((EXTERNAL_DATA / "pathways").glob("*.json"))


def small_pathway() -> dict[str, Any]:
    return {
        "nodes": [
            {
                "id": "start",
                "type": "Default",
                "data": {"name": "Greet", "isStart": True, "text": "Hi!", "isStatic": True},
            },
            {"id": "bye", "type": "End Call", "data": {"name": "Bye", "prompt": "Say goodbye."}},
        ],
        "edges": [{"id": "e1", "source": "start", "target": "bye", "label": "done"}],
    }


async def create(api: Api, body: dict[str, Any], headers: dict[str, str] | None = None) -> str:
    created = await api.client.post("/v1/pathway/create", json=body, headers=headers or api.a())
    assert created.status_code == 200, created.text
    pathway_id: str = created.json()["pathway_id"]
    return pathway_id


async def test_create_get_update_list_delete(api: Api) -> None:
    created = await api.client.post(
        "/v1/pathway/create",
        json={"name": "Clinic", "description": "Books visits"},
        headers=api.a(),
    )
    assert created.status_code == 200
    body = created.json()
    assert body["status"] == "success" and body["warnings"] == []
    pid = body["pathway_id"]

    got = (await api.client.get(f"/v1/pathway/{pid}", headers=api.a())).json()
    assert got["name"] == "Clinic" and got["description"] == "Books visits"
    assert got["nodes"] == [] and got["edges"] == []

    doc = small_pathway()
    updated = await api.client.post(
        f"/v1/pathway/{pid}", json={"name": "Clinic v2", **doc, "custom": {"k": 1}}, headers=api.a()
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["pathway_data"]["nodes"] == doc["nodes"]
    got = (await api.client.get(f"/v1/pathway/{pid}", headers=api.a())).json()
    assert got["name"] == "Clinic v2" and got["nodes"] == doc["nodes"]
    assert got["edges"] == doc["edges"] and got["custom"] == {"k": 1}

    # The nested shape of the reference's example, and the alias clients call.
    nested = await api.client.post(
        "/v1/convo_pathway/update",
        json={"pathway_id": pid, "pathway_data": {"name": "Nested", **doc}},
        headers=api.a(),
    )
    assert nested.status_code == 200, nested.text
    assert (await api.client.get(f"/v1/pathway/{pid}", headers=api.a())).json()["name"] == "Nested"

    alias = await api.client.post("/v1/pathway", json={"name": "Second"}, headers=api.a())
    assert alias.status_code == 200
    listed = (await api.client.get("/v1/pathway", headers=api.a())).json()
    assert [p["name"] for p in listed] == ["Nested", "Second"]

    deleted = await api.client.delete(f"/v1/pathway/{pid}", headers=api.a())
    assert deleted.json()["status"] == "success"
    assert (await api.client.get(f"/v1/pathway/{pid}", headers=api.a())).status_code == 404


async def test_lint_hard_error_refuses_save_naming_the_node(api: Api) -> None:
    doc = small_pathway()
    doc["nodes"].append({"id": "bye", "type": "Default", "data": {"name": "Dup", "text": "x"}})
    refused = await api.client.post(
        "/v1/pathway/create", json={"name": "Bad", **doc}, headers=api.a()
    )
    assert refused.status_code == 400
    assert "bye" in refused.text
    assert (await api.client.get("/v1/pathway", headers=api.a())).json() == []


async def test_lint_warnings_come_back_beside_a_saved_pathway(api: Api) -> None:
    doc = small_pathway()
    doc["edges"].append({"id": "e2", "source": "start", "target": "nowhere", "label": "lost"})
    created = await api.client.post(
        "/v1/pathway/create", json={"name": "Warn", **doc}, headers=api.a()
    )
    assert created.status_code == 200, created.text
    warnings = created.json()["warnings"]
    assert any(w["edge_id"] == "e2" or "nowhere" in w["message"] for w in warnings), warnings


@pytest.mark.parametrize("path", EXPORTS, ids=[p.stem for p in EXPORTS])
async def test_real_exports_import_unchanged(api: Api, path: Path) -> None:
    doc = json.loads(path.read_text())
    body = {"name": path.stem, **{k: v for k, v in doc.items() if k != "name"}}
    created = await api.client.post("/v1/pathway/create", json=body, headers=api.a())
    assert created.status_code == 200, created.text
    assert all(w["code"] for w in created.json()["warnings"])
    got = await api.client.get(f"/v1/pathway/{created.json()['pathway_id']}", headers=api.a())
    assert got.json()["nodes"] == doc["nodes"]
    assert got.json()["edges"] == doc["edges"]


async def test_versions_publish_and_live_version(api: Api) -> None:
    pid = await create(api, {"name": "Versioned", **small_pathway()})
    v1 = await api.client.post(f"/v1/pathway/{pid}/version", json={"name": "one"}, headers=api.a())
    assert v1.status_code == 200, v1.text
    assert v1.json()["data"]["version_number"] == 1
    changed = small_pathway()
    changed["nodes"][0]["data"]["text"] = "Hello again!"
    v2 = await api.client.post(
        "/v1/convo_pathway/create-version",
        json={"pathway_id": pid, "name": "two", **changed},
        headers=api.a(),
    )
    assert v2.json()["data"]["version_number"] == 2

    versions = (await api.client.get(f"/v1/pathway/{pid}/versions", headers=api.a())).json()
    assert [(v["version_number"], v["is_latest"]) for v in versions] == [(1, False), (2, True)]
    no_live = await api.client.get(f"/v1/pathway/{pid}/version/0", headers=api.a())
    assert no_live.status_code == 404

    published = await api.client.post(
        f"/v1/pathway/{pid}/publish", json={"version_id": 1}, headers=api.a()
    )
    assert published.status_code == 200
    live = (await api.client.get(f"/v1/pathway/{pid}/version/0", headers=api.a())).json()
    assert live["version_number"] == 1 and live["nodes"][0]["data"]["text"] == "Hi!"
    two = (await api.client.get(f"/v1/pathway/{pid}/version/2", headers=api.a())).json()
    assert two["nodes"][0]["data"]["text"] == "Hello again!" and two["is_latest"] is True

    refused = await api.client.delete(f"/v1/pathway/{pid}/version/1", headers=api.a())
    assert refused.status_code == 400 and "version_id" in refused.text
    archived = await api.client.delete(f"/v1/pathway/{pid}/version/2", headers=api.a())
    assert archived.status_code == 200
    versions = (await api.client.get(f"/v1/pathway/{pid}/versions", headers=api.a())).json()
    assert [v["version_number"] for v in versions] == [1]
    gone = await api.client.get(f"/v1/pathway/{pid}/version/2", headers=api.a())
    assert gone.status_code == 404


async def test_folders(api: Api) -> None:
    pid = await create(api, {"name": "Filed"})
    folder = (
        await api.client.post("/v1/pathway/folders", json={"name": "Sales"}, headers=api.a())
    ).json()
    moved = await api.client.post(
        "/v1/pathway/folders/move",
        json={"pathway_id": pid, "folder_id": folder["id"]},
        headers=api.a(),
    )
    assert moved.json() == {"pathway_id": pid, "old_folder_id": None, "new_folder_id": folder["id"]}
    inside = await api.client.get(f"/v1/pathway/folders/{folder['id']}/pathways", headers=api.a())
    assert [p["id"] for p in inside.json()["pathways"]] == [pid]
    busy = await api.client.delete(f"/v1/pathway/folders/{folder['id']}", headers=api.a())
    assert busy.status_code == 400
    renamed = await api.client.patch(
        f"/v1/pathway/folders/{folder['id']}", json={"name": "Sales EU"}, headers=api.a()
    )
    assert renamed.json()["name"] == "Sales EU"
    await api.client.post(
        "/v1/pathway/folders/move", json={"pathway_id": pid, "folder_id": None}, headers=api.a()
    )
    emptied = await api.client.delete(f"/v1/pathway/folders/{folder['id']}", headers=api.a())
    assert emptied.status_code == 200
    listed = (await api.client.get("/v1/pathway/folders", headers=api.a())).json()
    assert listed == {"folders": []}


async def test_other_org_learns_nothing(api: Api) -> None:
    pid = await create(api, {"name": "Private", **small_pathway()})
    await api.client.post(f"/v1/pathway/{pid}/version", json={}, headers=api.a())
    folder = (
        await api.client.post("/v1/pathway/folders", json={"name": "Mine"}, headers=api.a())
    ).json()["id"]
    b = api.b()
    attempts = [
        ("GET", f"/v1/pathway/{pid}", None),
        ("POST", f"/v1/pathway/{pid}", {"name": "stolen"}),
        ("POST", "/v1/convo_pathway/update", {"pathway_id": pid, "name": "stolen"}),
        ("DELETE", f"/v1/pathway/{pid}", None),
        ("GET", f"/v1/pathway/{pid}/versions", None),
        ("GET", f"/v1/pathway/{pid}/version/1", None),
        ("POST", f"/v1/pathway/{pid}/version", {}),
        ("POST", "/v1/convo_pathway/create-version", {"pathway_id": pid}),
        ("DELETE", f"/v1/pathway/{pid}/version/1", None),
        ("POST", f"/v1/pathway/{pid}/publish", {"version_id": 1}),
        ("GET", f"/v1/pathway/folders/{folder}/pathways", None),
        ("PATCH", f"/v1/pathway/folders/{folder}", {"name": "x"}),
        ("DELETE", f"/v1/pathway/folders/{folder}", None),
        ("POST", "/v1/pathway/folders/move", {"pathway_id": pid, "folder_id": None}),
    ]
    for method, url, body in attempts:
        response = await api.client.request(method, url, json=body, headers=b)
        assert response.status_code == 404, (method, url, response.text)
    assert (await api.client.get("/v1/pathway", headers=b)).json() == []
    assert (await api.client.get("/v1/pathway/folders", headers=b)).json() == {"folders": []}
    got = (await api.client.get(f"/v1/pathway/{pid}", headers=api.a())).json()
    assert got["name"] == "Private"


async def test_send_call_with_a_foreign_pathway_is_404(api: Api) -> None:
    pid = await create(api, {"name": "Mine", **small_pathway()})
    sent = await api.client.post(
        "/v1/calls", json={"phone_number": "+14155550123", "pathway_id": pid}, headers=api.b()
    )
    assert sent.status_code == 404
    ok = await api.client.post(
        "/v1/calls", json={"phone_number": "+14155550123", "pathway_id": pid}, headers=api.a()
    )
    assert ok.status_code == 200, ok.text


def test_the_real_exports_are_all_here() -> None:
    assert [p.name for p in EXPORTS] == [
        "apex-auto-receptionist.json",
        "bland-docs-car-rental.json",
        "bland-golden-service-scheduling.json",
        "pathwalk-nu-admissions.json",
    ]
