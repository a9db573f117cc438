"""The call cache: hits skip the database, every local write invalidates at once (a read
that raced a write never stores what it read), other orgs still get 404, and live calls
are kept only for a fraction of a second."""

from __future__ import annotations

import asyncio

import pytest
from tests.integration.conftest import Api

from callwright.store import calls
from callwright.store.call_cache import CallCache


async def finished_call(api: Api) -> str:
    sent = await api.client.post(
        "/v1/calls", json={"phone_number": "+14155550123", "task": "x"}, headers=api.a()
    )
    call_id: str = sent.json()["call_id"]
    stopped = await api.client.post(f"/v1/calls/{call_id}/stop", headers=api.a())
    assert stopped.status_code == 200
    return call_id


async def test_finished_calls_are_served_from_the_cache(api: Api) -> None:
    cache = api.services.call_cache
    call_id = await finished_call(api)
    first = await api.client.get(f"/v1/calls/{call_id}", headers=api.a())
    hits = cache.hits
    second = await api.client.get(f"/v1/calls/{call_id}", headers=api.a())
    assert cache.hits == hits + 1
    assert second.json() == first.json() and second.json()["status"] == "canceled"
    assert second.headers["content-type"] == "application/json"
    # Another org's key never gets the cached body.
    assert (await api.client.get(f"/v1/calls/{call_id}", headers=api.b())).status_code == 404


async def test_a_local_write_invalidates_at_once(api: Api) -> None:
    call_id = await finished_call(api)
    before = (await api.client.get(f"/v1/calls/{call_id}", headers=api.a())).json()
    assert call_id in api.services.call_cache
    async with api.services.db.transaction() as session:
        call = await calls.lock_call(session, call_id)
        assert call is not None
        call.summary = "Caller hung up before we called."
        await calls.add_event(session, call, api.services.clock.now(), "note", "a later change")
    assert call_id not in api.services.call_cache
    after = (await api.client.get(f"/v1/calls/{call_id}", headers=api.a())).json()
    assert after["summary"] == "Caller hung up before we called."
    assert before["summary"] is None


async def test_live_calls_are_kept_briefly_and_local_writes_show_at_once(api: Api) -> None:
    cache = api.services.call_cache
    sent = await api.client.post(
        "/v1/calls", json={"phone_number": "+14155550123", "task": "x"}, headers=api.a()
    )
    call_id = sent.json()["call_id"]
    first = await api.client.get(f"/v1/calls/{call_id}", headers=api.a())
    assert first.json()["status"] == "queued" and call_id in cache
    hits = cache.hits
    assert (await api.client.get(f"/v1/calls/{call_id}", headers=api.a())).json() == first.json()
    assert cache.hits == hits + 1
    stopped = await api.client.post(f"/v1/calls/{call_id}/stop", headers=api.a())
    assert stopped.status_code == 200
    after = await api.client.get(f"/v1/calls/{call_id}", headers=api.a())
    assert after.json()["status"] == "canceled"


def test_ttl_lru_and_org_checks() -> None:
    now = [0.0]
    cache = CallCache(ttl_seconds=2.0, live_ttl_seconds=0.25, max_entries=2, clock=lambda: now[0])
    cache.put("org-a", "c1", b"1", since=cache.stamp(), final=True)
    cache.put("org-a", "c2", b"2", since=cache.stamp(), final=True)
    assert cache.get("org-a", "c1") == b"1"  # c1 now most recent
    cache.put("org-a", "c3", b"3", since=cache.stamp(), final=True)  # evicts c2
    assert cache.get("org-a", "c2") is None and cache.get("org-a", "c3") == b"3"
    assert cache.get("org-b", "c1") is None
    now[0] = 2.5
    assert cache.get("org-a", "c1") is None  # expired: another process may have written
    cache.drop({"c3"})
    assert len(cache) == 1 and cache.get("org-a", "c3") is None


def test_live_entries_expire_sooner() -> None:
    now = [0.0]
    cache = CallCache(ttl_seconds=2.0, live_ttl_seconds=0.25, clock=lambda: now[0])
    cache.put("org", "live", b"L", since=cache.stamp(), final=False)
    cache.put("org", "done", b"D", since=cache.stamp(), final=True)
    now[0] = 0.2
    assert cache.get("org", "live") == b"L"
    now[0] = 0.3
    assert cache.get("org", "live") is None and cache.get("org", "done") == b"D"


def test_a_read_that_raced_a_write_is_not_kept() -> None:
    cache = CallCache(max_entries=2)
    since = cache.stamp()  # a reader starts reading c1 from the database ...
    cache.drop({"c1"})  # ... a write to c1 commits meanwhile ...
    assert not cache.put("org", "c1", b"old", since=since, final=True)  # ... it is refused
    assert cache.get("org", "c1") is None
    assert cache.put("org", "c2", b"2", since=since, final=True)  # other calls are fine
    # Calls forgotten from the drop log count as written: refused for older readers.
    cache.drop({"c3"})
    cache.drop({"c4"})
    cache.drop({"c5"})  # forgets c3
    assert not cache.put("org", "c3", b"3", since=since, final=True)
    assert cache.put("org", "c3", b"3", since=cache.stamp(), final=True)


async def test_concurrent_misses_share_one_read() -> None:
    cache = CallCache()
    gate = asyncio.Event()
    reads: list[int] = []

    async def read() -> tuple[bytes, bool]:
        reads.append(1)
        await gate.wait()
        return b"body", False

    waiting = [asyncio.create_task(cache.load("org", "c1", read)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*waiting) == [b"body"] * 5
    assert len(reads) == 1 and cache.joined == 4
    assert cache.get("org", "c1") == b"body"


async def test_a_request_after_a_write_does_not_join_an_older_read() -> None:
    cache = CallCache()
    gate = asyncio.Event()
    bodies = iter([b"before the write", b"after the write"])

    async def read() -> tuple[bytes, bool]:
        body = next(bodies)
        if body == b"before the write":
            await gate.wait()
        return body, False

    older = asyncio.create_task(cache.load("org", "c1", read))
    await asyncio.sleep(0)
    cache.drop({"c1"})  # a local write commits while the older read is in flight
    assert await cache.load("org", "c1", read) == b"after the write"
    gate.set()
    assert await older == b"before the write"
    assert cache.get("org", "c1") == b"after the write"  # the older read was not kept


async def test_a_failed_shared_read_lets_each_waiter_read_for_itself() -> None:
    cache = CallCache()
    gate = asyncio.Event()
    calls = 0

    async def read() -> tuple[bytes, bool] | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await gate.wait()
            raise RuntimeError("database went away")
        return None

    first = asyncio.create_task(cache.load("org", "c1", read))
    await asyncio.sleep(0)
    second = asyncio.create_task(cache.load("org", "c1", read))
    await asyncio.sleep(0)
    gate.set()
    with pytest.raises(RuntimeError):
        await first
    assert await second is None  # its own read: no such call
    assert calls == 2
