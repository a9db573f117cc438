"""Bad input gets a clear 4xx naming the field, in the reference's error shape; no input
produces a 5xx."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.integration.conftest import Api

A_ERROR_KEYS = {"status", "message", "errors", "data"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"task": "x"}, "phone_number"),
        ({"phone_number": "+14155550123"}, "task"),
        ({"phone_number": "not a number", "task": "x"}, "phone_number"),
        ({"phone_number": "+14155550123", "task": "x", "temperature": 1.5}, "temperature"),
        ({"phone_number": "+14155550123", "task": "x", "interruptibility": 4}, "interruptibility"),
        ({"phone_number": "+14155550123", "task": "x", "max_duration": 0}, "max_duration"),
        ({"phone_number": "+14155550123", "task": "x", "max_duration": 721}, "max_duration"),
        ({"phone_number": "+14155550123", "task": "x", "timezone": "Nowhere/City"}, "timezone"),
        ({"phone_number": "+14155550123", "task": "x", "start_time": "tomorrow"}, "start_time"),
        ({"phone_number": "+14155550123", "task": "x", "language": "klingon"}, "language"),
        ({"phone_number": "+14155550123", "task": "x", "webhook": "ftp://x"}, "webhook"),
        (
            {"phone_number": "+14155550123", "task": "x", "webhook_events": ["nope"]},
            "webhook_events",
        ),
        ({"phone_number": "+14155550123", "task": "x", "from": "12"}, "from"),
        (
            {"phone_number": "+14155550123", "task": "x", "transfer_list": {"default": "x"}},
            "transfer_list",
        ),
        ({"phone_number": "+14155550123", "task": "x", "keywords": ["a"] * 21}, "keywords"),
        (
            {"phone_number": "+14155550123", "task": "x", "precall_dtmf_sequence": "12a"},
            "precall_dtmf_sequence",
        ),
        (
            {"phone_number": "+14155550123", "task": "x", "voicemail": {"action": "leave_message"}},
            "voicemail",
        ),
        (
            {"phone_number": "+14155550123", "task": "x", "background_track": "jungle"},
            "background_track",
        ),
        (
            {"phone_number": "+14155550123", "task": "x", "summary_prompt": "x" * 2001},
            "summary_prompt",
        ),
        ({"phone_number": "+14155550123", "task": "x", "metadata": [1]}, "metadata"),
        ({"phone_number": "+14155550123", "task": "x", "tools": ["bogus"]}, "tools"),
        (
            {
                "phone_number": "+14155550123",
                "task": "x",
                "dialing_strategy": {"type": "custom_pooling"},
            },
            "dialing_strategy",
        ),
    ],
)
async def test_send_call_validation_names_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    response = await api.client.post("/v1/calls", json=body, headers=api.a())
    assert response.status_code == 400, response.text
    payload = response.json()
    assert set(payload) == A_ERROR_KEYS
    assert payload["status"] == "error"
    assert field in payload["message"]
    assert any(field in e for e in payload["errors"])


async def test_missing_phone_number_uses_reference_wording(api: Api) -> None:
    response = await api.client.post("/v1/calls", json={"task": "x"}, headers=api.a())
    assert "Missing required parameter: phone_number." in response.json()["errors"]


@pytest.mark.parametrize("raw", [b"{", b"not json", b'{"phone_number": }', b"\xff\xfe"])
async def test_malformed_json_is_400(api: Api, raw: bytes) -> None:
    response = await api.client.post(
        "/v1/calls", content=raw, headers={**api.a(), "content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["status"] == "error"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"phone_number": "+14155550123", "task": "x", "metadata": {"a": NaN}}',
        b'{"phone_number": "+14155550123", "task": "x", "temperature": Infinity}',
        b'{"phone_number": "+14155550123", "task": "x", "request_data": [-Infinity]}',
    ],
)
async def test_nan_and_infinity_are_400(api: Api, raw: bytes) -> None:
    response = await api.client.post("/v1/calls", content=raw, headers=api.a())
    assert response.status_code == 400, response.text


@pytest.mark.parametrize("raw", [b"[]", b"1", b'"x"', b"null"])
async def test_non_object_json_is_400(api: Api, raw: bytes) -> None:
    response = await api.client.post("/v1/calls", content=raw, headers=api.a())
    assert response.status_code == 400


async def test_json_without_content_type_is_accepted(api: Api) -> None:
    body = json.dumps({"phone_number": "+14155550123", "task": "x"}).encode()
    response = await api.client.post(
        "/v1/calls",
        content=body,
        headers={**api.a(), "content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200


async def test_body_over_1_mib_is_413(api: Api) -> None:
    body = {"phone_number": "+14155550123", "task": "x", "metadata": {"blob": "x" * (1024 * 1024)}}
    response = await api.client.post("/v1/calls", json=body, headers=api.a())
    assert response.status_code == 413
    assert response.json()["errors"][0]["error"] == "PAYLOAD_TOO_LARGE"


async def test_streamed_body_over_1_mib_is_413(api: Api) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b"x" * 65536

    response = await api.client.post("/v1/calls", content=chunks(), headers=api.a())
    assert response.status_code == 413


async def test_unknown_ids_and_routes_are_404(api: Api) -> None:
    for path in ("/v1/calls/nope", "/v1/calls/nope/events", "/v1/nothing-here"):
        response = await api.client.get(path, headers=api.a())
        assert response.status_code == 404
        assert response.json()["status"] == "error"
    stop = await api.client.post("/v1/calls/nope/stop", headers=api.a())
    assert stop.status_code == 404
    assert stop.json() == {
        "status": "error",
        "message": "Call not found.",
        "errors": ["Call not found."],
        "data": None,
    }


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.sampled_from(
    [
        "phone_number",
        "task",
        "pathway_id",
        "pathway_version",
        "voice",
        "temperature",
        "from",
        "start_time",
        "timezone",
        "max_duration",
        "tools",
        "voicemail",
        "request_data",
        "metadata",
        "webhook",
        "webhook_events",
        "dynamic_data",
        "keywords",
        "transfer_list",
        "retry",
        "dispatch_hours",
        "guard_rails",
        "pronunciation_guide",
        "interruptibility",
        "language",
    ]
) | st.text(max_size=12)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.dictionaries(field_names, json_values, max_size=8) | json_values)
async def test_no_body_produces_a_server_error(api: Api, body: Any) -> None:
    response = await api.client.post("/v1/calls", json=body, headers=api.a())
    assert response.status_code in (200, 400), response.text


async def test_nul_characters_are_a_400_not_a_500(api: Api) -> None:
    created = await api.client.post(
        "/v1/pathway/create", json={"name": "bad\u0000name"}, headers=api.a()
    )
    # SQLite stores NUL; PostgreSQL refuses it: either way, never a 5xx.
    assert created.status_code in (200, 400), created.text
    moved = await api.client.post(
        "/v1/pathway/folders/move", json={"pathway_id": "x\u0000y"}, headers=api.a()
    )
    assert moved.status_code in (400, 404), moved.text
