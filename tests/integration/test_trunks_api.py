"""SIP trunks API (reference §7.2, ``/v1/sip/trunks``): shapes, validation, isolation,
credentials sealed and never shown, number binding and outbound routing, and the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from rich.console import Console
from sqlalchemy import text
from tests.conftest import free_port
from tests.integration.conftest import Api, new_org_key, wipe
from typer.testing import CliRunner

from callwright.api import routes_secrets, routes_trunks
from callwright.api.trunk_schema import (
    TrunkDeletedResponse,
    TrunkListResponse,
    TrunkResponse,
    parse_endpoint,
    render_endpoint,
)
from callwright.config import Settings
from callwright.server import build_test_app, running_services
from callwright.store import trunks

PASSWORD = "Tr0mbone-Sekret-8812"  # noqa: S105 - a test credential
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def wire(app: FastAPI) -> FastAPI:
    """Include the trunk and secret routers unless ``create_app`` already does."""
    paths = {getattr(route, "path", None) for route in app.routes}
    if "/v1/sip/trunks" not in paths:
        app.include_router(routes_trunks.router)
    if "/v1/secrets" not in paths:
        app.include_router(routes_secrets.router)
    return app


@contextlib.asynccontextmanager
async def wired_api(database_url: str, data_dir: Path) -> AsyncIterator[Api]:
    """What the ``api`` fixture of conftest gives, with these routers wired."""
    settings = Settings(database_url=database_url, data_dir=data_dir)
    async with running_services(settings, migrate=False, start_dispatcher=False) as (svc, _):
        await wipe(svc)
        app = wire(build_test_app(svc))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Api(client, svc, await new_org_key(svc, "a"), await new_org_key(svc, "b"))


@pytest.fixture
async def sip_api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    async with wired_api(database_url, tmp_path) as api:
        yield api


async def create(api: Api, auth: dict[str, str] | None = None, **body: Any) -> dict[str, Any]:
    body = {"name": "Carrier East", "sip_endpoint": "sip:pbx.example.com", **body}
    response = await api.client.post("/v1/sip/trunks", json=body, headers=auth or api.a())
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()["data"]
    return created


def stamped(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with its id and timestamps checked and replaced by placeholders."""
    assert re.fullmatch(r"trk_[0-9a-f]{32}", obj["trunk_id"])
    assert ISO.match(obj["created_at"]) and ISO.match(obj["updated_at"])
    return {**obj, "trunk_id": "ID", "created_at": "T", "updated_at": "T"}


