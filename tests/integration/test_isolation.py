"""Two orgs, every endpoint: a key of org B can never read, list, stop or even learn of
org A's calls (404, never 403)."""

from __future__ import annotations

import pytest
from tests.integration.conftest import Api
from tests.integration.test_calls_api import send


async def test_get_is_404_for_other_org(api: Api) -> None:
    call_id = await send(api)
    response = await api.client.get(f"/v1/calls/{call_id}", headers=api.b())
    missing = await api.client.get(
        "/v1/calls/00000000-0000-0000-0000-000000000000", headers=api.b()
    )
    assert response.status_code == missing.status_code == 404
    assert response.json() == missing.json()


@pytest.mark.parametrize("path", ["/v1/calls/{id}/events", "/v1/event_stream/{id}"])
async def test_events_are_404_for_other_org(api: Api, path: str) -> None:
    call_id = await send(api)
    response = await api.client.get(path.format(id=call_id), headers=api.b())
    assert response.status_code == 404
    assert call_id not in response.text


async def test_stop_is_404_and_harmless_for_other_org(api: Api) -> None:
    call_id = await send(api)
    response = await api.client.post(f"/v1/calls/{call_id}/stop", headers=api.b())
    assert response.status_code == 404
    body = (await api.client.get(f"/v1/calls/{call_id}", headers=api.a())).json()
    assert body["status"] == "queued"
    events = (await api.client.get(f"/v1/calls/{call_id}/events", headers=api.a())).json()
    assert len(events["data"]) == 1


async def test_list_and_active_show_only_own_calls(api: Api) -> None:
    mine = {await send(api) for _ in range(2)}
    theirs = await send(api, headers=api.b())
    listed = (await api.client.get("/v1/calls", headers=api.a())).json()
    assert {c["call_id"] for c in listed["calls"]} == mine and listed["total_count"] == 2
    listed_b = (await api.client.get("/v1/calls", headers=api.b())).json()
    assert [c["call_id"] for c in listed_b["calls"]] == [theirs]
    active = (await api.client.get("/v1/calls/active", headers=api.a())).json()
    assert {c["call_id"] for c in active["data"]} == mine


async def test_stop_all_touches_only_own_calls(api: Api) -> None:
    mine = await send(api)
    theirs = await send(api, headers=api.b())
    stopped = (await api.client.post("/v1/calls/active/stop", headers=api.b())).json()
    assert stopped["num_calls"] == 1
    assert (await api.client.get(f"/v1/calls/{mine}", headers=api.a())).json()["status"] == "queued"
    assert (await api.client.get(f"/v1/calls/{theirs}", headers=api.b())).json()[
        "status"
    ] == "canceled"


async def test_active_calls_refuse_another_org_id_header(api: Api) -> None:
    org_a = await api.services.auth.org_for(api.key_a)
    response = await api.client.get(
        "/v1/calls/active", headers={**api.b(), "x-bland-org-id": org_a}
    )
    assert response.status_code == 404
    own = await api.client.get("/v1/calls/active", headers={**api.a(), "x-bland-org-id": org_a})
    assert own.status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/calls"),
        ("GET", "/v1/calls"),
        ("GET", "/v1/calls/active"),
        ("POST", "/v1/calls/active/stop"),
        ("GET", "/v1/calls/x"),
        ("POST", "/v1/calls/x/stop"),
        ("GET", "/v1/calls/x/events"),
        ("GET", "/v1/event_stream/x"),
    ],
)
@pytest.mark.parametrize("auth", [None, "", "nope", "Bearer nope", "Bearer "])
async def test_every_endpoint_needs_a_live_key(
    api: Api, method: str, path: str, auth: str | None
) -> None:
    headers = {} if auth is None else {"authorization": auth}
    response = await api.client.request(method, path, headers=headers, json={})
    assert response.status_code == 401
    assert response.json() == {
        "data": None,
        "errors": [{"error": "AUTH_FAILURE", "message": "Unauthorized"}],
        "status": "error",
        "message": "Unauthorized",
    }


async def test_revoked_key_stops_working(api: Api) -> None:
    from callwright.store import keys

    async with api.services.db.transaction() as session:
        org = await keys.get_or_create_org(session, "revoke-me", api.services.clock.now())
        raw, key = await keys.create_key(session, org, api.services.clock.now())
    assert (await api.client.get("/v1/calls", headers={"authorization": raw})).status_code == 200
    async with api.services.db.transaction() as session:
        assert await keys.revoke_key(session, key.prefix, api.services.clock.now()) == 1
    api.services.auth.forget_cached()  # other processes: the cache's TTL, a few seconds
    assert (await api.client.get("/v1/calls", headers={"authorization": raw})).status_code == 401
