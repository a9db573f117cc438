"""``Database.transaction`` isolates read-then-write on SQLite as on PostgreSQL: what a
transaction read cannot change before it writes (no lost updates)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from callwright.store.db import Database


async def test_concurrent_read_modify_write_loses_nothing_on_sqlite(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 't.db'}")
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER)"))
            await conn.execute(text("INSERT INTO counter VALUES (1, 0)"))

        async def bump() -> None:
            async with db.transaction() as session:
                n = (await session.execute(text("SELECT n FROM counter"))).scalar_one()
                await asyncio.sleep(0.005)  # let the others read meanwhile, if they can
                await session.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})

        await asyncio.gather(*(bump() for _ in range(20)))
        async with db.session() as session:
            assert (await session.execute(text("SELECT n FROM counter"))).scalar_one() == 20
    finally:
        await db.close()
