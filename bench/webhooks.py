"""Webhook delivery benchmark: outbox -> signed POST -> a local receiver.

Two figures per database (SQLite file, PostgreSQL):
- throughput: N post-call webhooks already in the outbox, drained by one delivery
  worker (its real loop, default concurrency) into a receiver on 127.0.0.1;
- delay: calls end at a steady rate while the worker runs with its default poll; the
  receiver measures arrival minus the call's ``end_at`` (p50, p95).

The receiver is uvicorn in its own process, so it does not share our event loop.

    flock /tmp/cw-bench.lock .venv/bin/python bench/webhooks.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from callwright import netguard
from callwright.clock import SystemClock
from callwright.config import Settings
from callwright.store import calls as store
from callwright.store import crypto, keys
from callwright.store.db import Database
from callwright.store.migrate import upgrade_async
from callwright.webhooks.retry import RetryPolicy
from callwright.webhooks.sender import Sender
from callwright.webhooks.worker import DeliveryWorker

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


# -- the receiver (run as a subprocess: bench/webhooks.py --receiver PORT) ---------------
def serve_receiver(port: int) -> None:
    import uvicorn

    seen: set[bytes] = set()
    delays: list[float] = []
    duplicates = 0

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal duplicates
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        arrived = time.time()
        out = b"ok"
        if scope["method"] == "GET" and scope["path"] == "/stats":
            out = json.dumps({"count": len(seen), "dups": duplicates, "delays": delays}).encode()
        elif scope["method"] == "GET" and scope["path"] == "/reset":
            seen.clear()
            delays.clear()
            duplicates = 0
        else:
            delivery = dict(scope["headers"])[b"x-webhook-id"]
            if delivery in seen:
                duplicates += 1
            seen.add(delivery)
            end_at = json.loads(body).get("end_at")
            if end_at:
                ended = datetime.fromisoformat(end_at.replace("Z", "+00:00")).timestamp()
                delays.append(arrived - ended)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": out})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


class Receiver:
    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.proc = subprocess.Popen([sys.executable, __file__, "--receiver", str(self.port)])
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(self.base + "/reset", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("receiver did not start")

    async def stats(self, client: httpx.AsyncClient) -> dict[str, Any]:
        result: dict[str, Any] = (await client.get(self.base + "/stats")).json()
        return result

    async def reset(self, client: httpx.AsyncClient) -> None:
        await client.get(self.base + "/reset")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# -- the benchmark ------------------------------------------------------------------------
async def make_calls(db: Database, org_id: str, url: str, n: int, *, end: bool) -> list[str]:
    """n calls with a webhook; ended (post-call row queued) or left in progress."""
    clock = SystemClock()
    ids: list[str] = []
    for start in range(0, n, 200):
        async with db.transaction() as session:
            for _ in range(min(200, n - start)):
                now = clock.now()
                new = store.NewCall(
                    org_id=org_id,
                    to_number="+14155550123",
                    from_number=None,
                    request={},
                    params={"webhook": url, "task": "bench", "max_duration": 30},
                    scheduled_at=now,
                )
                call = await store.create_call(session, new, now)
                await store.transition(session, call, "allocated", now, "allocated")
                await store.transition(session, call, "in-progress", now, "connected")
                if end:
                    await store.transition(session, call, "completed", now, "ended")
                ids.append(call.id)
    return ids


def worker_for(settings: Settings, db: Database, box: crypto.SecretBox) -> DeliveryWorker:
    sender = Sender(
        netguard.OutboundPolicy.parse(["127.0.0.1/32"]),
        timeout_seconds=settings.webhook_timeout_seconds,
        max_response_bytes=settings.webhook_response_max_bytes,
        max_connections=settings.webhook_concurrency,
    )
    return DeliveryWorker(
        db,
        SystemClock(),
        sender,
        box,
        worker_id=f"bench-{uuid.uuid4().hex[:6]}",
        policy=RetryPolicy(),
        concurrency=settings.webhook_concurrency,
        poll_seconds=settings.webhook_poll_seconds,
        lease_seconds=settings.webhook_lease_seconds,
    )


async def wait_count(receiver: Receiver, client: httpx.AsyncClient, n: int) -> dict[str, Any]:
    while True:
        stats = await receiver.stats(client)
        if stats["count"] >= n:
            return stats
        await asyncio.sleep(0.02)


async def run(url: str, label: str, args: argparse.Namespace, receiver: Receiver) -> str:
    settings = Settings(data_dir=Path(tempfile.mkdtemp()))
    await upgrade_async(url)
    db = Database(url)
    box = crypto.box_for(settings)
    hook = f"{receiver.base}/hook"
    async with httpx.AsyncClient(timeout=10) as client:
        async with db.transaction() as session:
            org = await keys.get_or_create_org(session, "bench", datetime.now(UTC))
            org_id = org.id

        # Throughput: drain a full outbox.
        await make_calls(db, org_id, hook, args.deliveries, end=True)
        await receiver.reset(client)
        worker = worker_for(settings, db, box)
        started = time.perf_counter()
        worker.start()
        stats = await wait_count(receiver, client, args.deliveries)
        elapsed = time.perf_counter() - started
        rate = args.deliveries / elapsed
        dups = stats["dups"]

        # Delay: calls end at a steady rate while the worker polls.
        live = await make_calls(db, org_id, hook, args.ended, end=False)
        await receiver.reset(client)
        clock = SystemClock()
        for call_id in live:
            async with db.transaction() as session:
                call = await store.lock_call(session, call_id)
                assert call is not None
                await store.transition(session, call, "completed", clock.now(), "ended")
            await asyncio.sleep(1 / args.rate)
        stats = await wait_count(receiver, client, args.ended)
        await worker.close()
    await db.close()
    delays = sorted(d * 1000 for d in stats["delays"])
    p50 = statistics.median(delays)
    p95 = delays[int(0.95 * (len(delays) - 1))]
    return (
        f"| {label} | {args.deliveries} | {rate:,.0f} /s | {dups + stats['dups']} "
        f"| {args.ended} at {args.rate:g}/s | {p50:.0f} ms | {p95:.0f} ms |"
    )


async def main(args: argparse.Namespace) -> None:
    receiver = Receiver()
    rows = []
    try:
        if args.backend in ("sqlite", "both"):
            path = Path(tempfile.mkdtemp()) / "bench.db"
            rows.append(
                await run(f"sqlite+aiosqlite:///{path}", "SQLite (file, WAL)", args, receiver)
            )
        if args.backend in ("postgresql", "both"):
            name = f"cw_bench_{uuid.uuid4().hex[:8]}"
            admin = await asyncpg.connect(args.pg)
            await admin.execute(f'CREATE DATABASE "{name}"')
            try:
                url = args.pg.rsplit("/", 1)[0] + f"/{name}"
                rows.append(await run(url, "PostgreSQL", args, receiver))
            finally:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await admin.close()
    finally:
        receiver.stop()
    print("| store | deliveries | throughput | duplicates | calls ending | delay p50 | delay p95 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(row)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--receiver", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--deliveries", type=int, default=3000)
    parser.add_argument("--ended", type=int, default=200, help="calls ending, for the delay")
    parser.add_argument("--rate", type=float, default=20.0, help="calls ending per second")
    parser.add_argument("--pg", default=PG_ADMIN)
    parsed = parser.parse_args()
    if parsed.receiver:
        serve_receiver(parsed.receiver)
    else:
        asyncio.run(main(parsed))
