"""``Registrations`` over a real ``UserAgent`` on loopback against a scripted registrar
socket: refusals and silence are counted and retried with backoff, a challenge is
answered, and ``close`` un-REGISTERs without waiting out a silent registrar."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import cast

import pytest

from callwright.telephony.registration import Registrations, Target
from callwright.telephony.sip.message import Request, Response, make_response, parse
from callwright.telephony.sip.register import Backoff, Phase
from callwright.telephony.sip.transaction import Timers
from callwright.telephony.sip_ua import UserAgent

FAST = Timers(t1=0.02, t2=0.16, t4=0.2, timer_d=0.5)
QUICK = Backoff(base=0.05, cap=0.2)
AOR = "sip:alice@127.0.0.1"
CHALLENGE = 'Digest realm="test", nonce="n1", qop="auth"'

Script = Callable[[Request], Response | None]


@dataclass
class Registrar(asyncio.DatagramProtocol):
    """Answers each REGISTER with what ``script`` returns (``None``: silence)."""

    script: Script
    seen: list[Request] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        request = parse(data)
        assert isinstance(request, Request)
        self.seen.append(request)
        response = self.script(request)
        if response is not None and self.transport is not None:
            self.transport.sendto(response.serialize(), addr)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])


@pytest.fixture
async def ua() -> AsyncIterator[UserAgent]:
    agent = UserAgent(listen="udp:127.0.0.1:0", advertise="127.0.0.1", timers=FAST)
    await agent.start()
    yield agent
    await agent.close()


async def registrar(script: Script) -> Registrar:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(
        lambda: Registrar(script), local_addr=("127.0.0.1", 0)
    )
    return protocol


async def until(condition: Callable[[], bool], tries: int = 400) -> None:
    for _ in range(tries):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never met")


async def test_refusals_are_counted_and_retried(ua: UserAgent) -> None:
    peer = await registrar(lambda r: make_response(r, 403))
    regs = Registrations(ua, [Target("alice", "127.0.0.1", peer.port)], backoff=QUICK)
    regs.start()
    await until(lambda: regs.snapshot()[AOR]["failures"] >= 3)
    assert regs.snapshot()[AOR]["registered"] == 0
    assert len({r.call_id for r in peer.seen}) == 1
    cseqs = [r.cseq.number for r in peer.seen]
    assert cseqs == list(range(1, len(cseqs) + 1))
    await regs.close()
    assert [r.headers.get("Expires") for r in peer.seen] == ["300"] * len(peer.seen)
    assert peer.transport is not None
    peer.transport.close()


async def test_challenge_then_register_then_unregister(ua: UserAgent) -> None:
    def script(request: Request) -> Response:
        if request.headers.get("Authorization") is None:
            return make_response(request, 401, extra=[("WWW-Authenticate", CHALLENGE)])
        return make_response(
            request, 200, extra=[("Expires", request.headers.get("Expires") or "")]
        )

    peer = await registrar(script)
    target = Target("alice", "127.0.0.1", peer.port, password="pw", auth_user="1001")
    regs = Registrations(ua, [target], backoff=QUICK)
    regs.start()
    await until(lambda: regs.snapshot()[AOR]["registered"] == 1)
    assert regs.snapshot()[AOR] == {"registered": 1, "registrations": 1, "failures": 0}
    authorization = peer.seen[1].headers.get("Authorization") or ""
    assert 'username="1001"' in authorization and 'realm="test"' in authorization
    await regs.close()
    last = peer.seen[-1]
    assert last.headers.get("Expires") == "0" and last.cseq.number == 3
    reg = regs.registration(AOR)
    assert reg is not None and reg.phase is Phase.CLOSED
    assert regs.snapshot()[AOR]["registered"] == 0
    assert peer.transport is not None
    peer.transport.close()


async def test_silent_registrar_times_out_and_close_is_bounded(ua: UserAgent) -> None:
    peer = await registrar(lambda r: None)
    regs = Registrations(
        ua, [Target("alice", "127.0.0.1", peer.port)], backoff=QUICK, unregister_seconds=0.3
    )
    regs.start()
    # Timer F (64·T1 = 1.28 s here) ends the first attempt; the retry comes after backoff.
    await until(lambda: regs.snapshot()[AOR]["failures"] >= 1, tries=1000)
    reg = regs.registration(AOR)
    assert reg is not None and reg.last_error == "timeout"
    await until(lambda: reg.phase is Phase.REGISTERING)
    await regs.close()  # the outstanding REGISTER is abandoned after 0.3 s
    assert all(
        task.done() for task in asyncio.all_tasks() if task.get_name().startswith("sip-register")
    )
    assert peer.transport is not None
    peer.transport.close()