async def test_contract_create_get_list_update_delete(sip_api: Api) -> None:
    api = sip_api
    created = await create(
        api,
        name="Acme Carrier — US East",
        provider="custom",
        direction="outbound",
        sip_endpoint="sip:trunk.acme.example",
        auth_mode="register",
        register_auth={"username": "acme-bland", "password": PASSWORD},
        caller_id="(415) 555-0100",
        numbers=["4155550100", "2001"],
        headers={"X-Account": "acme"},
    )
    expected = {
        "trunk_id": "ID",
        "name": "Acme Carrier — US East",
        "provider": "custom",
        "direction": "outbound",
        "sip_endpoint": "sip:trunk.acme.example",
        "host": "trunk.acme.example",
        "port": None,
        "transport": "udp",
        "auth_mode": "register",
        "username": "acme-bland",
        "has_password": True,
        "caller_id": "+14155550100",
        "headers": {"X-Account": "acme"},
        "bound_numbers": [
            {"phone_number": "+14155550100", "directions": ["outbound"]},
            {"phone_number": "2001", "directions": ["outbound"]},
        ],
        "bound_number_count": 2,
        "created_at": "T",
        "updated_at": "T",
    }
    assert stamped(created) == expected
    trunk_id = created["trunk_id"]
    got = await api.client.get(f"/v1/sip/trunks/{trunk_id}", headers=api.a())
    assert got.json() == {"data": created, "errors": None}
    listed = await api.client.get("/v1/sip/trunks", headers=api.a())
    assert listed.json() == {"data": {"trunks": [created]}, "errors": None}
    # The documented shapes (OpenAPI) hold what the handlers build.
    TrunkResponse.model_validate(got.json(), strict=True)
    TrunkListResponse.model_validate(listed.json(), strict=True)

    patched = await api.client.patch(
        f"/v1/sip/trunks/{trunk_id}",
        json={"host": "10.0.0.7", "port": 5080, "transport": "tcp", "direction": "both"},
        headers=api.a(),
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()["data"]
    assert body["sip_endpoint"] == "sip:10.0.0.7:5080;transport=tcp"
    assert body["bound_numbers"][0]["directions"] == ["inbound", "outbound"]
    assert body["username"] == "acme-bland" and body["has_password"] is True
    assert body["created_at"] == created["created_at"]

    deleted = await api.client.delete(f"/v1/sip/trunks/{trunk_id}", headers=api.a())
    assert deleted.json() == {
        "data": {"trunk_id": trunk_id, "unbound_number_count": 2},
        "errors": None,
    }
    TrunkDeletedResponse.model_validate(deleted.json(), strict=True)
    again = await api.client.get(f"/v1/sip/trunks/{trunk_id}", headers=api.a())
    assert again.status_code == 404
    assert again.json()["errors"][0]["error"] == "NOT_FOUND"


async def test_minimal_trunk_takes_defaults(sip_api: Api) -> None:
    created = await create(sip_api, name="PBX", sip_endpoint=None, host="PBX.Example.com")
    assert stamped(created) == {
        "trunk_id": "ID",
        "name": "PBX",
        "provider": "custom",
        "direction": "outbound",
        "sip_endpoint": "sip:pbx.example.com",
        "host": "pbx.example.com",
        "port": None,
        "transport": "udp",
        "auth_mode": "ip",
        "username": None,
        "has_password": False,
        "caller_id": None,
        "headers": {},
        "bound_numbers": [],
        "bound_number_count": 0,
        "created_at": "T",
        "updated_at": "T",
    }


@pytest.mark.parametrize(
    ("raw", "host", "port", "transport"),
    [
        ("pbx.example.com", "pbx.example.com", None, None),
        ("pbx.example.com:5080", "pbx.example.com", 5080, None),
        ("sip:PBX.example.com:5080;transport=TCP", "pbx.example.com", 5080, "tcp"),
        ("sips:pbx.example.com", "pbx.example.com", None, "tls"),
        ("tls://10.0.0.5:5061", "10.0.0.5", 5061, "tls"),
        ("sip:[2001:db8::1]:5070;transport=tcp", "2001:db8::1", 5070, "tcp"),
        ("2001:db8::1", "2001:db8::1", None, None),
        ("sip:127.0.0.1", "127.0.0.1", None, None),
    ],
)
def test_parse_endpoint(raw: str, host: str, port: int | None, transport: str | None) -> None:
    assert parse_endpoint(raw) == (host, port, transport)


@pytest.mark.parametrize(
    "raw",
    [
        "sip:user@pbx.example.com",
        "sip:pbx.example.com;lr",
        "sips:pbx.example.com;transport=udp",
        "sip:pbx.example.com;transport=sctp",
        "pbx.example.com:0",
        "pbx.example.com:70000",
        "pbx example.com",
        "http://pbx.example.com/",
        "",
    ],
)
def test_parse_endpoint_refuses(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_endpoint(raw)


def test_render_endpoint_round_trips() -> None:
    for raw in ("sip:pbx.example.com", "sip:[2001:db8::1]:5070;transport=tcp"):
        assert render_endpoint(*_filled(parse_endpoint(raw))) == raw


def _filled(parts: tuple[str, int | None, str | None]) -> tuple[str, int | None, str]:
    return parts[0], parts[1], parts[2] or "udp"


INVALID_TRUNKS: list[tuple[dict[str, Any], str]] = [
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"sip_endpoint": "sip:user@pbx.example.com"}, "sip_endpoint"),
    ({"sip_endpoint": None}, "sip_endpoint"),
    ({"host": "bad host!"}, "host"),
    ({"port": 0}, "port"),
    ({"port": 65536}, "port"),
    ({"transport": "sctp"}, "transport"),
    ({"direction": "sideways"}, "direction"),
    ({"auth_mode": "token"}, "auth_mode"),
    ({"auth_mode": "register"}, "register_auth"),
    ({"auth_mode": "register", "username": "u", "password": "short"}, "password"),
    (
        {"auth_mode": "register", "register_auth": {"username": "u", "password": "short"}},
        "register_auth",
    ),
    ({"register_auth": {"username": "u"}}, "register_auth.password"),
    (
        {"register_auth": {"username": "u", "password": PASSWORD}, "username": "v"},
        "register_auth",
    ),
    ({"password": PASSWORD}, "username"),
    ({"username": "has space", "password": PASSWORD}, "username"),
    ({"username": "u", "password": ""}, "password"),
    ({"username": "u", "password": "x" * 257}, "password"),
    ({"caller_id": "not a number"}, "caller_id"),
    ({"numbers": ["+1 bad"]}, "numbers"),
    ({"numbers": ["+14155550100"] * 101}, "numbers"),
    ({"headers": {"Bad Header": "x"}}, "headers"),
    ({"headers": {"X-Ok": "line\r\nInjected: 1"}}, "headers"),
    ({"sip_endpoint": "sip:a.example.com:5060", "port": 5070}, "port"),
    ({"sip_endpoint": "sips:a.example.com", "transport": "udp"}, "transport"),
    ({"sip_endpoint": "sip:a.example.com", "host": "b.example.com"}, "host"),
    ({"pasword": PASSWORD}, "pasword"),
]


