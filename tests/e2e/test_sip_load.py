"""Load on the phone line: sipp places 50 concurrent calls with audio to a real
``callwright serve``: all answered, all with complete records, none failed.

The server answers an inbound number with a pathway like the demo's (embedded brain:
MiniLM embeddings choose the branch on every caller turn; ``LOAD_PATHWAY``). Fifty concurrent Whisper and Piper runs would swamp a small machine and
measure the models rather than the server, so its speech goes through the real
OpenAI-compatible back-ends to ``tests.support.speech_server``, a loopback server
whose STT answers a scripted line and whose TTS speaks tones (no model cost).

Each sipp call (``sip/uac_load.xml``) listens 2 s while the greeting plays, then sends
7 s of G.711 speech from sipp's sample capture, and hangs up after 9.5 s. One warm-up
call first loads what a server loads on first use (speech back-ends, embeddings).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.e2e.sipkit import running_server
from tests.e2e.test_sip_calls import Server, agent_text, statuses, wait_for
from tests.e2e.test_sip_peers import need_sipp, pcap_dir, sipp_errors
from tests.support.sip_load import LOAD_PATHWAY, SippLoad, SippStats, server_env
from tests.support.speech_server import SpeechServer

pytestmark = [pytest.mark.e2e, pytest.mark.peer, pytest.mark.slow]

LOAD_NUMBER = "+15550160"
CALLS = 50
HOLD_MS = 7500  # after 2 s of listening: 9.5 s calls, the capture's 7 s of speech inside
SERVER_RTP = (50000, 50999)
PCAP_PACKETS = 236  # RTP packets in sipp's g711a.pcap
RTP_DROPPED = ("malformed", "unknown_payload", "wrong_size", "foreign_source")


@pytest.fixture(scope="module")
def speech() -> Iterator[SpeechServer]:
    server = SpeechServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need_sipp()
    path = tmp_path_factory.mktemp("sipp")
    pcaps = pcap_dir()
    assert pcaps is not None
    (path / "pcap").symlink_to(pcaps, target_is_directory=True)
    return path


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, speech: SpeechServer, workdir: Path
) -> Iterator[Server]:
    sip_port = free_port()
    env = server_env(sip_port, SERVER_RTP, speech.base_url, max_calls=CALLS + 10)
    with running_server(tmp_path_factory.mktemp("server"), env, timeout=30) as (process, api):
        created = api.post("/v1/pathway/create", json=LOAD_PATHWAY)
        assert created.status_code == 200, created.text
        pathway = created.json()["pathway_id"]
        found = Server(process, api, sip_port, pathway)
        found.configure(LOAD_NUMBER, pathway_id=pathway)
        warm = run_sipp(found, workdir, "warm", calls=1)
        assert warm.successful == 1, sipp_errors(workdir)
        yield found


def run_sipp(server: Server, workdir: Path, name: str, *, calls: int) -> SippStats:
    load = SippLoad(
        sip_port=server.sip_port,
        number=LOAD_NUMBER,
        calls=calls,
        rate=calls,  # all within the first second
        limit=calls,
        hold_ms=HOLD_MS,
        local_port=free_port(),
        media_port=free_port(),
        timeout_s=60,
    )
    stats = workdir / f"{name}.csv"
    done = subprocess.run(
        load.args(stats),
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=75,
        check=False,
    )
    assert done.returncode == 0, sipp_errors(workdir)
    return SippStats.read(stats)


def metric(text: str, name: str, label: str) -> float:
    found = re.search(rf"^{name}{{{label}}} (\S+)$", text, re.MULTILINE)
    assert found is not None, f"{name}{{{label}}} missing from /metrics"
    return float(found.group(1))


def test_sipp_places_50_concurrent_calls_with_audio(
    server: Server, speech: SpeechServer, workdir: Path
) -> None:
    before = {c["call_id"] for c in server.inbound_calls(LOAD_NUMBER)}
    spoken_before = speech.counts["speech"]

    stats = run_sipp(server, workdir, "load", calls=CALLS)

    assert (stats.created, stats.successful, stats.failed) == (CALLS, CALLS, 0)

    def all_finished() -> list[dict[str, object]] | None:
        new = [c for c in server.inbound_calls(LOAD_NUMBER) if c["call_id"] not in before]
        done = len(new) == CALLS and all(c["completed"] for c in new)
        return new if done else None

    calls = wait_for("every call to finish", all_finished, timeout=30)
    for listed in calls:
        call_id = str(listed["call_id"])
        call = server.call(call_id)
        assert call["status"] == "completed", call
        assert call["inbound"] is True and call["to"] == LOAD_NUMBER
        assert call["call_ended_by"] == "USER", call  # sipp's BYE
        assert call["call_length"] > 0, call
        assert "thanks for calling maple street dental" in agent_text(call).lower(), call
        events = server.events(call_id)
        assert statuses(events) == ["allocated", "in-progress", "completed"], events
        types = [e["type"] for e in events]
        assert types.index("conversation.started") < types.index("transcript.assistant")
        assert types[-1] == "status.completed", types

    metrics = server.api.get("/metrics").text
    for reason in RTP_DROPPED:
        assert metric(metrics, "callwright_rtp_packets_dropped_total", f'reason="{reason}"') == 0
    for kind in ("sip_malformed", "rtp_packet"):
        assert metric(metrics, "callwright_malformed_dropped_total", f'kind="{kind}"') == 0
    assert metric(metrics, "callwright_sip_requests_refused_total", 'reason="overload"') == 0
    assert metric(metrics, "callwright_sip_requests_refused_total", 'reason="org_limit"') == 0
    # Every packet of sipp's capture reached a call (the warm-up call's too), give or
    # take a few the kernel may drop on a busy shared machine.
    received = metric(metrics, "callwright_rtp_packets_total", 'direction="received"')
    assert received >= 0.98 * (CALLS + 1) * PCAP_PACKETS, received
    # The agent spoke on every call, through the speech server.
    assert speech.counts["speech"] - spoken_before >= CALLS
