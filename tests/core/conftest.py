"""What the migration tests share: an empty database of each kind for one test, a way to run
synchronous work on it in one transaction, and a case written in plain SQL (the revisions the
tests start from, 0016 and 0021, take it)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import empty_postgresql_database


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request, tmp_path) -> Iterator[str]:
    """An empty database of each kind, for this test alone (it migrates up and down)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/fresh.db"
        return
    with empty_postgresql_database() as url:
        yield url


def run_on(url: str, work: Callable[[Any], Any]) -> Any:
    """`work(connection)` in one committed transaction (SQLite with its foreign keys on)."""

    async def go():
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                if conn.dialect.name == "sqlite":
                    await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                return await conn.run_sync(work)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def new_case(conn, external_id: str, created_at: datetime) -> int:
    """A new incident, in plain SQL (the models describe the newest schema only): its id."""
    return conn.execute(
        text(
            "INSERT INTO case_file (kind, status, priority, version, source_system, external_id, "
            "submitted_by, text, missing_person, important, reopen_count, created_at, updated_at) "
            "VALUES ('incident', 'new', 'normal', 1, 'x', :external_id, 'x', 'Яма во дворе', "
            "false, false, 0, :now, :now) RETURNING id"
        ),
        {"external_id": external_id, "now": created_at},
    ).scalar_one()
