"""Migration 0023: the personal-data access record becomes one row per read, naming its cases,
on both databases; what a statement wrote as rows per case becomes one record, and downgrade
gives the rows back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy import inspect, text

from tests.conftest import run_migrations
from tests.core.conftest import run_on

BEFORE = "0022"
AT = datetime(2026, 12, 7, 9, tzinfo=UTC)
# (case, actor, via, at): a page of three cases, a case's page a second later, and another
# person's page at the very same time as the first.
ROWS = [
    (7, "user:2", "list", AT),
    (3, "user:2", "list", AT),
    (5, "user:2", "list", AT),
    (3, "user:2", "read", AT + timedelta(seconds=1)),
    (5, "user:9", "list", AT),
]


def _seed(conn) -> None:
    for case_id, actor, via, at in ROWS:
        conn.execute(
            text(
                "INSERT INTO personal_data_access (case_id, actor, actor_name, actor_role, via, "
                "at) VALUES (:case_id, :actor, 'Оператор', 'operator', :via, :at)"
            ),
            {"case_id": case_id, "actor": actor, "via": via, "at": at},
        )


def _records(conn) -> list[tuple]:
    rows = conn.execute(
        text("SELECT id, case_ids, actor, via FROM personal_data_access ORDER BY id")
    )
    return [
        (id_, orjson.loads(ids) if isinstance(ids, str) else list(ids), actor, via)
        for id_, ids, actor, via in rows
    ]


def _rows(conn) -> list[tuple]:
    rows = conn.execute(text("SELECT case_id, actor, via, at FROM personal_data_access"))
    return sorted((case_id, actor, via, _utc(at)) for case_id, actor, via, at in rows)


def _utc(at) -> datetime:
    if isinstance(at, str):  # SQLite's text
        at = datetime.fromisoformat(at)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _indexes(conn) -> set[str]:
    return {ix["name"] for ix in inspect(conn).get_indexes("personal_data_access")}


def _gin_options(conn) -> list[str]:
    return conn.execute(
        text("SELECT reloptions FROM pg_class WHERE relname = 'ix_personal_data_access_case_ids'")
    ).scalar_one()


def test_0023_makes_one_record_per_read_and_back(fresh_url):
    run_migrations(fresh_url, BEFORE)
    run_on(fresh_url, _seed)
    before = run_on(fresh_url, _rows)
    assert len(before) == 5

    run_migrations(fresh_url)
    assert run_on(fresh_url, _records) == [
        (1, [3, 5, 7], "user:2", "list"),  # the smallest id of the page's rows
        (4, [3], "user:2", "read"),
        (5, [5], "user:9", "list"),
    ]
    indexes = run_on(fresh_url, _indexes)
    assert "ix_personal_data_access_case_at" not in indexes
    assert {"ix_personal_data_access_actor_at", "ix_personal_data_access_at_id"} <= indexes
    if fresh_url.startswith("postgresql"):
        assert "ix_personal_data_access_case_ids" in indexes
        assert run_on(fresh_url, _gin_options) == ["fastupdate=off"]

    run_migrations(fresh_url, BEFORE, downgrade=True)
    assert run_on(fresh_url, _rows) == before
    assert "ix_personal_data_access_case_at" in run_on(fresh_url, _indexes)
