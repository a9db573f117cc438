"""Org webhook signing secrets, sealed at rest with ``store.crypto``.

The reference only has a dashboard button for this ("Replace Secret", shown once).
callwright has no dashboard, so the secret is read and rotated through the API
(``/v1/webhooks/signing_secret``). An org gets its secret the first time anything needs
it; a rotation applies to every attempt made after it commits, retries included.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from callwright.store.crypto import SecretBox
from callwright.store.models import SigningSecret

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class SecretInfo:
    secret: str
    created_at: datetime
    rotated_at: datetime | None


async def secrets_for(
    session: AsyncSession, box: SecretBox, org_ids: Iterable[str], now: datetime
) -> dict[str, str]:
    """The plaintext secret of each org, creating the ones that do not exist yet."""
    wanted = set(org_ids)
    if not wanted:
        return {}
    rows = await _rows(session, wanted)
    missing = wanted - rows.keys()
    if missing:
        await _insert_missing(session, box, missing, now)
        rows.update(await _rows(session, missing))
    return {org_id: box.open(row.sealed) for org_id, row in rows.items()}


async def get(session: AsyncSession, box: SecretBox, org_id: str, now: datetime) -> SecretInfo:
    await secrets_for(session, box, [org_id], now)
    row = (await _rows(session, {org_id}))[org_id]
    return SecretInfo(box.open(row.sealed), row.created_at, row.rotated_at)


async def rotate(session: AsyncSession, box: SecretBox, org_id: str, now: datetime) -> SecretInfo:
    await secrets_for(session, box, [org_id], now)
    secret = new_secret()
    await session.execute(
        update(SigningSecret)
        .where(SigningSecret.org_id == org_id)
        .values(sealed=box.seal(secret), rotated_at=now)
    )
    row = (await _rows(session, {org_id}))[org_id]
    return SecretInfo(secret, row.created_at, row.rotated_at)


async def _rows(session: AsyncSession, org_ids: set[str]) -> dict[str, SigningSecret]:
    found = await session.execute(
        select(SigningSecret)
        .where(SigningSecret.org_id.in_(org_ids))
        .execution_options(populate_existing=True)
    )
    return {row.org_id: row for row in found.scalars()}


async def _insert_missing(
    session: AsyncSession, box: SecretBox, org_ids: set[str], now: datetime
) -> None:
    # Two processes may create an org's secret at once: the first insert wins, the other
    # is ignored, and both then read the winner.
    values = [
        {"org_id": org_id, "sealed": box.seal(new_secret()), "created_at": now}
        for org_id in sorted(org_ids)
    ]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(insert(SigningSecret).values(values).on_conflict_do_nothing())
