"""A per-process cache of calls' details, as the JSON bytes the API sends.

Clients poll ``GET /v1/calls/{id}``: while a call runs, to follow it, and once it is
done, for the transcript, the summary, the recording link. Those reads are most of the
traffic; served from here they need no database round trip.

Rules:
1. A finished call (terminal status) is kept for ``ttl_seconds``, a live one for
   ``live_ttl_seconds``: short enough that a poller never notices, long enough that a
   thousand pollers of one live call cost the database a few reads a second.
2. Every write through this process drops the entries it touches: a session flush that
   changes a ``Call`` or adds a ``CallEvent`` invalidates that call at the flush and
   again after the commit. A read that started before such a drop cannot store what it
   read (``stamp`` before reading, ``put(..., since=stamp)`` after): within one process
   a client always reads its own writes.
3. Writes by other processes (several servers on one PostgreSQL) are seen within the
   entry's time to live: the bounded delay is the price of not asking the database
   each time.
4. Entries are keyed by call id and remember their org: a key of another org misses,
   and the API then answers 404 from the database as usual.
5. At most ``max_entries``, least recently used evicted first.
6. Concurrent misses for one call share one database read (``load``): when a live
   entry expires under a thousand pollers, the store sees one query, not a thousand.
   A request joins a read in flight only if that read started after the call's last
   local write, so rule 2 still holds.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from callwright.store.models import Call, CallEvent

# What a loader returns: the body and whether the call is finished; None: no such call.
Loaded = tuple[bytes, bool] | None


class _Failed:
    """The shared read raised: each waiter reads for itself (and meets its own error)."""


class CallCache:
    def __init__(
        self,
        *,
        ttl_seconds: float = 2.0,
        live_ttl_seconds: float = 0.25,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl_seconds
        self.live_ttl = live_ttl_seconds
        self.max_entries = max_entries
        self.clock = clock
        # call id -> (org id, body, expires at)
        self._entries: OrderedDict[str, tuple[str, bytes, float]] = OrderedDict()
        # Rule 2: a counter bumped by every drop, and the value it had at each call's
        # last drop; ``_floor`` stands for the calls forgotten from ``_dropped``.
        self._generation = 0
        self._dropped: OrderedDict[str, int] = OrderedDict()
        self._floor = 0
        # Rule 6: reads in flight by (org id, call id), with the stamp each began at.
        self._loading: dict[
            tuple[str, str], tuple[int, asyncio.Future[bytes | None | _Failed]]
        ] = {}
        self.hits = 0
        self.misses = 0
        self.joined = 0

    async def load(
        self, org_id: str, call_id: str, read: Callable[[], Awaitable[Loaded]]
    ) -> bytes | None:
        """The call's body from memory, else from ``read`` (shared by concurrent misses,
        rule 6) and kept; None when ``read`` finds no such call."""
        cached = self.get(org_id, call_id)
        if cached is not None:
            return cached
        key = (org_id, call_id)
        inflight = self._loading.get(key)
        if inflight is not None and self._dropped.get(call_id, self._floor) <= inflight[0]:
            self.joined += 1
            shared = await asyncio.shield(inflight[1])
            if not isinstance(shared, _Failed):
                return shared
            return await self._read(org_id, call_id, read, None)
        return await self._read(org_id, call_id, read, key)

    async def _read(
        self,
        org_id: str,
        call_id: str,
        read: Callable[[], Awaitable[Loaded]],
        key: tuple[str, str] | None,
    ) -> bytes | None:
        since = self.stamp()
        future: asyncio.Future[bytes | None | _Failed] | None = None
        if key is not None:
            future = asyncio.get_running_loop().create_future()
            self._loading[key] = (since, future)
        try:
            found = await read()
        except BaseException:
            if future is not None:
                future.set_result(_Failed())
            raise
        finally:
            if key is not None and self._loading.get(key, (0, None))[1] is future:
                del self._loading[key]
        body = None
        if found is not None:
            body = found[0]
            self.put(org_id, call_id, body, since=since, final=found[1])
        if future is not None:
            future.set_result(body)
        return body

    def get(self, org_id: str, call_id: str) -> bytes | None:
        entry = self._entries.get(call_id)
        if entry is None or entry[0] != org_id or self.clock() > entry[2]:
            self.misses += 1
            return None
        self._entries.move_to_end(call_id)
        self.hits += 1
        return entry[1]

    def stamp(self) -> int:
        """Taken before reading a call from the database; given back to ``put``."""
        return self._generation

    def put(self, org_id: str, call_id: str, body: bytes, *, since: int, final: bool) -> bool:
        """Keep ``body`` unless the call was written after ``since``; ``final``: the call
        is in a terminal status. Returns whether it was kept."""
        if self._dropped.get(call_id, self._floor) > since:
            return False
        ttl = self.ttl if final else self.live_ttl
        self._entries[call_id] = (org_id, body, self.clock() + ttl)
        self._entries.move_to_end(call_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return True

    def drop(self, call_ids: set[str]) -> None:
        if not call_ids:
            return
        self._generation += 1
        for call_id in call_ids:
            self._entries.pop(call_id, None)
            self._dropped[call_id] = self._generation
            self._dropped.move_to_end(call_id)
        while len(self._dropped) > self.max_entries:
            _, generation = self._dropped.popitem(last=False)
            self._floor = max(self._floor, generation)

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def watch(self, session_class: type[Session]) -> Callable[[], None]:
        """Invalidate on every flush/commit of ``session_class`` sessions (rule 2; one
        database's session class, ``Database.session_class``); returns the function that
        stops watching."""
        key = f"callwright_call_cache_{id(self)}"

        def after_flush(session: Session, _context: Any) -> None:
            touched: set[str] = session.info.setdefault(key, set())
            for obj in (*session.new, *session.dirty, *session.deleted):
                if isinstance(obj, Call):
                    touched.add(obj.id)
                elif isinstance(obj, CallEvent):
                    touched.add(obj.call_id)
            self.drop(touched)

        def after_commit(session: Session) -> None:
            self.drop(session.info.pop(key, set()))

        def after_rollback(session: Session) -> None:
            session.info.pop(key, None)

        def after_soft_rollback(session: Session, _transaction: Any) -> None:
            after_rollback(session)

        hooks: list[tuple[str, Callable[..., None]]] = [
            ("after_flush", after_flush),
            ("after_commit", after_commit),
            ("after_soft_rollback", after_soft_rollback),
        ]
        for name, hook in hooks:
            event.listen(session_class, name, hook)

        def stop() -> None:
            for name, hook in hooks:
                event.remove(session_class, name, hook)

        return stop
