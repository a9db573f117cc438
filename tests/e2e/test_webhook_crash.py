"""kill -9 of a real server between a call's end and its webhook: after a restart the
webhook is delivered, signed, to a receiver that was down the whole time before."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from callwright.webhooks import signing
from tests.e2e.serverproc import ServerProcess
from tests.integration.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def env() -> dict[str, str]:
    return {
        "CALLWRIGHT_SANDBOX_NUMBERS": "true",
        "CALLWRIGHT_SANDBOX_CALL_SECONDS": "0.2",
        "CALLWRIGHT_OUTBOUND_ALLOW": "127.0.0.1/32",
        "CALLWRIGHT_WEBHOOK_MAX_ATTEMPTS": "100",
        "CALLWRIGHT_WEBHOOK_RETRY_BASE_SECONDS": "0.2",
        "CALLWRIGHT_WEBHOOK_RETRY_MAX_SECONDS": "0.5",
        "CALLWRIGHT_WEBHOOK_TIMEOUT_SECONDS": "1",
        "CALLWRIGHT_WEBHOOK_POLL_SECONDS": "0.1",
    }


def test_webhook_is_delivered_after_kill_9_and_restart(tmp_path: Path) -> None:
    receiver = Receiver()  # its port refuses connections until it starts
    first = ServerProcess(tmp_path / "data", env()).start()
    second: ServerProcess | None = None
    try:
        key = first.initial_key()
        auth = {"authorization": key}
        sent = httpx.post(
            first.url + "/v1/calls",
            json={"phone_number": "+14155550123", "task": "x", "webhook": receiver.url()},
            headers=auth,
        )
        assert sent.status_code == 200, sent.text
        call_id = sent.json()["call_id"]

        def failing() -> list[dict[str, Any]] | None:
            rows = httpx.get(f"{first.url}/v1/calls/{call_id}/webhooks", headers=auth).json()
            data: list[dict[str, Any]] = rows["data"]
            return data if data and data[0]["attempt_log"] else None

        [before] = wait_for("a failed attempt", failing)
        assert before["status"] == "pending"
        assert httpx.get(f"{first.url}/v1/calls/{call_id}", headers=auth).json()["completed"]
        first.kill()

        second = ServerProcess(tmp_path / "data", env()).start()
        receiver.start()
        [got] = wait_for("the webhook", receiver.delivered)
        secret = httpx.get(second.url + "/v1/webhooks/signing_secret", headers=auth).json()
        assert signing.verify(got.body, secret["data"]["secret"], got.signature)
        assert got.delivery_id == before["delivery_id"]
        details = httpx.get(f"{second.url}/v1/calls/{call_id}", headers=auth).json()
        assert json.loads(got.body) == details

        [after] = httpx.get(f"{second.url}/v1/calls/{call_id}/webhooks", headers=auth).json()[
            "data"
        ]
        assert after["status"] == "delivered"
        outcomes = [a["outcome"] for a in after["attempt_log"]]
        assert outcomes[-1] == "delivered" and set(outcomes[:-1]) == {"retry"}
        assert after["attempt_log"][0]["error"].startswith("connection failed")

        # The receiver-side helper, as a receiver would run it.
        for secret_value, expected in ((secret["data"]["secret"], 0), ("whsec_other", 1)):
            checked = subprocess.run(
                [sys.executable, "-m", "callwright.cli.main", "webhooks", "verify"]
                + ["--secret", secret_value],
                input=got.body,
                env={**second.env(), "CALLWRIGHT_WEBHOOK_SIGNATURE": got.signature},
                capture_output=True,
                check=False,
                timeout=60,
            )
            assert checked.returncode == expected, checked.stderr
    finally:
        first.kill()
        if second is not None:
            second.stop()
        receiver.stop()
