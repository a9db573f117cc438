"""Two real server processes on one PostgreSQL database share one queue.

Each process claims with ``FOR UPDATE SKIP LOCKED`` and holds its calls by a lease, so a
call runs on exactly one process; when a process is killed, the survivor reclaims its
calls once their leases run out. A watcher reads the ``calls`` table beside the servers
and checks the concurrency limits in every snapshot it takes.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from callwright.dispatch.queue import LOST_WORKER
from callwright.store.models import ACTIVE_STATUSES
from tests.e2e.serverproc import ServerProcess
from tests.e2e.test_dispatch_crash import (
    Api,
    all_ended,
    allocations,
    assert_ran_to_its_end,
    fresh_pg_database,
    query,
    sandbox_number,
    status_events,
    unrouted_number,
    wait_for,
)

pytestmark = pytest.mark.e2e

PER_PROCESS = 3
PER_ORG = 4
ACTIVE_SQL = "SELECT id, org_id, lease_owner FROM calls WHERE status IN ({})".format(
    ", ".join(f"'{s}'" for s in sorted(ACTIVE_STATUSES))
)


def server_env(db_url: str, worker: str, call_seconds: float, lease: float) -> dict[str, str]:
    return {
        "CALLWRIGHT_DATABASE_URL": db_url,
        "CALLWRIGHT_WORKER_ID": worker,
        "CALLWRIGHT_SANDBOX_NUMBERS": "true",
        "CALLWRIGHT_SANDBOX_CALL_SECONDS": str(call_seconds),
        "CALLWRIGHT_MAX_CONCURRENT_CALLS": str(PER_PROCESS),
        "CALLWRIGHT_MAX_CALLS_PER_ORG": str(PER_ORG),
        "CALLWRIGHT_DISPATCH_POLL_SECONDS": "0.05",
        "CALLWRIGHT_LEASE_SECONDS": str(lease),
    }


class Watcher:
    """Snapshots of the live calls, taken in a thread while the servers work.

    One SELECT is one consistent snapshot on PostgreSQL, so every limit must hold in
    each; sampling can miss a violation but never invents one.
    """

    def __init__(self, db_url: str) -> None:
        self.dsn = db_url.replace("+asyncpg", "")
        self.per_worker: Counter[str] = Counter()  # the most seen at once
        self.per_org: Counter[str] = Counter()
        self.owners: defaultdict[str, set[str]] = defaultdict(set)  # call -> lease owners
        self.snapshots = 0
        self.error: BaseException | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._main, name="watcher", daemon=True)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=10)
        if self.error is not None:
            raise self.error

    def _main(self) -> None:
        try:
            asyncio.run(self._watch())
        except BaseException as exc:  # handed to the test thread in __exit__
            self.error = exc

    async def _watch(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            while not self._done.is_set():
                rows = await conn.fetch(ACTIVE_SQL)
                self.snapshots += 1
                workers = Counter(r["lease_owner"] for r in rows)
                orgs = Counter(r["org_id"] for r in rows)
                for row in rows:
                    self.owners[row["id"]].add(row["lease_owner"])
                self.per_worker |= workers
                self.per_org |= orgs
                await asyncio.sleep(0.01)
        finally:
            await conn.close()


def new_org_key(server: ServerProcess, org: str) -> str:
    created = subprocess.run(
        [sys.executable, "-m", "callwright.cli.main", "keys", "create", "--org", org],
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return created.stdout.strip()


def test_two_servers_share_one_queue_within_their_limits(tmp_path: Path) -> None:
    with fresh_pg_database() as db_url:
        alpha = ServerProcess(tmp_path / "alpha", server_env(db_url, "alpha", 1.0, lease=5))
        beta = ServerProcess(tmp_path / "beta", server_env(db_url, "beta", 1.0, lease=5))
        try:
            alpha.start()  # migrates and creates org 'default' before beta starts
            beta.start()
            main_key = alpha.initial_key()
            side_key = new_org_key(alpha, "side")
            # Calls last 1 s, so neither process can drain the queue alone, even on a
            # loaded machine. The main org alone could fill both; its limit holds it to 4.
            apis = [Api(s.url, main_key) for s in (alpha, beta)]
            side = [Api(s.url, side_key) for s in (alpha, beta)]
            routed: dict[str, bool] = {}
            with Watcher(db_url) as watcher:
                for i in range(20):
                    to = unrouted_number(i) if i % 7 == 3 else sandbox_number(i)
                    routed[apis[i % 2].send(to)] = i % 7 != 3
                    if i % 5 == 0:
                        routed[side[i % 2].send(sandbox_number(i))] = True
                for api in (apis[0], side[0]):
                    mine = [c for c in api.statuses() if c in routed]
                    wait_for("every call to end", all_ended(api, mine))
            records = {
                **apis[0].records(list(apis[0].statuses())),
                **side[0].records(list(side[0].statuses())),
            }
        finally:
            alpha.stop()
            beta.stop()

    assert sorted(records) == sorted(routed)
    assert watcher.snapshots > 0
    assert max(watcher.per_worker.values()) <= PER_PROCESS, watcher.per_worker
    assert set(watcher.per_worker) <= {"alpha", "beta"}, watcher.per_worker
    assert max(watcher.per_org.values()) <= PER_ORG, watcher.per_org
    ran_on: Counter[str] = Counter()
    deferred = 0
    for call_id, (details, events) in records.items():
        statuses = status_events(details, events)
        [worker] = allocations(statuses)  # claimed once, by one process...
        assert watcher.owners[call_id] <= {worker}, (call_id, watcher.owners[call_id])
        assert_ran_to_its_end(details, routed[call_id])  # ...and run there to its end
        ran_on[worker] += 1
        deferred += any(e["type"] == "queue.deferred" for e in events)
    assert set(ran_on) == {"alpha", "beta"}, ran_on  # both processes took calls
    assert deferred > 0  # the org limit held calls back although a process had room


def test_survivor_reclaims_a_killed_servers_calls_once_its_lease_runs_out(
    tmp_path: Path,
) -> None:
    with fresh_pg_database() as db_url:
        # beta's calls would last a minute, so it is killed holding them; alpha's are short.
        alpha = ServerProcess(tmp_path / "alpha", server_env(db_url, "alpha", 0.2, lease=3))
        beta = ServerProcess(tmp_path / "beta", server_env(db_url, "beta", 60, lease=3))
        try:
            beta.start()  # alone at first, so it surely fills its slots
            key = beta.initial_key()
            to_beta = Api(beta.url, key)
            ids = [to_beta.send(sandbox_number(i)) for i in range(12)]

            def beta_full() -> bool:
                rows = query(db_url, "SELECT status, lease_owner FROM calls")
                held = [r for r in rows if r["lease_owner"] == "beta"]
                return len(held) == PER_PROCESS and all(r["status"] == "in-progress" for r in held)

            wait_for("beta to hold a full set of live calls", beta_full)
            alpha.start()
            to_alpha = Api(alpha.url, key)
            wait_for(
                "alpha to take a call from the shared queue",
                lambda: "completed" in to_alpha.statuses().values(),
            )
            beta.kill()
            held = query(
                db_url, "SELECT id, lease_expires_at FROM calls WHERE lease_owner = 'beta'"
            )
            ids += [to_alpha.send(sandbox_number(20 + i)) for i in range(3)]
            wait_for("every call to end", all_ended(to_alpha, ids))
            records = to_alpha.records(ids)
        finally:
            beta.kill()
            alpha.stop()

    assert len(held) == PER_PROCESS
    lost: dict[str, Any] = {r["id"]: r["lease_expires_at"] for r in held}
    for call_id, (details, events) in records.items():
        statuses = status_events(details, events)
        workers = allocations(statuses)
        if call_id in lost:
            # Dialed on beta: failed by alpha once beta's lease had run out; never redialed.
            assert workers == ["beta"], workers
            assert details["status"] == "failed", details
            assert details["error_message"] == LOST_WORKER, details
            end = statuses[-1]
            assert end["data"]["worker"] == "beta", end
            assert datetime.fromisoformat(end["timestamp"]) > lost[call_id]
        else:
            assert workers == ["alpha"], workers
            assert_ran_to_its_end(details, routed=True)
    assert any(allocations(status_events(*r)) == ["alpha"] for r in records.values())
