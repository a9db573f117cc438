"""Numbers API (reference §7): inbound agents, outbound caller ids, block rules."""

from __future__ import annotations

import pytest
from tests.integration.conftest import Api


async def test_inbound_insert_update_get_list_delete(api: Api) -> None:
    inserted = await api.client.post(
        "/v1/inbound/insert", json={"numbers": ["(415) 555-0111", "+14155550112"]}, headers=api.a()
    )
    assert inserted.json() == {
        "status": "success",
        "message": "Inserted 2 numbers.",
        "inserted": ["+14155550111", "+14155550112"],
    }
    update = await api.client.post(
        "/v1/inbound/4155550111",
        json={
            "prompt": "You answer for Elm Clinic.",
            "voice": "joe",
            "max_duration": 12,
            "webhook": "https://example.com/hook",
            "custom_field": 1,
        },
        headers=api.a(),
    )
    assert update.status_code == 200, update.text
    assert update.json()["updates"]["max_duration"] == 12
    got = (await api.client.get("/v1/inbound/%2B14155550111", headers=api.a())).json()
    assert got["prompt"] == "You answer for Elm Clinic." and got["max_duration"] == 12
    assert got["interruption_threshold"] == 500 and got["custom_field"] == 1
    pathway = await api.client.post(
        "/v1/inbound/+14155550111", json={"pathway_id": "p-1"}, headers=api.a()
    )
    assert pathway.status_code == 200
    got = (await api.client.get("/v1/inbound/+14155550111", headers=api.a())).json()
    assert got["pathway_id"] == "p-1" and got["prompt"] is None and got["voice"] == "joe"
    listed = (await api.client.get("/v1/inbound", headers=api.a())).json()["inbound_numbers"]
    assert [n["phone_number"] for n in listed] == ["+14155550111", "+14155550112"]
    label = await api.client.post(
        "/inbound/update_label",
        json={"phoneNumber": "4155550112", "newLabel": "Front desk"},
        headers=api.a(),
    )
    assert label.json()["data"]["label"] == "Front desk"
    deleted = await api.client.post("/v1/inbound/+14155550112/delete", headers=api.a())
    assert deleted.json()["status"] == "success"
    assert (await api.client.get("/v1/inbound/+14155550112", headers=api.a())).status_code == 404


async def test_inbound_validation_names_fields(api: Api) -> None:
    await api.client.post("/v1/inbound/insert", json={"numbers": ["+14155550111"]}, headers=api.a())
    for body, field in (
        ({"max_duration": 0}, "max_duration"),
        ({"language": "xx"}, "language"),
        ({"voice": "joe"}, "prompt"),
        ({"webhook_events": ["x"]}, "webhook_events"),
    ):
        response = await api.client.post("/v1/inbound/+14155550111", json=body, headers=api.a())
        assert response.status_code == 400, body
        assert field in response.json()["message"]
    bad = await api.client.get("/v1/inbound/not-a-number", headers=api.a())
    assert bad.status_code == 400


async def test_inbound_numbers_are_tenant_scoped(api: Api) -> None:
    await api.client.post("/v1/inbound/insert", json={"numbers": ["+14155550111"]}, headers=api.a())
    for method, path, body in (
        ("GET", "/v1/inbound/+14155550111", None),
        ("POST", "/v1/inbound/+14155550111", {"prompt": "x"}),
        ("POST", "/v1/inbound/+14155550111/delete", None),
        ("POST", "/inbound/update_label", {"phoneNumber": "+14155550111", "newLabel": "x"}),
    ):
        response = await api.client.request(method, path, json=body, headers=api.b())
        assert response.status_code == 404, path
    assert (await api.client.get("/v1/inbound", headers=api.b())).json() == {"inbound_numbers": []}
    taken = await api.client.post(
        "/v1/inbound/insert", json={"numbers": ["+14155550111"]}, headers=api.b()
    )
    assert taken.status_code == 409


