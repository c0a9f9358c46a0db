"""Migration 0021: the index of the cases waiting for the centre's triage, built CONCURRENTLY on
PostgreSQL; a build that was interrupted is built again by the next run."""

from __future__ import annotations

from sqlalchemy import inspect, text

from tests.conftest import empty_postgresql_database, run_migrations
from tests.core.conftest import run_on

INDEX = "ix_case_file_inbox_by_created"
BEFORE = "0020"


def _indexes(conn) -> set[str]:
    return {ix["name"] for ix in inspect(conn).get_indexes("case_file")}


def test_the_inbox_index_comes_and_goes_with_the_revision(fresh_url):
    run_migrations(fresh_url, BEFORE)
    assert INDEX not in run_on(fresh_url, _indexes)
    run_migrations(fresh_url)
    assert INDEX in run_on(fresh_url, _indexes)
    run_migrations(fresh_url, BEFORE, downgrade=True)
    assert INDEX not in run_on(fresh_url, _indexes)


def test_an_interrupted_build_is_built_again():
    # What an interrupted CREATE INDEX CONCURRENTLY leaves: an index of that name marked
    # invalid (never read by the planner), and the revision not recorded.
    with empty_postgresql_database() as url:
        run_migrations(url, BEFORE)

        def leftover(conn) -> None:
            conn.execute(text(f"CREATE INDEX {INDEX} ON case_file (created_at)"))
            conn.execute(
                text("UPDATE pg_index SET indisvalid = false WHERE indexrelid = :name ::regclass"),
                {"name": INDEX},
            )

        run_on(url, leftover)
        run_migrations(url)  # without the drop first: "relation ... already exists"

        def built(conn) -> tuple[bool, str]:
            return conn.execute(
                text(
                    "SELECT i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                    "WHERE i.indexrelid = :name ::regclass"
                ),
                {"name": INDEX},
            ).one()

        valid, definition = run_on(url, built)
        assert valid
        assert "(created_at, id)" in definition
        assert "'new'" in definition and "'returned'" in definition
