"""bench/run.py names the PostgreSQL settings that differ from the server's defaults beside the
figures (a machine's configuration may change them), rather than claiming defaults."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from bench import run
from bench.generate import asyncpg_dsn


def test_settings_changed_from_the_defaults_are_named(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's settings")

    async def seen() -> tuple[list[str], list[str]]:
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            before = await run.changed_settings(conn)
            await conn.execute("SET work_mem = '77MB'")
            await conn.execute("SET enable_seqscan = off")
            await conn.execute("SET DateStyle = 'German'")  # not one that bears on speed
            return before, await run.changed_settings(conn)
        finally:
            await conn.close()

    before, after = asyncio.run(seen())
    assert "work_mem = 77MB" not in before
    assert sorted(set(after) - set(before)) == ["enable_seqscan = off", "work_mem = 77MB"]