async def test_outbound_numbers(api: Api) -> None:
    added = await api.client.post(
        "/v1/outbound", json={"phone_number": "4155550120"}, headers=api.a()
    )
    assert added.json()["phone_number"] == "+14155550120"
    again = await api.client.post(
        "/v1/outbound", json={"phone_number": "4155550120"}, headers=api.a()
    )
    assert again.status_code == 409
    listed = (await api.client.get("/v1/outbound", headers=api.a())).json()["outbound_numbers"]
    assert [n["phone_number"] for n in listed] == ["+14155550120"]
    assert listed[0]["last_initiated"] is None
    assert (await api.client.get("/v1/outbound", headers=api.b())).json() == {
        "outbound_numbers": []
    }


async def test_block_rules_lifecycle_and_enforcement(api: Api) -> None:
    created = await api.client.post(
        "/v1/blocked_numbers",
        json={"numbers": ["4155550188"], "is_global": True, "reason": "DNC"},
        headers=api.a(),
    )
    body = created.json()["data"]
    assert body["created_count"] == 1
    rule = body["blocks"][0]
    assert rule["blocked_number"] == "+14155550188" and rule["is_active"] is True
    refused = await api.client.post(
        "/v1/calls", json={"phone_number": "+14155550188", "task": "x"}, headers=api.a()
    )
    assert refused.status_code == 429 and "blocked" in refused.json()["message"]
    other_org = await api.client.post(
        "/v1/calls", json={"phone_number": "+14155550188", "task": "x"}, headers=api.b()
    )
    assert other_org.status_code == 200
    listed = (await api.client.get("/v1/blocked_numbers", headers=api.a())).json()["data"]
    assert listed["total_count"] == 1
    assert (
        await api.client.get(f"/v1/blocked_numbers/{rule['id']}", headers=api.b())
    ).status_code == 404
    edited = await api.client.post(
        f"/v1/blocked_numbers/{rule['id']}/edit", json={"is_active": False}, headers=api.a()
    )
    assert edited.json()["data"]["is_active"] is False
    allowed = await api.client.post(
        "/v1/calls", json={"phone_number": "+14155550188", "task": "x"}, headers=api.a()
    )
    assert allowed.status_code == 200
    deleted = await api.client.delete(f"/v1/blocked_numbers/{rule['id']}", headers=api.a())
    assert deleted.json()["data"]["deleted_block_id"] == rule["id"]
    assert (
        await api.client.get(f"/v1/blocked_numbers/{rule['id']}", headers=api.a())
    ).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"numbers": ["+14155550188"], "is_global": False},
        {"numbers": ["+14155550188"], "is_global": True, "inbound_number": "+14155550111"},
        {"numbers": [], "is_global": True},
        {"numbers": ["+14155550188"] * 11, "is_global": True},
        {"numbers": ["x"], "is_global": True},
    ],
)
async def test_block_rule_validation(api: Api, body: dict[str, object]) -> None:
    response = await api.client.post("/v1/blocked_numbers", json=body, headers=api.a())
    assert response.status_code == 400


async def test_inbound_scoped_block_rule(api: Api) -> None:
    from callwright.store import numbers

    await api.client.post("/v1/inbound/insert", json={"numbers": ["+14155550111"]}, headers=api.a())
    created = await api.client.post(
        "/v1/blocked_numbers",
        json={"numbers": ["+14155550177"], "is_global": False, "inbound_number": "+14155550111"},
        headers=api.a(),
    )
    assert created.status_code == 200
    org = await api.services.auth.org_for(api.key_a)
    async with api.services.db.session() as session:
        assert await numbers.is_blocked(session, org, "+14155550177", "+14155550111") is not None
        assert await numbers.is_blocked(session, org, "+14155550177") is None
    listed = (
        await api.client.get(
            "/v1/blocked_numbers", params={"inbound_number": "+14155550111"}, headers=api.a()
        )
    ).json()["data"]
    assert listed["total_count"] == 1
