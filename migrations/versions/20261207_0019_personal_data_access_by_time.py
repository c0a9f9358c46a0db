"""the personal-data access record in time order

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 02:00:00

The record grows by a row for every case shown with its personal data: 50 for a page of the
queue, millions a month in a region. Its list (GET /api/v1/audit/personal-data, newest first)
had an index only for a case's or an actor's records, so the whole list, or a period of it,
read and sorted the table: with 937,100 records 136 ms a page, and 164 ms more for the total
it counted every time (EXPLAIN ANALYZE, the 1M bench copy). In (at, id) order, a page is a
walk back from its start, whatever the table's size. Each record adds an entry at the end
of this index.

On PostgreSQL the index is built CONCURRENTLY, outside the migration's transaction: every read
of a case writes a record, and a plain CREATE INDEX would hold them all until it is built.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_personal_data_access_at_id"
TABLE = "personal_data_access"


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.create_index(NAME, TABLE, ["at", "id"], postgresql_concurrently=True)
    else:
        op.create_index(NAME, TABLE, ["at", "id"])


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.drop_index(NAME, table_name=TABLE, postgresql_concurrently=True)
    else:
        op.drop_index(NAME, table_name=TABLE)
