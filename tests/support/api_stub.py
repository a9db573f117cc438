"""A real HTTP server on 127.0.0.1 standing in for a customer's API (the target of
pathway Webhook, Custom Tool and Scheduling nodes). Tests queue the answers and read
back every request it received."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.conftest import free_port


@dataclass(frozen=True)
class StubRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body.strip() else None


class ApiStub:
    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[StubRequest] = []
        self._answers: deque[tuple[int, Any]] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, status: int, body: Any) -> None:
        """Queue the answer to the next request (otherwise: 200 ``{}``)."""
        with self._lock:
            self._answers.append((status, body))

    def reset(self) -> None:
        with self._lock:
            self._answers.clear()
            self.requests.clear()

    def start(self) -> ApiStub:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                with owner._lock:
                    owner.requests.append(
                        StubRequest(
                            self.command,
                            parts.path,
                            parse_qs(parts.query),
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                        )
                    )
                    status, answer = owner._answers.popleft() if owner._answers else (200, {})
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
