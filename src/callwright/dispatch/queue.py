"""Queue operations on the ``calls`` table, shared by every server process.

Rules:
1. A process claims queued calls with ``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL;
   SQLite has a single writer and ignores the clause) and owns them by a lease:
   ``lease_owner`` + ``lease_expires_at``, renewed while the call runs.
2. Org limits are checked under a lock on the org rows, so two processes cannot both
   admit the org's last free slot.
3. An expired lease means its process died. A call that never left ``allocated`` is put
   back in the queue (nothing was dialed); a call that had started ringing or talking
   is failed, never dialed twice.
4. A process only writes a terminal status while it still holds the lease.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from callwright.store import calls as store
from callwright.store.models import ACTIVE_STATUSES, Call, Org

LOST_WORKER = "The worker running this call stopped unexpectedly."


async def claim(
    session: AsyncSession,
    worker: str,
    now: datetime,
    lease: timedelta,
    capacity: int,
    per_org_limit: int,
    already_deferred: set[str],
) -> list[Call]:
    if capacity <= 0:
        return []
    candidates = (
        (
            await session.execute(
                select(Call)
                .where(Call.status == "queued", Call.scheduled_at <= now)
                .order_by(Call.scheduled_at, Call.created_at)
                .limit(capacity * 4)
                .with_for_update(skip_locked=True)
            )
        )
        .scalars()
        .all()
    )
    if not candidates:
        return []
    org_ids = sorted({c.org_id for c in candidates})
    await session.execute(
        select(Org.id).where(Org.id.in_(org_ids)).order_by(Org.id).with_for_update()
    )
    counted = await session.execute(
        select(Call.org_id, func.count())
        .where(Call.org_id.in_(org_ids), Call.status.in_(ACTIVE_STATUSES))
        .group_by(Call.org_id)
    )
    active: Counter[str] = Counter({org_id: int(n) for org_id, n in counted.all()})
    claimed: list[Call] = []
    for call in candidates:
        if len(claimed) >= capacity:
            break
        if active[call.org_id] >= per_org_limit:
            if call.id not in already_deferred:
                already_deferred.add(call.id)
                await store.add_event(
                    session,
                    call,
                    now,
                    "queue.deferred",
                    f"Waiting: the org has {per_org_limit} live calls (its limit).",
                    level="queue",
                    data={"limit": per_org_limit},
                )
            continue
        active[call.org_id] += 1
        call.attempts += 1
        call.lease_owner = worker
        call.lease_expires_at = now + lease
        await store.transition(
            session,
            call,
            "allocated",
            now,
            "Call allocated to a worker",
            level="queue",
            data={"worker": worker, "attempt": call.attempts},
        )
        already_deferred.discard(call.id)
        claimed.append(call)
    return claimed


async def renew(
    session: AsyncSession, worker: str, call_ids: list[str], now: datetime, lease: timedelta
) -> tuple[set[str], set[str]]:
    """Extend our leases; returns (ids we still hold, ids whose stop was requested)."""
    if not call_ids:
        return set(), set()
    await session.execute(
        update(Call)
        .where(Call.id.in_(call_ids), Call.lease_owner == worker, Call.status.in_(ACTIVE_STATUSES))
        .values(lease_expires_at=now + lease)
    )
    rows = await session.execute(
        select(Call.id, Call.stop_requested).where(
            Call.id.in_(call_ids), Call.lease_owner == worker, Call.status.in_(ACTIVE_STATUSES)
        )
    )
    held, stops = set(), set()
    for call_id, stop in rows.all():
        held.add(call_id)
        if stop:
            stops.add(call_id)
    return held, stops


async def reclaim_expired(session: AsyncSession, now: datetime, limit: int = 100) -> list[Call]:
    expired = (
        (
            await session.execute(
                select(Call)
                .where(Call.status.in_(ACTIVE_STATUSES), Call.lease_expires_at < now)
                .order_by(Call.lease_expires_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        .scalars()
        .all()
    )
    for call in expired:
        owner = call.lease_owner
        if call.status == "allocated" and not call.stop_requested:
            await store.transition(
                session,
                call,
                "queued",
                now,
                "Lease expired before the call was dialed; back in the queue.",
                level="queue",
                data={"worker": owner},
            )
        elif call.status == "allocated":
            await store.transition(
                session,
                call,
                "canceled",
                now,
                "Call stopped by API request.",
                level="queue",
                data={"worker": owner},
            )
        else:
            await store.transition(
                session,
                call,
                "failed",
                now,
                LOST_WORKER,
                error_message=LOST_WORKER,
                data={"worker": owner},
            )
    return list(expired)


async def lock_if_owned(session: AsyncSession, call_id: str, worker: str) -> Call | None:
    call = await store.lock_call(session, call_id)
    if call is None or call.lease_owner != worker or call.status not in ACTIVE_STATUSES:
        return None
    return call
