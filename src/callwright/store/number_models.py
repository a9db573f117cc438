"""Phone numbers an org owns (inbound agents, outbound caller ids) and block rules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callwright.store.models import AutoId, Base


class InboundNumber(Base):
    """A number that answers calls; ``config`` holds the agent (prompt or pathway, voice,
    webhook, ...) as the reference's inbound update fields."""

    __tablename__ = "inbound_numbers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    # Unique across orgs: an incoming call must find exactly one agent.
    phone_number: Mapped[str] = mapped_column(String(32), unique=True)
    label: Mapped[str | None] = mapped_column(String(150))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class OutboundNumber(Base):
    """A caller id the org may send calls from."""

    __tablename__ = "outbound_numbers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    phone_number: Mapped[str] = mapped_column(String(32))
    trunk_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime]
    last_initiated: Mapped[datetime | None]

    __table_args__ = (UniqueConstraint("org_id", "phone_number"),)


class BlockRule(Base):
    __tablename__ = "block_rules"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    blocked_number: Mapped[str] = mapped_column(String(32))
    is_global: Mapped[bool] = mapped_column(Boolean)
    inbound_number: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (Index("ix_block_rules_lookup", "org_id", "blocked_number"),)
