"""Child process of ``sandbox.run_code``: runs one Custom Code snippet in a fresh V8
isolate and prints one JSON result line. Run as a script (``python -I``), never imported
by the server; it reads its job from stdin.

Limits, from the inside out:
- the isolate's heap limit (mini-racer ``set_hard_memory_limit``) stops ordinary
  allocation loops with a catchable error;
- a byte budget on ``ArrayBuffer``/typed arrays (their memory lives outside the heap),
  enforced by the prelude below;
- V8's ``--max-old-space-size`` and the process's ``RLIMIT_DATA`` stop what slips past
  both (a single giant allocation makes V8 abort: only this child dies);
- every eval has the remaining time as its timeout; async code that never yields is
  caught when the result is polled, and the process then exits at once, which kills the
  spinning isolate with it.
"""

from __future__ import annotations

import json
import os
import re
import resource
import sys
import time
from typing import Any

# V8 reserves its code range and heap cage up front; this is what it needs to start.
DATA_BASE_BYTES = 1024 * 1024 * 1024
MAX_OUTPUT_CHARS = 1024 * 1024

PRELUDE = r"""
(function () {
  'use strict';
  const G = globalThis;
  const LIMIT = %LIMIT%;
  const NOW = %NOW%;
  const MAX_OUT = %MAXOUT%;
  const define = (obj, key, value) =>
    Object.defineProperty(obj, key, { value, writable: false, configurable: false, enumerable: false });
  for (const name of ['WebAssembly', 'SharedArrayBuffer', 'Atomics', 'setTimeout', 'clearTimeout',
                      '__timer_manager']) {
    // mini-racer installs its timers with `var` (non-configurable, but writable).
    try { if (!delete G[name]) G[name] = undefined; } catch (e) { G[name] = undefined; }
  }
  try { if (G.Temporal) delete G.Temporal.Now; } catch (e) { /* absent */ }

  // Binary data lives outside the V8 heap, so the heap limit does not see it: charge it.
  let used = 0;
  const charge = (bytes) => {
    const n = Number(bytes);
    if (!(n > 0)) return;
    used += n;
    if (used > LIMIT) {
      throw new RangeError('sandbox memory limit: binary data over ' + LIMIT + ' bytes');
    }
  };
  const OrigArrayBuffer = ArrayBuffer;
  const guard = (name, size) => {
    const Orig = G[name];
    if (typeof Orig !== 'function') return;
    const P = new Proxy(Orig, {
      construct(target, args, newTarget) {
        charge(size(args, target));
        return Reflect.construct(target, args, newTarget === P ? target : newTarget);
      },
    });
    define(Orig.prototype, 'constructor', P);
    define(G, name, P);
  };
  guard('ArrayBuffer', (args) => {
    const options = args[1];
    const max = options && typeof options === 'object' ? Number(options.maxByteLength) || 0 : 0;
    return Math.max(Number(args[0]) || 0, max);
  });
  const typedSize = (args, T) => {
    const a = args[0];
    if (a === null || a === undefined) return 0;
    if (typeof a !== 'object') return (Number(a) || 0) * T.BYTES_PER_ELEMENT;
    if (a instanceof OrigArrayBuffer) return 0;
    const length = Number(a.length);
    return (length > 0 ? length : 0) * T.BYTES_PER_ELEMENT;
  };
  for (const name of ['Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array',
                      'Int32Array', 'Uint32Array', 'Float16Array', 'Float32Array', 'Float64Array',
                      'BigInt64Array', 'BigUint64Array']) {
    guard(name, typedSize);
  }
  const TypedArrayProto = Object.getPrototypeOf(Int8Array.prototype);
  for (const method of ['toReversed', 'toSorted', 'with']) {
    const original = TypedArrayProto[method];
    if (typeof original === 'function') {
      define(TypedArrayProto, method, function (...args) {
        charge(this.byteLength);
        return original.apply(this, args);
      });
    }
  }
  for (const method of ['transfer', 'transferToFixedLength']) {
    const original = OrigArrayBuffer.prototype[method];
    if (typeof original === 'function') {
      define(OrigArrayBuffer.prototype, method, function (length) {
        charge(length === undefined ? this.byteLength : length);
        return original.call(this, length);
      });
    }
  }

  // Time comes from the caller: `new Date()` and `Date.now()` read the call's now.
  const OrigDate = Date;
  const PinnedDate = new Proxy(OrigDate, {
    construct(target, args, newTarget) {
      return Reflect.construct(target, args.length ? args : [NOW],
                               newTarget === PinnedDate ? target : newTarget);
    },
    apply() { return new OrigDate(NOW).toString(); },
  });
  define(OrigDate, 'now', () => NOW);
  define(OrigDate.prototype, 'constructor', PinnedDate);
  define(G, 'Date', PinnedDate);

  const logs = [];
  const record = (...args) => {
    if (logs.length < 100) logs.push(args.map((a) => String(a)).join(' ').slice(0, 1000));
  };
  define(G, 'console', { log: record, info: record, warn: record, error: record, debug: record });

  class Request {
    constructor(body) {
      this._body = body;
      this.method = 'POST';
      this.url = 'https://custom-code.invalid/';
      this.headers = new Map([['content-type', 'application/json']]);
    }
    async json() { return JSON.parse(this._body); }
    async text() { return this._body; }
  }
  class Response {
    constructor(body, init) {
      this._body = body === undefined || body === null ? '' : String(body);
      const options = init || {};
      this.status = options.status === undefined ? 200 : options.status;
      this.headers = options.headers || {};
    }
    get ok() { return this.status >= 200 && this.status < 300; }
    async text() { return this._body; }
    async json() { return JSON.parse(this._body); }
    static json(data, init) { return new Response(JSON.stringify(data), init); }
  }
  define(G, 'Request', Request);
  define(G, 'Response', Response);

  const exportsObject = {};
  define(G, '__cw_exports', exportsObject);
  let outcome = { state: 'pending' };
  define(G, '__cw_start', (inputJson) => {
    const run = async () => {
      const main = exportsObject.default;
      if (exportsObject.plain) {
        const input = JSON.parse(inputJson);
        return await main(input, input);
      }
      const request = new Request(inputJson);
      const ctx = { waitUntil() {}, passThroughOnException() {} };
      if (typeof main === 'function') return await main(request, {}, ctx);
      if (main && typeof main.fetch === 'function') return await main.fetch(request, {}, ctx);
      throw new TypeError('Custom Code must export default { async fetch(request) { ... } }');
    };
    run()
      .then(async (value) => {
        const data = value instanceof Response ? await value.json() : value;
        outcome = { state: 'done', value: data };
      })
      .catch((error) => {
        outcome = { state: 'error', error: String(error && error.stack ? error.stack : error) };
      });
  });
  define(G, '__cw_poll', () => {
    let text;
    try {
      text = JSON.stringify({ state: outcome.state, value: outcome.value, error: outcome.error, logs });
    } catch (error) {
      return JSON.stringify({ state: 'error', error: 'result is not JSON: ' + error, logs });
    }
    if (text === undefined || text.length > MAX_OUT) {
      return JSON.stringify({ state: 'error', error: 'result larger than ' + MAX_OUT + ' characters', logs });
    }
    return text;
  });
})();
"""

