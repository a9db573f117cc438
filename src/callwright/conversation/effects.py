"""What a pathway does to the world: webhook and tool requests, Custom Code, and loading
another pathway. Used by ``PathwayAgent`` for calls and chats alike.

Rules:
1. Requests go through the outbound guard (``netguard``): only public addresses unless
   the operator allow-listed them, every redirect hop checked, the address pinned.
2. ``{{SECRET.NAME}}`` is replaced here, at request time, from the org's secrets; the
   filled-in values never reach the engine, the log or the call record. An unknown
   secret fails the request (with an error naming it) rather than sending the
   placeholder.
3. Retries (the node's ``retries``) only on no response or a 5xx; a 4xx is an answer.
4. Responses are capped (``max_response_bytes``) and parsed as JSON when they are JSON.
5. Custom Code runs in the sandbox in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from callwright import netguard
from callwright.pathways.actions import CodeResult, HttpRequest, HttpResult, RunCode
from callwright.pathways.format import PathwayDocument

SECRET = re.compile(r"\{\{\s*SECRET\.([A-Za-z0-9_.-]+)\s*\}\}")
SecretResolver = Callable[[list[str]], Awaitable[Mapping[str, str]]]
CodeRunner = Callable[[RunCode], CodeResult]
PathwayLoader = Callable[[str, str | None], Awaitable[PathwayDocument | None]]


class MissingSecret(LookupError):
    pass


class CallEffects:
    def __init__(
        self,
        policy: netguard.OutboundPolicy,
        *,
        secrets: SecretResolver,
        run_code: CodeRunner,
        load_pathway: PathwayLoader,
        max_response_bytes: int = 256 * 1024,
        resolver: netguard.Resolver = netguard.system_resolver,
    ) -> None:
        self.policy = policy
        self.secrets = secrets
        self.code_runner = run_code
        self.loader = load_pathway
        self.max_response_bytes = max_response_bytes
        self.resolver = resolver

    async def http(self, request: HttpRequest) -> HttpResult:
        try:
            url, headers, body = await self._fill_secrets(request)
        except MissingSecret as exc:
            return HttpResult(request.request_id, 0, error=f"unknown secret {exc}")
        last = HttpResult(request.request_id, 0, error="not sent")
        async with netguard.guarded_client(
            self.policy,
            timeout=request.timeout_s,
            follow_redirects=True,
            resolver=self.resolver,
        ) as client:
            for attempt in range(max(request.retries, 0) + 1):
                if attempt:
                    await asyncio.sleep(min(0.5 * 2 ** (attempt - 1), 4.0))
                last = await self._send(client, request, url, headers, body)
                if last.status and last.status < 500:
                    break
        return last

    async def _send(
        self,
        client: httpx.AsyncClient,
        request: HttpRequest,
        url: str,
        headers: dict[str, str],
        body: str | None,
    ) -> HttpResult:
        try:
            netguard.check_url(url, self.policy)
            async with asyncio.timeout(request.timeout_s):
                sent = client.build_request(
                    request.method, url, headers=headers, content=body.encode() if body else None
                )
                response = await client.send(sent, stream=True)
                try:
                    raw, truncated = await self._read(response)
                finally:
                    await response.aclose()
        except netguard.Refused as exc:
            return HttpResult(request.request_id, 0, error=f"refused: {exc.reason}")
        except (TimeoutError, httpx.TimeoutException):
            return HttpResult(
                request.request_id, 0, error=f"timed out after {request.timeout_s:g} s"
            )
        except httpx.HTTPError as exc:
            return HttpResult(request.request_id, 0, error=f"{type(exc).__name__}: {exc}")
        text = raw.decode(response.encoding or "utf-8", errors="replace")
        parsed: Any = text
        if not truncated:
            try:
                parsed = json.loads(text) if text.strip() else None
            except ValueError:
                parsed = text
        error = "response too large, truncated" if truncated else None
        return HttpResult(request.request_id, response.status_code, parsed, error)

    async def _read(self, response: httpx.Response) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size > self.max_response_bytes:
                return b"".join(chunks)[: self.max_response_bytes], True
        return b"".join(chunks), False

    async def _fill_secrets(self, request: HttpRequest) -> tuple[str, dict[str, str], str | None]:
        texts = [request.url, request.body or "", *(v for _, v in request.headers)]
        names = sorted({m.group(1) for t in texts for m in SECRET.finditer(t)})
        values: Mapping[str, str] = await self.secrets(names) if names else {}
        missing = [n for n in names if n not in values]
        if missing:
            raise MissingSecret(", ".join(missing))

        def fill(text: str) -> str:
            return SECRET.sub(lambda m: values[m.group(1)], text)

        headers = {k: fill(v) for k, v in request.headers}
        return fill(request.url), headers, fill(request.body) if request.body else None

    async def run_code(self, request: RunCode) -> CodeResult:
        return await asyncio.to_thread(self.code_runner, request)

    async def load_pathway(self, pathway_id: str, version: str | None) -> PathwayDocument | None:
        return await self.loader(pathway_id, version)
