"""Suite-wide rules.

Peers (PostgreSQL, baresip, sipp, ...) are real. A test that lacks its peer skips on a
developer laptop, but under ``CALLWRIGHT_REQUIRE_PEERS=1`` (CI) it fails instead: CI
must never go green by skipping the tests that matter.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

# The scripted OpenAI-compatible server (a real HTTP server process) for every test.
pytest_plugins = ["tests.support.scripted_llm_server"]

REPO = Path(__file__).resolve().parents[1]
# Public test data from outside the project (real pathway exports, the RFC 4475 SIP
# torture messages), copied in with their provenance so a clone tests on its own.
EXTERNAL_DATA = REPO / "tests" / "data" / "external"
REQUIRE_PEERS = os.environ.get("CALLWRIGHT_REQUIRE_PEERS") == "1"


def need_peer(name: str, available: bool, how: str = "") -> None:
    """Skip (or fail, when peers are required) if ``name`` is not available."""
    if available:
        return
    message = f"peer {name} is not available" + (f": {how}" if how else "")
    if REQUIRE_PEERS:
        pytest.fail(message + " (CALLWRIGHT_REQUIRE_PEERS=1)", pytrace=False)
    pytest.skip(message)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
