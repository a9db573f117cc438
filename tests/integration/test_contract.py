"""Contract tests: the exact JSON a client written for the hosted API receives, one per
endpoint. A change here breaks somebody's integration: change it on purpose only."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import Api
from tests.integration.test_calls_api import send

CALL_KEYS = {
    "call_id": str,
    "c_id": str,
    "call_length": float,
    "corrected_duration": str,
    "batch_id": str,
    "to": str,
    "from": str,
    "request_data": dict,
    "completed": bool,
    "inbound": bool,
    "created_at": str,
    "updated_at": str,
    "started_at": type(None),
    "end_at": type(None),
    "scheduled_at": str,
    "queue_status": str,
    "status": str,
    "max_duration": int,
    "error_message": str,
    "variables": dict,
    "answered_by": type(None),
    "record": bool,
    "recording_url": type(None),
    "recording_expiration": type(None),
    "metadata": dict,
    "summary": type(None),
    "price": float,
    "local_dialing": bool,
    "voice_id": type(None),
    "call_ended_by": type(None),
    "pathway_id": type(None),
    "pathway_version": type(None),
    "pathway_logs": type(None),
    "pathway_tags": list,
    "analysis": type(None),
    "concatenated_transcript": str,
    "transcripts": list,
    "citations": type(None),
    "citation_schema_ids": list,
    "disposition_tag": type(None),
    "transferred_to": type(None),
    "transferred_at": type(None),
    "pre_transfer_duration": type(None),
    "post_transfer_duration": type(None),
    "warm_transfer_call": type(None),
    "is_proxy_agent_call": bool,
    "is_canary": type(None),
    "endpoint_url": type(None),
    "task": str,
}
LIST_ITEM_KEYS = {
    k: v
    for k, v in CALL_KEYS.items()
    if k not in ("transcripts", "concatenated_transcript", "pathway_logs")
}


def assert_shape(obj: dict[str, Any], shape: dict[str, type]) -> None:
    assert set(obj) == set(shape), set(obj) ^ set(shape)
    for key, kind in shape.items():
        assert isinstance(obj[key], kind), (key, obj[key])


async def test_send_call_response(api: Api) -> None:
    response = await api.client.post(
        "/v1/calls", json={"phone_number": "+14155550123", "task": "x"}, headers=api.a()
    )
    body = response.json()
    assert response.status_code == 200
    assert set(body) == {"status", "message", "call_id", "batch_id"}
    assert body["status"] == "success" and body["message"] == "Call successfully queued."
    assert body["batch_id"] == ""


async def test_call_details(api: Api) -> None:
    call_id = await send(api)
    body = (await api.client.get(f"/v1/calls/{call_id}", headers=api.a())).json()
    assert_shape(body, CALL_KEYS)
    assert body["created_at"].endswith("Z")
    assert set(body["variables"]) >= {
        "now",
        "now_utc",
        "from",
        "to",
        "short_from",
        "short_to",
        "call_id",
        "phone_number",
        "language",
        "timestamp",
        "timezone",
    }


async def test_list_calls(api: Api) -> None:
    await send(api)
    body = (await api.client.get("/v1/calls", headers=api.a())).json()
    assert set(body) == {"total_count", "count", "calls"}
    assert_shape(body["calls"][0], LIST_ITEM_KEYS)


async def test_active_calls(api: Api) -> None:
    await send(api)
    body = (await api.client.get("/v1/calls/active", headers=api.a())).json()
    assert set(body) == {"data", "errors"} and body["errors"] is None
    assert_shape(
        body["data"][0],
        {
            "call_id": str,
            "user_id": str,
            "from": str,
            "to": str,
            "objective": str,
            "pathway_id": type(None),
            "start_time": str,
            "international": str,
            "status": str,
            "timestamp": str,
        },
    )
    assert body["data"][0]["timestamp"].isdigit()


async def test_stop_and_stop_all(api: Api) -> None:
    call_id = await send(api)
    stop = (await api.client.post(f"/v1/calls/{call_id}/stop", headers=api.a())).json()
    assert stop == {"status": "success", "message": "Call ended successfully."}
    await send(api)
    body = (await api.client.post("/v1/calls/active/stop", headers=api.a())).json()
    assert body == {"status": "success", "message": "Stopped 1 active calls.", "num_calls": 1}


async def test_events(api: Api) -> None:
    call_id = await send(api)
    body = (await api.client.get(f"/v1/calls/{call_id}/events", headers=api.a())).json()
    assert set(body) == {"data", "errors"}
    assert_shape(
        body["data"][0],
        {
            "seq": int,
            "call_id": str,
            "timestamp": str,
            "level": str,
            "category": str,
            "type": str,
            "message": str,
            "data": dict,
        },
    )


async def test_not_found_on_a_data_style_endpoint(api: Api) -> None:
    body = (await api.client.get("/v1/calls/nope", headers=api.a())).json()
    assert body == {
        "data": None,
        "errors": [{"error": "CALL_NOT_FOUND", "message": "Call not found."}],
        "status": "error",
        "message": "Call not found.",
    }


async def test_validation_error_on_send_call(api: Api) -> None:
    body = (await api.client.post("/v1/calls", json={"task": "x"}, headers=api.a())).json()
    assert body == {
        "status": "error",
        "message": "Invalid parameters: Missing required parameter: phone_number.",
        "errors": ["Missing required parameter: phone_number."],
        "data": None,
    }


async def test_health(api: Api) -> None:
    response = await api.client.get("/healthz")
    assert response.json() == {"status": "ok", "database": "ok"}
