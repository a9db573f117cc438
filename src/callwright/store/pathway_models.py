"""Pathways, their versions and folders, and text-chat sessions against them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callwright.store.models import Base


class Pathway(Base):
    """``document`` is the pathway JSON as the client sent it (nodes, edges and any other
    top-level keys), never rewritten: import then export gives back every field."""

    __tablename__ = "pathways"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    folder_id: Mapped[str | None] = mapped_column(String(36))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    production_version: Mapped[int | None] = mapped_column(Integer)
    staging_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (Index("ix_pathways_org", "org_id", "created_at"),)


class PathwayVersion(Base):
    __tablename__ = "pathway_versions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    pathway_id: Mapped[str] = mapped_column(ForeignKey("pathways.id", ondelete="CASCADE"))
    org_id: Mapped[str] = mapped_column(String(36))
    version_number: Mapped[int] = mapped_column(Integer)
    name: Mapped[str | None] = mapped_column(String(500))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("pathway_id", "version_number"),)


class PathwayFolder(Base):
    __tablename__ = "pathway_folders"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_folder_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime]


class PathwayChat(Base):
    """A text conversation with a pathway: the engine state after each turn."""

    __tablename__ = "pathway_chats"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    pathway_id: Mapped[str | None] = mapped_column(String(36))
    pathway_version: Mapped[int | None] = mapped_column(Integer)
    task: Mapped[str | None] = mapped_column(Text)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    history: Mapped[list[Any]] = mapped_column(JSON)
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
