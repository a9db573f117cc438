"""Repository for org secrets (reference §4.4), sealed at rest with ``store.crypto``.

Values are written sealed and opened in one place only, ``resolve_secrets``, which the
webhook and tool request code calls at request time to fill ``{{SECRET.NAME}}``. Reading
or listing secrets never decrypts anything: the masked form is computed on write.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callwright.store.crypto import SecretBox
from callwright.store.secret_models import Secret

ID_PREFIX = "sec_"
MASK = "********"
# Below this length even the last four characters give too much away.
HINT_MIN_LENGTH = 16


def new_secret_id() -> str:
    return ID_PREFIX + uuid.uuid4().hex


def mask(value: str) -> str:
    """What the API shows of a value: its last four characters when it is long enough
    for that to be harmless (as API-key dashboards do), else nothing."""
    return MASK + value[-4:] if len(value) >= HINT_MIN_LENGTH else MASK


def name_key(name: str) -> str:
    return name.strip().lower()


async def create_secret(
    session: AsyncSession, box: SecretBox, org_id: str, name: str, value: str, now: datetime
) -> Secret:
    """Add a secret; a name the org already uses (in any case) raises ``IntegrityError``
    when the session flushes."""
    row = Secret(
        id=new_secret_id(),
        org_id=org_id,
        name=name,
        name_key=name_key(name),
        sealed=box.seal(value),
        masked=mask(value),
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    await session.flush()
    return row


def set_value(box: SecretBox, row: Secret, value: str, now: datetime) -> None:
    row.sealed = box.seal(value)
    row.masked = mask(value)
    row.updated_at = now


def rename(row: Secret, name: str, now: datetime) -> None:
    row.name = name
    row.name_key = name_key(name)
    row.updated_at = now


async def list_secrets(session: AsyncSession, org_id: str) -> list[Secret]:
    rows = await session.execute(
        select(Secret).where(Secret.org_id == org_id).order_by(Secret.name_key)
    )
    return list(rows.scalars())


async def get_secret(session: AsyncSession, org_id: str, id_or_name: str) -> Secret | None:
    """By id, or else by name (case-insensitive): ids (``sec_`` + 32 hex) never collide
    with a name in practice, and names are what people remember."""
    rows = await session.execute(
        select(Secret).where(Secret.org_id == org_id, Secret.id == id_or_name)
    )
    found = rows.scalar_one_or_none()
    if found is None:
        rows = await session.execute(
            select(Secret).where(Secret.org_id == org_id, Secret.name_key == name_key(id_or_name))
        )
        found = rows.scalar_one_or_none()
    return found


async def resolve_secrets(
    session: AsyncSession, box: SecretBox, org_id: str, names: Iterable[str]
) -> dict[str, str]:
    """The plaintext of the org's secrets named in ``names`` (case-insensitive), keyed by
    the name as asked for. Names the org has no secret for are left out: the caller
    decides whether that fails the request. Raises ``crypto.SecretKeyError`` if a value
    was sealed with a key no longer configured.

    Call it at request time and drop the result after the request: plaintext secrets must
    not be stored, logged or put in call records."""
    asked = {name: name_key(name) for name in names}
    if not asked:
        return {}
    rows = await session.execute(
        select(Secret.name_key, Secret.sealed).where(
            Secret.org_id == org_id, Secret.name_key.in_(set(asked.values()))
        )
    )
    sealed = {key: token for key, token in rows.all()}
    return {name: box.open(sealed[key]) for name, key in asked.items() if key in sealed}
