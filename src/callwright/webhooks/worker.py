"""The delivery worker: an asyncio task in every server process that sends the outbox.

Theory of operation: every ``poll`` seconds (or at once when a delivery finishes) the
loop claims as many due deliveries as it has free slots (``outbox.claim``: leased, at
most one per call) and sends each in its own task: sign, POST through the guard,
record the attempt and the next state. Nothing is kept in memory that the outbox does
not also hold, so a crash loses nothing: the lease runs out and a process sends again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections.abc import Callable
from datetime import timedelta

from callwright import netguard
from callwright.clock import Clock
from callwright.config import Settings
from callwright.store.crypto import SecretBox
from callwright.store.db import Database
from callwright.webhooks import outbox, signing
from callwright.webhooks.retry import RetryPolicy
from callwright.webhooks.sender import Sender

log = logging.getLogger("callwright.webhooks")


class DeliveryWorker:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        sender: Sender,
        box: SecretBox,
        *,
        worker_id: str,
        policy: RetryPolicy,
        concurrency: int,
        poll_seconds: float,
        lease_seconds: float,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.db = db
        self.clock = clock
        self.sender = sender
        self.box = box
        self.worker_id = worker_id
        self.policy = policy
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        # A lease must outlive the longest attempt, or a slow receiver gets a duplicate.
        self.lease = timedelta(seconds=max(lease_seconds, 2 * sender.timeout_seconds + 5))
        self.draw = draw
        self.in_flight: dict[int, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, db: Database, clock: Clock, box: SecretBox
    ) -> DeliveryWorker:
        sender = Sender(
            netguard.OutboundPolicy.parse(settings.outbound_allow),
            timeout_seconds=settings.webhook_timeout_seconds,
            max_response_bytes=settings.webhook_response_max_bytes,
            max_connections=settings.webhook_concurrency,
        )
        return cls(
            db,
            clock,
            sender,
            box,
            worker_id=settings.effective_worker_id,
            policy=RetryPolicy(
                settings.webhook_max_attempts,
                settings.webhook_retry_base_seconds,
                settings.webhook_retry_max_seconds,
            ),
            concurrency=settings.webhook_concurrency,
            poll_seconds=settings.webhook_poll_seconds,
            lease_seconds=settings.webhook_lease_seconds,
        )

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        self._loop = asyncio.create_task(self._run(), name="webhook-deliveries")

    async def close(self) -> None:
        """Stop claiming, cancel what is in flight and give its leases back, so another
        process (or this one after a restart) sends it again at once, same id."""
        tasks = [t for t in (self._loop, *self.in_flight.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.sender.aclose()
        if tasks:
            try:
                async with self.db.transaction() as session:
                    await outbox.release(session, self.worker_id)
            except Exception:
                log.exception("could not release webhook leases; they will expire")

    def wake(self) -> None:
        self._wake.set()

    # -- work ------------------------------------------------------------------------
    async def run_once(self) -> int:
        """Claim what is due, send it and wait until every attempt is recorded. Tests and
        benchmarks drive the worker with this; the loop does not wait."""
        started = await self.claim_and_start()
        await asyncio.gather(*started)
        return len(started)

    async def claim_and_start(self) -> list[asyncio.Task[None]]:
        free = self.concurrency - len(self.in_flight)
        if free <= 0:
            return []
        async with self.db.transaction() as session:
            jobs = await outbox.claim(
                session, self.worker_id, self.clock.now(), self.lease, free, self.box
            )
        started = []
        for job in jobs:
            task = asyncio.create_task(self._deliver(job), name=f"webhook-{job.delivery_id}")
            self.in_flight[job.id] = task
            task.add_done_callback(functools.partial(self._finished, job.id))
            started.append(task)
        return started

    def _finished(self, key: int, _task: asyncio.Task[None]) -> None:
        self.in_flight.pop(key, None)
        self.wake()

    async def _run(self) -> None:
        while True:
            try:
                await self.claim_and_start()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook claim failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
            self._wake.clear()

    async def _deliver(self, job: outbox.Job) -> None:
        now = self.clock.now()
        headers = signing.delivery_headers(
            job.body, job.secret, job.delivery_id, int(now.timestamp())
        )
        try:
            result = await self.sender.send(job.url, job.body, headers)
        except Exception as exc:  # a bug must cost attempts, not loop on the lease forever
            log.exception("webhook send failed unexpectedly", extra={"call_id": job.call_id})
            result = outbox.Result(None, 0, f"internal error ({type(exc).__name__})")
        try:
            async with self.db.transaction() as session:
                step = await outbox.record(
                    session, job, self.worker_id, self.clock.now(), result, self.policy, self.draw()
                )
        except Exception:
            # The lease runs out and the delivery is sent again: never lost, maybe twice.
            log.exception("could not record a webhook attempt", extra={"call_id": job.call_id})
            return
        if step is None:
            log.warning("webhook lease lost before recording", extra={"call_id": job.call_id})
        elif step.status == "dead":
            log.warning(
                "webhook dead-lettered",
                extra={"call_id": job.call_id, "delivery_id": job.delivery_id},
            )
