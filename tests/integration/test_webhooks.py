"""Webhooks over real databases and a real receiver on 127.0.0.1: the post-call payload,
signatures, live events, retries with a virtual clock, dead letters, resends, tenancy."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.integration.conftest import Api
from tests.integration.webhook_receiver import FakeClock, Receiver

from callwright import netguard
from callwright.store import crypto
from callwright.webhooks import signing
from callwright.webhooks.retry import RetryPolicy
from callwright.webhooks.sender import Sender
from callwright.webhooks.worker import DeliveryWorker

SANDBOX = "+14155550123"
WorkerFactory = Callable[..., DeliveryWorker]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC) + timedelta(hours=1))


@pytest.fixture
async def make_worker(api: Api, clock: FakeClock) -> AsyncIterator[WorkerFactory]:
    made: list[DeliveryWorker] = []
    box = crypto.box_for(api.services.settings)

    def factory(
        allow: tuple[str, ...] = ("127.0.0.1/32",), attempts: int = 8, timeout: float = 0.5
    ) -> DeliveryWorker:
        sender = Sender(
            netguard.OutboundPolicy.parse(allow), timeout_seconds=timeout, max_response_bytes=4096
        )
        worker = DeliveryWorker(
            api.services.db,
            clock,
            sender,
            box,
            worker_id="test-worker",
            policy=RetryPolicy(attempts, base_seconds=1.0, max_delay_seconds=10.0),
            concurrency=16,
            poll_seconds=0.05,
            lease_seconds=30,
            draw=lambda: 0.5,
        )
        made.append(worker)
        return worker

    yield factory
    for worker in made:
        await worker.close()


async def send(api: Api, headers: dict[str, str] | None = None, **fields: Any) -> str:
    body = {"phone_number": SANDBOX, "task": "Confirm the appointment.", **fields}
    response = await api.client.post("/v1/calls", json=body, headers=headers or api.a())
    assert response.status_code == 200, response.text
    return str(response.json()["call_id"])


async def run_calls(api: Api) -> None:
    """Dispatch every queued call through the sandbox transport and wait for its end."""
    dispatcher = api.services.dispatcher
    while True:
        claimed = await dispatcher.dispatch_once()
        tasks = [task for task, _ in dispatcher.running.values()]
        await asyncio.gather(*tasks)
        if not claimed and not tasks:
            return


async def drain(worker: DeliveryWorker, clock: FakeClock) -> int:
    """Run the worker until nothing is due any more, letting virtual time pass."""
    total = 0
    while sent := await worker.run_once():
        total += sent
        clock.advance(60)
    return total


async def deliveries(api: Api, call_id: str) -> list[dict[str, Any]]:
    response = await api.client.get(f"/v1/calls/{call_id}/webhooks", headers=api.a())
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


async def secret_of(api: Api, headers: dict[str, str]) -> str:
    response = await api.client.get("/v1/webhooks/signing_secret", headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["secret"])


async def test_receiver_gets_the_call_object_signed_with_the_org_secret(
    api: Api, receiver: Receiver, make_worker: WorkerFactory, clock: FakeClock
) -> None:
    call_id = await send(api, webhook=receiver.url(), metadata={"crm": 7})
    await run_calls(api)
    assert await drain(make_worker(), clock) == 1

    [got] = receiver.delivered()
    details = (await api.client.get(f"/v1/calls/{call_id}", headers=api.a())).json()
    payload = json.loads(got.body)
    assert payload == details
    assert payload["status"] == "completed" and payload["metadata"] == {"crm": 7}
    assert got.headers["content-type"] == "application/json"
    assert int(got.headers[signing.TIMESTAMP_HEADER.lower()]) > 0

    secret = await secret_of(api, api.a())
    assert secret.startswith("whsec_")
    assert signing.verify(got.body, secret, got.signature)
    assert not signing.verify(got.body, await secret_of(api, api.b()), got.signature)
    assert not signing.verify(got.body, secret + "x", got.signature)
    assert not signing.verify(got.body + b" ", secret, got.signature)
    assert not signing.verify(got.body.replace(b"completed", b"failed"), secret, got.signature)

    [row] = await deliveries(api, call_id)
    assert row["delivery_id"] == got.delivery_id and row["status"] == "delivered"
    assert row["kind"] == "post_call" and row["payload"] == payload
    postcall = (await api.client.get(f"/v1/postcall/webhooks/{call_id}", headers=api.a())).json()
    assert postcall["errors"] is None
    data = postcall["data"]
    assert data["payload"] == payload and data["url"] == receiver.url()
    assert data["call_id"] == call_id and data["user_id"] == await api.services.auth.org_for(
        api.key_a
    )
    [sent] = data["metadata"]
    assert sent["response_code"] == 200 and sent["send_type"] == "spawn"
    assert sent["response_time"].endswith("ms")


async def test_other_orgs_see_nothing(api: Api, receiver: Receiver) -> None:
    call_id = await send(api, webhook=receiver.url())
    await run_calls(api)
    for method, path, body in (
        ("GET", f"/v1/postcall/webhooks/{call_id}", None),
        ("GET", f"/v1/calls/{call_id}/webhooks", None),
        ("POST", "/v1/postcall/webhooks/resend", {"call_ids": [call_id]}),
    ):
        response = await api.client.request(method, path, json=body, headers=api.b())
        assert response.status_code == 404, (path, response.text)
    assert (await deliveries(api, call_id))[0]["status"] == "pending"


async def test_down_then_500_then_timeout_then_up_delivers_each_once_in_order(
    api: Api, make_worker: WorkerFactory, clock: FakeClock
) -> None:
    receiver = Receiver()  # not listening yet: connection refused
    events = ["queue", "call"]
    call_ids = [await send(api, webhook=receiver.url(), webhook_events=events) for _ in range(3)]
    await run_calls(api)
    worker = make_worker(timeout=0.3)
    try:
        assert await worker.run_once() == 3  # one head per call, never two of one call
        clock.advance(60)
        receiver.mode = "error"
        receiver.start()
        assert await worker.run_once() == 3
        clock.advance(60)
        receiver.mode = "hang"
        assert await worker.run_once() == 3
        clock.advance(60)
        receiver.mode = "ok"
        receiver.release()
        await drain(worker, clock)
    finally:
        receiver.stop()

    accepted = [r.delivery_id for r in receiver.accepted()]
    assert len(accepted) == len(set(accepted)), "a delivery id was processed twice"
    for call_id in call_ids:
        rows = await deliveries(api, call_id)
        assert all(r["status"] == "delivered" for r in rows)
        assert [r["kind"] for r in rows][-1] == "post_call"
        assert {r["category"] for r in rows[:-1]} == {"queue", "call"}
        mine = [
            r.delivery_id for r in receiver.delivered() if json.loads(r.body)["call_id"] == call_id
        ]
        assert mine == [r["delivery_id"] for r in rows], "deliveries of a call out of order"
        first, *rest = rows
        log = first["attempt_log"]
        assert [a["outcome"] for a in log] == ["retry", "retry", "retry", "delivered"]
        assert log[0]["status_code"] is None and log[0]["error"].startswith("connection failed")
        assert log[1]["status_code"] == 500 and log[1]["error"] == "HTTP 500"
        assert log[2]["status_code"] is None and log[2]["error"].startswith("timed out")
        assert log[3]["status_code"] == 200 and log[3]["error"] is None
        assert all(len(r["attempt_log"]) == 1 for r in rest)
        live = json.loads(receiver_body(receiver, first["delivery_id"]))
        assert set(live) == {"message", "call_id", "category", "log_level"}
        assert live["message"].startswith("Call enqueued") and live["category"] == "queue"


def receiver_body(receiver: Receiver, delivery_id: str) -> bytes:
    return next(r.body for r in receiver.delivered() if r.delivery_id == delivery_id)


async def test_dead_letter_after_last_attempt_then_resend(
    api: Api, receiver: Receiver, make_worker: WorkerFactory, clock: FakeClock
) -> None:
    call_id = await send(api, webhook=receiver.url())
    streaming = await send(api, webhook=receiver.url(), webhook_events=["call"])
    await run_calls(api)
    receiver.mode = "error"
    await drain(make_worker(attempts=3), clock)
    [row] = await deliveries(api, call_id)
    assert row["status"] == "dead"
    assert [a["outcome"] for a in row["attempt_log"]] == ["retry", "retry", "dead"]
    events = (await api.client.get(f"/v1/calls/{call_id}/events", headers=api.a())).json()["data"]
    [dead] = [e for e in events if e["type"] == "delivery.dead"]
    assert "127.0.0.1" in dead["message"] and "3 attempts" in dead["message"]
    assert dead["category"] == "error"
    # Behind a dead head, the rest of the call's queue is dead-lettered with it.
    head, *behind = await deliveries(api, streaming)
    assert head["status"] == "dead" and len(head["attempt_log"]) == 3
    assert behind and all(r["status"] == "dead" and not r["attempt_log"] for r in behind)
    assert all(r["last_error"] == f"dead-lettered with {head['delivery_id']}" for r in behind)

    receiver.mode = "ok"
    response = await api.client.post(
        "/v1/postcall/webhooks/resend", json={"call_ids": [call_id, call_id]}, headers=api.a()
    )
    assert response.status_code == 200, response.text
    [queued] = response.json()["data"]
    assert queued["call_id"] == call_id and queued["url"] == receiver.url()
    assert await drain(make_worker(), clock) == 1
    [got] = receiver.delivered()
    assert json.loads(got.body)["call_id"] == call_id
    data = (await api.client.get(f"/v1/postcall/webhooks/{call_id}", headers=api.a())).json()
    sends = [(m["send_type"], m["response_code"]) for m in data["data"]["metadata"]]
    assert sends == [("spawn", 500), ("spawn", 500), ("spawn", 500), ("resend", 200)]
    assert got.delivery_id != row["delivery_id"]


async def test_resend_refuses_unknown_running_and_hookless_calls(api: Api) -> None:
    ended = await send(api, webhook="https://example.com/hook")
    hookless = await send(api)
    await run_calls(api)
    queued = await send(api, webhook="https://example.com/hook")  # not run: still queued
    cases = [
        ([queued], 400, "INVALID_CALL_STATUS"),
        ([hookless], 400, "invalid_parameter"),
        (["00000000-0000-0000-0000-000000000000"], 404, "CALL_NOT_FOUND"),
        ([ended, queued], 400, "INVALID_CALL_STATUS"),
    ]
    for call_ids, status, code in cases:
        response = await api.client.post(
            "/v1/postcall/webhooks/resend", json={"call_ids": call_ids}, headers=api.a()
        )
        assert response.status_code == status, response.text
        assert response.json()["errors"][0]["error"] == code
    # All or nothing: the valid id in the last request queued nothing.
    assert [r["send_type"] for r in await deliveries(api, ended)] == ["spawn"]
    bad = await api.client.post("/v1/postcall/webhooks/resend", json={}, headers=api.a())
    assert bad.status_code == 400


async def test_rotation_applies_to_the_next_attempt(
    api: Api, receiver: Receiver, make_worker: WorkerFactory, clock: FakeClock
) -> None:
    await send(api, webhook=receiver.url())
    await run_calls(api)
    old = await secret_of(api, api.a())
    assert await secret_of(api, api.a()) == old  # stable until rotated
    rotated = await api.client.post("/v1/webhooks/signing_secret/rotate", headers=api.a())
    assert rotated.status_code == 200
    new = rotated.json()["data"]["secret"]
    assert new != old and rotated.json()["data"]["rotated_at"] is not None
    await drain(make_worker(), clock)
    [got] = receiver.delivered()
    assert signing.verify(got.body, new, got.signature)
    assert not signing.verify(got.body, old, got.signature)


async def test_secret_is_encrypted_at_rest(api: Api) -> None:
    secret = await secret_of(api, api.a())
    from sqlalchemy import select

    from callwright.store.models import SigningSecret

    async with api.services.db.session() as session:
        sealed = list((await session.execute(select(SigningSecret.sealed))).scalars())
    assert sealed and all(secret not in s for s in sealed)
    key_file = api.services.settings.data_dir / crypto.KEY_FILE
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"


async def test_no_webhook_no_rows_and_unsubscribed_events_not_streamed(
    api: Api, receiver: Receiver, make_worker: WorkerFactory, clock: FakeClock
) -> None:
    quiet = await send(api)
    post_only = await send(api, webhook=receiver.url())
    await run_calls(api)
    assert await deliveries(api, quiet) == []
    assert [r["kind"] for r in await deliveries(api, post_only)] == ["post_call"]
    missing = await api.client.get(f"/v1/postcall/webhooks/{quiet}", headers=api.a())
    assert missing.status_code == 404
    await drain(make_worker(), clock)
    assert len(receiver.delivered()) == 1


async def test_two_workers_share_the_outbox_without_duplicates_or_reordering(
    api: Api, receiver: Receiver, make_worker: WorkerFactory, clock: FakeClock
) -> None:
    call_ids = [
        await send(api, webhook=receiver.url(), webhook_events=["queue", "call"]) for _ in range(6)
    ]
    await run_calls(api)
    first, second = make_worker(), make_worker()
    second.worker_id = "test-worker-2"
    while sum(await asyncio.gather(first.run_once(), second.run_once())):
        clock.advance(60)
    accepted = [r.delivery_id for r in receiver.accepted()]
    assert len(accepted) == len(set(accepted))
    for call_id in call_ids:
        rows = await deliveries(api, call_id)
        mine = [
            r.delivery_id for r in receiver.delivered() if json.loads(r.body)["call_id"] == call_id
        ]
        assert mine == [r["delivery_id"] for r in rows]


async def test_a_dead_workers_lease_runs_out_and_the_same_delivery_is_sent(
    api: Api, receiver: Receiver, make_worker: WorkerFactory, clock: FakeClock
) -> None:
    from callwright.webhooks import outbox

    await send(api, webhook=receiver.url())
    await run_calls(api)
    worker = make_worker()
    async with api.services.db.transaction() as session:
        [job] = await outbox.claim(
            session, "crashed", clock.now(), timedelta(seconds=30), 10, worker.box
        )
    assert await worker.run_once() == 0  # leased by the crashed worker
    clock.advance(31)
    assert await worker.run_once() == 1
    [got] = receiver.delivered()
    assert got.delivery_id == job.delivery_id
    late = outbox.Result(200, 5, None)
    async with api.services.db.transaction() as session:
        assert (
            await outbox.record(session, job, "crashed", clock.now(), late, worker.policy, 0.5)
            is None
        )
