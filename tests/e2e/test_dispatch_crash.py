"""kill -9 of a real server with calls running and queued: a restart on the same database
ends every call exactly once, with a complete, ordered event log. SQLite and PostgreSQL.

The first server runs sandbox calls that would last a minute, so the kill always lands
mid-call; the restarted server gets short calls so the test ends quickly. The helpers
here are shared with ``test_two_servers.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest

from callwright.dispatch.dispatcher import no_route_message
from callwright.dispatch.queue import LOST_WORKER
from callwright.store.calls import ALLOWED
from callwright.store.models import TERMINAL_STATUSES
from tests.conftest import need_peer, port_open
from tests.e2e.serverproc import ServerProcess

pytestmark = pytest.mark.e2e
T = TypeVar("T")

PG_ADMIN = os.environ.get("CALLWRIGHT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
LIVE = ("ringing", "in-progress")


# -- helpers shared with test_two_servers.py ------------------------------------------------
def sandbox_number(i: int) -> str:
    """A fictional number the sandbox transport serves."""
    return f"+141555501{i % 100:02d}"


def unrouted_number(i: int) -> str:
    """A London drama number (Ofcom's 020 7946 0xxx): no transport serves it."""
    return f"+4420794601{i % 100:02d}"


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


@contextlib.contextmanager
def fresh_pg_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test (the server migrates it)."""
    need_peer("postgresql", port_open("127.0.0.1", 5432), "start it with pg_ctlcluster")
    name = f"cw_e2e_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0].replace("postgresql:", "postgresql+asyncpg:") + f"/{name}"
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def query(db_url: str, sql: str) -> list[dict[str, Any]]:
    """Rows straight from the store, read beside (or after) the servers."""
    if db_url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(db_url.split("///", 1)[1])) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(row) for row in conn.execute(sql)]
    return asyncio.run(_pg_query(db_url, sql))


async def _pg_query(db_url: str, sql: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(db_url.replace("+asyncpg", ""))
    try:
        return [dict(row) for row in await conn.fetch(sql)]
    finally:
        await conn.close()


@dataclass
class Api:
    """One org's view of a server, through the real HTTP API."""

    base_url: str
    key: str

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"authorization": self.key}, timeout=10)

    def send(self, to: str) -> str:
        with self._client() as client:
            sent = client.post("/v1/calls", json={"phone_number": to, "task": "Say hello."})
        assert sent.status_code == 200, sent.text
        call_id: str = sent.json()["call_id"]
        return call_id

    def statuses(self) -> dict[str, str]:
        with self._client() as client:
            listed = client.get("/v1/calls", params={"limit": 1000})
        assert listed.status_code == 200, listed.text
        return {c["call_id"]: c["status"] for c in listed.json()["calls"]}

    def stop(self, call_id: str) -> None:
        with self._client() as client:
            stopped = client.post(f"/v1/calls/{call_id}/stop")
        assert stopped.json()["message"] == "Call ended successfully.", stopped.text

    def records(self, call_ids: list[str]) -> dict[str, tuple[dict[str, Any], list[Any]]]:
        """Details and event log of each call."""
        out = {}
        with self._client() as client:
            for call_id in call_ids:
                details = client.get(f"/v1/calls/{call_id}")
                events = client.get(f"/v1/calls/{call_id}/events")
                assert details.status_code == events.status_code == 200, details.text
                out[call_id] = (details.json(), events.json()["data"])
        return out


def all_ended(api: Api, call_ids: list[str]) -> Callable[[], bool]:
    def probe() -> bool:
        statuses = api.statuses()
        return all(statuses[c] in TERMINAL_STATUSES for c in call_ids)

    return probe


