"""The in-process dispatcher: a loop that claims calls and runs each as a task.

Theory of operation: every ``poll`` seconds (or at once when the API wakes it) the loop
reclaims expired leases, then claims as many queued calls as this process has free
slots. Each claimed call runs in its own task: route -> transport -> terminal status.
A second loop renews our leases and notices stop requests made through any process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import timedelta

from callwright.clock import Clock
from callwright.dispatch import queue
from callwright.dispatch.transport import (
    CallHandle,
    CallInfo,
    EventLogger,
    Outcome,
    StatusSetter,
    Transport,
)
from callwright.store import calls as store
from callwright.store.db import Database
from callwright.store.models import Call

log = logging.getLogger("callwright.dispatch")

SHUTDOWN = "The server shut down during the call."


def no_route_message(to_number: str) -> str:
    return (
        f"No route to {to_number}: no telephony transport serves this number. "
        "Configure a SIP trunk (or enable sandbox numbers for testing)."
    )


class Dispatcher:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        transports: Sequence[Transport],
        *,
        worker_id: str,
        max_concurrent: int,
        per_org_limit: int,
        poll_seconds: float,
        lease_seconds: float,
    ) -> None:
        self.db = db
        self.clock = clock
        self.transports = list(transports)
        self.worker_id = worker_id
        self.max_concurrent = max_concurrent
        self.per_org_limit = per_org_limit
        self.poll_seconds = poll_seconds
        self.lease = timedelta(seconds=lease_seconds)
        self.running: dict[str, tuple[asyncio.Task[None], CallHandle]] = {}
        self._wake = asyncio.Event()
        self._deferred: set[str] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._closing = False

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._claim_loop(), name="dispatch-claim"),
            asyncio.create_task(self._lease_loop(), name="dispatch-lease"),
        ]

    async def close(self) -> None:
        self._closing = True
        for task in self._loops:
            task.cancel()
        for task, _ in list(self.running.values()):
            task.cancel()
        await asyncio.gather(
            *self._loops, *(t for t, _ in self.running.values()), return_exceptions=True
        )

    def wake(self) -> None:
        self._wake.set()

    def request_stop(self, call_id: str) -> bool:
        entry = self.running.get(call_id)
        if entry is None:
            return False
        entry[1].stop.set()
        return True

    # -- loops -----------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        while True:
            try:
                await self.dispatch_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dispatch cycle failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
            self._wake.clear()

    async def _lease_loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            try:
                await self.renew_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("lease renewal failed; retrying")

    async def dispatch_once(self) -> int:
        if self._closing:
            return 0
        now = self.clock.now()
        async with self.db.transaction() as session:
            await queue.reclaim_expired(session, now)
        async with self.db.transaction() as session:
            claimed = await queue.claim(
                session,
                self.worker_id,
                now,
                self.lease,
                self.max_concurrent - len(self.running),
                self.per_org_limit,
                self._deferred,
            )
            infos = [_info(c) for c in claimed]
        for info in infos:
            handle = CallHandle(info, self._setter(info.call_id), self._logger(info.call_id))
            task = asyncio.create_task(self._run(handle), name=f"call-{info.call_id}")
            self.running[info.call_id] = (task, handle)
        return len(infos)

    async def renew_once(self) -> None:
        ids = list(self.running)
        async with self.db.transaction() as session:
            held, stops = await queue.renew(
                session, self.worker_id, ids, self.clock.now(), self.lease
            )
        for call_id in ids:
            entry = self.running.get(call_id)
            if entry is None:
                continue
            if call_id not in held:
                log.warning("lease lost; abandoning call", extra={"call_id": call_id})
                entry[0].cancel()
            elif call_id in stops:
                entry[1].stop.set()

    # -- one call --------------------------------------------------------------------
    async def _run(self, handle: CallHandle) -> None:
        call_id = handle.info.call_id
        try:
            outcome = await self._outcome(handle)
            await self._finish(call_id, outcome)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._abandon(call_id))
            raise
        except Exception as exc:
            log.exception("call task failed", extra={"call_id": call_id})
            await self._finish(
                call_id,
                Outcome(
                    "failed",
                    error_message="Call failed.",
                    message=f"Internal error ({type(exc).__name__}).",
                ),
            )
        finally:
            self.running.pop(call_id, None)
            self.wake()

    async def _outcome(self, handle: CallHandle) -> Outcome:
        if handle.stop.is_set():
            return Outcome("canceled", message="Call stopped by API request.")
        transport = next((t for t in self.transports if t.serves(handle.info)), None)
        if transport is None:
            msg = no_route_message(handle.info.to_number)
            return Outcome("failed", error_message=msg, message=msg)
        await handle.log("queue.routed", f"Routed to the {transport.name} transport.")
        return await transport.run(handle)

    async def _finish(self, call_id: str, outcome: Outcome) -> None:
        async with self.db.transaction() as session:
            call = await queue.lock_if_owned(session, call_id, self.worker_id)
            if call is None:
                log.warning("finished a call we no longer own", extra={"call_id": call_id})
                return
            # Read the clock under the row lock: an event another process appended while
            # we waited for it must not carry a later time than ours.
            now = self.clock.now()
            if outcome.call_ended_by:
                call.call_ended_by = outcome.call_ended_by
            if outcome.answered_by:
                call.answered_by = outcome.answered_by
            no_route = outcome.error_message is not None and outcome.error_message.startswith(
                "No route"
            )
            await store.transition(
                session,
                call,
                outcome.status,
                now,
                outcome.message or f"Call {outcome.status}.",
                error_message=outcome.error_message,
                queue_status="queue_error" if no_route else None,
            )

    async def _abandon(self, call_id: str) -> None:
        async with self.db.transaction() as session:
            call = await queue.lock_if_owned(session, call_id, self.worker_id)
            if call is None:
                return
            now = self.clock.now()
            if call.status == "allocated":
                await store.transition(
                    session,
                    call,
                    "queued",
                    now,
                    "Worker shut down before dialing; back in the queue.",
                    level="queue",
                )
            else:
                await store.transition(
                    session, call, "failed", now, SHUTDOWN, error_message=SHUTDOWN
                )

    def _setter(self, call_id: str) -> StatusSetter:
        async def set_status(to: str, message: str) -> None:
            async with self.db.transaction() as session:
                call = await queue.lock_if_owned(session, call_id, self.worker_id)
                if call is None:
                    raise asyncio.CancelledError("lease lost")
                await store.transition(session, call, to, self.clock.now(), message)

        return set_status

    def _logger(self, call_id: str) -> EventLogger:
        async def log_event(type_: str, message: str) -> None:
            async with self.db.transaction() as session:
                # Only while we hold the lease: a call reclaimed from us (and maybe
                # already ended or running elsewhere) must not log our late steps.
                call = await queue.lock_if_owned(session, call_id, self.worker_id)
                if call is None:
                    raise asyncio.CancelledError("lease lost")
                await store.add_event(session, call, self.clock.now(), type_, message)

        return log_event


def _info(call: Call) -> CallInfo:
    return CallInfo(
        call.id,
        call.org_id,
        call.to_number,
        call.from_number,
        dict(call.params),
        dict(call.variables),
    )
