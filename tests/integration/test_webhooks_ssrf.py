"""The outbound guard with real sockets: a receiver on 127.0.0.1 is refused unless the
operator allow-lists it, refusals are recorded on the call, redirects are not followed by
webhooks and are re-checked per hop by clients that follow them, and a resolved address
is pinned for the connection."""

from __future__ import annotations

import json

import httpx
import pytest
from tests.integration import test_webhooks as base
from tests.integration.conftest import Api
from tests.integration.test_webhooks import WorkerFactory, deliveries, drain, run_calls, send
from tests.integration.webhook_receiver import FakeClock, Receiver

from callwright import netguard
from callwright.netguard import OutboundPolicy

# The fixtures of the main webhook tests, shared.
receiver = base.receiver
clock = base.clock
make_worker = base.make_worker


async def test_refused_targets_dead_letter_at_once_with_an_event_allowed_one_works(
    api: Api, receiver: Receiver, make_worker: WorkerFactory, clock: FakeClock
) -> None:
    port = receiver.port
    hostile = {
        f"http://127.0.0.1:{port}/hook": "127.0.0.1 is a loopback address",
        f"http://localhost:{port}/hook": "localhost resolves to 127.0.0.1, a loopback address",
        f"http://2130706433:{port}/hook": "2130706433 (127.0.0.1) is a loopback address",
        f"http://0x7f000001:{port}/hook": "0x7f000001 (127.0.0.1) is a loopback address",
        f"http://[::ffff:127.0.0.1]:{port}/hook": "::ffff:127.0.0.1 is a form of 127.0.0.1, a loopback address",
        "http://169.254.169.254/latest/meta-data/": "169.254.169.254 is a cloud metadata address",
        "http://10.0.0.1/hook": "10.0.0.1 is a private address",
    }
    call_ids = {url: await send(api, webhook=url) for url in hostile}
    await run_calls(api)
    await drain(make_worker(allow=()), clock)
    assert receiver.received == []
    for url, reason in hostile.items():
        [row] = await deliveries(api, call_ids[url])
        assert row["status"] == "dead", url
        [attempt] = row["attempt_log"]
        assert attempt["outcome"] == "dead" and attempt["error"] == f"refused: {reason}"
        events = (
            await api.client.get(f"/v1/calls/{call_ids[url]}/events", headers=api.a())
        ).json()["data"]
        [refused] = [e for e in events if e["type"] == "delivery.refused"]
        assert reason in refused["message"] and refused["category"] == "error"

    allowed = await send(api, webhook=receiver.url())
    await run_calls(api)
    await drain(make_worker(allow=("127.0.0.1/32",)), clock)
    [got] = receiver.delivered()
    assert json.loads(got.body)["call_id"] == allowed


async def test_webhooks_do_not_follow_a_redirect_to_a_private_address(
    api: Api, receiver: Receiver, make_worker: WorkerFactory, clock: FakeClock
) -> None:
    receiver.mode = "redirect:http://169.254.169.254/latest/meta-data/"
    call_id = await send(api, webhook=receiver.url())
    await run_calls(api)
    await make_worker(allow=("127.0.0.1/32",)).run_once()
    [row] = await deliveries(api, call_id)
    [attempt] = row["attempt_log"]
    assert attempt["status_code"] == 307
    assert attempt["error"] == "HTTP 307: redirects are not followed for webhooks"
    assert len(receiver.received) == 1


async def test_clients_that_follow_redirects_have_every_hop_checked(receiver: Receiver) -> None:
    target = Receiver().start()
    policy = OutboundPolicy.parse(["127.0.0.1/32"])
    try:
        async with netguard.guarded_client(policy, timeout=2, follow_redirects=True) as client:
            receiver.mode = f"redirect:{target.url('/landed')}"
            assert (await client.get(receiver.url())).status_code == 200  # allowed hop
            assert [r.path for r in target.received] == ["/landed"]
            for hop, reason in (
                ("http://10.0.0.1/x", "10.0.0.1 is a private address"),
                ("http://169.254.169.254/", "a cloud metadata address"),
                (f"http://127.0.0.2:{target.port}/", "127.0.0.2 is a loopback address"),
                (f"http://[::1]:{target.port}/", "::1 is a loopback address"),
                ("file:///etc/passwd", "scheme"),
            ):
                receiver.mode = f"redirect:{hop}"
                with pytest.raises((netguard.Refused, httpx.UnsupportedProtocol)) as refused:
                    await client.get(receiver.url())
                assert reason in str(refused.value) or hop.startswith("file")
        assert [r.path for r in target.received] == ["/landed"]
    finally:
        target.stop()


async def test_the_checked_address_is_the_one_connected_to(receiver: Receiver) -> None:
    """DNS rebinding: the resolver answers an allowed address once, then a forbidden one.
    One lookup per connection, so the request reaches the address that was checked, and
    the Host header still names the original host."""
    answers = [["127.0.0.1"], ["10.0.0.1"]]
    lookups: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        lookups.append(host)
        return answers[min(len(lookups) - 1, 1)]

    policy = OutboundPolicy.parse(["127.0.0.1/32"])
    url = f"http://rebind.test:{receiver.port}/pinned"
    async with netguard.guarded_client(policy, timeout=2, resolver=rebinding) as client:
        assert (await client.post(url, content=b"{}")).status_code == 200
        assert (await client.post(url, content=b"{}")).status_code == 200  # kept-alive
    assert lookups == ["rebind.test"]
    assert [r.headers["host"] for r in receiver.received] == [f"rebind.test:{receiver.port}"] * 2
    async with netguard.guarded_client(policy, timeout=2, resolver=rebinding) as client:
        with pytest.raises(netguard.Refused, match="resolves to 10.0.0.1, a private address"):
            await client.post(url, content=b"{}")
    assert len(receiver.received) == 2


async def test_response_size_is_capped(receiver: Receiver) -> None:
    receiver.mode = "ok"
    policy = OutboundPolicy.parse(["127.0.0.1"])
    async with (
        netguard.guarded_client(policy, timeout=2) as client,
        client.stream("POST", receiver.url(), content=b"x") as response,
    ):
        body, truncated = await netguard.read_capped(response, 1)
    assert body == b"o" and truncated
