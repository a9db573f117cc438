"""Tables. Every tenant-owned row carries ``org_id``; repositories always filter on it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
AutoId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both SQLite (which drops the zone) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        from datetime import UTC

        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class Org(Base):
    __tablename__ = "orgs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime]


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Call(Base):
    """A call is a row from the moment the API accepts it; the row is also the queue job."""

    __tablename__ = "calls"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20))
    queue_status: Mapped[str] = mapped_column(String(20))
    to_number: Mapped[str] = mapped_column(String(32))
    from_number: Mapped[str | None] = mapped_column(String(32))
    inbound: Mapped[bool] = mapped_column(Boolean, default=False)
    batch_id: Mapped[str | None] = mapped_column(String(64))
    pathway_id: Mapped[str | None] = mapped_column(String(64))
    # The accepted request as sent (unknown fields kept) and as normalised.
    request: Mapped[dict[str, Any]]
    params: Mapped[dict[str, Any]]
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error_message: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[str | None] = mapped_column(String(20))
    call_ended_by: Mapped[str | None] = mapped_column(String(20))
    summary: Mapped[str | None] = mapped_column(Text)
    recording_url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    scheduled_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    stop_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None]
    event_seq: Mapped[int] = mapped_column(Integer, default=0)
    # The record the conversation writes as it goes (``store.call_record``): reference
    # shapes, appended under the call's row lock.
    transcript: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    pathway_logs: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    analysis: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    transferred_to: Mapped[str | None] = mapped_column(String(64))
    transferred_at: Mapped[datetime | None]
    # ``{state, proxy_agent_calls: [...]}`` once a warm transfer was attempted.
    warm_transfer_call: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_calls_org_created", "org_id", "created_at"),
        Index("ix_calls_queue", "status", "scheduled_at"),
        Index("ix_calls_lease", "lease_expires_at"),
    )


class CallEvent(Base):
    """Append-only log of everything that happened to a call, in commit order."""

    __tablename__ = "call_events"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    org_id: Mapped[str] = mapped_column(String(36))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]
    level: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (Index("ix_call_events_call_seq", "call_id", "seq", unique=True),)


TERMINAL_STATUSES = frozenset({"completed", "failed", "no-answer", "busy", "canceled"})
ACTIVE_STATUSES = frozenset({"allocated", "ringing", "in-progress"})


class WebhookDelivery(Base):
    """Outbox row: one webhook to send, written in the transaction of the change that
    causes it. ``id`` orders the deliveries of a call; ``delivery_id`` is the receiver's
    idempotency key (the same on every retry)."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(36), unique=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # post_call | event
    category: Mapped[str | None] = mapped_column(String(32))
    send_type: Mapped[str] = mapped_column(String(16))  # spawn | resend
    url: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)  # the exact bytes signed and sent, as UTF-8
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_call", "call_id", "id"),
    )


class WebhookAttempt(Base):
    """One try at sending a delivery, kept for the delivery log."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    org_id: Mapped[str] = mapped_column(String(36))
    number: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(16))  # delivered | retry | dead


class SigningSecret(Base):
    """An org's webhook signing secret, encrypted at rest (``store.crypto``)."""

    __tablename__ = "signing_secrets"

    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    rotated_at: Mapped[datetime | None]
