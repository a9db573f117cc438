"""Registering to a PBX, with sipp as the registrar.

- A real ``callwright serve`` registers the account in ``CALLWRIGHT_SIP_REGISTER``:
  sipp challenges it (401, digest checked by sipp's ``verifyauth``), grants 2 s in the
  Contact while ``Expires`` says 3600, receives the refresh before the 2 s run out
  (same Call-ID, higher CSeq, authorized), and the un-REGISTER (expires 0) when the
  server stops. ``/metrics`` shows the binding; a call to the registered Contact reaches
  the inbound lookup with the Contact's user; the logs never hold the password.
- In process: a registrar that finds our interval too brief (423 Min-Expires) gets the
  REGISTER again with its minimum.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

import httpx
import pytest

from callwright.telephony.registration import Registrations, Target
from callwright.telephony.sip.register import Phase
from callwright.telephony.sip_call import DialFailed, DialTarget
from callwright.telephony.sip_ua import UserAgent
from tests.conftest import free_port
from tests.e2e.sipkit import running_server, sip_env
from tests.e2e.test_sip_calls import wait_for
from tests.e2e.test_sip_peers import SCENARIOS, need_sipp

pytestmark = [pytest.mark.e2e, pytest.mark.peer, pytest.mark.slow]

PASSWORD = "wonderland"  # what register_registrar.xml verifies
NUMBER = "+15550100"
AOR = "sip:alice@127.0.0.1"


def start_sipp(
    scenario: str, workdir: Path, port: int, timeout: int = 40
) -> subprocess.Popen[bytes]:
    """sipp as a UAS (the registrar) on ``port``, tracing messages and errors."""
    return subprocess.Popen(
        [
            "sipp",
            "-sf",
            str(SCENARIOS / scenario),
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-m",
            "1",
            "-timeout",
            f"{timeout}s",
            "-timeout_error",
            "-nostdin",
            "-trace_err",
            "-trace_msg",
        ],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def finish(sipp: subprocess.Popen[bytes], workdir: Path, within: float = 20.0) -> str:
    """Wait for sipp; its message trace. Fails with sipp's errors if the scenario did."""
    try:
        code = sipp.wait(timeout=within)
    except subprocess.TimeoutExpired:
        sipp.kill()
        sipp.wait()
        code = -1
    trace = "\n".join(p.read_text(errors="replace") for p in workdir.glob("*messages.log"))
    errors = "\n".join(p.read_text(errors="replace")[-2000:] for p in workdir.glob("*errors.log"))
    assert code == 0, f"sipp exited {code}:\n{errors}\n{trace[-3000:]}"
    return trace


def registers(trace: str) -> list[str]:
    """The REGISTER requests in sipp's trace, in order."""
    return re.findall(r"^REGISTER sip:.*?(?=\n\n|\r\n\r\n)", trace, re.MULTILINE | re.DOTALL)


def header(message: str, name: str) -> str:
    found = re.search(rf"^{name}:\s*(.*?)\r?$", message, re.MULTILINE | re.IGNORECASE)
    assert found is not None, f"no {name} in {message}"
    return found.group(1)


def metric(text: str, name: str) -> float | None:
    found = re.search(rf'^{name}\{{aor="{re.escape(AOR)}"\}} (\S+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else None


def wait_for_refresh(api: httpx.Client) -> str:
    """``/metrics`` once the registrar accepted a refresh: its first 200 grants 2 s, so the
    second accepted REGISTER follows."""

    def refreshed() -> str | None:
        text = api.get("/metrics").text
        found = metric(text, "callwright_sip_registrations_total")
        return text if found is not None and found >= 2 else None

    return wait_for("the refresh to be accepted", refreshed, timeout=20)


def test_server_registers_refreshes_and_unregisters(tmp_path: Path) -> None:
    need_sipp()
    registrar_port, sip_port = free_port(), free_port()
    sipp_dir = tmp_path / "sipp"
    sipp_dir.mkdir()
    sipp = start_sipp("register_registrar.xml", sipp_dir, registrar_port)
    env = sip_env(
        sip_port,
        (46000, 46099),
        LOG_FORMAT="json",
        SIP_REGISTER=(
            f"sip:alice:{PASSWORD}@127.0.0.1:{registrar_port};expires=300;contact_user=%2B15550100"
        ),
    )
    with running_server(tmp_path / "server", env) as (process, api):
        text = wait_for_refresh(api)
        assert metric(text, "callwright_sip_registered") == 1.0
        assert metric(text, "callwright_sip_registration_failures_total") == 0.0
        # An INVITE to the registered Contact meets the inbound lookup with its user: no
        # such inbound number here, so 404 and the refusal is counted.
        asyncio.run(call_contact(sip_port))
        refused = api.get("/metrics").text
        assert re.search(
            r'callwright_sip_requests_refused_total\{reason="unknown_number"\} 1\.0', refused
        )
    trace = finish(sipp, sipp_dir)
    sent = registers(trace)
    assert len(sent) == 4, trace[-3000:]  # challenged, authorized, refresh, un-REGISTER
    assert len({header(r, "Call-ID") for r in sent}) == 1
    cseqs = [int(header(r, "CSeq").split()[0]) for r in sent]
    assert cseqs == sorted(cseqs) and len(set(cseqs)) == 4
    assert [header(r, "Expires") for r in sent] == ["300", "300", "300", "0"]
    assert "Authorization" not in sent[0] and all("Authorization: Digest" in r for r in sent[1:])
    contact = header(sent[0], "Contact")
    assert contact.startswith(f"<sip:{NUMBER}@127.0.0.1:{sip_port}>"), contact
    log = process.log()
    assert PASSWORD not in log
    assert '"sip.registered"' in log and '"sip.unregistered"' in log, log[-3000:]


async def call_contact(sip_port: int) -> None:
    ua = UserAgent(listen=f"udp:127.0.0.1:{free_port()}", advertise="127.0.0.1")
    await ua.start()
    try:
        with pytest.raises(DialFailed) as failed:
            await ua.dial(DialTarget("127.0.0.1", sip_port), NUMBER, ring_timeout=10)
        assert failed.value.sip_status == 404
    finally:
        await ua.close()


async def test_interval_too_brief_is_retried_with_min_expires(tmp_path: Path) -> None:
    need_sipp()
    port = free_port()
    sipp = start_sipp("register_interval.xml", tmp_path, port, timeout=20)
    ua = UserAgent(listen=f"udp:127.0.0.1:{free_port()}", advertise="127.0.0.1")
    await ua.start()
    registrations = Registrations(ua, [Target("alice", "127.0.0.1", port, expires=60)])
    try:
        await asyncio.sleep(0.2)  # sipp binds its port
        registrations.start()
        reg = None
        for _ in range(200):
            reg = registrations.registration(AOR)
            if reg is not None and reg.phase is Phase.REGISTERED:
                break
            await asyncio.sleep(0.05)
        assert reg is not None and reg.phase is Phase.REGISTERED
        assert reg.granted == 120 and reg.expires == 120
        assert registrations.snapshot()[AOR] == {
            "registered": 1,
            "registrations": 1,
            "failures": 0,
        }
    finally:
        await registrations.close()
        await ua.close()
    assert reg.phase is Phase.CLOSED
    trace = await asyncio.to_thread(finish, sipp, tmp_path)
    assert [header(r, "Expires") for r in registers(trace)] == ["60", "120", "0"]
