"""Two user agents talking over loopback UDP (and TCP): answer, BYE, CANCEL, re-INVITE
hold, 481, 503, refusals mapped to call statuses, digest retry, DTMF, malformed input."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from itertools import count

import numpy as np
import pytest

from callwright.telephony.rtp_session import CallEnded, CallerDigit, CallerFrame
from callwright.telephony.sip.digest import Credentials, authorization, parse_challenge
from callwright.telephony.sip.message import Request, make_response, parse
from callwright.telephony.sip.transaction import Timers
from callwright.telephony.sip_call import (
    DialFailed,
    DialTarget,
    InboundCall,
    SipCall,
    TransferFailed,
)
from callwright.telephony.sip_ua import UserAgent

FAST = Timers(t1=0.02, t2=0.16, t4=0.2, timer_d=0.5)
_ports = count(0)
LEVEL = 3000


def rtp_range() -> tuple[int, int]:
    base = 30000 + 400 * (next(_ports) % 40)
    return base, base + 399


@dataclass
class Answerer:
    """An ``on_call`` that answers each caller frame with a tone and records what it got."""

    hang_up_after: int | None = None
    transfer_to: str | None = None
    calls: list[InboundCall] = field(default_factory=list)
    frames: int = 0
    loud: int = 0
    digits: list[str] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    errors: list[Exception] = field(default_factory=list)

    async def __call__(self, call: SipCall, info: InboundCall) -> None:
        self.calls.append(info)
        try:
            async for event in call.events():
                if isinstance(event, CallerFrame):
                    self.frames += 1
                    self.loud += int(np.abs(event.pcm).min() > LEVEL // 2)
                    await call.send(np.full(160, LEVEL, dtype=np.int16))
                    if self.frames == self.hang_up_after:
                        if self.transfer_to is not None:
                            await call.transfer(self.transfer_to)
                        return
                elif isinstance(event, CallerDigit):
                    self.digits.append(event.digit)
        except TransferFailed as exc:
            self.errors.append(exc)
        finally:
            self.ended.set()


async def caller_audio(call: SipCall, frames: int) -> tuple[int, bool]:
    """Read ``frames`` caller frames (answering with silence); (loud frames, ended)."""
    loud = 0
    events: AsyncIterator[object] = call.events()
    async for event in events:
        if isinstance(event, CallEnded):
            return loud, True
        if isinstance(event, CallerFrame):
            loud += int(np.abs(event.pcm).min() > LEVEL // 2)
            await call.send(np.zeros(160, dtype=np.int16))
            frames -= 1
            if frames == 0:
                return loud, False
    return loud, True


@pytest.fixture
async def make_ua() -> AsyncIterator[Callable[..., asyncio.Future[UserAgent]]]:
    agents: list[UserAgent] = []

    async def make(**kwargs: object) -> UserAgent:
        listen = kwargs.pop("listen", "udp:127.0.0.1:0")
        ua = UserAgent(
            listen=str(listen),
            advertise="127.0.0.1",
            rtp_host="127.0.0.1",
            rtp_ports=rtp_range(),
            timers=FAST,
            **kwargs,  # type: ignore[arg-type]
        )
        await ua.start()
        agents.append(ua)
        return ua

    yield make  # type: ignore[misc]
    for ua in agents:
        await ua.close()


async def until(condition: Callable[[], bool], tries: int = 400) -> None:
    """Wait (bounded) for something the other UA does over the socket."""
    for _ in range(tries):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not met")


async def test_inbound_call_answered_audio_both_ways_and_caller_bye(make_ua) -> None:  # type: ignore[no-untyped-def]
    answerer = Answerer()
    callee = await make_ua(on_call=answerer)
    caller = await make_ua()
    call = await caller.dial(DialTarget("127.0.0.1", callee.port), "+15550100")
    loud, ended = await caller_audio(call, 100)
    assert not ended and loud >= 40  # our tone crossed the network
    await call.hang_up()
    await asyncio.wait_for(answerer.ended.wait(), 5)
    assert answerer.calls[0].to_number == "+15550100"
    assert answerer.calls[0].from_number == "callwright"
    assert answerer.frames >= 90
    assert not callee.calls and not caller.calls
    assert len(callee.dialogs) == 0
    assert callee.stats.calls_in == 1


async def test_on_call_returning_sends_bye(make_ua) -> None:  # type: ignore[no-untyped-def]
    callee = await make_ua(on_call=Answerer(hang_up_after=5))
    caller = await make_ua()
    call = await caller.dial(DialTarget("127.0.0.1", callee.port), "100")
    _, ended = await caller_audio(call, 10_000)
    assert ended and call.ended_by == "remote"
    await until(lambda: not callee.calls)


async def test_cancel_while_ringing(make_ua) -> None:  # type: ignore[no-untyped-def]
    answerer = Answerer()
    callee = await make_ua(on_call=answerer, ring_seconds=30)
    caller = await make_ua()
    stop = asyncio.Event()

    async def ringing() -> None:
        stop.set()

    with pytest.raises(DialFailed) as failed:
        await caller.dial(
            DialTarget("127.0.0.1", callee.port), "100", on_ringing=ringing, stop=stop
        )
    assert failed.value.status == "canceled"
    assert not answerer.calls and not callee.calls and not caller.calls


async def test_ring_timeout_cancels_as_no_answer(make_ua) -> None:  # type: ignore[no-untyped-def]
    callee = await make_ua(on_call=Answerer(), ring_seconds=30)
    caller = await make_ua()
    with pytest.raises(DialFailed) as failed:
        await caller.dial(DialTarget("127.0.0.1", callee.port), "100", ring_timeout=0.2)
    assert failed.value.status == "no-answer"


async def test_reinvite_hold_and_unhold(make_ua) -> None:  # type: ignore[no-untyped-def]
    callee = await make_ua(on_call=Answerer())
    caller = await make_ua()
    call = await caller.dial(DialTarget("127.0.0.1", callee.port), "100")
    await caller_audio(call, 5)
    theirs = next(iter(callee.calls.values()))
    held = await caller.reoffer(call, "sendonly")
    assert held.direction == "sendonly"
    assert theirs.media.audio is not None and theirs.media.audio.direction == "recvonly"
    resumed = await caller.reoffer(call, "sendrecv")
    assert resumed.direction == "sendrecv"
    assert theirs.media.audio.direction == "sendrecv"
    await call.hang_up()


@pytest.mark.parametrize(
    ("status", "expected"),
    [(486, "busy"), (600, "busy"), (480, "no-answer"), (404, "failed"), (403, "failed")],
)
async def test_refusals_map_to_call_statuses(make_ua, status: int, expected: str) -> None:  # type: ignore[no-untyped-def]
    async def refuse(info: InboundCall) -> int:
        return status

    callee = await make_ua(on_call=Answerer(), admit=refuse)
    caller = await make_ua()
    with pytest.raises(DialFailed) as failed:
        await caller.dial(DialTarget("127.0.0.1", callee.port), "100")
    assert (failed.value.status, failed.value.sip_status) == (expected, status)
    assert not callee.calls


async def test_overload_gets_503_with_retry_after(make_ua) -> None:  # type: ignore[no-untyped-def]
    callee = await make_ua(on_call=Answerer(), max_calls=1, retry_after=7)
    caller = await make_ua()
    first = await caller.dial(DialTarget("127.0.0.1", callee.port), "100")
    with pytest.raises(DialFailed) as failed:
        await caller.dial(DialTarget("127.0.0.1", callee.port), "101")
    assert (failed.value.status, failed.value.sip_status) == ("failed", 503)
    assert callee.stats.overload == 1
    await first.hang_up()


async def test_no_answer_at_all_is_no_answer(make_ua) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    silent, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    caller = await make_ua()
    port = silent.get_extra_info("sockname")[1]
    with pytest.raises(DialFailed) as failed:
        await caller.dial(DialTarget("127.0.0.1", port), "100")  # Timer B: 64 * 20 ms
    assert failed.value.status == "no-answer"
    silent.close()


class Raw(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        self.got.put_nowait(data)


async def raw_socket() -> tuple[asyncio.DatagramTransport, Raw, int]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(Raw, local_addr=("127.0.0.1", 0))
    return transport, protocol, transport.get_extra_info("sockname")[1]


def bye(port: int, target: int) -> bytes:
    return (
        f"BYE sip:x@127.0.0.1:{target} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKstray1\r\n"
        "From: <sip:a@127.0.0.1>;tag=aaa\r\nTo: <sip:x@127.0.0.1>;tag=nosuch\r\n"
        "Call-ID: stray@127.0.0.1\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


async def test_unknown_dialog_481_and_malformed_counted(make_ua) -> None:  # type: ignore[no-untyped-def]
    ua = await make_ua(on_call=Answerer())
    transport, raw, port = await raw_socket()
    target = ("127.0.0.1", ua.port)
    transport.sendto(bye(port, ua.port), target)
    answer = parse(await asyncio.wait_for(raw.got.get(), 5))
    assert not isinstance(answer, Request) and answer.status == 481
    assert ua.stats.unknown_dialog == 1
    transport.sendto(b"\x00\xffnot sip at all", target)
    broken = bye(port, ua.port).replace(b"CSeq: 2 BYE", b"CSeq: two BYE")
    transport.sendto(broken, target)
    answer = parse(await asyncio.wait_for(raw.got.get(), 5))
    assert not isinstance(answer, Request) and answer.status == 400
    await until(lambda: ua.stats.malformed == 2)
    transport.close()


async def test_options_answered_200(make_ua) -> None:  # type: ignore[no-untyped-def]
    ua = await make_ua()
    transport, raw, port = await raw_socket()
    options = (
        f"OPTIONS sip:127.0.0.1:{ua.port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKopt1\r\n"
        "From: <sip:a@127.0.0.1>;tag=aaa\r\nTo: <sip:x@127.0.0.1>\r\n"
        "Call-ID: opt@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    transport.sendto(options, ("127.0.0.1", ua.port))
    answer = parse(await asyncio.wait_for(raw.got.get(), 5))
    assert not isinstance(answer, Request) and answer.status == 200
    assert "INVITE" in (answer.headers.get("Allow") or "")
    transport.close()


async def test_digest_challenge_is_answered_once(make_ua) -> None:  # type: ignore[no-untyped-def]
    transport, raw, port = await raw_socket()
    caller = await make_ua()
    target = DialTarget("127.0.0.1", port, username="alice", password="s3cret")
    dialing = asyncio.create_task(caller.dial(target, "100"))
    first = parse(await asyncio.wait_for(raw.got.get(), 5))
    assert isinstance(first, Request) and first.method == "INVITE"
    challenge = 'Digest realm="trunk", nonce="abc123", qop="auth", algorithm=MD5'
    reply = make_response(first, 407, extra=[("Proxy-Authenticate", challenge)])
    transport.sendto(reply.serialize(), ("127.0.0.1", caller.port))
    second = first
    while second.cseq.number == 1:  # skip retransmissions and the ACK for the 407
        message = parse(await asyncio.wait_for(raw.got.get(), 5))
        assert isinstance(message, Request)
        if message.method == "INVITE":
            second = message
    header = second.headers.get("Proxy-Authorization") or ""
    parsed = parse_challenge(challenge, proxy=True)
    assert parsed is not None
    cnonce = header.split('cnonce="')[1].split('"')[0]
    expected = authorization(
        parsed, Credentials("alice", "s3cret"), method="INVITE", uri=str(second.uri), cnonce=cnonce
    )
    assert header == expected
    assert second.call_id == first.call_id and second.cseq.number == 2
    transport.sendto(make_response(second, 486).serialize(), ("127.0.0.1", caller.port))
    with pytest.raises(DialFailed) as failed:
        await dialing
    assert failed.value.status == "busy"
    transport.close()


async def test_dtmf_both_ways(make_ua) -> None:  # type: ignore[no-untyped-def]
    answerer = Answerer()
    callee = await make_ua(on_call=answerer)
    caller = await make_ua()
    call = await caller.dial(DialTarget("127.0.0.1", callee.port), "100")
    reader = asyncio.create_task(caller_audio(call, 10_000))
    await call.send_digits("19#")
    await until(lambda: len(answerer.digits) == 3)
    assert answerer.digits == ["1", "9", "#"]
    await call.hang_up()
    await reader


async def test_refer_refused_by_peer_raises(make_ua) -> None:  # type: ignore[no-untyped-def]
    answerer = Answerer(hang_up_after=3, transfer_to="+15550199")
    callee = await make_ua(on_call=answerer)
    caller = await make_ua()
    call = await caller.dial(DialTarget("127.0.0.1", callee.port), "100")
    _, ended = await caller_audio(call, 10_000)  # our UA refuses REFER (403), then BYE
    assert ended
    assert len(answerer.errors) == 1 and "403" in str(answerer.errors[0])


async def test_call_over_tcp(make_ua) -> None:  # type: ignore[no-untyped-def]
    answerer = Answerer()
    callee = await make_ua(on_call=answerer, listen="tcp:127.0.0.1:0")
    caller = await make_ua(listen="udp:127.0.0.1:0,tcp:127.0.0.1:0")
    call = await caller.dial(DialTarget("127.0.0.1", callee.port, transport="tcp"), "100")
    loud, _ = await caller_audio(call, 20)
    assert loud > 5
    await call.hang_up()
    await asyncio.wait_for(answerer.ended.wait(), 5)
    assert callee.stats.calls_in == 1
