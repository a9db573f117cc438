"""API throughput: ``GET /v1/calls/{id}`` and ``POST /v1/calls`` requests per second.

One real server process (``callwright serve``: uvicorn, one worker, uvloop + httptools,
its dispatcher running), on a SQLite file and on PostgreSQL, measured in the same run as
a bare FastAPI app whose handlers return a constant ``JSONResponse`` (the framework
ceiling) under the same uvicorn settings. The ratio to the ceiling is the figure that
matters; absolute numbers depend on the machine.

Load: a separate process (``--load``), an asyncio + uvloop client with raw HTTP/1.1
keep-alive connections, one request in flight per connection (as wrk does). With two
or more CPUs the server is pinned to CPU 0 and the load generator to CPU 1, so they do
not share a core; PostgreSQL is not pinned. Both processes' CPU use is reported: a
server near 100% is the bottleneck, a load generator near 100% would mean the client is.

    flock /tmp/cw-bench.lock .venv/bin/python bench/api_rps.py

Prints a markdown table and replaces this benchmark's section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from doc_section import write_section
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"
START = "<!-- bench:api_rps:start -->"
END = "<!-- bench:api_rps:end -->"
COMMAND = "make bench  # = flock /tmp/cw-bench.lock .venv/bin/python bench/api_rps.py"
PG_ADMIN = os.environ.get("CALLWRIGHT_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SEND_BODY = {
    "phone_number": "+14155550123",
    "task": "Confirm tomorrow's 3 pm appointment and thank the customer.",
    "metadata": {"source": "bench"},
}
CONSTANT = {"status": "ok", "message": "constant"}
# The GETs the 50% target is about: what a polling client reads with default settings.
TARGET_CASES = ("GET /v1/calls/{id} (finished)", "GET /v1/calls/{id} (live)")


# -- the ceiling server (bench/api_rps.py --ceiling PORT) --------------------------------
def serve_ceiling(port: int) -> None:
    import uvicorn

    app = FastAPI()

    @app.get("/constant")
    async def get_constant() -> JSONResponse:
        return JSONResponse(CONSTANT)

    @app.post("/constant")
    async def post_constant(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse(CONSTANT)

    # The settings `callwright serve` passes to uvicorn.
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, server_header=False
    )


# -- the load generator (bench/api_rps.py --load ...) ------------------------------------
async def _connection(
    host: str, port: int, request: bytes, warm_until: float, stop_at: float, out: dict[str, Any]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    statuses: dict[int, int] = out["statuses"]
    latencies: list[float] = out["latencies"]
    try:
        while True:
            sent = time.perf_counter()
            if sent >= stop_at:
                break
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            if match is None:
                raise RuntimeError(f"response without content-length: {head!r}")
            await reader.readexactly(int(match.group(1)))
            done = time.perf_counter()
            if sent >= warm_until:
                status = int(head[9:12])
                statuses[status] = statuses.get(status, 0) + 1
                latencies.append(done - sent)
    finally:
        writer.close()


async def _load(args: argparse.Namespace) -> dict[str, Any]:
    body = args.body.encode()
    lines = [f"{args.method} {args.path} HTTP/1.1", f"host: {args.host}:{args.port}"]
    lines += args.header
    if body or args.method == "POST":
        lines += ["content-type: application/json", f"content-length: {len(body)}"]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    warm_until = time.perf_counter() + args.warmup
    stop_at = warm_until + args.duration
    out: dict[str, Any] = {"statuses": {}, "latencies": []}
    cpu0 = time.process_time()
    await asyncio.gather(
        *(
            _connection(args.host, args.port, request, warm_until, stop_at, out)
            for _ in range(args.connections)
        )
    )
    latencies = sorted(out["latencies"])
    return {
        "requests": len(latencies),
        "rps": len(latencies) / args.duration,
        "statuses": out["statuses"],
        "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else None,
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)] if latencies else None,
        "cpu_seconds": time.process_time() - cpu0,
    }


def run_load(args: argparse.Namespace) -> None:
    import uvloop

    print(json.dumps(uvloop.run(_load(args))))


# -- the orchestrator --------------------------------------------------------------------
@dataclass
class Result:
    name: str
    backend: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_cpu: float
    load_cpu: float
    ceiling: str


def cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def pin(pid: int, cpu: int | None) -> None:
    if cpu is not None:
        for tid in os.listdir(f"/proc/{pid}/task"):  # every thread, not only the main one
            os.sched_setaffinity(int(tid), {cpu})


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not ready:\n{log.read_text(errors='replace')}")


class Server:
    """A server subprocess pinned to one CPU."""

    def __init__(self, argv: list[str], env: dict[str, str], health: str, cpu: int | None) -> None:
        self.log = Path(tempfile.mkstemp(prefix="cw-bench-", suffix=".log")[1])
        self.proc = subprocess.Popen(
            argv, env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT
        )
        wait_healthy(health, self.proc, self.log)
        pin(self.proc.pid, cpu)  # after start-up: the threads exist by now

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.unlink(missing_ok=True)


def measure(
    name: str,
    backend: str,
    server: Server,
    port: int,
    method: str,
    path: str,
    headers: list[str],
    body: str,
    opts: argparse.Namespace,
    load_cpu: int | None,
    ceiling: str = "",
) -> Result:
    argv = [sys.executable, __file__, "--load", "--port", str(port), "--method", method]
    argv += ["--path", path, "--body", body, "--connections", str(opts.connections)]
    argv += ["--warmup", str(opts.warmup), "--duration", str(opts.duration)]
    for header in headers:
        argv += ["--header", header]
    load = subprocess.Popen(argv, stdout=subprocess.PIPE)
    pin(load.pid, load_cpu)
    time.sleep(opts.warmup)
    before = cpu_seconds(server.proc.pid)
    time.sleep(opts.duration)
    used = cpu_seconds(server.proc.pid) - before
    out, _ = load.communicate(timeout=opts.duration + 60)
    if load.returncode != 0:
        raise RuntimeError(f"load generator failed on {name} ({backend})")
    stats = json.loads(out)
    expected = 401 if "(401)" in name else 200
    errors = sum(n for status, n in stats["statuses"].items() if int(status) != expected)
    return Result(
        name,
        backend,
        stats["rps"],
        stats["p50_ms"] or 0.0,
        stats["p99_ms"] or 0.0,
        errors,
        used / opts.duration,
        stats["cpu_seconds"] / (opts.duration + opts.warmup),
        ceiling,
    )


async def pg_database(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def wait_finished(base: str, key: str, call_id: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = httpx.get(f"{base}/v1/calls/{call_id}", headers={"authorization": key})
        if got.json().get("completed"):
            return
        time.sleep(0.1)
    raise RuntimeError(f"call {call_id} did not finish")


def bench_callwright(
    backend: str,
    opts: argparse.Namespace,
    server_cpu: int | None,
    load_cpu: int | None,
    cache: bool = True,
) -> list[Result]:
    """The GET and POST cases against one server; ``cache=False``: the same server with
    its call cache off, GETs of a live call only (reads go to the store, shared when
    concurrent)."""
    data_dir = Path(tempfile.mkdtemp(prefix="cw-bench-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLWRIGHT_")}
    env.update(CALLWRIGHT_DATA_DIR=str(data_dir), CALLWRIGHT_PORT=str(port))
    if not cache:
        env.update(CALLWRIGHT_CALL_CACHE_SECONDS="0", CALLWRIGHT_CALL_CACHE_LIVE_SECONDS="0")
    pg_name = None
    if backend == "postgresql":
        pg_name = f"cw_bench_{uuid.uuid4().hex[:8]}"
        asyncio.run(pg_database(f'CREATE DATABASE "{pg_name}"'))
        url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        env["CALLWRIGHT_DATABASE_URL"] = f"{url}/{pg_name}"
    base = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "callwright.cli.main", "serve"]
    server = Server(argv, env, base + "/healthz", server_cpu)
    try:
        key = (data_dir / "initial-api-key").read_text().strip()
        auth = [f"authorization: {key}"]
        sent = httpx.post(base + "/v1/calls", json=SEND_BODY, headers={"authorization": key})
        call_id = sent.raise_for_status().json()["call_id"]
        # A call scheduled far ahead stays queued: a live call, which the server keeps
        # in memory for only a fraction of a second (call_cache_live_seconds).
        later = {**SEND_BODY, "start_time": "2099-01-01 09:00:00 +00:00"}
        queued = httpx.post(base + "/v1/calls", json=later, headers={"authorization": key})
        queued_id = queued.raise_for_status().json()["call_id"]
        wait_finished(base, key, call_id)
        body = json.dumps(SEND_BODY)

        def case(name: str, method: str, path: str, headers: list[str], body: str = "") -> Result:
            # Each case is set against the ceiling's case of the same method.
            return measure(
                name, backend, server, port, method, path, headers, body, opts, load_cpu, method
            )

        if not cache:
            return [
                case(
                    "GET /v1/calls/{id} (live, cache off)",
                    "GET",
                    f"/v1/calls/{queued_id}",
                    auth,
                )
            ]
        # The same route refused before any database work: middlewares, routing, error
        # path. The gap between it and the authorised GET is the store's share.
        unauthorised = [case("GET /v1/calls/{id}, no key (401)", "GET", f"/v1/calls/{call_id}", [])]
        return [
            *(unauthorised if backend == "sqlite" else []),
            case("GET /v1/calls/{id} (finished)", "GET", f"/v1/calls/{call_id}", auth),
            case("GET /v1/calls/{id} (live)", "GET", f"/v1/calls/{queued_id}", auth),
            case("POST /v1/calls", "POST", "/v1/calls", auth, body),
        ]
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
        if pg_name:
            asyncio.run(pg_database(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))


def bench_ceiling(
    opts: argparse.Namespace, server_cpu: int | None, load_cpu: int | None
) -> list[Result]:
    port = free_port()
    argv = [sys.executable, __file__, "--ceiling", str(port)]
    server = Server(argv, dict(os.environ), f"http://127.0.0.1:{port}/constant", server_cpu)
    body = json.dumps(SEND_BODY)
    try:
        return [
            measure("GET constant", "-", server, port, "GET", "/constant", [], "", opts, load_cpu),
            measure(
                "POST constant", "-", server, port, "POST", "/constant", [], body, opts, load_cpu
            ),
        ]
    finally:
        server.stop()


def machine() -> dict[str, str]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    import fastapi
    import uvicorn

    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{model}, nproc {os.cpu_count()}",
        "python": platform.python_version(),
        "stack": f"fastapi {fastapi.__version__}, uvicorn {uvicorn.__version__}",
        "postgresql": pg_version(),
        "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
    }


def pg_version() -> str:
    async def get() -> str:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    return asyncio.run(get())


def table(results: list[Result]) -> str:
    ceilings = {r.name.split()[0]: r.rps for r in results if r.backend == "-"}
    rows = [
        "| case | store | req/s | p50 ms | p99 ms | unexpected status | server CPU | load CPU | of ceiling |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        ratio = f"{100 * r.rps / ceilings[r.ceiling]:.0f}%" if r.ceiling in ceilings else "100%"
        rows.append(
            f"| {r.name} | {r.backend} | {r.rps:,.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} "
            f"| {r.errors} | {100 * r.server_cpu:.0f}% | {100 * r.load_cpu:.0f}% | {ratio} |"
        )
    return "\n".join(rows)


def section(results: list[Result], facts: dict[str, str], opts: argparse.Namespace) -> str:
    ceiling = next(c.rps for c in results if c.name == "GET constant")
    get_ratios = [
        f"{r.backend} {r.name.split('(')[1].rstrip(')')} {100 * r.rps / ceiling:.0f}%"
        for r in results
        if r.name.startswith("GET /v1/calls/{id} (")
    ]
    return f"""{START}
