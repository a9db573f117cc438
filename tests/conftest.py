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


_GIVEN: set[int] = set()


def free_port() -> int:
    """A loopback port free for both UDP and TCP right now (SIP listens on both, and
    RTP peers such as sipp hold UDP ports a TCP-only probe would not see), never one
    this process handed out before."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            if port in _GIVEN:
                continue
            with socket.socket() as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        _GIVEN.add(port)
        return port
    raise RuntimeError("no free loopback port")
