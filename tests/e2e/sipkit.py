"""A real ``callwright serve`` answering SIP on loopback, for the end-to-end SIP tests.

- ``sip_env``: the settings every such server needs (SIP on a UDP port of 127.0.0.1,
  advertised as 127.0.0.1, an RTP port range), plus any others.
- ``running_server``: starts one with an API client holding its initial key; on the way
  out closes both and fails if the server's log holds a traceback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.e2e.serverproc import ServerProcess


def sip_env(sip_port: int, rtp_ports: tuple[int, int], **extra: str) -> dict[str, str]:
    """``CALLWRIGHT_*`` settings of a server answering SIP on ``sip_port``; ``extra``
    are more (``SIP_REGISTER="..."`` sets ``CALLWRIGHT_SIP_REGISTER``)."""
    return {
        "CALLWRIGHT_SIP_ENABLED": "true",
        "CALLWRIGHT_SIP_LISTEN": f"udp:127.0.0.1:{sip_port}",
        "CALLWRIGHT_SIP_ADVERTISE": "127.0.0.1",
        "CALLWRIGHT_RTP_PORTS": f"{rtp_ports[0]}-{rtp_ports[1]}",
        **{f"CALLWRIGHT_{name}": value for name, value in extra.items()},
    }


@contextlib.contextmanager
def running_server(
    data_dir: Path, env: dict[str, str], *, timeout: float = 10
) -> Iterator[tuple[ServerProcess, httpx.Client]]:
    """The server started with ``env`` and a client of its API (``timeout`` per request)."""
    process = ServerProcess(data_dir, env_overrides=env).start()
    api = httpx.Client(
        base_url=process.url, headers={"authorization": process.initial_key()}, timeout=timeout
    )
    try:
        yield process, api
    finally:
        api.close()
        process.stop()
    # Only reached when the body passed: its own failure is the one worth reporting.
    log = process.log()
    assert "Traceback" not in log, log[-4000:]
