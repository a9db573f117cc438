"""The Custom Code sandbox: the platform's code shape works; loops, huge allocations and
host access are refused with clear errors."""

from __future__ import annotations

import pytest

from callwright.pathways import SandboxLimits, run_code

NOW_MS = 1_700_000_000_000  # 2023-11-14T22:13:20Z
FAST = SandboxLimits(timeout_s=0.5)


def test_platform_shaped_code_reads_and_sets_variables() -> None:
    code = """
    export default {
      async fetch(request, env, ctx) {
        const vars = await request.json();
        console.log('adding', vars.a, vars.b);
        return Response.json({ total: vars.a + vars.b, who: vars.name, nested: { ok: true } });
      }
    };
    """
    result = run_code(code, {"a": 2, "b": 3, "name": "Ada"}, now_ms=NOW_MS)
    assert result.ok, result.error
    assert result.variables == {"total": 5, "who": "Ada", "nested": {"ok": True}}
    assert result.logs == ("adding 2 3",)


def test_plain_body_and_pinned_clock() -> None:
    code = "return { double: input.n * 2, now: new Date().toISOString(), ms: Date.now() };"
    result = run_code(code, {"n": 21}, now_ms=NOW_MS)
    assert result.ok, result.error
    assert result.variables == {"double": 42, "now": "2023-11-14T22:13:20.000Z", "ms": NOW_MS}


def test_intl_and_explicit_dates_still_work() -> None:
    code = """
    export default async function (request) {
      const { when } = await request.json();
      const local = new Date(when).toLocaleString('en-US', { timeZone: 'America/Los_Angeles' });
      return new Response(JSON.stringify({ local }));
    }
    """
    result = run_code(code, {"when": "2026-01-10T18:00:00Z"}, now_ms=NOW_MS)
    assert result.ok, result.error
    assert result.variables == {"local": "1/10/2026, 10:00:00 AM"}


@pytest.mark.parametrize(
    "code",
    [
        "while (true) {}",
        "export default { async fetch() { await null; for (;;) {} } };",
    ],
    ids=["sync", "after-await"],
)
def test_infinite_loops_time_out(code: str) -> None:
    result = run_code(code, {}, now_ms=NOW_MS, limits=FAST)
    assert not result.ok
    assert result.error_kind == "timeout"
    assert "0.5 s" in (result.error or "")


@pytest.mark.parametrize(
    "code",
    [
        "const keep = []; for (;;) keep.push(new Array(100000).fill(1.5)); return {};",
        "const b = new ArrayBuffer(500 * 1024 * 1024); return { n: b.byteLength };",
        "const T = Uint8Array.prototype.constructor; const b = new T(500 * 1024 * 1024); b.fill(1); return {};",
        "const parts = []; for (let i = 0; i < 10; i++) parts.push(new Float64Array(8 * 1024 * 1024)); return {};",
    ],
    ids=["heap", "array-buffer", "typed-array", "many-buffers"],
)
def test_huge_allocations_hit_the_memory_limit(code: str) -> None:
    result = run_code(code, {}, now_ms=NOW_MS, limits=SandboxLimits(timeout_s=5.0))
    assert not result.ok
    assert result.error_kind == "memory", result.error


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (
            "const fs = require('fs'); return { x: fs.readFileSync('/etc/passwd', 'utf8') };",
            "require",
        ),
        ("return { env: process.env };", "process"),
        ("const r = await fetch('http://127.0.0.1:1/'); return { s: r.status };", "fetch"),
    ],
)
def test_no_host_access(code: str, name: str) -> None:
    result = run_code(code, {}, now_ms=NOW_MS, limits=FAST)
    assert not result.ok
    assert result.error_kind == "runtime"
    assert f"{name} is not defined" in (result.error or "")


def test_the_host_surface_is_absent() -> None:
    names = [
        "require",
        "process",
        "fetch",
        "setTimeout",
        "WebAssembly",
        "SharedArrayBuffer",
        "XMLHttpRequest",
        "Deno",
        "Bun",
        "module",
        "importScripts",
    ]
    code = f"return Object.fromEntries({names!r}.map((n) => [n, typeof globalThis[n]]));"
    result = run_code(code, {}, now_ms=NOW_MS, limits=FAST)
    assert result.ok, result.error
    assert set(result.variables.values()) == {"undefined"}


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("export default { fetch( {", "syntax"),
        ("return [1, 2];", "invalid_result"),
        ("await new Promise(() => {}); return {};", "runtime"),
        ("throw new Error('custom failure');", "runtime"),
        ("export default { hello: 1 };", "runtime"),
        ("return { big: 'x'.repeat(3 * 1024 * 1024) };", "runtime"),
    ],
)
def test_failures_are_results_not_crashes(code: str, kind: str) -> None:
    result = run_code(code, {}, now_ms=NOW_MS, limits=FAST)
    assert not result.ok
    assert result.error_kind == kind
    assert result.error


def test_unserialisable_variables_are_sent_as_text() -> None:
    result = run_code(
        "return { t: typeof input.when };", {"when": object()}, now_ms=NOW_MS, limits=FAST
    )
    assert result.ok and result.variables == {"t": "string"}
