"""SIP call capacity of one ``callwright serve`` process: calls per second, concurrent
calls with media, CPU and memory per call.

The server answers an inbound number with a pathway like the demo's (embedded brain:
MiniLM embeddings choose the branch on each caller turn; ``LOAD_PATHWAY``, without the
demo's transfer node, whose REFER sipp would not expect) and speaks through its real OpenAI-compatible speech back-ends to
``tests.support.speech_server`` (a separate process: scripted STT, tones for TTS), so
no Whisper or Piper inference runs: the figures are the platform's own cost (SIP, RTP,
G.711, jitter buffer, Silero VAD, the conversation loop, the pathway step, the store on
SQLite). sipp (``tests/e2e/sip/uac_load.xml``) places the calls: each listens 2 s,
then sends sipp's 7 s G.711 speech capture, and hangs up after ``-d``.

(a) Rate: steps of ``--rates`` calls per second, ``--step-seconds`` each, calls of
    2 s + ``--short-ms``; a step passes with 0 failed calls (sipp), every record
    completed and >= 97% of the calls' RTP frames sent. The highest passing rate and the first failing one are reported.
(b) Concurrency: levels of ``--levels`` long calls, started at ``--ramp`` per second;
    once all are up, a window of ``--window`` seconds measures the server's CPU, RSS and
    the RTP frames it sent against the 50 per second each call should get. A level
    passes with 0 failed calls, every record completed, >= 97% of the frames sent and
    the server below 95% of a core (its event loop is one thread).
(c) Per call: process CPU seconds per call (a), % of a core and RSS per concurrent
    call (b), from /proc (utime + stime, VmRSS).

    flock /tmp/cw-bench.lock .venv/bin/python bench/sip_calls.py

Prints the tables and replaces this benchmark's section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from doc_section import write_section

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import free_port  # noqa: E402
from tests.e2e.serverproc import ServerProcess  # noqa: E402
from tests.e2e.test_sip_peers import pcap_dir  # noqa: E402
from tests.support.sip_load import (  # noqa: E402
    LOAD_PATHWAY,
    ProcessSample,
    SippLoad,
    SippStats,
    server_env,
)

DOC = REPO / "docs" / "benchmarks.md"
START = "<!-- bench:sip_calls:start -->"
END = "<!-- bench:sip_calls:end -->"
COMMAND = "flock /tmp/cw-bench.lock .venv/bin/python bench/sip_calls.py"
RTP_PORTS = (51000, 58999)  # 4,000 calls' worth (RTP + RTCP each)
MAX_CALLS = 1000
FRAMES_PER_SECOND = 50  # 20 ms G.711 frames
LISTEN_S = 2.0  # the scenario's listening pause before the caller speaks
SENT_PASS = 0.97
CPU_PASS = 0.95


@dataclass
class Sides:
    """The server process, its API, the speech server and sipp's working directory."""

    server: ServerProcess
    api: httpx.Client
    sip_port: int
    pathway: str
    speech: subprocess.Popen[bytes]
    workdir: Path
    numbers: int = 0

    def number(self) -> str:
        """A fresh inbound number for a step: its calls are listed apart."""
        self.numbers += 1
        number = f"+1555030{self.numbers:04d}"
        assert self.api.post("/v1/inbound/insert", json={"numbers": [number]}).is_success
        updated = self.api.post(f"/v1/inbound/{number}", json={"pathway_id": self.pathway})
        assert updated.is_success, updated.text
        return number

    def sample(self) -> ProcessSample:
        assert self.server.proc is not None
        return ProcessSample.of(self.server.proc.pid)

    def metrics(self) -> str:
        return self.api.get("/metrics").text

    def calls(self, number: str) -> list[dict[str, Any]]:
        response = self.api.get(
            "/v1/calls", params={"inbound": "true", "to_number": number, "limit": 1000}
        )
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()["calls"]
        return found

    def settle(self, number: str, expected: int, timeout: float = 60.0) -> dict[str, int]:
        """Wait for ``expected`` records of ``number`` to finish; their statuses."""
        deadline = time.monotonic() + timeout
        found: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            found = self.calls(number)
            if len(found) >= expected and all(c["completed"] for c in found):
                break
            time.sleep(0.5)
        statuses: dict[str, int] = {}
        for call in found:
            statuses[call["status"]] = statuses.get(call["status"], 0) + 1
        return statuses


def metric(text: str, name: str, label: str = "") -> float:
    pattern = rf"^{name}{{{label}}} (\S+)$" if label else rf"^{name} (\S+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def dropped(text: str) -> int:
    return int(
        sum(
            float(v)
            for v in re.findall(
                r"^callwright_rtp_packets_dropped_total\{[^}]*\} (\S+)$", text, re.MULTILINE
            )
        )
    )


