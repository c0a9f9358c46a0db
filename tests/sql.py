"""Watching the SQL an app sends, for tests that count or inspect statements."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event


@contextmanager
def statements(client) -> Iterator[list[str]]:
    """The SQL statements the app's engine sends (on any of its connections) while the block
    runs, in order."""
    engine = client.app.state.engine.sync_engine
    sent: list[str] = []

    def record(conn, cursor, statement, *args):
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)
