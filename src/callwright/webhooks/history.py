"""What the API shows and changes about deliveries: a call's delivery log, and resends.

A resend is a new delivery (new id) of the call object as it is now, to the call's own
``webhook`` URL, queued behind whatever the call still has pending. It carries a new
delivery id on purpose: a receiver that remembers ids would drop a repeat of the old one.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callwright.store import calls, webhook_outbox
from callwright.store.models import TERMINAL_STATUSES, WebhookAttempt, WebhookDelivery

Logged = tuple[WebhookDelivery, list[WebhookAttempt]]


class ResendError(ValueError):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


async def deliveries_of(
    session: AsyncSession, org_id: str, call_id: str, kind: str | None = None
) -> list[Logged]:
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.org_id == org_id, WebhookDelivery.call_id == call_id)
        .order_by(WebhookDelivery.id)
    )
    if kind is not None:
        query = query.where(WebhookDelivery.kind == kind)
    rows = list((await session.execute(query)).scalars())
    attempts: dict[int, list[WebhookAttempt]] = defaultdict(list)
    if rows:
        found = await session.execute(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_([r.id for r in rows]))
            .order_by(WebhookAttempt.delivery_id, WebhookAttempt.number)
        )
        for attempt in found.scalars():
            attempts[attempt.delivery_id].append(attempt)
    return [(row, attempts[row.id]) for row in rows]


async def resend(
    session: AsyncSession, org_id: str, call_ids: list[str], now: datetime
) -> list[WebhookDelivery]:
    """All or nothing: raises ResendError naming the first call that cannot be resent."""
    queued = []
    for call_id in dict.fromkeys(call_ids):
        call = await calls.lock_call(session, call_id, org_id)
        if call is None:
            raise ResendError("CALL_NOT_FOUND", f"Call {call_id} not found.", 404)
        if call.status not in TERMINAL_STATUSES:
            raise ResendError("INVALID_CALL_STATUS", f"Call {call_id} has not ended yet.")
        if not call.params.get("webhook"):
            raise ResendError("invalid_parameter", f"Call {call_id} has no webhook URL.")
        queued.append(webhook_outbox.enqueue_post_call(session, call, now, "resend"))
    await session.flush()
    return queued
