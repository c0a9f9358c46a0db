"""open cases of a priority and kind in order of registration

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 02:20:00

The queue's filter by priority and kind (the bench's "urgent incidents", sorted newest first)
had an index of the open cases by (priority, kind) only: PostgreSQL chose to walk every open
case back in time instead, reading each one's row to test its priority and kind. Where such
cases are rare, far back past a cursor (the stalled ones: 416 open high-priority incidents
among 133,777 open cases at 10M), that was 29,979 rows read from disk to find none: 783 ms
(EXPLAIN ANALYZE, 10M, cold). With (priority, kind, created_at, id) the page is a walk back
over the matching cases only, whatever the table's size. The new index serves everything the
old one did (its first two columns), which goes.

On PostgreSQL both are built and dropped CONCURRENTLY, outside the migration's transaction:
the case table takes new cases all day, and a plain CREATE INDEX would hold them until it had
read the whole table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status IN ('new', 'assigned', 'in_progress', 'returned')"
NEW = ("ix_case_file_open_by_priority_created", ["priority", "kind", "created_at", "id"])
OLD = ("ix_case_file_open_by_priority", ["priority", "kind"])


def _replace(create: tuple[str, list[str]], drop: str) -> None:
    postgresql = op.get_context().dialect.name == "postgresql"
    name, columns = create
    where = {"postgresql_where": sa.text(OPEN), "sqlite_where": sa.text(OPEN)}
    if postgresql:
        with op.get_context().autocommit_block():
            op.create_index(name, "case_file", columns, postgresql_concurrently=True, **where)
            op.drop_index(drop, table_name="case_file", postgresql_concurrently=True)
    else:
        op.create_index(name, "case_file", columns, **where)
        op.drop_index(drop, table_name="case_file")


def upgrade() -> None:
    _replace(NEW, OLD[0])


def downgrade() -> None:
    _replace(OLD, NEW[0])
