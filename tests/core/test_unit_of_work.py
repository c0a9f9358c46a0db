"""The per-request unit of work: reading requests on PostgreSQL run without a transaction (no
BEGIN, no COMMIT round trip), everything else in one transaction."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import text

from app.core.db import unit_of_work


async def _in_transaction_after_a_read(client, method: str) -> bool:
    """Whether the request's session has a database transaction open after a SELECT."""
    request = SimpleNamespace(method=method, app=client.app)
    sessions = unit_of_work(request)
    session = await anext(sessions)
    try:
        await session.execute(text("SELECT 1"))
        raw = await (await session.connection()).get_raw_connection()
        return raw.driver_connection.is_in_transaction()
    finally:
        await sessions.aclose()


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
