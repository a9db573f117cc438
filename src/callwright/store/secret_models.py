"""Org secrets (API keys, tokens) that webhooks and tools reference as ``{{SECRET.NAME}}``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callwright.store.models import Base


class Secret(Base):
    """A static secret, encrypted at rest with ``store.crypto``.

    Template names are case-insensitive (reference §4.5), so ``name_key`` (the lowercased
    name) is what is unique and what lookups use; ``name`` keeps the spelling the user
    chose. ``masked`` is computed when the value is written, so listing secrets never
    decrypts one.
    """

    __tablename__ = "secrets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    name_key: Mapped[str] = mapped_column(String(64))
    sealed: Mapped[str] = mapped_column(Text)
    masked: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("org_id", "name_key"),)