_EXPORT_DEFAULT = re.compile(r"\bexport\s+default\b")
_EXPORT_NAMED = re.compile(
    r"^(\s*)export\s+(?=(?:async\s+)?(?:const|let|var|function|class)\b)", re.MULTILINE
)


def module_source(code: str) -> str:
    """The snippet as a classic script: ``export default X`` becomes an assignment; a
    snippet without one is the body of ``async function (input) {...}``."""
    if _EXPORT_DEFAULT.search(code):
        body = _EXPORT_DEFAULT.sub("__cw_exports.default =", code, count=1)
    else:
        body = (
            "__cw_exports.plain = true;\n"
            "__cw_exports.default = async function (input, variables) {\n"
            f"{code}\n}};"
        )
    return _EXPORT_NAMED.sub(r"\1", body)


def result(
    kind: str | None, *, variables: Any = None, error: str = "", logs: Any = ()
) -> dict[str, Any]:
    return {
        "ok": kind is None,
        "kind": kind,
        "variables": variables if kind is None else {},
        "error": error[:2000] if kind is not None else None,
        "logs": list(logs)[:100],
    }


def run(job: dict[str, Any]) -> dict[str, Any]:
    timeout_s = float(job["timeout_s"])
    max_memory = int(job["max_memory_bytes"])
    data_limit = DATA_BASE_BYTES + 2 * max_memory
    resource.setrlimit(resource.RLIMIT_DATA, (data_limit, data_limit))
    cpu_limit = int(timeout_s) + 10
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_limit, cpu_limit))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))

    from py_mini_racer import (
        JSEvalException,
        JSOOMException,
        JSParseException,
        JSTimeoutException,
        MiniRacer,
        init_mini_racer,
    )

    heap_mb = max(16, 2 * max_memory // (1024 * 1024))
    init_mini_racer(flags=["--single-threaded", f"--max-old-space-size={heap_mb}"])
    deadline = time.monotonic() + timeout_s
    racer = MiniRacer()
    racer.set_hard_memory_limit(max_memory)

    def remaining() -> float:
        return max(0.01, deadline - time.monotonic())

    prelude = (
        PRELUDE.replace("%LIMIT%", str(max_memory))
        .replace("%NOW%", str(int(job["now_ms"])))
        .replace("%MAXOUT%", str(MAX_OUTPUT_CHARS))
    )
    stage = "prelude"
    try:
        racer.eval(prelude, timeout_sec=remaining())
        stage = "load"
        racer.eval(module_source(str(job["code"])), timeout_sec=remaining())
        stage = "run"
        racer.eval(f"__cw_start({json.dumps(job['input_json'])})", timeout_sec=remaining())
        stage = "poll"
        raw = racer.eval("__cw_poll()", timeout_sec=remaining())
    except JSTimeoutException:
        return result("timeout", error=f"Custom Code ran longer than {timeout_s:g} s")
    except JSOOMException:
        return result("memory", error=f"Custom Code used more than {max_memory} bytes")
    except JSParseException as exc:
        return result("syntax", error=str(exc))
    except JSEvalException as exc:
        if racer.was_hard_memory_limit_reached():
            return result("memory", error=f"Custom Code used more than {max_memory} bytes")
        return result("runtime" if stage != "prelude" else "internal", error=str(exc))
    if racer.was_hard_memory_limit_reached():
        return result("memory", error=f"Custom Code used more than {max_memory} bytes")
    outcome = json.loads(str(raw))
    logs = outcome.get("logs") or []
    state = outcome.get("state")
    if state == "error":
        error = str(outcome.get("error"))
        kind = "memory" if "sandbox memory limit" in error else "runtime"
        return result(kind, error=error, logs=logs)
    if state != "done":
        return result(
            "runtime",
            error="Custom Code never finished: it waits for something that cannot happen "
            "here (timers and network are not available)",
            logs=logs,
        )
    value = outcome.get("value")
    if not isinstance(value, dict):
        return result(
            "invalid_result",
            error="Custom Code must return an object, e.g. Response.json({name: value})",
            logs=logs,
        )
    return result(None, variables=value, logs=logs)


def main() -> None:
    try:
        out = run(json.loads(sys.stdin.buffer.read()))
    except Exception as exc:
        out = result("internal", error=f"{type(exc).__name__}: {exc}")
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    # Skip interpreter teardown: an isolate still spinning in a microtask dies with us.
    os._exit(0)


if __name__ == "__main__":
    main()
