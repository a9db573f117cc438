"""The HTTP edge: what every request passes through before routing, in one ASGI layer.

One layer rather than one per concern because each pure ASGI middleware costs a
coroutine frame and a ``send`` wrapper on every request, a measurable share of a cached
``GET /v1/calls/{id}``. It does, in order:

1. request ids for the logs and the ``x-request-id`` response header (the client's own,
   if printable and given, else a new one);
2. JSON assumed for bodies without a JSON content type: curl sends form encoding unless
   told otherwise, and the hosted API accepts such requests;
3. the body size cap: 413 for bodies over the limit, whether announced by
   Content-Length or streamed. The body is read (up to the limit) before the app runs
   and replayed to it: the framework turns any error raised while it reads into a 400,
   which would hide the 413;
4. request latency by route template (never by raw path: ids would explode the label
   set), status included.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callwright.api.metrics import Metrics
from callwright.logs import request_id

BODYLESS = frozenset({"GET", "HEAD", "OPTIONS"})
WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
NOT_JSON = (b"application/x-www-form-urlencoded", b"text/plain")


class RequestIds:
    """32 hex characters: a random per-process prefix and a counter (unique without a
    system call per request, which ``uuid4`` makes)."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, max_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_bytes = max_bytes
        self.new_id = RequestIds()
        # Labelled histogram children by (method, route, status): a label lookup per
        # request is a measurable share of a cached GET.
        self._children: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        incoming = b""
        length: bytes | None = None
        ctype: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value
            elif name == b"content-length":
                length = value
            elif name == b"content-type":
                ctype = value
        given = incoming.decode("latin-1")
        rid = given[:64] if given and given.isprintable() else self.new_id()
        token = request_id.set(rid)
        rid_header = (b"x-request-id", rid.encode())
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), rid_header]
            await send(message)

        method = scope["method"]
        try:
            if method in BODYLESS:
                await self.app(scope, receive, send_with_id)
                return
            if method in WITH_BODY and (not ctype or ctype.startswith(NOT_JSON)):
                headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
                scope["headers"] = [*headers, (b"content-type", b"application/json")]
            await self._capped(scope, receive, send_with_id, length)
        finally:
            request_id.reset(token)
            route = scope.get("route")
            key = (method, getattr(route, "path", "unmatched"), status)
            child = self._children.get(key)
            if child is None:
                child = self.metrics.request_latency.labels(key[0], key[1], str(status))
                self._children[key] = child
            child.observe(time.perf_counter() - start)

    async def _capped(
        self, scope: Scope, receive: Receive, send: Send, length: bytes | None
    ) -> None:
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._reject(send)
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await self._reject(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)

    async def _reject(self, send: Send) -> None:
        message = f"Request body is larger than {self.max_bytes} bytes."
        body = json.dumps(
            {
                "data": None,
                "errors": [{"error": "PAYLOAD_TOO_LARGE", "message": message}],
                "status": "error",
                "message": message,
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