## API requests per second (`bench/api_rps.py`)

`GET /v1/calls/{{id}}` and `POST /v1/calls` against one `callwright serve` process
(uvicorn, one worker; dispatcher running, no telephony route, so each sent call is
queued then failed by the dispatcher, as on a fresh install), next to a bare FastAPI
app whose handlers return a constant under the same uvicorn settings (the framework
ceiling). Load: a separate asyncio + uvloop process, {opts.connections} keep-alive
connections, one request in flight on each; {opts.warmup:g} s warm-up, then
{opts.duration:g} s measured per case. The server is pinned to one CPU and the load
generator to another; PostgreSQL (local, unpinned) shares the machine. "server CPU" is
the server process's CPU time over the measured window (100% = one core saturated).
"finished" reads a call that has ended; "live" a call still queued (scheduled for
later). Both are what polling clients read, and both are answered from the server's
call cache (`store/call_cache.py`): this process's own writes invalidate an entry at
once, and what another process changed shows within `CALLWRIGHT_CALL_CACHE_SECONDS`
(2 s, finished calls) or `CALLWRIGHT_CALL_CACHE_LIVE_SECONDS` (0.25 s, live calls).
"cache off" is the live GET on a second server started with both set to 0: nothing is
kept, so reads go to the store (SQLAlchemy session, one SELECT, the call object built
and encoded), but requests that arrive while a read of the same call is in flight share
it (here 32 connections poll one call). With one store read per request, before that
sharing, the same case gave about 1,000 req/s (6-7% of the ceiling).
Target: GET at least 50% of the ceiling (this run: {", ".join(get_ratios)}).