def start_sipp(sides: Sides, load: SippLoad, stats: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        load.args(stats),
        cwd=sides.workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def sipp_load(sides: Sides, number: str, **kwargs: Any) -> SippLoad:
    return SippLoad(
        sip_port=sides.sip_port,
        number=number,
        local_port=free_port(),
        media_port=free_port(),
        **kwargs,
    )


# -- (a) calls per second ------------------------------------------------------------------
@dataclass
class RateStep:
    rate: float
    calls: int
    successful: int
    failed: int
    statuses: dict[str, int]
    cpu_per_call: float
    cpu_share: float  # server CPU over the step, cores
    sent_ratio: float
    response_ms: float

    @property
    def passed(self) -> bool:
        # sipp's calls succeed while the server's audio falls behind (it skips frames
        # rather than send them late): a step also needs the frames sent.
        return (
            self.failed == 0
            and self.statuses == {"completed": self.calls}
            and self.sent_ratio >= SENT_PASS
        )


def rate_step(sides: Sides, rate: float, seconds: float, hold_ms: int) -> RateStep:
    number = sides.number()
    calls = max(1, round(rate * seconds))
    load = sipp_load(
        sides, number, calls=calls, rate=rate, limit=MAX_CALLS, hold_ms=hold_ms, timeout_s=300
    )
    stats_path = sides.workdir / f"rate-{rate:g}.csv"
    before, metrics_before, started = sides.sample(), sides.metrics(), time.monotonic()
    sipp = start_sipp(sides, load, stats_path)
    sipp.wait(timeout=seconds + hold_ms / 1000 + 320)
    elapsed = time.monotonic() - started
    after, metrics_after = sides.sample(), sides.metrics()
    stats = SippStats.read(stats_path)
    statuses = sides.settle(number, calls)
    call_seconds = LISTEN_S + hold_ms / 1000
    sent = metric(metrics_after, "callwright_rtp_packets_total", 'direction="sent"') - metric(
        metrics_before, "callwright_rtp_packets_total", 'direction="sent"'
    )
    cpu = after.cpu_seconds - before.cpu_seconds
    return RateStep(
        rate=rate,
        calls=calls,
        successful=stats.successful,
        failed=stats.failed + (calls - stats.successful - stats.failed),
        statuses=statuses,
        cpu_per_call=cpu / calls,
        cpu_share=cpu / elapsed,
        sent_ratio=sent / (calls * call_seconds * FRAMES_PER_SECOND),
        response_ms=stats.response_ms,
    )


# -- (b) concurrent calls --------------------------------------------------------------------
@dataclass
class Level:
    calls: int
    successful: int
    failed: int
    statuses: dict[str, int]
    up: int  # live calls the server reported at the window's start
    cpu_share: float
    rss_delta: int
    sent_ratio: float
    rtp_dropped: int

    @property
    def passed(self) -> bool:
        return (
            self.failed == 0
            and self.statuses == {"completed": self.calls}
            and self.sent_ratio >= SENT_PASS
            and self.cpu_share < CPU_PASS
        )


def level(sides: Sides, calls: int, ramp: float, window: float) -> Level:
    number = sides.number()
    ramp_s = calls / ramp
    hold_ms = int((ramp_s + window + 8) * 1000)
    load = sipp_load(
        sides, number, calls=calls, rate=ramp, limit=calls, hold_ms=hold_ms, timeout_s=600
    )
    stats_path = sides.workdir / f"level-{calls}.csv"
    idle = sides.sample()
    sipp = start_sipp(sides, load, stats_path)
    # The window opens once every call is up (the live-calls gauge) and the caller
    # speech has started on the last one.
    deadline = time.monotonic() + ramp_s + 30
    up = 0
    while time.monotonic() < deadline and sipp.poll() is None:
        up = int(metric(sides.metrics(), "callwright_sip_live_calls"))
        if up >= calls:
            break
        time.sleep(0.25)
    time.sleep(LISTEN_S)
    m0, s0, t0 = sides.metrics(), sides.sample(), time.monotonic()
    time.sleep(window)
    m1, s1, t1 = sides.metrics(), sides.sample(), time.monotonic()
    sipp.wait(timeout=hold_ms / 1000 + 600)
    stats = SippStats.read(stats_path)
    statuses = sides.settle(number, calls)
    sent = metric(m1, "callwright_rtp_packets_total", 'direction="sent"') - metric(
        m0, "callwright_rtp_packets_total", 'direction="sent"'
    )
    return Level(
        calls=calls,
        successful=stats.successful,
        failed=stats.failed + (calls - stats.successful - stats.failed),
        statuses=statuses,
        up=up,
        cpu_share=(s1.cpu_seconds - s0.cpu_seconds) / (t1 - t0),
        rss_delta=s1.rss_bytes - idle.rss_bytes,
        sent_ratio=sent / (calls * (t1 - t0) * FRAMES_PER_SECOND),
        rtp_dropped=dropped(m1) - dropped(m0),
    )


# -- set-up ----------------------------------------------------------------------------------
def start(data: Path) -> Sides:
    pcaps = pcap_dir()
    if shutil.which("sipp") is None or pcaps is None:
        raise SystemExit("needs sipp and its sample captures (apt-get install sip-tester)")
    workdir = data / "sipp"
    workdir.mkdir()
    (workdir / "pcap").symlink_to(pcaps, target_is_directory=True)
    speech_port = free_port()
    speech = subprocess.Popen(
        [sys.executable, "-m", "tests.support.speech_server", "--port", str(speech_port)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{speech_port}/stats", timeout=1)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    sip_port = free_port()
    server = ServerProcess(
        data / "server",
        env_overrides=server_env(
            sip_port, RTP_PORTS, f"http://127.0.0.1:{speech_port}/v1", max_calls=MAX_CALLS
        ),
    ).start(timeout=60)
    api = httpx.Client(
        base_url=server.url, headers={"authorization": server.initial_key()}, timeout=60
    )
    created = api.post("/v1/pathway/create", json=LOAD_PATHWAY)
    created.raise_for_status()
    return Sides(server, api, sip_port, created.json()["pathway_id"], speech, workdir)


def warm_up(sides: Sides) -> None:
    """One call long enough for several caller turns: the speech back-ends and the
    embeddings load, and the pathway's option texts are embedded (cached) once."""
    number = sides.number()
    load = sipp_load(sides, number, calls=1, rate=1, limit=1, hold_ms=15000, timeout_s=60)
    start_sipp(sides, load, sides.workdir / "warm.csv").wait(timeout=90)
    sides.settle(number, 1)


def machine() -> dict[str, str]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    sipp = subprocess.run(["sipp", "-v"], capture_output=True, text=True, check=False)
    version = re.search(r"SIPp v?(\S+)", sipp.stdout + sipp.stderr)
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{model}, nproc {os.cpu_count()}",
        "python": platform.python_version(),
        "sipp": version.group(1).rstrip(".,") if version else "?",
        "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "nofile": subprocess.run(
            ["sh", "-c", "ulimit -n"], capture_output=True, text=True, check=False
        ).stdout.strip(),
    }


# -- report ----------------------------------------------------------------------------------
def rate_table(steps: list[RateStep]) -> str:
    rows = [
        "| calls/s | calls | sipp ok / failed | records | server CPU (cores) "
        "| CPU s / call | RTP frames sent | INVITE->200 ms | |",
        "| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for s in steps:
        records = ", ".join(f"{v} {k}" for k, v in sorted(s.statuses.items()))
        rows.append(
            f"| {s.rate:g} | {s.calls} | {s.successful} / {s.failed} | {records} "
            f"| {s.cpu_share:.2f} | {s.cpu_per_call:.3f} | {100 * s.sent_ratio:.0f}% "
            f"| {s.response_ms:.0f} | {'pass' if s.passed else 'FAIL'} |"
        )
    return "\n".join(rows)


def level_table(levels: list[Level]) -> str:
    rows = [
        "| concurrent calls | up at window | sipp ok / failed | records | server CPU (cores) "
        "| % core / call | RSS delta | RSS / call | RTP frames sent | RTP dropped | |",
        "| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for lv in levels:
        records = ", ".join(f"{v} {k}" for k, v in sorted(lv.statuses.items()))
        rows.append(
            f"| {lv.calls} | {lv.up} | {lv.successful} / {lv.failed} | {records} "
            f"| {lv.cpu_share:.2f} | {100 * lv.cpu_share / lv.calls:.2f}% "
            f"| {lv.rss_delta / 2**20:.0f} MB | {lv.rss_delta / lv.calls / 2**20:.2f} MB "
            f"| {100 * lv.sent_ratio:.0f}% | {lv.rtp_dropped} | {'pass' if lv.passed else 'FAIL'} |"
        )
    return "\n".join(rows)


def verdict(steps: list[RateStep], levels: list[Level]) -> str:
    passed = [s.rate for s in steps if s.passed]
    broke = next((s.rate for s in steps if not s.passed), None)
    held = [lv.calls for lv in levels if lv.passed]
    over = next((lv.calls for lv in levels if not lv.passed), None)
    rate = f"{max(passed):g} calls/s" if passed else "none of the steps"
    rate += f" (first failing step: {broke:g}/s)" if broke is not None else " (no step failed)"
    conc = f"{max(held)} concurrent calls" if held else "none of the levels"
    conc += f" (first failing level: {over})" if over is not None else " (no level failed)"
    return f"Sustained with zero failures: {rate}; {conc}."


def section(
    steps: list[RateStep], levels: list[Level], facts: dict[str, str], opts: argparse.Namespace
) -> str:
    return f"""{START}
## SIP calls: rate, concurrency, CPU and memory per call (`bench/sip_calls.py`)

One `callwright serve` process (SQLite store, uvicorn, one event loop) answers an
inbound number with a three-node pathway in the embedded mode (no LLM: MiniLM
embeddings choose the branch on each caller turn; `tests/support/sip_load.py`). Its
speech goes through the real OpenAI-compatible back-ends to a scripted loopback speech
server in another process (`tests/support/speech_server.py`: STT answers a fixed line,
TTS speaks tones), so no Whisper or Piper inference is measured: these are the
platform's own costs (SIP, RTP, G.711, jitter buffer, Silero VAD, the conversation loop,
pathway steps, the call record). sipp places the calls (`tests/e2e/sip/uac_load.xml`):
each caller listens 2 s, then sends sipp's 7 s G.711 speech capture; the agent speaks
its greeting and answers the caller's turn. Server settings: `CALLWRIGHT_SIP_MAX_CALLS`
= `CALLWRIGHT_MAX_CONCURRENT_CALLS` = `CALLWRIGHT_MAX_CALLS_PER_ORG` = {MAX_CALLS},
`CALLWRIGHT_RTP_PORTS` = {RTP_PORTS[0]}-{RTP_PORTS[1]}. `callwright serve` loads and runs the
models at start; one warm-up call before measuring makes sure they are ready.

(a) Rate: {opts.step_seconds:g} s of calls at each rate, each call {LISTEN_S + opts.short_ms / 1000:g} s
long; a step passes with 0 failed calls, every record `completed` and >= {100 * SENT_PASS:.0f}% of
the RTP frames sent: what the server sent against 50 frames per second per call over
the calls' length (a frame the server skips because it fell behind counts against it;
past saturation sipp's calls still all succeed, but the agent's audio breaks up).
(b) Concurrency: long calls started at {opts.ramp:g}/s; when all are up, a {opts.window:g} s
window measures the server's CPU (utime + stime from /proc, 1.00 = one core; the
event loop is one thread), its RSS against the idle server, and the frames sent. A level
passes with 0 failures, every record completed, >= {100 * SENT_PASS:.0f}% of frames sent and CPU below
{CPU_PASS:.2f} of a core.

{verdict(steps, levels)}

Command: `{COMMAND}`

Machine: {facts["cpu"]}; Python {facts["python"]}; sipp {facts["sipp"]}; `ulimit -n`
{facts["nofile"]}. Run: {facts["date"]}, load average at start {facts["load"]}. sipp (one
thread per playing capture), the speech server and other helpers' test runs shared the
two cores with the server, so the figures are lower bounds for a dedicated machine.

{rate_table(steps)}

{level_table(levels)}
{END}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="2,4,6,8,10,12,15,20", help="calls/s steps")
    parser.add_argument("--step-seconds", type=float, default=15.0)
    parser.add_argument("--short-ms", type=int, default=3000, help="-d of the rate steps")
    parser.add_argument("--levels", default="20,30,40,50,75,100,150", help="concurrent calls")
    parser.add_argument("--ramp", type=float, default=10.0, help="calls/s while ramping")
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--no-doc", action="store_true", help="print only")
    opts = parser.parse_args()
    facts = machine()
    steps: list[RateStep] = []
    levels: list[Level] = []
    with tempfile.TemporaryDirectory(prefix="cw-sip-bench-") as tmp:
        sides = start(Path(tmp))
        try:
            warm_up(sides)
            for rate in (float(r) for r in opts.rates.split(",")):
                step = rate_step(sides, rate, opts.step_seconds, opts.short_ms)
                steps.append(step)
                print(rate_table([step]).splitlines()[-1], flush=True)
                if not step.passed:
                    break
            for calls in (int(n) for n in opts.levels.split(",")):
                found = level(sides, calls, opts.ramp, opts.window)
                levels.append(found)
                print(level_table([found]).splitlines()[-1], flush=True)
                if not found.passed:
                    break
        finally:
            sides.api.close()
            sides.server.stop()
            sides.speech.terminate()
            sides.speech.wait(timeout=10)
        if "Traceback" in sides.server.log():
            print(sides.server.log()[-3000:], file=sys.stderr)
    text = section(steps, levels, facts, opts)
    print(text)
    if not opts.no_doc:
        write_section(DOC, START, END, text)


if __name__ == "__main__":
    main()
