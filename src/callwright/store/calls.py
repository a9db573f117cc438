"""Call rows and their event log.

Rules:
1. Every status change goes through ``transition`` and is committed by the caller's
   transaction together with the event that records it: no change without its event.
2. Transitions lock the call row (``FOR UPDATE`` on PostgreSQL; SQLite has one writer),
   so the per-call event ``seq`` is gap-free and in commit order.
3. Every query takes ``org_id`` except the dispatcher's, which works across orgs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from callwright.store import webhook_outbox
from callwright.store.models import ACTIVE_STATUSES, TERMINAL_STATUSES, Call, CallEvent

Level = Literal["queue", "call"]
Category = Literal["info", "error", "performance"]

# Which queue_status (the reference's queue view) goes with each status.
QUEUE_STATUS = {
    "queued": "queued",
    "allocated": "allocated",
    "ringing": "started",
    "in-progress": "started",
    "completed": "complete",
    "no-answer": "complete",
    "busy": "complete",
    "canceled": "complete",
    "failed": "call_error",
}

ALLOWED: dict[str, frozenset[str]] = {
    "queued": frozenset({"allocated", "canceled", "failed"}),
    "allocated": frozenset(
        {"queued", "ringing", "in-progress", "failed", "canceled", "busy", "no-answer"}
    ),
    "ringing": frozenset({"in-progress", "no-answer", "busy", "failed", "canceled"}),
    "in-progress": frozenset({"completed", "failed", "canceled"}),
}


class TransitionError(RuntimeError):
    """A status change the lifecycle does not allow (a bug in the caller, or a race lost)."""


@dataclass(slots=True)
class NewCall:
    org_id: str
    to_number: str
    from_number: str | None
    request: dict[str, Any]
    params: dict[str, Any]
    scheduled_at: datetime
    pathway_id: str | None = None
    batch_id: str | None = None
    inbound: bool = False
    variables: dict[str, Any] = field(default_factory=dict)


async def create_call(session: AsyncSession, new: NewCall, now: datetime) -> Call:
    call = Call(
        id=str(uuid.uuid4()),
        org_id=new.org_id,
        status="queued",
        queue_status="queued",
        to_number=new.to_number,
        from_number=new.from_number,
        inbound=new.inbound,
        batch_id=new.batch_id,
        pathway_id=new.pathway_id,
        request=new.request,
        params=new.params,
        variables=new.variables,
        created_at=now,
        updated_at=now,
        scheduled_at=new.scheduled_at,
        stop_requested=False,
        attempts=0,
        event_seq=0,
    )
    session.add(call)
    await session.flush()
    when = "now" if new.scheduled_at <= now else new.scheduled_at.isoformat()
    await add_event(
        session,
        call,
        now,
        "queue.accepted",
        f"Call enqueued (dispatch at {when})",
        level="queue",
        data={"scheduled_at": new.scheduled_at.isoformat()},
    )
    return call


async def add_event(
    session: AsyncSession,
    call: Call,
    now: datetime,
    type_: str,
    message: str,
    *,
    level: Level = "call",
    category: Category = "info",
    data: dict[str, Any] | None = None,
) -> CallEvent:
    call.event_seq += 1
    call.updated_at = now
    event = CallEvent(
        call_id=call.id,
        org_id=call.org_id,
        seq=call.event_seq,
        at=now,
        level=level,
        category=category,
        type=type_,
        message=message,
        data=data,
    )
    session.add(event)
    webhook_outbox.on_event(session, call, event)
    return event


async def lock_call(session: AsyncSession, call_id: str, org_id: str | None = None) -> Call | None:
    query = select(Call).where(Call.id == call_id).with_for_update()
    if org_id is not None:
        query = query.where(Call.org_id == org_id)
    return (await session.execute(query)).scalar_one_or_none()


async def transition(
    session: AsyncSession,
    call: Call,
    to: str,
    now: datetime,
    message: str,
    *,
    error_message: str | None = None,
    queue_status: str | None = None,
    category: Category | None = None,
    level: Level = "call",
    data: dict[str, Any] | None = None,
) -> None:
    if to not in ALLOWED.get(call.status, frozenset()):
        raise TransitionError(f"call {call.id}: {call.status} -> {to} is not allowed")
    previous = call.status
    call.status = to
    call.queue_status = queue_status or QUEUE_STATUS[to]
    if to in ("ringing", "in-progress") and call.started_at is None:
        call.started_at = now
    if to in TERMINAL_STATUSES:
        call.ended_at = now
        if call.started_at is not None:
            call.duration_seconds = max((now - call.started_at).total_seconds(), 0.0)
        call.lease_owner = None
        call.lease_expires_at = None
    if to == "queued":
        call.lease_owner = None
        call.lease_expires_at = None
    if error_message is not None:
        call.error_message = error_message
    event = await add_event(
        session,
        call,
        now,
        f"status.{to}",
        message,
        level=level,
        category=category or ("error" if to == "failed" else "info"),
        data={"from": previous, "to": to, **(data or {})},
    )
    if to in TERMINAL_STATUSES:
        # The post-call webhook commits with the status that causes it (outbox).
        webhook_outbox.on_terminal(session, call, event)


def call_length_minutes(call: Call) -> float:
    if call.duration_seconds is not None:
        return round(call.duration_seconds / 60.0, 4)
    if call.started_at is None:
        return 0.0
    return round(max((call.updated_at - call.started_at).total_seconds(), 0.0) / 60.0, 4)


async def get_call(session: AsyncSession, org_id: str, call_id: str) -> Call | None:
    return (
        await session.execute(select(Call).where(Call.id == call_id, Call.org_id == org_id))
    ).scalar_one_or_none()


async def list_events(session: AsyncSession, org_id: str, call_id: str) -> list[CallEvent]:
    rows = await session.execute(
        select(CallEvent)
        .where(CallEvent.call_id == call_id, CallEvent.org_id == org_id)
        .order_by(CallEvent.seq)
    )
    return list(rows.scalars())


async def count_and_page(
    session: AsyncSession, query: Select[Call], offset: int, limit: int
) -> tuple[int, list[Call]]:
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (await session.execute(query.offset(offset).limit(limit))).scalars().all()
    return int(total), list(rows)


def active_query(org_id: str) -> Select[Call]:
    return (
        select(Call)
        .where(Call.org_id == org_id, Call.status.in_({"queued", *ACTIVE_STATUSES}))
        .order_by(Call.created_at)
    )
