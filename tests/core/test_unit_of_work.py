"""The per-request unit of work: reading requests on PostgreSQL run without a transaction (no
BEGIN, no COMMIT round trip), everything else in one transaction."""

from __future__ import annotations

from contextlib import AsyncExitStack
from types import SimpleNamespace

import pytest
from sqlalchemy import event, text

from app.core.db import unit_of_work


def _request(client, method: str, stack: AsyncExitStack) -> SimpleNamespace:
    """As much of a request as unit_of_work looks at (FastAPI puts the stack in the scope)."""
    return SimpleNamespace(method=method, app=client.app, scope={"fastapi_function_astack": stack})


async def _in_transaction_after_a_read(client, method: str) -> bool:
    """Whether the request's session has a database transaction open after a SELECT."""
    async with AsyncExitStack() as stack:
        session = await unit_of_work(_request(client, method, stack))
        await session.execute(text("SELECT 1"))
        raw = await (await session.connection()).get_raw_connection()
        return raw.driver_connection.is_in_transaction()


@pytest.fixture
def postgresql(db):
    if db.dialect != "postgresql":
        pytest.skip("SQLite keeps the transactional sessions for reads too")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_reads_on_postgresql_open_no_transaction(client, postgresql, method):
    assert client.portal.call(_in_transaction_after_a_read, client, method) is False


@pytest.mark.parametrize("method", ["POST", "PATCH", "PUT", "DELETE"])
def test_writes_on_postgresql_run_in_a_transaction(client, postgresql, method):
    assert client.portal.call(_in_transaction_after_a_read, client, method) is True


async def _burst(engine, n: int) -> int:
    """n connections at once, all returned; how many the pool then holds."""
    connections = [await engine.connect() for _ in range(n)]
    for connection in connections:
        await connection.close()
    return engine.pool.checkedin()


def test_the_pool_keeps_the_connections_a_burst_opened(client, postgresql, settings):
    """Up to twice the pool size, all kept: no reconnecting after every burst of load."""
    most = 2 * settings.database_pool_size
    engine = client.app.state.engine
    assert client.portal.call(_burst, engine, most) == most


async def _ended(client, method: str, fail: bool) -> tuple[list[str], int]:
    """What ending a request's session did (begun, committed, rolled back, closed), after it
    wrote a row; and how many of the pool's connections are still out."""
    seen: list[str] = []
    stack = AsyncExitStack()
    session = await unit_of_work(_request(client, method, stack))
    sync = session.sync_session
    for name in ("after_commit", "after_rollback"):
        event.listen(sync, name, lambda *_, name=name: seen.append(name))
    await session.execute(text("CREATE TEMPORARY TABLE IF NOT EXISTS t (x int)"))
    try:
        if fail:
            await stack.__aexit__(RuntimeError, RuntimeError("handler failed"), None)
        else:
            await stack.aclose()
    finally:
        pass
    return seen, client.app.state.engine.pool.checkedout()


def test_the_session_commits_after_success_and_rolls_back_after_a_failure(client):
    assert client.portal.call(_ended, client, "POST", False) == (["after_commit"], 0)
    assert client.portal.call(_ended, client, "POST", True) == (["after_rollback"], 0)


async def _unused(client, method: str) -> list[str]:
    seen: list[str] = []
    async with AsyncExitStack() as stack:
        session = await unit_of_work(_request(client, method, stack))
        for name in ("after_begin", "before_commit", "after_rollback"):
            event.listen(session.sync_session, name, lambda *_, name=name: seen.append(name))
    return seen


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_session_never_used_is_closed_without_a_transaction(client, method):
    """Nothing to commit: no ORM transaction is begun only to be committed (a read whose
    account was remembered and whose statement had a connection of its own)."""
    assert client.portal.call(_unused, client, method) == []
