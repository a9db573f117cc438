"""RTCP with a real peer: baresip calls our user agent and the two exchange reports.

baresip sends RTCP to the port above our SDP's RTP port; we receive and parse it
(nothing dropped as malformed) and our reports reach baresip: its report block about
our stream carries the LSR of one of our SRs, which gives us a round-trip time. That is
only possible if baresip parsed our SR.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from callwright.telephony.rtp_session import CallEnded, CallerFrame, RtpSession
from callwright.telephony.sip_call import InboundCall, SipCall
from callwright.telephony.sip_ua import UserAgent
from tests.conftest import free_port
from tests.e2e.test_sip_calls import RATE, Baresip, need_baresip, write_wav

pytestmark = [pytest.mark.e2e, pytest.mark.peer, pytest.mark.slow]

# 40 s of call at most: baresip's reports come every ~5 s, and the round trip usually
# completes within 5-7 s; once in some 30 runs it took longer than 20 s.
MAX_FRAMES = 40 * 50


async def test_rtcp_exchanged_with_baresip(tmp_path: Path) -> None:
    need_baresip()
    sessions: list[RtpSession] = []
    frames: list[int] = []

    async def on_call(call: SipCall, info: InboundCall) -> None:
        media = call.media
        sessions.append(media)
        count = 0
        async for event in call.events():
            if isinstance(event, CallEnded):
                break
            if isinstance(event, CallerFrame):
                count += 1
                await call.send(np.full(160, 500, dtype=np.int16))
                heard_us = media.rtt is not None and media.remote_report is not None
                if (heard_us and media.stats.rtcp >= 2) or count >= MAX_FRAMES:
                    break
        frames.append(count)

    ua = UserAgent(
        listen=f"udp:127.0.0.1:{free_port()}",
        advertise="127.0.0.1",
        rtp_host="127.0.0.1",
        rtp_ports=(46600, 46799),
        on_call=on_call,
    )
    await ua.start()
    workdir = tmp_path / "baresip"
    workdir.mkdir()
    source = tmp_path / "caller.wav"
    write_wav(source, np.full(RATE * 45, 800, dtype=np.int16))
    peer = Baresip(workdir, source, "carol")
    process = await peer.start(f"/dial sip:+15550100@127.0.0.1:{ua.port}", seconds=50)
    try:
        for _ in range(5000):
            if frames or process.returncode is not None:
                break
            await asyncio.sleep(0.01)
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
        await ua.close()
    assert frames, peer.log()
    (media,) = sessions
    stats = media.stats
    assert frames[0] < MAX_FRAMES, (
        f"no RTCP round trip in time: {stats} report={media.remote_report} rtt={media.rtt} "
        f"rtcp_to={media._rtcp_remote} latched={media._rtcp_latched}"
        f"\n{peer.log()[-3000:]}"
    )
    assert stats.rtcp >= 2 and stats.rtcp_malformed == 0
    assert stats.rtcp_sent >= 2  # reports (at least one SR) and the BYE at close
    report = media.remote_report
    assert report is not None and report.ssrc == media.ssrc
    assert report.lsr != 0  # baresip echoed one of our SRs
    assert media.rtt is not None and 0 <= media.rtt < 1.0  # loopback
    assert media.rtcp_port == media.local_port + 1
