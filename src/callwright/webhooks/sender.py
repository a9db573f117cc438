"""One HTTP attempt at a webhook, through the outbound guard.

Webhooks do not follow redirects: a POST that is redirected would be replayed elsewhere
(or turned into a GET), and every hop would need its own checks. A 3xx answer is a
failed attempt whose error says so; point the webhook at the final URL.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from callwright import __version__, netguard
from callwright.webhooks.outbox import Result

USER_AGENT = f"callwright-webhooks/{__version__}"


class Sender:
    def __init__(
        self,
        policy: netguard.OutboundPolicy,
        *,
        timeout_seconds: float,
        max_response_bytes: int,
        max_connections: int = 100,
        resolver: netguard.Resolver = netguard.system_resolver,
    ) -> None:
        self.policy = policy
        self.timeout_seconds = timeout_seconds
        self.max_response_bytes = max_response_bytes
        self._client = netguard.guarded_client(
            policy,
            timeout=timeout_seconds,
            follow_redirects=False,
            resolver=resolver,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )

    async def send(self, url: str, body: bytes, headers: dict[str, str]) -> Result:
        started = time.perf_counter()

        def done(status: int | None, error: str | None, *, refused: bool = False) -> Result:
            latency = round((time.perf_counter() - started) * 1000)
            return Result(status, latency, error, refused)

        try:
            netguard.check_url(url, self.policy)
            # httpx times each phase; this bounds the whole attempt, slow drip included.
            async with asyncio.timeout(self.timeout_seconds):
                request = self._client.build_request(
                    "POST", url, content=body, headers={"User-Agent": USER_AGENT, **headers}
                )
                response = await self._client.send(request, stream=True)
                try:
                    # Read (a capped amount) so the connection can be reused.
                    await netguard.read_capped(response, self.max_response_bytes)
                finally:
                    await response.aclose()
        except netguard.Refused as exc:
            return done(None, f"refused: {exc.reason}", refused=True)
        except httpx.InvalidURL as exc:
            return done(None, f"refused: invalid URL ({exc})", refused=True)
        except (TimeoutError, httpx.TimeoutException):
            return done(None, f"timed out after {self.timeout_seconds:g} s")
        except httpx.HTTPError as exc:
            return done(None, f"{_describe(exc)}")
        status = response.status_code
        if 200 <= status < 300:
            return done(status, None)
        if 300 <= status < 400:
            return done(status, f"HTTP {status}: redirects are not followed for webhooks")
        return done(status, f"HTTP {status}")

    async def aclose(self) -> None:
        await self._client.aclose()


def _describe(exc: httpx.HTTPError) -> str:
    kind = "connection failed" if isinstance(exc, httpx.ConnectError) else type(exc).__name__
    detail = str(exc)
    return f"{kind}: {detail}" if detail else kind