def status_events(details: dict[str, Any], events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Check one call's log is complete and legal; return its status events in order.

    Complete: seq runs 1..n with no gap or repeat, timestamps never go back, it opens
    with the acceptance and closes with the one terminal status, which matches the call.
    Legal: each status event names the status before it, and the lifecycle allows the step.
    Never dialed twice: at most one ``ringing`` and one ``in-progress``.
    """
    call_id = details["call_id"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), call_id
    assert all(e["call_id"] == call_id for e in events)
    stamps = [datetime.fromisoformat(e["timestamp"]) for e in events]
    assert stamps == sorted(stamps), f"{call_id}: timestamps out of seq order: {stamps}"
    assert events[0]["type"] == "queue.accepted", call_id
    statuses = [e for e in events if e["type"].startswith("status.")]
    current = "queued"
    for event in statuses:
        to = event["type"].removeprefix("status.")
        assert event["data"]["from"] == current and event["data"]["to"] == to, event
        assert to in ALLOWED.get(current, frozenset()), f"{call_id}: {current} -> {to}"
        current = to
    path = [e["type"].removeprefix("status.") for e in statuses]
    assert sum(s in TERMINAL_STATUSES for s in path) == 1, f"{call_id}: {path}"
    assert events[-1] is statuses[-1], f"{call_id}: events after the end: {events[-1]}"
    assert details["status"] == current and details["completed"], details
    assert path.count("ringing") <= 1 and path.count("in-progress") <= 1, f"{call_id}: {path}"
    return statuses


def allocations(statuses: list[dict[str, Any]]) -> list[str]:
    """The workers that claimed the call, in order."""
    return [e["data"]["worker"] for e in statuses if e["type"] == "status.allocated"]


def assert_ran_to_its_end(details: dict[str, Any], routed: bool) -> None:
    """The end a call reaches when nothing interrupts it."""
    if routed:
        assert details["status"] == "completed", details
        assert details["call_ended_by"] == "USER" and details["error_message"] == "", details
    else:
        assert details["status"] == "failed", details
        assert details["error_message"] == no_route_message(details["to"]), details
        assert details["queue_status"] == "queue_error", details


# -- the crash test ---------------------------------------------------------------------------
SLOTS = 6
N_CALLS = 30


def server_env(db_url: str | None, worker: str, call_seconds: float) -> dict[str, str]:
    env = {
        "CALLWRIGHT_WORKER_ID": worker,
        "CALLWRIGHT_SANDBOX_NUMBERS": "true",
        "CALLWRIGHT_SANDBOX_CALL_SECONDS": str(call_seconds),
        "CALLWRIGHT_MAX_CONCURRENT_CALLS": str(SLOTS),
        "CALLWRIGHT_DISPATCH_POLL_SECONDS": "0.05",
        "CALLWRIGHT_LEASE_SECONDS": "3",
    }
    if db_url is not None:
        env["CALLWRIGHT_DATABASE_URL"] = db_url
    return env


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'data' / 'callwright.db'}"
        return
    with fresh_pg_database() as url:
        yield url


def test_kill_9_mid_call_then_restart_ends_every_call_exactly_once(
    db_url: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    url = None if db_url.startswith("sqlite") else db_url  # SQLite: the data dir default
    first = ServerProcess(data, server_env(url, "first", call_seconds=60))
    second = ServerProcess(data, server_env(url, "second", call_seconds=0.2))
    try:
        first.start()
        api = Api(first.url, first.initial_key())
        # Every fifth call has no route: it fails at once, before or after the kill.
        routed = {}
        for i in range(N_CALLS):
            to = unrouted_number(i) if i % 5 == 2 else sandbox_number(i)
            routed[api.send(to)] = i % 5 != 2
        ids = list(routed)

        def talking() -> list[str]:
            return [c for c, s in api.statuses().items() if s == "in-progress"]

        # A call that ended before the kill must come through it untouched.
        stopped = wait_for("a call in progress", talking)[0]
        api.stop(stopped)
        wait_for("the stopped call to end", lambda: api.statuses()[stopped] == "completed")
        wait_for("every slot busy", lambda: len(talking()) == SLOTS)
        first.kill()

        at_kill = {r["id"]: r for r in query(db_url, "SELECT id, status, event_seq FROM calls")}
        states = [r["status"] for r in at_kill.values()]
        assert states.count("in-progress") == SLOTS, states
        assert states.count("queued") > 0 and states.count("failed") > 0, states

        second.start()
        api = Api(second.url, api.key)
        wait_for("every call to end after the restart", all_ended(api, ids))
        records = api.records(ids)
        listed = api.statuses()
    finally:
        first.kill()
        second.stop()

    assert sorted(listed) == sorted(ids)  # none lost, none invented
    for call_id, (details, events) in records.items():
        statuses = status_events(details, events)
        before = at_kill[call_id]
        if before["status"] in TERMINAL_STATUSES:
            assert len(events) == before["event_seq"], f"{call_id} changed after its end"
            assert allocations(statuses) == ["first"]
            if call_id != stopped:
                assert_ran_to_its_end(details, routed[call_id])
        elif before["status"] in LIVE:
            # Dialed by the dead process: failed once its lease ran out, never redialed.
            assert details["status"] == "failed", details
            assert details["error_message"] == LOST_WORKER, details
            assert statuses[-1]["data"]["worker"] == "first", statuses[-1]
            assert allocations(statuses) == ["first"]
        else:
            assert before["status"] == "queued", before
            assert allocations(statuses) == ["second"], statuses
            assert_ran_to_its_end(details, routed[call_id])
    assert records[stopped][0]["call_ended_by"] == "ASSISTANT"
