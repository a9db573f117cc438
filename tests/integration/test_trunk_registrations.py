"""The trunk registration reconciler over the real store (SQLite and PostgreSQL), with a
fake registration starter: which registrations start and stop as trunks come and go."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import pytest
from tests.integration.conftest import Api

from callwright.dispatch.trunk_registrations import Plan, TrunkRegistrations
from callwright.telephony.registration import Target

PASSWORD = "Tr0mbone-Sekret-8812"  # noqa: S105 - a test credential
NEW_PASSWORD = "Cl4rinet-Sekret-4471"  # noqa: S105 - a test credential


@dataclass
class FakeRegistration:
    target: Target
    events: list[tuple[str, Target]]
    closed: bool = False

    def start(self) -> None:
        self.events.append(("start", self.target))

    async def close(self) -> None:
        self.closed = True
        self.events.append(("close", self.target))

    def snapshot(self) -> dict[str, dict[str, int]]:
        return {str(self.target.aor): {"registered": 1, "registrations": 1, "failures": 0}}


@dataclass
class Starter:
    events: list[tuple[str, Target]] = field(default_factory=list)
    built: list[Target] = field(default_factory=list)

    def __call__(self, target: Target) -> FakeRegistration:
        self.built.append(target)
        return FakeRegistration(target, self.events)

    def take(self) -> list[tuple[str, str, str | None]]:
        """The events since the last call, as (what, user@host:port, contact user)."""
        taken = [
            (what, f"{t.user}@{t.host}:{t.port}/{t.transport}", t.contact_user)
            for what, t in self.events
        ]
        self.events.clear()
        return taken


async def create(api: Api, auth: dict[str, str], **body: Any) -> str:
    response = await api.client.post("/v1/sip/trunks", json={"name": "PBX", **body}, headers=auth)
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["trunk_id"])


async def patch(api: Api, trunk_id: str, **body: Any) -> None:
    response = await api.client.patch(f"/v1/sip/trunks/{trunk_id}", json=body, headers=api.a())
    assert response.status_code == 200, response.text


def register(user: str, password: str = PASSWORD) -> dict[str, Any]:
    return {"auth_mode": "register", "register_auth": {"username": user, "password": password}}


async def test_reconcile_starts_restarts_and_stops_exactly_what_changed(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    starter = Starter()
    reconciler = TrunkRegistrations(api.services.db, api.services.box, starter, interval=60)
    alice = await create(
        api,
        api.a(),
        sip_endpoint="sip:pbx.test",
        numbers=["+14155550100", "2001"],
        **register("alice"),
    )
    bob = await create(
        api, api.b(), sip_endpoint="sip:carrier.test:5070;transport=tcp", **register("bob")
    )
    await create(api, api.a(), sip_endpoint="sip:ip.test", name="By IP")
    tls = await create(api, api.a(), sip_endpoint="sips:secure.test", **register("carol"))

    first = await reconciler.sync()
    assert first.stop == () and sorted(first.start) == sorted([alice, bob])
    assert sorted(starter.take()) == [
        ("start", "alice@pbx.test:5060/udp", "+14155550100"),
        ("start", "bob@carrier.test:5070/tcp", "bob"),
    ]
    assert {t.user: t.password for t in starter.built} == {"alice": PASSWORD, "bob": PASSWORD}
    assert sorted(reconciler.trunk_ids()) == sorted([alice, bob])
    assert reconciler.snapshot() == {
        "sip:alice@pbx.test": {"registered": 1, "registrations": 1, "failures": 0},
        "sip:bob@carrier.test": {"registered": 1, "registrations": 1, "failures": 0},
    }
    skips = [r for r in caplog.records if r.getMessage() == "sip.trunk_register_skipped"]
    assert [getattr(r, "trunk_id", None) for r in skips] == [tls]

    # Nothing changed: nothing happens (and the TLS trunk is not logged again).
    assert await reconciler.sync() == Plan((), ())
    assert starter.take() == []
    # A change that is not the account's (name, caller id): nothing either.
    await patch(api, alice, name="Renamed", caller_id="+14155550199")
    assert await reconciler.sync() == Plan((), ())

    # A new password: the old registration closes (un-REGISTER) before the new starts.
    await patch(api, alice, password=NEW_PASSWORD)
    assert await reconciler.sync() == Plan(stop=(alice,), start=(alice,))
    assert starter.take() == [
        ("close", "alice@pbx.test:5060/udp", "+14155550100"),
        ("start", "alice@pbx.test:5060/udp", "+14155550100"),
    ]
    assert starter.built[-1].password == NEW_PASSWORD
    # Numbers reordered: the Contact (first number) changed.
    await patch(api, alice, numbers=["2001"])
    await reconciler.sync()
    assert starter.take() == [
        ("close", "alice@pbx.test:5060/udp", "+14155550100"),
        ("start", "alice@pbx.test:5060/udp", "2001"),
    ]
    # Host and port.
    await patch(api, alice, sip_endpoint="sip:pbx2.test:5080")
    await reconciler.sync()
    assert starter.take() == [
        ("close", "alice@pbx.test:5060/udp", "2001"),
        ("start", "alice@pbx2.test:5080/udp", "2001"),
    ]

    # Deleted in the other org: only bob's stops.
    response = await api.client.delete(f"/v1/sip/trunks/{bob}", headers=api.b())
    assert response.status_code == 200
    assert await reconciler.sync() == Plan(stop=(bob,), start=())
    assert starter.take() == [("close", "bob@carrier.test:5070/tcp", "bob")]
    # No longer register: stops too.
    await patch(api, alice, auth_mode="ip")
    assert await reconciler.sync() == Plan(stop=(alice,), start=())
    assert starter.take() == [("close", "alice@pbx2.test:5080/udp", "2001")]
    assert reconciler.snapshot() == {}

    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert PASSWORD not in logged and NEW_PASSWORD not in logged


async def test_running_reconciler_follows_the_store_and_closes_everything(api: Api) -> None:
    starter = Starter()
    reconciler = TrunkRegistrations(api.services.db, api.services.box, starter, interval=0.05)
    first = await create(api, api.a(), sip_endpoint="sip:pbx.test", **register("alice"))
    reconciler.start()
    try:
        await until(lambda: len(starter.events) == 1)
        second = await create(api, api.b(), sip_endpoint="sip:pbx.test", **register("bob"))
        await until(lambda: len(starter.events) == 2)
        assert sorted(reconciler.trunk_ids()) == sorted([first, second])
    finally:
        await reconciler.close()
    assert sorted(starter.take()) == [
        ("close", "alice@pbx.test:5060/udp", "alice"),
        ("close", "bob@pbx.test:5060/udp", "bob"),
        ("start", "alice@pbx.test:5060/udp", "alice"),
        ("start", "bob@pbx.test:5060/udp", "bob"),
    ]
    assert reconciler.trunk_ids() == []
    # Closed: a trunk created now is not picked up.
    await create(api, api.a(), sip_endpoint="sip:pbx.test", **register("carol"))
    await asyncio.sleep(0.2)
    assert starter.events == []


async def until(condition: Any, attempts: int = 200) -> None:
    for _ in range(attempts):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met")
