"""A real webhook receiver on 127.0.0.1 (stdlib HTTP server in a thread), switchable
between answering 200, 500, hanging, and redirecting; it records every request."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.conftest import free_port

from callwright.webhooks import signing


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def delivery_id(self) -> str:
        return self.headers[signing.ID_HEADER.lower()]

    @property
    def signature(self) -> str:
        return self.headers[signing.SIGNATURE_HEADER.lower()]


class Receiver:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.mode = "ok"  # ok | error | hang | redirect:<url>
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> Receiver:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                owner._handle(self, body)

            do_GET = do_POST  # noqa: N815 - redirect hops from clients that follow them

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._release.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def release(self) -> None:
        """Let hanging requests finish (with a 503 nobody waits for any more)."""
        self._release.set()

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        mode = self.mode
        status, headers = 200, {}
        if mode == "error":
            status = 500
        elif mode == "hang":
            self._release.wait(timeout=10)
            status = 503  # too late: the sender gave up, so this never counts as delivered
        elif mode.startswith("redirect:"):
            status, headers = 307, {"Location": mode.removeprefix("redirect:")}
        with self._lock:
            self.received.append(
                Received(
                    handler.path, {k.lower(): v for k, v in handler.headers.items()}, body, status
                )
            )
        try:
            handler.send_response(status)
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", "2")
            handler.end_headers()
            handler.wfile.write(b"ok")
        except OSError:
            pass  # the sender hung up (timeout)

    def delivered(self) -> list[Received]:
        """What the receiver processed: 2xx answers, each delivery id at most once."""
        with self._lock:
            ok = [r for r in self.received if 200 <= r.answered < 300]
        firsts: dict[str, Received] = {}
        for r in ok:
            firsts.setdefault(r.delivery_id, r)
        return list(firsts.values())

    def accepted(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if 200 <= r.answered < 300]


class FakeClock:
    """Virtual time for the delivery worker: retries come due when a test says so."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)
