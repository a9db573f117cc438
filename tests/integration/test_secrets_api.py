"""Secrets API (``/v1/secrets``, reference §4.4): shapes, validation, isolation, values
sealed at rest and never shown or logged, and ``resolve_secrets`` for ``{{SECRET.NAME}}``."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from rich.console import Console
from sqlalchemy import text
from tests.integration.conftest import Api, new_org_key, wipe
from tests.integration.test_trunks_api import ISO, served, wire, wired_api
from typer.testing import CliRunner

from callwright.api.secret_schema import (
    SecretDeletedResponse,
    SecretListResponse,
    SecretResponse,
)
from callwright.config import Settings
from callwright.server import build_test_app, running_services
from callwright.store import crypto, secrets

VALUE = "xoxb-4471-Glockenspiel-9921"  # noqa: S105 - a test secret
SHORT = "pin-42"  # noqa: S105


@pytest.fixture
async def sip_api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    async with wired_api(database_url, tmp_path) as api:
        yield api


async def create(api: Api, name: str = "slack_token", value: str = VALUE, **kw: Any) -> Any:
    return await api.client.post(
        "/v1/secrets", json={"name": name, "value": value}, headers=kw.get("auth") or api.a()
    )


def stamped(obj: dict[str, Any]) -> dict[str, Any]:
    assert re.fullmatch(r"sec_[0-9a-f]{32}", obj["secret_id"])
    assert ISO.match(obj["created_at"]) and ISO.match(obj["updated_at"])
    return {**obj, "secret_id": "ID", "created_at": "T", "updated_at": "T"}


async def box_of(api: Api) -> crypto.SecretBox:
    return api.services.box


async def org_of(api: Api, key: str | None = None) -> str:
    return await api.services.auth.org_for(key or api.key_a)


async def test_contract_create_list_get_update_delete(sip_api: Api) -> None:
    api = sip_api
    response = await create(api)
    assert response.status_code == 200, response.text
    created = response.json()["data"]
    assert stamped(created) == {
        "secret_id": "ID",
        "name": "slack_token",
        "type": "static",
        "reference": "{{SECRET.slack_token}}",
        "masked_value": "********9921",
        "created_at": "T",
        "updated_at": "T",
    }
    short = (await create(api, "pin", SHORT)).json()["data"]
    assert short["masked_value"] == "********"  # too short to show any of it
    listed = await api.client.get("/v1/secrets", headers=api.a())
    assert listed.json() == {"data": {"secrets": [short, created]}, "errors": None}
    # The documented shapes (OpenAPI) hold what the handlers build.
    SecretResponse.model_validate(response.json(), strict=True)
    SecretListResponse.model_validate(listed.json(), strict=True)
    for ref in (created["secret_id"], "slack_token", "SLACK_TOKEN"):
        got = await api.client.get(f"/v1/secrets/{ref}", headers=api.a())
        assert got.json() == {"data": created, "errors": None}

    renamed = await api.client.patch(
        f"/v1/secrets/{created['secret_id']}", json={"name": "Slack"}, headers=api.a()
    )
    assert renamed.status_code == 200, renamed.text
    body = renamed.json()["data"]
    assert body["reference"] == "{{SECRET.Slack}}" and body["masked_value"] == "********9921"
    rotated = await api.client.patch(
        "/v1/secrets/slack", json={"value": "new-value-0000-1111-2222"}, headers=api.a()
    )
    assert rotated.json()["data"]["masked_value"] == "********2222"
    async with api.services.db.session() as session:
        resolved = await secrets.resolve_secrets(
            session, await box_of(api), await org_of(api), ["SLACK"]
        )
    assert resolved == {"SLACK": "new-value-0000-1111-2222"}

    deleted = await api.client.delete("/v1/secrets/Slack", headers=api.a())
    assert deleted.json() == {
        "data": {"message": "Secret deleted.", "secret_id": created["secret_id"]},
        "errors": None,
    }
    SecretDeletedResponse.model_validate(deleted.json(), strict=True)
    gone = await api.client.get(f"/v1/secrets/{created['secret_id']}", headers=api.a())
    assert gone.status_code == 404 and gone.json()["errors"][0]["error"] == "NOT_FOUND"


async def test_value_never_returned_logged_or_stored_in_plaintext(
    sip_api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    api = sip_api
    caplog.set_level(logging.DEBUG)
    seen = [(await create(api)).json()]
    for method, path, body in (
        ("POST", "/v1/secrets", {"name": "slack_token", "value": VALUE}),  # 409
        ("POST", "/v1/secrets", {"name": "bad name", "value": VALUE}),  # 400
        ("POST", "/v1/secrets", {"name": "x", "value": VALUE, "extra": VALUE}),  # 400
        ("GET", "/v1/secrets", None),
        ("GET", "/v1/secrets/slack_token", None),
        ("PATCH", "/v1/secrets/slack_token", {"value": VALUE + "!"}),
        ("PATCH", "/v1/secrets/slack_token", {"value": 12}),
    ):
        response = await api.client.request(method, path, json=body, headers=api.a())
        assert response.status_code < 500
        seen.append(response.json())
    everything = repr(seen) + caplog.text
    assert "Glockenspiel" not in everything
    async with api.services.db.session() as session:
        raw = (await session.execute(text("SELECT * FROM secrets"))).one()._asdict()
    assert "Glockenspiel" not in repr(raw)
    box = await box_of(api)
    assert box.open(raw["sealed"]) == VALUE + "!"


async def test_other_org_gets_404_and_never_sees_a_secret(sip_api: Api) -> None:
    api = sip_api
    created = (await create(api)).json()["data"]
    missing = await api.client.get("/v1/secrets/sec_" + "0" * 32, headers=api.b())
    for ref in (created["secret_id"], "slack_token"):
        for method, body in (("GET", None), ("PATCH", {"value": "stolen"}), ("DELETE", None)):
            response = await api.client.request(
                method, f"/v1/secrets/{ref}", json=body, headers=api.b()
            )
            assert response.status_code == 404, (method, ref)
            assert response.json() == missing.json()
    listed = await api.client.get("/v1/secrets", headers=api.b())
    assert listed.json() == {"data": {"secrets": []}, "errors": None}
    # The same name in another org is another secret.
    theirs = await create(api, value="theirs-only", auth=api.b())
    assert theirs.status_code == 200
    box = await box_of(api)
    async with api.services.db.session() as session:
        a = await secrets.resolve_secrets(session, box, await org_of(api), ["slack_token"])
        b = await secrets.resolve_secrets(
            session, box, await org_of(api, api.key_b), ["slack_token"]
        )
    assert a == {"slack_token": VALUE} and b == {"slack_token": "theirs-only"}
    mine = await api.client.get(f"/v1/secrets/{created['secret_id']}", headers=api.a())
    assert mine.json()["data"] == created


INVALID_SECRETS: list[tuple[dict[str, Any], str]] = [
    ({"value": VALUE}, "name"),
    ({"name": "slack token", "value": VALUE}, "name"),
    ({"name": "9lives", "value": VALUE}, "name"),
    ({"name": "a.b", "value": VALUE}, "name"),
    ({"name": "x" * 65, "value": VALUE}, "name"),
    ({"name": "ok"}, "value"),
    ({"name": "ok", "value": ""}, "value"),
    ({"name": "ok", "value": "x" * 10_001}, "value"),
    ({"name": "ok", "value": 5}, "value"),
    ({"name": "ok", "value": VALUE, "type": "refresh"}, "type"),
    ({"name": "ok", "value": VALUE, "url": "https://example.com"}, "url"),
]


async def test_validation_names_the_field(sip_api: Api) -> None:
    for body, field in INVALID_SECRETS:
        response = await sip_api.client.post("/v1/secrets", json=body, headers=sip_api.a())
        assert response.status_code == 400, (body, response.text)
        assert response.json()["errors"][0]["field"] == field, body
        assert field in response.json()["message"], body
    listed = await sip_api.client.get("/v1/secrets", headers=sip_api.a())
    assert listed.json()["data"]["secrets"] == []


async def test_names_are_unique_per_org_ignoring_case(sip_api: Api) -> None:
    api = sip_api
    await create(api)
    clash = await create(api, "SLACK_TOKEN", "other")
    assert clash.status_code == 409 and clash.json()["errors"][0]["field"] == "name"
    other = (await create(api, "github", "gh-token")).json()["data"]
    rename = await api.client.patch(
        f"/v1/secrets/{other['secret_id']}", json={"name": "Slack_Token"}, headers=api.a()
    )
    assert rename.status_code == 409
    empty = await api.client.patch(f"/v1/secrets/{other['secret_id']}", json={}, headers=api.a())
    assert empty.status_code == 400 and empty.json()["errors"][0]["field"] == "body"
    still = await api.client.get("/v1/secrets/github", headers=api.a())
    assert still.json()["data"]["name"] == "github"


async def test_resolve_secrets(sip_api: Api) -> None:
    api = sip_api
    await create(api, "Api_Key", "k-123")
    await create(api, "token", VALUE)
    box = await box_of(api)
    org = await org_of(api)
    async with api.services.db.session() as session:
        found = await secrets.resolve_secrets(
            session, box, org, ["API_KEY", "api_key", "token", "missing"]
        )
        none = await secrets.resolve_secrets(session, box, org, [])
    assert found == {"API_KEY": "k-123", "api_key": "k-123", "token": VALUE}
    assert none == {}


async def test_values_survive_a_key_rotation(sip_api: Api) -> None:
    """A new key put first in CALLWRIGHT_SECRET_KEY still opens what the old one sealed."""
    api = sip_api
    await create(api)
    old = (api.services.settings.data_dir / crypto.KEY_FILE).read_text().strip()
    rotated = crypto.SecretBox([Fernet.generate_key(), old.encode()])
    async with api.services.db.session() as session:
        found = await secrets.resolve_secrets(session, rotated, await org_of(api), ["slack_token"])
    assert found == {"slack_token": VALUE}
    stranger = crypto.SecretBox([Fernet.generate_key()])
    async with api.services.db.session() as session:
        with pytest.raises(crypto.SecretKeyError):
            await secrets.resolve_secrets(session, stranger, await org_of(api), ["slack_token"])


def test_mask() -> None:
    assert secrets.mask("a" * 15) == "********"
    assert secrets.mask("a" * 12 + "wxyz") == "********wxyz"


async def test_cli_secrets_set_list_remove(
    sqlite_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through a real HTTP server; the CLI only speaks HTTP, so one backend is enough."""
    from callwright.cli import secrets as secrets_cli

    settings = Settings(database_url=sqlite_database, data_dir=tmp_path)
    async with running_services(settings, migrate=False, start_dispatcher=False) as (svc, _):
        await wipe(svc)
        key = await new_org_key(svc, "cli")
        async with served(wire(build_test_app(svc))) as url:
            monkeypatch.setenv("CALLWRIGHT_API_URL", url)
            monkeypatch.setenv("CALLWRIGHT_API_KEY", key)
            monkeypatch.setattr(secrets_cli, "out", Console(width=250))
            runner = CliRunner()

            def cli(*args: str, stdin: str | None = None) -> Any:
                return asyncio.to_thread(runner.invoke, secrets_cli.app, list(args), input=stdin)

            created = await cli("set", "crm_token", stdin=VALUE + "\n")
            assert created.exit_code == 0, created.output
            assert "created {{SECRET.crm_token}} (********9921)" in created.output
            updated = await cli("set", "CRM_TOKEN", stdin="another-long-value-5555")
            assert "updated {{SECRET.crm_token}} (********5555)" in updated.output
            listed = await cli("list")
            assert "crm_token" in listed.output and "********5555" in listed.output
            assert "Glockenspiel" not in created.output + updated.output + listed.output
            org = await svc.auth.org_for(key)
            async with svc.db.session() as session:
                found = await secrets.resolve_secrets(session, svc.box, org, ["crm_token"])
            assert found == {"crm_token": "another-long-value-5555"}
            removed = await cli("remove", "crm_token")
            assert removed.exit_code == 0 and "removed sec_" in removed.output
            assert "crm_token" not in (await cli("list")).output
