"""Queue operations on ``webhook_deliveries``, shared by every server process.

Rules:
1. A delivery is due when it is pending, its ``next_attempt_at`` has come and nobody
   holds a live lease on it.
2. Only the oldest pending delivery of a call is ever due: #2 of a call waits until #1
   is delivered or dead, so a receiver sees each call's deliveries in order.
3. Claims take ``FOR UPDATE SKIP LOCKED`` (PostgreSQL) and a lease set by a
   compare-and-set update (which keeps two SQLite processes apart too), like the call
   queue. A process that dies mid-send loses its lease and another sends again with the
   same delivery id: at least once, exactly once for a receiver that remembers ids.
4. Only the lease holder records an attempt.
5. When a delivery dies, the pending deliveries queued behind it for the same call die
   with it: the receiver failed for the whole retry window, and waiting a full window
   again for each of them would hold the post-call webhook back for days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from callwright.store import calls
from callwright.store.crypto import SecretBox
from callwright.store.models import WebhookAttempt, WebhookDelivery
from callwright.webhooks import signing_secrets
from callwright.webhooks.retry import RetryPolicy, Step, after_attempt


@dataclass(frozen=True, slots=True)
class Job:
    """One claimed delivery, with what the sender needs."""

    id: int
    delivery_id: str
    org_id: str
    call_id: str
    url: str
    body: bytes
    secret: str


@dataclass(frozen=True, slots=True)
class Result:
    """How one attempt went."""

    status_code: int | None
    latency_ms: int
    error: str | None
    refused: bool = False

    @property
    def delivered(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


async def claim(
    session: AsyncSession,
    worker: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    box: SecretBox,
) -> list[Job]:
    if limit <= 0:
        return []
    d = WebhookDelivery
    earlier = aliased(WebhookDelivery)
    waiting_behind = exists().where(
        earlier.call_id == d.call_id, earlier.status == "pending", earlier.id < d.id
    )
    free = or_(d.lease_expires_at.is_(None), d.lease_expires_at < now)
    candidates = (
        (
            await session.execute(
                select(d.id)
                .where(d.status == "pending", d.next_attempt_at <= now, free, ~waiting_behind)
                .order_by(d.next_attempt_at, d.id)
                .limit(limit)
                .with_for_update(skip_locked=True, of=d)
            )
        )
        .scalars()
        .all()
    )
    if not candidates:
        return []
    # Compare-and-set: on PostgreSQL the rows are already locked and all of them match;
    # SQLite reads without a lock, so two processes may pick the same row and only the
    # first update wins it.
    won = await session.execute(
        update(d)
        .where(d.id.in_(candidates), d.status == "pending", free)
        .values(lease_owner=worker, lease_expires_at=now + lease)
        .returning(d.id, d.delivery_id, d.org_id, d.call_id, d.url, d.body)
        .execution_options(synchronize_session=False)
    )
    rows = sorted(won.all(), key=lambda r: candidates.index(r.id))
    keys = await signing_secrets.secrets_for(session, box, {r.org_id for r in rows}, now)
    return [
        Job(r.id, r.delivery_id, r.org_id, r.call_id, r.url, r.body.encode(), keys[r.org_id])
        for r in rows
    ]


async def record(
    session: AsyncSession,
    job: Job,
    worker: str,
    now: datetime,
    result: Result,
    policy: RetryPolicy,
    draw: float,
) -> Step | None:
    """Write the attempt and the delivery's next state; None if our lease was lost."""
    row = (
        await session.execute(
            select(WebhookDelivery).where(WebhookDelivery.id == job.id).with_for_update()
        )
    ).scalar_one_or_none()
    if row is None or row.lease_owner != worker or row.status != "pending":
        return None
    row.attempts += 1
    step = after_attempt(
        policy, row.attempts, delivered=result.delivered, final=result.refused, draw=draw
    )
    session.add(
        WebhookAttempt(
            delivery_id=row.id,
            org_id=row.org_id,
            number=row.attempts,
            at=now,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            error=result.error,
            outcome="retry" if step.status == "pending" else step.status,
        )
    )
    row.last_status_code = result.status_code
    row.last_error = result.error
    row.lease_owner = None
    row.lease_expires_at = None
    if step.status == "delivered":
        row.status = "delivered"
        row.delivered_at = now
    elif step.status == "pending":
        assert step.delay_seconds is not None
        row.next_attempt_at = now + timedelta(seconds=step.delay_seconds)
    else:
        await _dead(session, row, now, refused=result.refused)
    return step


async def release(session: AsyncSession, worker: str) -> None:
    """Give back every lease ``worker`` holds (it is shutting down)."""
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.lease_owner == worker, WebhookDelivery.status == "pending")
        .values(lease_owner=None, lease_expires_at=None)
    )


async def _dead(
    session: AsyncSession, row: WebhookDelivery, now: datetime, *, refused: bool
) -> None:
    row.status = "dead"
    behind = await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.call_id == row.call_id,
            WebhookDelivery.status == "pending",
            WebhookDelivery.id > row.id,
        )
        .values(status="dead", last_error=f"dead-lettered with {row.delivery_id}")
        .returning(WebhookDelivery.id)
    )
    followers = len(behind.all())
    call = await calls.lock_call(session, row.call_id, row.org_id)
    if call is None:
        return
    host = urlsplit(row.url).hostname or "?"
    if refused:
        type_, message = "delivery.refused", f"Webhook to {host} refused: {row.last_error}"
    else:
        type_ = "delivery.dead"
        message = (
            f"Webhook to {host} failed after {row.attempts} attempts and was dead-lettered "
            f"(last error: {row.last_error})."
        )
    if followers:
        message += f" {followers} webhook(s) queued behind it for this call were dead-lettered too."
    await calls.add_event(
        session,
        call,
        now,
        type_,
        message,
        category="error",
        data={"delivery_id": row.delivery_id, "kind": row.kind, "followers": followers},
    )
