"""RTCP in ``RtpSession`` on loopback, in virtual time (the test drives ``tick``): the
port pair, SR then RR, report blocks with the loss we caused, LSR/DLSR from the peer's
SR, the RTT from the peer's report about us, BYE at close, malformed input counted."""

from __future__ import annotations

import asyncio
from typing import cast

import numpy as np

from callwright.media.g711 import ulaw_encode
from callwright.telephony.rtcp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    SenderReport,
    SourceDescription,
    middle32,
    ntp_timestamp,
    parse_rtcp,
)
from callwright.telephony.rtp import RtpPacket
from callwright.telephony.rtp_session import FRAME_SAMPLES, RtpSession
from callwright.telephony.sip.sdp import AudioSession

PEER_SSRC = 0xFEED
WALL = 1_700_000_000.0


class Sink(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.datagrams: list[tuple[bytes, tuple[str, int]]] = []

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        self.datagrams.append((data, (str(addr[0]), int(addr[1]))))

    def compounds(self) -> list[list[RtcpPacket]]:
        return [parse_rtcp(data) for data, _ in self.datagrams]


async def frozen(deadline: float) -> None:
    await asyncio.Event().wait()


async def settle(condition: object, tries: int = 200) -> None:
    for _ in range(tries):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.005)


async def peer_pair() -> tuple[int, asyncio.DatagramTransport, Sink]:
    """The peer's RTP port (nothing listens) and its RTCP socket on port + 1."""
    loop = asyncio.get_running_loop()
    for port in range(46520, 46598, 2):
        try:
            transport, sink = await loop.create_datagram_endpoint(
                Sink, local_addr=("127.0.0.1", port + 1)
            )
        except OSError:
            continue
        return port, cast(asyncio.DatagramTransport, transport), sink
    raise OSError("no port pair")


def rtp(seq: int) -> bytes:
    pcm = ulaw_encode(np.full(FRAME_SAMPLES, 1000, dtype=np.int16)).tobytes()
    return RtpPacket(0, seq, seq * FRAME_SAMPLES, PEER_SSRC, pcm).serialize()


async def test_open_binds_an_even_rtp_port_and_rtcp_above_it() -> None:
    session = RtpSession(host="127.0.0.1", ports=(46201, 46300), sleep_until=frozen)
    port = await session.open()
    assert port % 2 == 0 and 46202 <= port <= 46298
    assert session.rtcp_port == port + 1
    await session.close()
    single = RtpSession(host="127.0.0.1", ports=(46310, 46310), sleep_until=frozen)
    assert await single.open() == 46310 and single.rtcp_port == 0  # no room: RTP alone
    await single.close()


