"""Migration 0024: the indexes of the case lists by last change, built
CONCURRENTLY on PostgreSQL; a build that was interrupted is built again by the next run."""

from __future__ import annotations

from sqlalchemy import inspect, text

from tests.conftest import empty_postgresql_database, run_migrations
from tests.core.conftest import run_on

INDEXES = {"ix_case_file_updated", "ix_case_file_open_by_updated"}
BEFORE = "0023"


def _indexes(conn) -> set[str]:
    return {ix["name"] for ix in inspect(conn).get_indexes("case_file")}


def test_the_order_indexes_come_and_go_with_the_revision(fresh_url):
    run_migrations(fresh_url, BEFORE)
    assert not INDEXES & run_on(fresh_url, _indexes)
    run_migrations(fresh_url)
    assert run_on(fresh_url, _indexes) >= INDEXES
    run_migrations(fresh_url, BEFORE, downgrade=True)
    assert not INDEXES & run_on(fresh_url, _indexes)


def test_an_interrupted_build_is_built_again():
    # What an interrupted CREATE INDEX CONCURRENTLY leaves: an index of that name marked
    # invalid (never read by the planner), and the revision not recorded.
    with empty_postgresql_database() as url:
        run_migrations(url, BEFORE)

        def leftover(conn) -> None:
            conn.execute(text("CREATE INDEX ix_case_file_updated ON case_file (created_at)"))
            conn.execute(
                text("UPDATE pg_index SET indisvalid = false WHERE indexrelid = :name ::regclass"),
                {"name": "ix_case_file_updated"},
            )

        run_on(url, leftover)
        run_migrations(url)  # without the drop first: "relation ... already exists"

        def built(conn) -> list[tuple[bool, str]]:
            return conn.execute(
                text(
                    "SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                    "WHERE i.indexrelid::regclass::text = ANY(:names)"
                ),
                {"names": sorted(INDEXES)},
            ).all()

        found = {
            definition.split(" ON ")[0].split()[-1]: (valid, definition)
            for valid, definition in run_on(url, built)
        }
        assert set(found) == INDEXES, found
        assert all(valid for valid, _ in found.values()), found
        assert "(updated_at, id)" in found["ix_case_file_updated"][1]
        open_ = found["ix_case_file_open_by_updated"][1]
        assert "(updated_at, id)" in open_ and "'in_progress'" in open_, open_
