"""Every store and API test runs on SQLite and on PostgreSQL.

PostgreSQL: 127.0.0.1:5432, user postgres, trust auth (``CALLWRIGHT_TEST_PG`` overrides).
Each test session creates its own database and drops it at the end.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from tests.conftest import need_peer, port_open

from callwright.api.services import Services
from callwright.config import Settings
from callwright.server import build_test_app, running_services
from callwright.store import keys
from callwright.store.migrate import upgrade

PG_ADMIN = os.environ.get("CALLWRIGHT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


async def _pg(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    need_peer("postgresql", port_open("127.0.0.1", 5432), "start it with pg_ctlcluster")
    name = f"cw_test_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_database" if request.param == "sqlite" else "pg_database"
    return str(request.getfixturevalue(name))


@dataclass
class Api:
    client: httpx.AsyncClient
    services: Services
    key_a: str
    key_b: str

    def a(self) -> dict[str, str]:
        return {"authorization": self.key_a}

    def b(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.key_b}"}


async def new_org_key(services: Services, prefix: str) -> str:
    async with services.db.transaction() as session:
        org = await keys.get_or_create_org(
            session, f"{prefix}-{uuid.uuid4().hex[:8]}", services.clock.now()
        )
        raw, _ = await keys.create_key(session, org, services.clock.now())
    return raw


async def wipe(services: Services) -> None:
    """Tests share one database per backend; each starts from an empty store."""
    from callwright.store.models import Base

    async with services.db.transaction() as session:
        for table in reversed(Base.metadata.sorted_tables):
            await session.execute(table.delete())


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    """The real app over a real database, dispatcher not running (tests drive it)."""
    settings = Settings(
        database_url=database_url, data_dir=tmp_path, sandbox_numbers=True, sandbox_call_seconds=0
    )
    async with running_services(settings, migrate=False, start_dispatcher=False) as (svc, _):
        await wipe(svc)
        app = build_test_app(svc)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Api(client, svc, await new_org_key(svc, "a"), await new_org_key(svc, "b"))