Command: `{COMMAND}`

Machine: {facts["cpu"]}; Python {facts["python"]}; {facts["stack"]};
PostgreSQL {facts["postgresql"]}. Run: {facts["date"]}, load average at start
{facts["load"]} (the machine is shared; figures vary by some 10-20% between runs).

{table(results)}
{END}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ceiling", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--method", default="GET", help=argparse.SUPPRESS)
    parser.add_argument("--path", default="/", help=argparse.SUPPRESS)
    parser.add_argument("--body", default="", help=argparse.SUPPRESS)
    parser.add_argument("--header", action="append", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per case")
    parser.add_argument("--no-write", action="store_true", help="do not touch the docs")
    opts = parser.parse_args()
    if opts.ceiling:
        serve_ceiling(opts.ceiling)
        return
    if opts.load:
        run_load(opts)
        return
    available = cpus()
    server_cpu, load_cpu = (available[0], available[1]) if len(available) >= 2 else (None, None)
    facts = machine()
    results = bench_ceiling(opts, server_cpu, load_cpu)
    for backend in ("sqlite", "postgresql"):
        results += bench_callwright(backend, opts, server_cpu, load_cpu)
        results += bench_callwright(backend, opts, server_cpu, load_cpu, cache=False)
    print(table(results))
    if not opts.no_write:
        write_section(DOC, START, END, section(results, facts, opts))
        print(f"\nwritten to {DOC.relative_to(REPO)}")
    slow = [r for r in results if r.name in TARGET_CASES]
    ceiling = next(r.rps for r in results if r.name == "GET constant")
    if any(r.rps < 0.5 * ceiling for r in slow):
        print("GET is under 50% of the ceiling", file=sys.stderr)


if __name__ == "__main__":
    main()
