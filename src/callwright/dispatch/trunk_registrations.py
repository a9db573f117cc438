"""Keeping the API's ``auth_mode: register`` trunks registered while the server runs.

The trunks live in the store, where any API process may add, change or delete them, so
this side polls: at start and then every ``sip_trunk_sync_seconds`` it reads the
register-trunks of every org and reconciles them with the registrations it runs, one
``Registrations`` (one account) per trunk:

- a new trunk starts registering;
- a trunk deleted stops: its registration un-REGISTERs;
- a trunk whose account changed (host, port, transport, username, password, contact)
  un-REGISTERs the old binding first, then registers the new one, so the registrar never
  drops a fresh binding for a late un-REGISTER of the same address of record.

``plan`` is the pure part (running vs wanted -> what to stop and start); the account a
trunk stands for is ``target_for``. Trunks over TLS are skipped (the user agent speaks
UDP and TCP), logged once per trunk. Passwords are compared, never logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select

from callwright.store.crypto import SecretBox, SecretKeyError
from callwright.store.db import Database
from callwright.store.trunk_models import SipTrunk
from callwright.telephony.registration import Target

log = logging.getLogger("callwright.dispatch.trunk_registrations")

TRANSPORTS = ("udp", "tcp")


class Running(Protocol):
    """What runs one trunk's registration (``telephony.registration.Registrations``)."""

    def start(self) -> None: ...

    async def close(self) -> None: ...

    def snapshot(self) -> dict[str, dict[str, int]]: ...


# Builds (not starts) the registration of one account.
Starter = Callable[[Target], Running]


@dataclass(frozen=True, slots=True)
class Plan:
    """Trunk ids to stop (their registration un-REGISTERs) and to start, in that order."""

    stop: tuple[str, ...]
    start: tuple[str, ...]


def plan(running: Mapping[str, Target], wanted: Mapping[str, Target]) -> Plan:
    """A changed trunk is both stopped and started: its old binding goes first."""
    stop = tuple(tid for tid, target in running.items() if wanted.get(tid) != target)
    start = tuple(tid for tid, target in wanted.items() if running.get(tid) != target)
    return Plan(stop, start)


class Skipped(ValueError):
    """A register-trunk this side cannot register; the message names no secret."""


def target_for(trunk: SipTrunk, password: str | None) -> Target:
    """The account a register-trunk stands for (raises ``Skipped`` if it cannot be one).

    The Contact's user is the trunk's first number: calls the registrar forwards name it
    in the Request-URI, and that is what the inbound lookup reads.
    """
    if trunk.transport not in TRANSPORTS:
        raise Skipped(f"transport {trunk.transport} is not supported for registration")
    if not trunk.username or password is None:
        raise Skipped("no username or password")
    contact = str(trunk.numbers[0]) if trunk.numbers else trunk.username
    return Target(
        user=trunk.username,
        host=trunk.host,
        port=trunk.port or 5060,
        transport="tcp" if trunk.transport == "tcp" else "udp",
        password=password,
        contact_user=contact,
    )


class TrunkRegistrations:
    """The reconciler (see the module docstring); ``start``/``close`` with the SIP side."""

    def __init__(self, db: Database, box: SecretBox, starter: Starter, *, interval: float) -> None:
        self.db = db
        self.box = box
        self.starter = starter
        self.interval = interval
        self._targets: dict[str, Target] = {}
        self._running: dict[str, Running] = {}
        self._skipped: dict[str, str] = {}  # trunk id -> reason last logged
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="sip-trunk-registrations")

    async def close(self) -> None:
        """Stop polling and un-REGISTER every trunk (each bounded by ``Registrations``)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._stop(list(self._running))

    def snapshot(self) -> dict[str, dict[str, int]]:
        """Every trunk's registration by address of record, for ``/metrics``."""
        found: dict[str, dict[str, int]] = {}
        # A copy: the scrape may run in another thread while a sync changes the dict.
        for running in list(self._running.values()):
            found.update(running.snapshot())
        return found

    def trunk_ids(self) -> list[str]:
        return list(self._running)

    async def sync(self) -> Plan:
        """Read the register-trunks once and reconcile; the plan applied."""
        async with self.db.session() as session:
            rows = (
                await session.scalars(select(SipTrunk).where(SipTrunk.auth_mode == "register"))
            ).all()
            wanted = self._wanted(rows)
        decided = plan(self._targets, wanted)
        await self._stop(decided.stop)
        for tid in decided.start:
            target = wanted[tid]
            running = self.starter(target)
            running.start()
            self._targets[tid] = target
            self._running[tid] = running
            log.info("sip.trunk_register_started", extra={"trunk_id": tid, "aor": str(target.aor)})
        return decided

    def _wanted(self, rows: Iterable[SipTrunk]) -> dict[str, Target]:
        wanted: dict[str, Target] = {}
        skipped: dict[str, str] = {}
        for row in rows:
            try:
                password = (
                    None if row.password_sealed is None else self.box.open(row.password_sealed)
                )
                wanted[row.id] = target_for(row, password)
            except (Skipped, SecretKeyError) as exc:
                skipped[row.id] = str(exc)
                if self._skipped.get(row.id) != str(exc):  # once, not at every sync
                    log.warning(
                        "sip.trunk_register_skipped", extra={"trunk_id": row.id, "reason": str(exc)}
                    )
        self._skipped = skipped
        return wanted

    async def _stop(self, trunk_ids: Iterable[str]) -> None:
        stopping = [(tid, self._running.pop(tid)) for tid in trunk_ids if tid in self._running]
        for tid, _ in stopping:
            target = self._targets.pop(tid)
            log.info("sip.trunk_register_stopped", extra={"trunk_id": tid, "aor": str(target.aor)})
        # Concurrently: each waits at most its un-REGISTER bound.
        await asyncio.gather(*(running.close() for _, running in stopping), return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            try:
                await self.sync()
            except Exception:
                # The store may be briefly away: keep what runs and try again next time.
                log.exception("sip.trunk_sync_failed")
            await asyncio.sleep(self.interval)
