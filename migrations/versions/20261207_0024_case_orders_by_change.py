"""case lists in order of last change, over every case and over the open ones

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 23:50:00

A list may be sorted by created_at, updated_at or due_at, either way. Only created_at had an
index over every case; updated_at and due_at had indexes over the open cases alone (by due_at;
by territory and updated_at). Any other list in those orders (the register, a territory's or an
agency's cases, the closed ones, a priority) sorted every case that passed its filters for each
page: at 1M cases 0.5-1.6 s a page (the operator's register by -updated_at: 1.5 s; a district's
own cases by -updated_at: 0.9-1.2 s), ten times that at 10M. The open cases by updated_at
without a territory sorted every open case (31-50 ms at 1M).

Two indexes of (updated_at, id), the order's key and its tie-break:

- ix_case_file_updated over every case: such a page walks back or forth in time testing each
  case against the filters, and stops when the page is full;
- ix_case_file_open_by_updated over the open cases: the open queue by last change. With the
  index over every case alone PostgreSQL walked it from the oldest change, past the closed
  cases, for an agency's open cases by updated_at (299 ms at 1M).

After them the same lists took 0.4-8.4 ms a page at 1M (first and second pages, the operator and
a district's user, EXPLAIN ANALYZE; bench.list_orders). The new entries sit at the end of their
indexes (a new or changed case's updated_at is now).

Not due_at over every case, though it served the lists by deadline the same way: with it, the
open queue's overdue pages past a cursor, once prepared and run five times on a connection,
were given a plan made without their values (PostgreSQL's generic plan), which cannot use the
open cases' partial index (`status = ANY($1)` proves nothing about it) and walked the new one
past the closed cases instead: 22 ms a page against 0.5 at 100k. The lists by deadline outside
the open queue still sort what their filters let through.

Built CONCURRENTLY on PostgreSQL, outside the migration's transaction, like 0021: a rerun
after an interrupted build drops what it left and builds it anew.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status IN ('new', 'assigned', 'in_progress', 'returned')"
INDEXES = (
    ("ix_case_file_updated", "updated_at", None),
    ("ix_case_file_open_by_updated", "updated_at", OPEN),
)


def upgrade() -> None:
    concurrently = op.get_context().dialect.name == "postgresql"
    for name, key, where in INDEXES:
        partial = {}
        if where is not None:
            partial = {"postgresql_where": sa.text(where), "sqlite_where": sa.text(where)}
        if concurrently:
            with op.get_context().autocommit_block():
                op.drop_index(
                    name, table_name="case_file", postgresql_concurrently=True, if_exists=True
                )
                op.create_index(
                    name, "case_file", [key, "id"], postgresql_concurrently=True, **partial
                )
        else:
            op.create_index(name, "case_file", [key, "id"], **partial)


def downgrade() -> None:
    for name, _, _ in reversed(INDEXES):
        if op.get_context().dialect.name == "postgresql":
            with op.get_context().autocommit_block():
                op.drop_index(name, table_name="case_file", postgresql_concurrently=True)
        else:
            op.drop_index(name, table_name="case_file")