async def test_validation_names_the_field(sip_api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for body, field in INVALID_TRUNKS:
        full = {"name": "T", "sip_endpoint": "sip:pbx.example.com", **body}
        response = await sip_api.client.post("/v1/sip/trunks", json=full, headers=sip_api.a())
        assert response.status_code == 400, (body, response.text)
        error = response.json()
        assert error["errors"][0]["field"].startswith(field), (body, error)
        assert field in error["message"], body
        assert PASSWORD not in response.text
    assert PASSWORD not in caplog.text
    listed = await sip_api.client.get("/v1/sip/trunks", headers=sip_api.a())
    assert listed.json()["data"]["trunks"] == []


async def test_password_never_returned_logged_or_stored_in_plaintext(
    sip_api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    api = sip_api
    caplog.set_level(logging.DEBUG)
    created = await create(api, username="bob", password=PASSWORD)
    trunk_id = created["trunk_id"]
    seen = [created]
    for method, path, body in (
        ("GET", "/v1/sip/trunks", None),
        ("GET", f"/v1/sip/trunks/{trunk_id}", None),
        ("PATCH", f"/v1/sip/trunks/{trunk_id}", {"password": PASSWORD + "2"}),
        ("PATCH", f"/v1/sip/trunks/{trunk_id}", {"auth_mode": "register"}),
        ("PATCH", f"/v1/sip/trunks/{trunk_id}", {"port": "nope", "password": PASSWORD}),
    ):
        response = await api.client.request(method, path, json=body, headers=api.a())
        seen.append(response.json())
    everything = repr(seen) + caplog.text
    assert PASSWORD not in everything and "Tr0mbone" not in everything
    async with api.services.db.session() as session:
        raw = (await session.execute(text("SELECT * FROM sip_trunks"))).one()._asdict()
        row = await trunks.get_trunk(session, await _org(api), trunk_id)
    assert "Tr0mbone" not in repr(raw)
    assert row is not None and row.password_sealed == raw["password_sealed"]
    dialed = trunks.target(api.services.box, row)
    assert dialed.password == PASSWORD + "2" and dialed.username == "bob"
    assert PASSWORD not in repr(dialed)

    cleared = await api.client.patch(
        f"/v1/sip/trunks/{trunk_id}", json={"auth_mode": "ip", "password": None}, headers=api.a()
    )
    assert cleared.json()["data"]["has_password"] is False


async def test_other_org_gets_404_and_never_sees_a_trunk(sip_api: Api) -> None:
    api = sip_api
    created = await create(api, username="bob", password=PASSWORD, numbers=["+14155550100"])
    trunk_id = created["trunk_id"]
    missing = await api.client.get("/v1/sip/trunks/trk_" + "0" * 32, headers=api.b())
    for method, body in (("GET", None), ("PATCH", {"name": "mine now"}), ("DELETE", None)):
        response = await api.client.request(
            method, f"/v1/sip/trunks/{trunk_id}", json=body, headers=api.b()
        )
        assert response.status_code == 404, method
        assert response.json() == missing.json()
    listed = await api.client.get("/v1/sip/trunks", headers=api.b())
    assert listed.json() == {"data": {"trunks": []}, "errors": None}
    # B may bind the same number to its own trunk: numbers are per org.
    theirs = await create(api, api.b(), numbers=["+14155550100"])
    mine = await api.client.get(f"/v1/sip/trunks/{trunk_id}", headers=api.a())
    assert mine.json()["data"] == created
    async with api.services.db.session() as session:
        routed = await trunks.outbound_trunk(session, await _org(api, api.key_b), "+14155550100")
    assert routed is not None and routed.id == theirs["trunk_id"]


async def test_numbers_bind_to_one_trunk_and_route_outbound_calls(sip_api: Api) -> None:
    api = sip_api
    first = await create(api, name="first", numbers=["+14155550100"])
    second = await create(api, name="second", direction="inbound")
    taken = await api.client.patch(
        f"/v1/sip/trunks/{second['trunk_id']}",
        json={"numbers": ["+14155550101", "4155550100"]},
        headers=api.a(),
    )
    assert taken.status_code == 409 and taken.json()["errors"][0]["field"] == "numbers"
    third = await create(api, name="third", numbers=["+14155550102"])
    added = await api.client.post(
        "/v1/outbound",
        json={"phone_number": "+14155550103", "trunk_id": third["trunk_id"]},
        headers=api.a(),
    )
    assert added.status_code == 200, added.text
    org = await _org(api)
    async with api.services.db.session() as session:
        by_number = await trunks.outbound_trunk(session, org, "+14155550102")
        by_caller_id = await trunks.outbound_trunk(session, org, "+14155550103")
        default = await trunks.outbound_trunk(session, org, "+14155550199")
        no_from = await trunks.outbound_trunk(session, org, None)
    assert by_number is not None and by_number.id == third["trunk_id"]
    assert by_caller_id is not None and by_caller_id.id == third["trunk_id"]
    # The oldest trunk that dials out; "second" only receives.
    assert default is not None and default.id == first["trunk_id"]
    assert no_from is not None and no_from.id == first["trunk_id"]

    deleted = await api.client.delete(f"/v1/sip/trunks/{third['trunk_id']}", headers=api.a())
    assert deleted.json()["data"]["unbound_number_count"] == 2
    outbound = (await api.client.get("/v1/outbound", headers=api.a())).json()["outbound_numbers"]
    assert [(n["phone_number"], n["trunk_id"]) for n in outbound] == [("+14155550103", None)]
    replaced = await api.client.patch(
        f"/v1/sip/trunks/{first['trunk_id']}", json={"numbers": []}, headers=api.a()
    )
    assert replaced.json()["data"]["bound_numbers"] == []


async def test_update_rules(sip_api: Api) -> None:
    api = sip_api
    created = await create(api, sip_endpoint="sip:a.example.com:5080;transport=tls")
    path = f"/v1/sip/trunks/{created['trunk_id']}"
    patched = await api.client.patch(path, json={"sip_endpoint": "b.example.com"}, headers=api.a())
    body = patched.json()["data"]
    # A new endpoint replaces the whole address; a flat field changes only itself.
    assert (body["host"], body["port"], body["transport"]) == ("b.example.com", None, "udp")
    patched = await api.client.patch(path, json={"port": 5090}, headers=api.a())
    assert patched.json()["data"]["sip_endpoint"] == "sip:b.example.com:5090"
    for change, field in (
        ({"auth_mode": "register"}, "register_auth"),
        ({"port": 0}, "port"),
        ({"password": PASSWORD}, "username"),
        ({"name": None, "extra": 1}, "extra"),
    ):
        refused = await api.client.patch(path, json=change, headers=api.a())
        assert refused.status_code == 400, change
        assert refused.json()["errors"][0]["field"] == field, change
    unchanged = await api.client.get(path, headers=api.a())
    assert unchanged.json()["data"] == patched.json()["data"]


async def _org(api: Api, key: str | None = None) -> str:
    return await api.services.auth.org_for(key or api.key_a)


@contextlib.asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """``app`` on a loopback port, served from this event loop (the store is bound to it)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_cli_trunks_add_list_remove(
    sqlite_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through a real HTTP server; the CLI only speaks HTTP, so one backend is enough."""
    from callwright.cli import trunks as trunks_cli

    settings = Settings(database_url=sqlite_database, data_dir=tmp_path)
    async with running_services(settings, migrate=False, start_dispatcher=False) as (svc, _):
        await wipe(svc)
        key = await new_org_key(svc, "cli")
        async with served(wire(build_test_app(svc))) as url:
            monkeypatch.setenv("CALLWRIGHT_API_URL", url)
            monkeypatch.setenv("CALLWRIGHT_API_KEY", key)
            monkeypatch.setattr(trunks_cli, "out", Console(width=250))
            runner = CliRunner()

            def cli(*args: str, stdin: str | None = None) -> Any:
                return asyncio.to_thread(runner.invoke, trunks_cli.app, list(args), input=stdin)

            added = await cli(
                "add",
                "pbx",
                "--endpoint",
                "sip:127.0.0.1:5080;transport=tcp",
                "--username",
                "bob",
                "--ask-password",
                "--register",
                "--caller-id",
                "+14155550100",
                "--number",
                "+14155550100",
                stdin=f"{PASSWORD}\n",
            )
            assert added.exit_code == 0, added.output
            trunk_id = re.search(r"trk_[0-9a-f]{32}", added.output)
            assert trunk_id is not None
            listed = await cli("list")
            assert listed.exit_code == 0, listed.output
            for shown in ("pbx", "sip:127.0.0.1:5080;transport=tcp", "register", "bob", "set"):
                assert shown in listed.output
            assert PASSWORD not in added.output + listed.output
            bad = await cli("add", "x", "--endpoint", "sip:u@h")
            assert bad.exit_code == 1 and "sip_endpoint" in bad.output
            removed = await cli("remove", "pbx")
            assert removed.exit_code == 0, removed.output
            assert trunk_id.group(0) in removed.output
            empty = await cli("list")
            assert "pbx" not in empty.output


async def test_trunks_secrets_migration_matches_the_models(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import create_async_engine

    from callwright.store.db import normalise_url
    from callwright.store.models import Base

    def diff(conn: Connection) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))

    engine = create_async_engine(normalise_url(database_url))
    try:
        async with engine.connect() as conn:
            found = await conn.run_sync(diff)
    finally:
        await engine.dispose()
    mine = [
        d
        for d in found
        if re.search(r"'(sip_trunks|secrets)'|Table\('(sip_trunks|secrets)'", repr(d))
    ]
    assert mine == []
