"""Orgs and API keys. A key is shown once; only its SHA-256 is stored (keys are 256-bit
random, so a slow password hash would add latency to every request and no safety)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callwright.store.models import ApiKey, Org

KEY_PREFIX = "cw_"
SHOWN_PREFIX_LEN = 10


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: str
    org_id: str
    org_name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


async def get_or_create_org(session: AsyncSession, name: str, now: datetime) -> Org:
    org = (await session.execute(select(Org).where(Org.name == name))).scalar_one_or_none()
    if org is None:
        org = Org(id=str(uuid.uuid4()), name=name, created_at=now)
        session.add(org)
        await session.flush()
    return org


async def create_key(session: AsyncSession, org: Org, now: datetime) -> tuple[str, ApiKey]:
    raw = generate_key()
    key = ApiKey(
        id=str(uuid.uuid4()),
        org_id=org.id,
        prefix=raw[:SHOWN_PREFIX_LEN],
        key_hash=hash_key(raw),
        created_at=now,
    )
    session.add(key)
    await session.flush()
    return raw, key


async def any_org(session: AsyncSession) -> bool:
    return (await session.execute(select(Org.id).limit(1))).first() is not None


async def org_for_key(session: AsyncSession, raw: str) -> tuple[str, str] | None:
    """(key id, org id) for a live key, else None."""
    row = (
        await session.execute(
            select(ApiKey.id, ApiKey.org_id).where(
                ApiKey.key_hash == hash_key(raw), ApiKey.revoked_at.is_(None)
            )
        )
    ).first()
    return (row[0], row[1]) if row else None


async def list_keys(session: AsyncSession) -> list[KeyInfo]:
    rows = await session.execute(
        select(ApiKey, Org.name).join(Org, Org.id == ApiKey.org_id).order_by(ApiKey.created_at)
    )
    return [
        KeyInfo(k.id, k.org_id, name, k.prefix, k.created_at, k.last_used_at, k.revoked_at)
        for k, name in rows
    ]


async def revoke_key(session: AsyncSession, key_id_or_prefix: str, now: datetime) -> int:
    """Revoke by id or by the shown prefix; returns how many keys were revoked."""
    keys = (
        (
            await session.execute(
                select(ApiKey).where(
                    (ApiKey.id == key_id_or_prefix) | (ApiKey.prefix == key_id_or_prefix),
                    ApiKey.revoked_at.is_(None),
                )
            )
        )
        .scalars()
        .all()
    )
    if len(keys) > 1:
        raise ValueError(f"{key_id_or_prefix!r} matches {len(keys)} keys; use the key id")
    for key in keys:
        key.revoked_at = now
    return len(keys)


async def touch_keys(session: AsyncSession, used: dict[str, datetime]) -> None:
    for key_id, at in used.items():
        key = await session.get(ApiKey, key_id)
        if key is not None and (key.last_used_at is None or key.last_used_at < at):
            key.last_used_at = at
