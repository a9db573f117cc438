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
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from callwright.store.models import Call, CallEvent


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
        self.hits = 0
        self.misses = 0

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
