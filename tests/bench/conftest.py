"""What the benchmark tools' tests share: a small generated dataset, and a count of what the
tools' pages recorded."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from app.reference.demo import seed_demo
from bench.generate import asyncpg_dsn, generate

CASES = 500


@pytest.fixture
def generated(client, db, database_url):
    """500 generated cases on top of the demo region; the client fixture empties it after."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the generator bulk-loads with PostgreSQL COPY; there is no SQLite path")
    db.run(seed_demo)
    report = client.portal.call(lambda: generate(database_url, CASES, seed=3, chunk=200))
    return report


def personal_data_records(database_url: str) -> int:
    """The personal-data access records in the database (one per page that showed some)."""

    async def count() -> int:
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            return await conn.fetchval("SELECT count(*) FROM personal_data_access")
        finally:
            await conn.close()

    return asyncio.run(count())