async def test_reports_byes_and_round_trip() -> None:
    peer_port, peer_rtcp, sink = await peer_pair()
    wall = [WALL]
    clock = [0.0]  # the session's monotonic clock, which RTCP arrivals read too
    session = RtpSession(
        host="127.0.0.1",
        ports=(46320, 46419),
        sleep_until=frozen,
        clock=lambda: clock[0],
        wallclock=lambda: wall[0],
        rng=lambda: 0.5,  # intervals exactly 5 s, the first 2.5 s
    )
    await session.open()
    session.start(AudioSession("PCMU", 0, 8000, "127.0.0.1", peer_port, None, 20, "sendrecv"))
    # 6 s of calls: we send every tick; the peer's packets arrive with 2 of 100 lost.
    seqs = [s for s in range(1, 301) if s not in (50, 51)]
    arrivals = iter(seqs)
    for tick in range(300):
        now = clock[0] = tick * 0.02
        seq = next(arrivals, None)
        if seq is not None:
            session.receive(rtp(seq), ("127.0.0.1", peer_port), now)
        session.tick(now)
    await settle(lambda: len(sink.datagrams) == 1)
    (first,) = sink.compounds()
    sr, sdes = first
    assert isinstance(sr, SenderReport) and sr.ssrc == session.ssrc
    assert sr.ntp == ntp_timestamp(WALL)
    assert sr.packets == 126 and sr.octets == 126 * 160  # ticks 0..125 up to 2.5 s
    (block,) = sr.reports
    assert block.ssrc == PEER_SSRC
    # Arrived by tick 125: seqs 1..128 but 50 and 51; the first is probation (A.1).
    assert block.cumulative_lost == 2 and block.highest_seq == 128
    assert block.fraction_lost == (2 << 8) // 127  # expected 2..128
    assert block.lsr == 0 and block.dlsr == 0  # no SR from the peer yet
    assert isinstance(sdes, SourceDescription) and sdes.chunks[0].ssrc == session.ssrc
    assert sdes.chunks[0].cname == session.cname

    # The peer reports: its SR, and a block about us echoing our SR's time, 0.5 s held.
    peer_sr_ntp = ntp_timestamp(WALL + 100)
    our_lsr = middle32(sr.ntp)
    about_us = ReportBlock(session.ssrc, 0, 0, 0, 12, lsr=our_lsr, dlsr=0x8000)
    report = SenderReport(PEER_SSRC, peer_sr_ntp, 0, 10, 1600, (about_us,))
    wall[0] = WALL + 0.75  # 0.75 s after our SR: 0.5 s held by the peer, RTT 0.25 s
    clock[0] = 6.0
    peer_rtcp.sendto(report.serialize(), ("127.0.0.1", session.rtcp_port))
    await settle(lambda: session.stats.rtcp == 1)
    assert session.rtt == 0.25
    assert session.remote_report == about_us

    # The next report, 5 s later: LSR/DLSR answer the peer's SR; the loss interval resets.
    wall[0] = WALL + 5
    for tick in range(300, 400):
        now = clock[0] = tick * 0.02
        session.receive(rtp(tick + 1), ("127.0.0.1", peer_port), now)
        session.tick(now)
    await settle(lambda: len(sink.datagrams) == 2)
    second = sink.compounds()[1]
    assert isinstance(second[0], SenderReport)
    (block2,) = second[0].reports
    assert block2.lsr == middle32(peer_sr_ntp)
    assert block2.dlsr == 98304  # 1.5 s (6.0 to 7.5) in 1/65536 s
    assert block2.fraction_lost == 0 and block2.cumulative_lost == 2
    # Sent from the port we receive RTCP on (symmetric RTCP, RFC 4961).
    assert sink.datagrams[1][1] == ("127.0.0.1", session.rtcp_port)

    # Malformed RTCP is counted and dropped; a BYE from the peer is counted.
    peer_rtcp.sendto(b"\x80\xc9\x00\x09junk", ("127.0.0.1", session.rtcp_port))
    peer_rtcp.sendto(
        ReceiverReport(PEER_SSRC).serialize() + Bye((PEER_SSRC,)).serialize(),
        ("127.0.0.1", session.rtcp_port),
    )
    await settle(lambda: session.stats.rtcp == 3)
    assert (session.stats.rtcp_malformed, session.stats.rtcp_bye) == (1, 1)

    await session.close()
    await settle(lambda: len(sink.datagrams) == 3)
    last = sink.compounds()[2]
    assert isinstance(last[-1], Bye) and last[-1].sources == (session.ssrc,)
    assert session.stats.rtcp_sent == 3
    peer_rtcp.close()


async def test_receive_only_session_sends_receiver_reports() -> None:
    peer_port, peer_rtcp, sink = await peer_pair()
    session = RtpSession(
        host="127.0.0.1", ports=(46420, 46519), sleep_until=frozen, rng=lambda: 0.0
    )
    await session.open()
    session.start(AudioSession("PCMU", 0, 8000, "127.0.0.1", peer_port, None, 20, "recvonly"))
    for tick in range(200):  # reports at 1.25 s, then every 2.5 s
        session.receive(rtp(tick + 1), ("127.0.0.1", peer_port), tick * 0.02)
        session.tick(tick * 0.02)
    await settle(lambda: len(sink.datagrams) == 2)
    kinds = [type(c[0]) for c in sink.compounds()]
    assert kinds == [ReceiverReport, ReceiverReport]
    assert session.stats.rtcp_sent == 2
    await session.close()
    peer_rtcp.close()


async def test_muxed_rtcp_on_the_rtp_port_is_read() -> None:
    session = RtpSession(host="127.0.0.1", sleep_until=frozen)
    session.start(AudioSession("PCMU", 0, 8000, "127.0.0.1", 40000, None, 20, "sendrecv"))
    block = ReportBlock(session.ssrc, 25, 4, 100, 7)
    session.receive(ReceiverReport(PEER_SSRC, (block,)).serialize(), ("127.0.0.1", 40000), 0.0)
    assert session.remote_report == block
    assert session.stats.rtcp == 1 and session.stats.malformed == 0
    await session.close()
