"""Reading pathways for calls and chats: which JSON a call runs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callwright.store.pathway_models import Pathway, PathwayVersion


async def create_pathway(
    session: AsyncSession,
    org_id: str,
    name: str,
    description: str | None,
    document: dict[str, Any],
    now: datetime,
) -> Pathway:
    row = Pathway(
        id=str(uuid.uuid4()),
        org_id=org_id,
        name=name,
        description=description,
        # The name and description live in their columns, not twice.
        document={k: v for k, v in document.items() if k not in ("name", "description")},
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    return row


class PathwayNotFound(LookupError):
    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


async def get_pathway(session: AsyncSession, org_id: str, pathway_id: str) -> Pathway | None:
    found = await session.get(Pathway, pathway_id)
    return found if found is not None and found.org_id == org_id else None


async def get_version(
    session: AsyncSession, pathway: Pathway, number: int
) -> PathwayVersion | None:
    """Version ``number`` (0 = the production version), unless archived."""
    if number == 0:
        if pathway.production_version is None:
            return None
        number = pathway.production_version
    found: PathwayVersion | None = await session.scalar(
        select(PathwayVersion).where(
            PathwayVersion.pathway_id == pathway.id,
            PathwayVersion.version_number == number,
            PathwayVersion.archived.is_(False),
        )
    )
    return found


async def document_for(
    session: AsyncSession, org_id: str, pathway_id: str, version: int | str | None
) -> tuple[dict[str, Any], int | None]:
    """The pathway JSON a call or chat runs: a version number, "production" / "staging",
    or by default the production version, else the draft (so a new pathway can be tried
    before it is published). Raises ``PathwayNotFound``."""
    pathway = await get_pathway(session, org_id, pathway_id)
    if pathway is None:
        raise PathwayNotFound("Pathway")
    number: int | None
    if version in (None, "", "production"):
        number = pathway.production_version
    elif version == "staging":
        number = pathway.staging_version
    else:
        try:
            number = int(version)
        except (TypeError, ValueError):
            raise PathwayNotFound("Pathway version") from None
    if number is None:
        return pathway.document, None
    found = await get_version(session, pathway, number)
    if found is None:
        raise PathwayNotFound("Pathway version")
    return found.document, found.version_number
