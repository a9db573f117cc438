"""Calls API over real databases: send, list, details, stop, active, events."""

from __future__ import annotations

from typing import Any

import pytest
from tests.integration.conftest import Api

BASE = {"phone_number": "+14155550123", "task": "Confirm the appointment."}


async def send(api: Api, headers: dict[str, str] | None = None, **fields: Any) -> str:
    response = await api.client.post(
        "/v1/calls", json={**BASE, **fields}, headers=headers or api.a()
    )
    assert response.status_code == 200, response.text
    return str(response.json()["call_id"])


async def test_send_then_get_round_trips_everything(api: Api) -> None:
    metadata = {"crm": {"id": 42, "tags": ["a", "b"]}, "none": None}
    request_data = {"name": "Ada", "n": 1.5}
    dynamic = [{"url": "https://example.com/x", "response_data": [{"name": "x", "data": "$.x"}]}]
    call_id = await send(
        api,
        metadata=metadata,
        request_data=request_data,
        dynamic_data=dynamic,
        unknown_field={"kept": True},
        phone_number="(415) 555-0199",
    )
    body = (await api.client.get(f"/v1/calls/{call_id}", headers=api.a())).json()
    assert body["call_id"] == body["c_id"] == call_id
    assert body["to"] == "+14155550199"
    assert body["metadata"] == metadata
    assert body["request_data"] == request_data
    assert body["status"] == "queued" and body["queue_status"] == "queued"
    assert body["batch_id"] == "" and body["error_message"] == "" and body["call_length"] == 0
    assert body["variables"]["call_id"] == call_id and body["variables"]["name"] == "Ada"
    async with api.services.db.session() as session:
        from callwright.store.calls import get_call

        org_calls = await get_call(session, (await _org_of(api, api.key_a)), call_id)
    assert org_calls is not None
    assert org_calls.request["unknown_field"] == {"kept": True}
    assert org_calls.request["phone_number"] == "(415) 555-0199"
    assert org_calls.params["dynamic_data"] == dynamic
    assert org_calls.params["temperature"] == 0.7


async def _org_of(api: Api, key: str) -> str:
    return await api.services.auth.org_for(key)


async def test_explicit_null_means_default(api: Api) -> None:
    call_id = await send(
        api, temperature=None, tools=None, interruption_threshold=None, max_duration=None
    )
    body = (await api.client.get(f"/v1/calls/{call_id}", headers=api.a())).json()
    assert body["max_duration"] == 30


async def test_list_filters_and_pagination(api: Api) -> None:
    ids = [await send(api, phone_number=f"+1415555010{i}") for i in range(5)]
    listed = (await api.client.get("/v1/calls", headers=api.a())).json()
    assert listed["total_count"] == listed["count"] == 5
    assert [c["call_id"] for c in listed["calls"]] == ids[::-1]
    assert "transcripts" not in listed["calls"][0]
    asc = (
        await api.client.get(
            "/v1/calls", params={"ascending": "true", "from": 1, "to": 3}, headers=api.a()
        )
    ).json()
    assert [c["call_id"] for c in asc["calls"]] == ids[1:3]
    assert asc["total_count"] == 5 and asc["count"] == 2
    by_to = (
        await api.client.get("/v1/calls", params={"to_number": "4155550103"}, headers=api.a())
    ).json()
    assert [c["call_id"] for c in by_to["calls"]] == [ids[3]]
    limited = (await api.client.get("/v1/calls", params={"limit": 2}, headers=api.a())).json()
    assert limited["count"] == 2
    done = (await api.client.get("/v1/calls", params={"completed": "true"}, headers=api.a())).json()
    assert done["total_count"] == 0
    today = api.services.clock.now().date().isoformat()
    dated = (
        await api.client.get(
            "/v1/calls", params={"start_date": today, "end_date": today}, headers=api.a()
        )
    ).json()
    assert dated["total_count"] == 5
    future = (
        await api.client.get("/v1/calls", params={"start_date": "2999-01-01"}, headers=api.a())
    ).json()
    assert future["total_count"] == 0


async def test_list_rejects_bad_filters_naming_them(api: Api) -> None:
    for params, field in (
        ({"limit": 0}, "limit"),
        ({"timezone": "Mars/Base"}, "timezone"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"from_number": "nope"}, "from_number"),
        ({"from": 5, "to": 2}, "to"),
    ):
        response = await api.client.get("/v1/calls", params=params, headers=api.a())
        assert response.status_code == 400, params
        assert field in response.json()["message"]


