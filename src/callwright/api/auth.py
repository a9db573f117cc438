"""API-key authentication: the raw key in ``authorization`` (``Bearer <key>`` also taken).

Lookups are cached for a few seconds so a hot endpoint does not pay a query per request;
a revoked key therefore stops working within ``CACHE_SECONDS`` on every process.
``last_used_at`` is written in batches for the same reason.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from callwright.api.errors import ApiError
from callwright.clock import Clock
from callwright.store import keys
from callwright.store.db import Database

CACHE_SECONDS = 5.0
UNAUTHORIZED = ApiError(401, "AUTH_FAILURE", "Unauthorized")
# How clients authenticate, as the OpenAPI document states it (``api.app`` adds it to
# every operation that depends on ``current_org``). It is declared there rather than as
# a ``Security`` dependency: FastAPI solves such a dependency on every request, a
# measurable share of a cached ``GET /v1/calls/{id}``.
API_KEY_SCHEME = "ApiKey"
API_KEY_SECURITY = {
    "type": "apiKey",
    "in": "header",
    "name": "authorization",
    "description": "The raw API key (`Bearer <key>` is accepted too).",
}


class Authenticator:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._cache: dict[str, tuple[float, tuple[str, str] | None]] = {}
        self._used: dict[str, datetime] = {}

    async def org_for(self, raw: str) -> str:
        now = time.monotonic()
        hit = self._cache.get(raw)
        if hit is None or hit[0] < now:
            async with self._db.session() as session:
                found = await keys.org_for_key(session, raw)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[raw] = hit = (now + CACHE_SECONDS, found)
        found = hit[1]
        if found is None:
            raise UNAUTHORIZED
        self._used[found[0]] = self._clock.now()
        return found[1]

    def forget_cached(self) -> None:
        """Drop cached lookups (a revocation made in this process takes effect at once)."""
        self._cache.clear()

    async def flush_last_used(self) -> None:
        if not self._used:
            return
        used, self._used = self._used, {}
        async with self._db.transaction() as session:
            await keys.touch_keys(session, used)


def raw_key(request: Request) -> str:
    header = request.headers.get("authorization", "").strip()
    if header[:7].lower() == "bearer ":
        header = header[7:].strip()
    if not header:
        raise UNAUTHORIZED
    return header


async def current_org(request: Request) -> str:
    """FastAPI dependency: the org id the request's key belongs to."""
    auth: Authenticator = request.app.state.services.auth
    return await auth.org_for(raw_key(request))


Org = Annotated[str, Depends(current_org)]
