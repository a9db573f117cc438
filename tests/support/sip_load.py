"""Load calls against a real ``callwright serve``: its settings, sipp, and what sipp saw.

Shared by the load test (``tests/e2e/test_sip_load.py``) and the benchmark
(``bench/sip_calls.py``):

- ``server_env``: a server answering SIP on loopback with the OpenAI-compatible speech
  back-ends pointed at ``tests.support.speech_server`` (no model inference per call),
  its limits raised to ``max_calls``;
- ``SippLoad``: the arguments of one sipp run of ``tests/e2e/sip/uac_load.xml`` (each
  call plays sipp's G.711 sample capture and lasts ``-d`` after the answer) and its
  statistics file read back as ``SippStats`` (sipp runs in a directory holding a
  ``pcap`` link to sipp's sample captures, ``tests.e2e.test_sip_peers.pcap_dir``);
- ``ProcessSample``: CPU seconds and RSS of a process from ``/proc`` (no psutil);
- ``LOAD_PATHWAY``: the agent answering the load calls.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.sipkit import sip_env

SCENARIO = Path(__file__).resolve().parents[1] / "e2e" / "sip" / "uac_load.xml"


def server_env(
    sip_port: int, rtp_ports: tuple[int, int], speech_url: str, *, max_calls: int
) -> dict[str, str]:
    """``CALLWRIGHT_*`` settings of a server under SIP load (see the module docstring)."""
    return sip_env(
        sip_port,
        rtp_ports,
        SIP_MAX_CALLS=str(max_calls),
        MAX_CONCURRENT_CALLS=str(max_calls),
        MAX_CALLS_PER_ORG=str(max_calls),
        SPEECH_STT="openai",
        OPENAI_SPEECH_BASE_URL=speech_url,
        SPEECH_VOICE="openai:alloy",
        SPEECH_THREADS="1",
    )


@dataclass(frozen=True)
class SippLoad:
    """One sipp run: ``calls`` calls at ``rate`` per second, at most ``limit`` at once,
    each up ``hold_ms`` after the answer."""

    sip_port: int
    number: str
    calls: int
    rate: float
    limit: int
    hold_ms: int
    local_port: int
    media_port: int
    timeout_s: int = 120

    def args(self, stats: Path) -> list[str]:
        return [
            "sipp",
            "-sf",
            str(SCENARIO),
            f"127.0.0.1:{self.sip_port}",
            "-s",
            self.number,
            "-i",
            "127.0.0.1",
            "-p",
            str(self.local_port),
            "-mp",
            str(self.media_port),
            "-m",
            str(self.calls),
            "-l",
            str(self.limit),
            "-r",
            f"{self.rate:g}",
            "-d",
            str(self.hold_ms),
            "-timeout",
            f"{self.timeout_s}s",
            "-timeout_error",
            "-nostdin",
            "-trace_err",
            "-trace_stat",
            "-stf",
            str(stats),
            "-fd",
            "1",
        ]


@dataclass(frozen=True)
class SippStats:
    """The last row of sipp's ``-trace_stat`` file (cumulative counters)."""

    created: int
    successful: int
    failed: int
    response_ms: float  # mean INVITE -> 200 OK (sipp's rtd) over the run
    call_length_ms: float  # mean over the run

    @classmethod
    def read(cls, path: Path) -> SippStats:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter=";"))
        if not rows:
            raise ValueError(f"{path} has no statistics")
        last = rows[-1]
        return cls(
            created=int(last["TotalCallCreated"]),
            successful=int(last["SuccessfulCall(C)"]),
            failed=int(last["FailedCall(C)"]),
            response_ms=_hms_ms(last.get("ResponseTime1(C)", "")),
            call_length_ms=_hms_ms(last.get("CallLength(C)", "")),
        )


def _hms_ms(text: str) -> float:
    """sipp's ``HH:MM:SS:mmm[uuu]`` durations as milliseconds (0 if absent)."""
    parts = text.strip().split(":")
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        return 0.0
    hours, minutes, seconds, fraction = parts
    ms = float(fraction[:3]) + (float(fraction[3:]) / 1000 if len(fraction) > 3 else 0.0)
    return ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + ms


@dataclass(frozen=True)
class ProcessSample:
    """A process's CPU time (user + system, seconds) and resident memory (bytes)."""

    cpu_seconds: float
    rss_bytes: int

    @classmethod
    def of(cls, pid: int) -> ProcessSample:
        stat = Path(f"/proc/{pid}/stat").read_text()
        # Fields after the parenthesised command name; utime and stime are 14 and 15.
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = os.sysconf("SC_CLK_TCK")
        cpu = (int(fields[11]) + int(fields[12])) / ticks
        rss = 0
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
                break
        return cls(cpu, rss)


# The agent of the load calls: the demo pathway's shape (a greeting, a branch chosen by
# the embedded brain on every caller turn) without its global transfer node, whose
# REFER a sipp caller would not expect. The scripted caller line takes greet -> book;
# in "book" each further turn is scored against the one edge and stays there.
LOAD_PATHWAY: dict[str, Any] = {
    "name": "Load: front desk",
    "nodes": [
        {
            "id": "greet",
            "type": "Default",
            "data": {
                "name": "Greeting",
                "isStart": True,
                "text": "Hi, thanks for calling Maple Street Dental. I'm the automated "
                "assistant. I can book an appointment or tell you our opening hours.",
            },
        },
        {
            "id": "book",
            "type": "Default",
            "data": {
                "name": "Book",
                "text": "Sure, let's find you a time. Which day would suit you?",
            },
        },
        {
            "id": "hours",
            "type": "Default",
            "data": {
                "name": "Hours",
                "text": "We're open Monday to Friday, 8 AM to 5 PM.",
            },
        },
    ],
    "edges": [
        {
            "id": "greet-book",
            "source": "greet",
            "target": "book",
            "data": {"label": "book", "description": "The caller wants an appointment."},
        },
        {
            "id": "greet-hours",
            "source": "greet",
            "target": "hours",
            "data": {"label": "hours", "description": "The caller asks when we are open."},
        },
        {
            "id": "book-hours",
            "source": "book",
            "target": "hours",
            "data": {"label": "hours", "description": "The caller asks when we are open."},
        },
        {
            "id": "hours-book",
            "source": "hours",
            "target": "book",
            "data": {"label": "book", "description": "The caller wants an appointment."},
        },
    ],
}
