"""A trunk created through the API with ``auth_mode: register`` is registered by a real
``callwright serve``, with sipp as the registrar (``register_registrar.xml``).

sipp challenges the first REGISTER (digest checked by ``verifyauth``), grants 2 s, gets
the refresh before they run out, and, once the trunk is DELETEd through the API (the
server still running), the un-REGISTER (expires 0). ``/metrics`` shows the binding while
the trunk exists and forgets it after; the password never reaches the log.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.e2e.sipkit import running_server, sip_env
from tests.e2e.test_sip_peers import need_sipp
from tests.e2e.test_sip_register import (
    AOR,
    NUMBER,
    PASSWORD,
    finish,
    header,
    metric,
    registers,
    start_sipp,
    wait_for_refresh,
)

pytestmark = [pytest.mark.e2e, pytest.mark.peer, pytest.mark.slow]


def test_api_trunk_is_registered_refreshed_and_unregistered_on_delete(tmp_path: Path) -> None:
    need_sipp()
    registrar_port, sip_port = free_port(), free_port()
    sipp_dir = tmp_path / "sipp"
    sipp_dir.mkdir()
    sipp = start_sipp("register_registrar.xml", sipp_dir, registrar_port, timeout=30)
    env = sip_env(sip_port, (46100, 46199), LOG_FORMAT="json", SIP_TRUNK_SYNC_SECONDS="0.5")
    try:
        with running_server(tmp_path / "server", env) as (process, api):
            created = api.post(
                "/v1/sip/trunks",
                json={
                    "name": "Office PBX",
                    "sip_endpoint": f"sip:127.0.0.1:{registrar_port}",
                    "auth_mode": "register",
                    "register_auth": {"username": "alice", "password": PASSWORD},
                    "direction": "both",
                    "numbers": [NUMBER],
                },
            )
            assert created.status_code == 200, created.text
            trunk_id = created.json()["data"]["trunk_id"]
            text = wait_for_refresh(api)
            assert metric(text, "callwright_sip_registered") == 1.0
            assert metric(text, "callwright_sip_registration_failures_total") == 0.0

            deleted = api.delete(f"/v1/sip/trunks/{trunk_id}")
            assert deleted.status_code == 200, deleted.text
            # The un-REGISTER arrives while the server runs on: sipp's scenario completes.
            trace = finish(sipp, sipp_dir, within=15)
            assert metric(api.get("/metrics").text, "callwright_sip_registered") is None
    finally:
        if sipp.poll() is None:
            sipp.kill()
    sent = registers(trace)
    assert len(sent) == 4, trace[-3000:]  # challenged, authorized, refresh, un-REGISTER
    assert len({header(r, "Call-ID") for r in sent}) == 1
    assert [header(r, "Expires") for r in sent] == ["300", "300", "300", "0"]
    assert "Authorization" not in sent[0] and all("Authorization: Digest" in r for r in sent[1:])
    assert header(sent[0], "To").startswith(f"<{AOR}>"), header(sent[0], "To")
    contact = header(sent[0], "Contact")
    assert contact.startswith(f"<sip:{NUMBER}@127.0.0.1:{sip_port}>"), contact
    log = process.log()
    assert PASSWORD not in log
    for event in ("sip.trunk_register_started", "sip.registered", "sip.trunk_register_stopped"):
        assert f'"{event}"' in log, log[-3000:]
    assert '"sip.unregistered"' in log, log[-3000:]
    assert trunk_id in log
