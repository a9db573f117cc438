"""The pure parts of the trunk registration reconciler: ``plan`` and ``target_for``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from callwright.dispatch.trunk_registrations import Plan, Skipped, plan, target_for
from callwright.store.trunk_models import SipTrunk
from callwright.telephony.registration import Target

A = Target("alice", "pbx.test", 5060, "udp", "secret-one", contact_user="+15550100")
B = Target("bob", "pbx.test", 5062, "tcp", "secret-two", contact_user="bob")


def trunk(**fields: object) -> SipTrunk:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    values: dict[str, object] = {
        "id": "trk_1",
        "org_id": "org",
        "name": "PBX",
        "provider": "custom",
        "direction": "both",
        "host": "pbx.test",
        "port": None,
        "transport": "udp",
        "auth_mode": "register",
        "username": "alice",
        "password_sealed": "sealed",
        "caller_id": None,
        "headers": {},
        "numbers": [],
        "created_at": now,
        "updated_at": now,
    }
    values.update(fields)
    return SipTrunk(**values)


def test_plan_starts_new_stops_gone_and_restarts_changed() -> None:
    assert plan({}, {"t1": A}) == Plan(stop=(), start=("t1",))
    assert plan({"t1": A}, {"t1": A}) == Plan(stop=(), start=())
    assert plan({"t1": A}, {}) == Plan(stop=("t1",), start=())
    assert plan({"t1": A, "t2": B}, {"t1": A, "t3": B}) == Plan(stop=("t2",), start=("t3",))


@pytest.mark.parametrize(
    "changed",
    [
        {"host": "other.test"},
        {"port": 5070},
        {"transport": "tcp"},
        {"user": "carol"},
        {"password": "secret-new"},
        {"contact_user": "2001"},
    ],
)
def test_plan_restarts_a_trunk_whose_account_changed(changed: dict[str, object]) -> None:
    after = Target(**{**_fields(A), **changed})  # type: ignore[arg-type]
    assert plan({"t1": A}, {"t1": after}) == Plan(stop=("t1",), start=("t1",))


def _fields(target: Target) -> dict[str, object]:
    return {name: getattr(target, name) for name in Target.__slots__}


def test_target_from_a_trunk_contact_is_the_first_number() -> None:
    target = target_for(trunk(numbers=["+15550100", "2001"]), "secret-one")
    assert target == A
    assert "secret-one" not in repr(target)


def test_target_without_numbers_contacts_as_the_username_and_keeps_the_port() -> None:
    target = target_for(trunk(username="bob", port=5062, transport="tcp"), "secret-two")
    assert target == B


def test_tls_and_missing_credentials_are_skipped() -> None:
    with pytest.raises(Skipped, match="transport tls"):
        target_for(trunk(transport="tls"), "secret-one")
    with pytest.raises(Skipped, match="no username or password"):
        target_for(trunk(), None)
    with pytest.raises(Skipped, match="no username or password"):
        target_for(trunk(username=None), "secret-one")
