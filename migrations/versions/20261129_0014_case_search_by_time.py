"""case search by time

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29 00:30:00

PostgreSQL only. A search page is the newest (or oldest) 20 matches. For a common word the
fastest way to them is to walk the cases by created_at and test each one's search vector until
20 match: a few thousand rows at any table size, but on case_file each is a random 1.4 kB heap
row (3,077 rows walked: 14.6 ms at 100k, warm). case_search holds only (created_at, id,
search_vector), written in created_at order, so the same walk reads ~16 rows per page in order
(0.85 ms). Rare words still go by the GIN index of case_file (app/cases/reads.py).

Kept in step with case_file by triggers: new cases once per statement from the transition table
(a batch's COPY is one INSERT … SELECT), a changed text or a deleted case per row (rare), and
emptied with it (TRUNCATE fires no row triggers).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE TABLE case_search ("
        "created_at timestamptz NOT NULL, id bigint NOT NULL, search_vector tsvector NOT NULL)"
    )
    # The triggers first: the whole migration is one transaction, and CREATE TRIGGER locks out
    # writes to case_file until it commits, so no new case can slip past the backfill.
    op.execute(
        "CREATE FUNCTION case_search_added() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN "
        "INSERT INTO case_search (created_at, id, search_vector) "
        "SELECT created_at, id, search_vector FROM added_cases; "
        "RETURN NULL; "
        "END $$"
    )
    op.execute(
        "CREATE TRIGGER case_search_added AFTER INSERT ON case_file "
        "REFERENCING NEW TABLE AS added_cases FOR EACH STATEMENT "
        "EXECUTE FUNCTION case_search_added()"
    )
    op.execute(
        "CREATE FUNCTION case_search_changed() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN "
        "DELETE FROM case_search WHERE created_at = OLD.created_at AND id = OLD.id; "
        "IF TG_OP = 'UPDATE' THEN "
        "INSERT INTO case_search (created_at, id, search_vector) "
        "VALUES (NEW.created_at, NEW.id, NEW.search_vector); "
        "END IF; "
        "RETURN NULL; "
        "END $$"
    )
    op.execute(
        "CREATE TRIGGER case_search_changed AFTER UPDATE OF id, created_at, text ON case_file "
        "FOR EACH ROW WHEN (OLD.id <> NEW.id OR OLD.created_at <> NEW.created_at "
        "OR OLD.text <> NEW.text) EXECUTE FUNCTION case_search_changed()"
    )
    op.execute(
        "CREATE TRIGGER case_search_removed AFTER DELETE ON case_file "
        "FOR EACH ROW EXECUTE FUNCTION case_search_changed()"
    )
    op.execute(
        "CREATE FUNCTION case_search_emptied() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN TRUNCATE case_search; RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER case_search_emptied AFTER TRUNCATE ON case_file "
        "FOR EACH STATEMENT EXECUTE FUNCTION case_search_emptied()"
    )
    # Written in created_at order (the point of the table), the key built afterwards: at 10M
    # cases a sort and a sequential write instead of ten million random index insertions.
    op.execute("SET LOCAL work_mem = '256MB'")
    op.execute("SET LOCAL maintenance_work_mem = '512MB'")
    op.execute(
        "INSERT INTO case_search (created_at, id, search_vector) "
        "SELECT created_at, id, search_vector FROM case_file ORDER BY created_at, id"
    )
    op.execute("ALTER TABLE case_search ADD CONSTRAINT pk_case_search PRIMARY KEY (created_at, id)")
    op.execute("ANALYZE case_search")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS case_search_emptied ON case_file")
    op.execute("DROP TRIGGER IF EXISTS case_search_removed ON case_file")
    op.execute("DROP TRIGGER IF EXISTS case_search_changed ON case_file")
    op.execute("DROP TRIGGER IF EXISTS case_search_added ON case_file")
    op.execute("DROP FUNCTION IF EXISTS case_search_changed()")
    op.execute("DROP FUNCTION IF EXISTS case_search_added()")
    op.execute("DROP FUNCTION IF EXISTS case_search_emptied()")
    op.execute("DROP TABLE IF EXISTS case_search")