async def test_stop_queued_call_cancels_it_with_events(api: Api) -> None:
    call_id = await send(api)
    response = await api.client.post(f"/v1/calls/{call_id}/stop", headers=api.a())
    assert response.json() == {"status": "success", "message": "Call ended successfully."}
    body = (await api.client.get(f"/v1/calls/{call_id}", headers=api.a())).json()
    assert body["status"] == "canceled" and body["completed"] is True
    events = (await api.client.get(f"/v1/calls/{call_id}/events", headers=api.a())).json()["data"]
    assert [e["type"] for e in events] == ["queue.accepted", "status.canceled"]
    assert [e["seq"] for e in events] == [1, 2]
    again = await api.client.post(f"/v1/calls/{call_id}/stop", headers=api.a())
    assert again.json()["message"] == "Call has already ended."


async def test_active_calls_and_stop_all(api: Api) -> None:
    ids = {await send(api) for _ in range(3)}
    active = (await api.client.get("/v1/calls/active", headers=api.a())).json()
    assert active["errors"] is None
    assert {c["call_id"] for c in active["data"]} == ids
    assert all(c["status"] == "QUEUED" and c["international"] == "false" for c in active["data"])
    stopped = (await api.client.post("/v1/calls/active/stop", headers=api.a())).json()
    assert stopped["num_calls"] == 3 and stopped["status"] == "success"
    assert (await api.client.get("/v1/calls/active", headers=api.a())).json()["data"] == []


async def test_scheduled_call_waits_for_its_time(api: Api) -> None:
    call_id = await send(api, start_time="2999-01-01 09:00:00 -05:00")
    assert await api.services.dispatcher.dispatch_once() == 0
    body = (await api.client.get(f"/v1/calls/{call_id}", headers=api.a())).json()
    assert body["status"] == "queued"
    assert body["scheduled_at"] == "2999-01-01T14:00:00Z"


async def test_event_stream_alias(api: Api) -> None:
    call_id = await send(api)
    a = (await api.client.get(f"/v1/calls/{call_id}/events", headers=api.a())).json()
    b = (await api.client.get(f"/v1/event_stream/{call_id}", headers=api.a())).json()
    assert a == b and a["data"][0]["call_id"] == call_id


async def test_pathway_calls_need_an_existing_pathway(api: Api) -> None:
    import uuid

    from callwright.store.pathway_models import Pathway, PathwayVersion

    missing = await api.client.post(
        "/v1/calls", json={"phone_number": "+14155550123", "pathway_id": "nope"}, headers=api.a()
    )
    assert missing.status_code == 404
    assert missing.json()["message"] == 'Pathway with ID "nope" not found'
    org = await api.services.auth.org_for(api.key_a)
    now = api.services.clock.now()
    pathway_id = str(uuid.uuid4())
    async with api.services.db.transaction() as session:
        session.add(
            Pathway(
                id=pathway_id,
                org_id=org,
                name="p",
                document={"nodes": [], "edges": []},
                created_at=now,
                updated_at=now,
            )
        )
        await session.flush()
        session.add(
            PathwayVersion(
                id=str(uuid.uuid4()),
                pathway_id=pathway_id,
                org_id=org,
                version_number=1,
                name="v1",
                document={},
                archived=False,
                created_at=now,
            )
        )
    ok = await api.client.post(
        "/v1/calls",
        json={"phone_number": "+14155550123", "pathway_id": pathway_id},
        headers=api.a(),
    )
    assert ok.status_code == 200
    versioned = await api.client.post(
        "/v1/calls",
        json={"phone_number": "+14155550123", "pathway_id": pathway_id, "pathway_version": 1},
        headers=api.a(),
    )
    assert versioned.status_code == 200
    bad_version = await api.client.post(
        "/v1/calls",
        json={"phone_number": "+14155550123", "pathway_id": pathway_id, "pathway_version": 7},
        headers=api.a(),
    )
    assert bad_version.status_code == 404 and "version" in bad_version.json()["message"]
    other_org = await api.client.post(
        "/v1/calls",
        json={"phone_number": "+14155550123", "pathway_id": pathway_id},
        headers=api.b(),
    )
    assert other_org.status_code == 404


@pytest.mark.parametrize(
    ("voice", "status"),
    [
        ("joe", 200),
        ("piper:joe", 200),
        ("maya", 200),  # the hosted platform's voice names work (the default voice)
        (None, 200),
        ("darth", 400),
        ("openai:nova", 400),  # that back-end is not configured here
    ],
)
async def test_voice_is_checked_when_the_call_is_created(
    api: Api, voice: str | None, status: int
) -> None:
    sent = await api.client.post(
        "/v1/calls",
        json={"phone_number": "+14155550123", "task": "x", "voice": voice},
        headers=api.a(),
    )
    assert sent.status_code == status, sent.text
    if status == 400:
        assert "voice" in sent.text
