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


CACHE_RELOADS = (
    "FROM routing_rule",
    "FROM deadline_policy",
    "FROM calendar_exception",
    "FROM api_client",
    "category.code",
)
"""What the per-process caches (rules, deadlines, calendar, accounts, categories) send now and
then: a request's own statements are the others."""


def uncached(sent: list[str]) -> list[str]:
    """The statements of `sent` that are a request's own work (not a cache's check or reload),
    whitespace collapsed."""
    collapsed = (" ".join(s.split()) for s in sent)
    return [s for s in collapsed if not any(t in s for t in CACHE_RELOADS)]
