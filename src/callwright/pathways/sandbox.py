"""Run a Custom Code node's JavaScript in an embedded V8 (mini-racer), safely.

``run_code(code, variables, now_ms=...)`` blocks until the code finishes or hits a limit;
call it from a worker thread (``asyncio.to_thread``). It never raises: every outcome is a
:class:`SandboxResult`, failures with an ``error_kind`` and a clear message.

The code follows the platform's shape (reference §3.6)::

    export default {
      async fetch(request, env, ctx) {
        const vars = await request.json();       // the call's variables
        return Response.json({ total: vars.a + vars.b });   // keys become variables
      }
    };

A snippet without ``export default`` is run as the body of ``async function (input)``
and returns a plain object.

What the code can reach: the JavaScript language, ``Intl``, ``console`` (captured into
``logs``), ``Request``/``Response`` stand-ins, and ``Date`` pinned to ``now_ms`` (the
engine's clock, never the host's). What it cannot: ``require``, ``process``, ``fetch``,
timers, WebAssembly, shared memory, files, the network, the environment.

Why a child process per run: in-process, V8 aborts the whole process on some single
huge allocations ("invalid table size", "invalid size error"), and async code that loops
after an ``await`` runs outside any timeout mini-racer can enforce. A child confines both
(``_sandbox_child.py`` documents the layered limits); the price is about 0.3 s of start-up
per run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

CHILD = Path(__file__).with_name("_sandbox_child.py")
# Python and V8 start-up on a loaded machine, on top of the code's own time limit.
STARTUP_GRACE_S = 10.0
# The child gets no inherited environment: no secrets or credentials reach it.
_CHILD_ENV = {"LC_ALL": "C.UTF-8"}

ErrorKind = Literal["timeout", "memory", "syntax", "runtime", "invalid_result", "internal"]
_KINDS: frozenset[str] = frozenset(
    {"timeout", "memory", "syntax", "runtime", "invalid_result", "internal"}
)


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    timeout_s: float = 2.0
    max_memory_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SandboxResult:
    ok: bool
    variables: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_kind: ErrorKind | None = None
    logs: tuple[str, ...] = ()


def run_code(
    code: str,
    variables: Mapping[str, Any],
    *,
    now_ms: int,
    limits: SandboxLimits | None = None,
) -> SandboxResult:
    """Run ``code`` with ``variables`` as its request payload; see the module docs."""
    limits = limits or SandboxLimits()
    try:
        job = json.dumps(
            {
                "code": code,
                "input_json": json.dumps(dict(variables), default=str, ensure_ascii=False),
                "now_ms": int(now_ms),
                "timeout_s": float(limits.timeout_s),
                "max_memory_bytes": int(limits.max_memory_bytes),
            }
        )
    except (TypeError, ValueError) as exc:
        return _failure("internal", f"variables are not JSON: {exc}")
    try:
        proc = subprocess.run(
            [sys.executable, "-I", str(CHILD)],
            input=job.encode("utf-8"),
            capture_output=True,
            timeout=limits.timeout_s + STARTUP_GRACE_S,
            env=_CHILD_ENV,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return _failure("timeout", f"Custom Code ran longer than {limits.timeout_s:g} s")
    except OSError as exc:
        return _failure("internal", f"could not start the sandbox: {exc}")
    return _read(proc, limits)


def _read(proc: subprocess.CompletedProcess[bytes], limits: SandboxLimits) -> SandboxResult:
    line = proc.stdout.decode("utf-8", "replace").strip().splitlines()
    try:
        out = json.loads(line[-1]) if line else None
    except ValueError:
        out = None
    if not isinstance(out, dict):
        stderr = proc.stderr.decode("utf-8", "replace")
        if "out of memory" in stderr.lower() or "invalid size" in stderr.lower():
            return _failure("memory", f"Custom Code used more than {limits.max_memory_bytes} bytes")
        return _failure("internal", f"sandbox exited with status {proc.returncode}")
    kind = out.get("kind")
    logs = tuple(str(item) for item in out.get("logs") or ())
    if kind is None and out.get("ok") is True and isinstance(out.get("variables"), dict):
        return SandboxResult(ok=True, variables=out["variables"], logs=logs)
    error_kind: ErrorKind = kind if kind in _KINDS else "internal"
    return SandboxResult(ok=False, error=str(out.get("error")), error_kind=error_kind, logs=logs)


def _failure(kind: ErrorKind, message: str) -> SandboxResult:
    return SandboxResult(ok=False, error=message, error_kind=kind)
