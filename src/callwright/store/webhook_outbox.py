"""The write side of the webhook outbox. ``calls`` calls it inside the transaction that
changes the call, so a webhook row exists exactly when the change committed.

Rules:
1. A call with a ``webhook`` URL gets one post-call delivery (the call object, reference
   §2.4) when it reaches a terminal status.
2. A call with ``webhook_events`` gets one live delivery per event of a listed kind
   (reference §8.2) while it runs, the event that ends it included.
3. Events about webhook delivery itself (type ``delivery.*``) are never streamed: a
   refused URL would otherwise feed itself.
4. Deliveries of one call are sent in ``id`` order. Rows are only inserted while the call
   row is locked (``calls`` rule 2), so that order is the order of the changes.
5. The body is serialised once, here; every attempt sends and signs these exact bytes.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from callwright.store.models import TERMINAL_STATUSES, Call, CallEvent, WebhookDelivery

DELIVERY_EVENT_PREFIX = "delivery."
# Event types owned by later features, by the kind the reference files them under.
KIND_BY_TYPE_PREFIX = (
    ("tool.", "tool"),
    ("webhook.", "webhook"),
    ("dynamic_data.", "dynamic_data"),
)


def dumps(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def live_kind(event: CallEvent) -> str | None:
    """The ``webhook_events`` kind an event streams under, or None if it never streams."""
    if event.type.startswith(DELIVERY_EVENT_PREFIX):
        return None
    for prefix, kind in KIND_BY_TYPE_PREFIX:
        if event.type.startswith(prefix):
            return kind
    if event.category == "performance":
        return "latency"
    return event.level


def on_event(session: AsyncSession, call: Call, event: CallEvent) -> None:
    """Every event of a running call (``calls.add_event``)."""
    if call.status not in TERMINAL_STATUSES:  # the last one comes through on_terminal
        _live(session, call, event)


def on_terminal(session: AsyncSession, call: Call, event: CallEvent) -> None:
    """The transition that ended the call (``calls.transition``)."""
    _live(session, call, event)
    if call.params.get("webhook"):
        enqueue_post_call(session, call, event.at, "spawn")


def enqueue_post_call(
    session: AsyncSession, call: Call, now: datetime, send_type: str
) -> WebhookDelivery:
    # Imported here: views imports calls, which imports this module.
    from callwright.store.views import call_object

    row = _row(call, str(call.params["webhook"]), "post_call", None, send_type, now)
    row.body = dumps(call_object(call))
    session.add(row)
    return row


def _live(session: AsyncSession, call: Call, event: CallEvent) -> None:
    url = call.params.get("webhook")
    kinds = call.params.get("webhook_events") or ()
    kind = live_kind(event) if url and kinds else None
    if kind is None or kind not in kinds:
        return
    row = _row(call, str(url), "event", kind, "spawn", event.at)
    row.body = dumps(
        {
            "message": event.message,
            "call_id": call.id,
            "category": kind,
            "log_level": event.category,
        }
    )
    session.add(row)


def _row(
    call: Call, url: str, kind: str, category: str | None, send_type: str, now: datetime
) -> WebhookDelivery:
    return WebhookDelivery(
        delivery_id=str(uuid.uuid4()),
        org_id=call.org_id,
        call_id=call.id,
        kind=kind,
        category=category,
        send_type=send_type,
        url=url,
        body="",
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
