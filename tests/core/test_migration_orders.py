"""Migrations 0021, 0024 and 0025: the indexes of the centre's inbox, of the case lists by last
change and of the settled cases by deadline, built CONCURRENTLY on PostgreSQL; a build that was
interrupted is built again by the next run."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from tests.conftest import empty_postgresql_database, run_migrations
from tests.core.conftest import run_on

# Each migration: the revision before it, and its indexes with what their definitions hold.
MIGRATIONS = {
    "0021": (
        "0020",
        {"ix_case_file_inbox_by_created": ["(created_at, id)", "'new'", "'returned'"]},
    ),
    "0024": (
        "0023",
        {
            "ix_case_file_updated": ["(updated_at, id)"],
            "ix_case_file_open_by_updated": ["(updated_at, id)", "= ANY", "'in_progress'"],
        },
    ),
    "0025": ("0024", {"ix_case_file_settled_by_due": ["(due_at, id)", "<> ALL", "'returned'"]}),
}


def _indexes(conn) -> set[str]:
    return {ix["name"] for ix in inspect(conn).get_indexes("case_file")}


@pytest.mark.parametrize("revision", sorted(MIGRATIONS))
def test_the_order_indexes_come_and_go_with_the_revision(fresh_url, revision):
    before, indexes = MIGRATIONS[revision]
    run_migrations(fresh_url, before)
    assert not set(indexes) & run_on(fresh_url, _indexes)
    run_migrations(fresh_url)
    assert run_on(fresh_url, _indexes) >= set(indexes)
    run_migrations(fresh_url, before, downgrade=True)
    assert not set(indexes) & run_on(fresh_url, _indexes)


@pytest.mark.parametrize("revision", sorted(MIGRATIONS))
def test_an_interrupted_build_is_built_again(revision):
    # What an interrupted CREATE INDEX CONCURRENTLY leaves: an index of that name marked
    # invalid (never read by the planner), and the revision not recorded.
    before, indexes = MIGRATIONS[revision]
    first = next(iter(indexes))
    with empty_postgresql_database() as url:
        run_migrations(url, before)

        def leftover(conn) -> None:
            conn.execute(text(f"CREATE INDEX {first} ON case_file (created_at)"))
            conn.execute(
                text("UPDATE pg_index SET indisvalid = false WHERE indexrelid = :name ::regclass"),
                {"name": first},
            )

        run_on(url, leftover)
        run_migrations(url)  # without the drop first: "relation ... already exists"

        def built(conn) -> list[tuple[bool, str]]:
            return conn.execute(
                text(
                    "SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                    "WHERE i.indexrelid::regclass::text = ANY(:names)"
                ),
                {"names": sorted(indexes)},
            ).all()

        found = {
            definition.split(" ON ")[0].split()[-1]: (valid, definition)
            for valid, definition in run_on(url, built)
        }
        assert set(found) == set(indexes), found
        assert all(valid for valid, _ in found.values()), found
        for name, parts in indexes.items():
            assert all(part in found[name][1] for part in parts), (parts, found[name][1])
