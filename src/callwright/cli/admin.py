"""CLI commands that work on the store directly (keys): they need the database, not a
running server."""

from __future__ import annotations

from callwright.clock import SystemClock
from callwright.config import Settings
from callwright.store import keys
from callwright.store.db import Database
from callwright.store.migrate import upgrade_async


async def _db(settings: Settings) -> Database:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url, pool_size=1)
    await upgrade_async(db.url)
    return db


async def create_key(settings: Settings, org_name: str) -> str:
    db = await _db(settings)
    try:
        now = SystemClock().now()
        async with db.transaction() as session:
            org = await keys.get_or_create_org(session, org_name, now)
            raw, _ = await keys.create_key(session, org, now)
        return raw
    finally:
        await db.close()


async def list_keys(settings: Settings) -> list[keys.KeyInfo]:
    db = await _db(settings)
    try:
        async with db.session() as session:
            return await keys.list_keys(session)
    finally:
        await db.close()


async def revoke_key(settings: Settings, key: str) -> int:
    db = await _db(settings)
    try:
        async with db.transaction() as session:
            return await keys.revoke_key(session, key, SystemClock().now())
    finally:
        await db.close()
