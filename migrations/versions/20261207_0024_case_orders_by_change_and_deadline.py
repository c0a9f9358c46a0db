"""case lists in order of last change and of deadline, over every case

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 23:50:00

A list may be sorted by created_at, updated_at or due_at, either way. Only created_at had an
index over every case; updated_at and due_at had indexes over the open cases alone (by due_at;
by territory and updated_at). Any other list in those orders (the register, a territory's or an
agency's cases, the closed ones, a priority) sorted every case that passed its filters for each
page: at 1M cases 0.5-2 s a page (the operator's register by -updated_at: 1.1 s; the closed
cases by due_at: 1.4-1.8 s; a district's own cases by -updated_at: 1.0 s), ten times that at
10M. The open cases by updated_at without a territory sorted every open case (33-58 ms at 1M).

Three indexes of (key, id), the order's key and its tie-break:

- ix_case_file_updated and ix_case_file_due over every case: such a page walks back or forth
  in time testing each case against the filters, and stops when the page is full;
- ix_case_file_open_by_updated over the open cases: the open queue by last change. With the
  index over every case alone PostgreSQL walked it from the oldest change, past the closed
  cases, for an agency's open cases by updated_at (299 ms at 1M).

After them the same lists took 0.4-22 ms a page at 1M (first and second pages, the operator and
a district's user, EXPLAIN ANALYZE). The new entries sit at the end of their indexes (a new or
changed case's updated_at is now, its deadline days ahead): 1,000 cases copied within one
transaction cost PostgreSQL 113 ms of CPU with them and 117 without (medians of 12, the 1M
bench copy), no difference that the measurement could tell.

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
    ("ix_case_file_due", "due_at", None),
    ("ix_case_file_open_by_updated", "updated_at", OPEN),
)


def upgrade() -> None:
    concurrently = op.get_context().dialect.name == "postgresql"
    for name, key, where in INDEXES:
        partial = {} if where is None else {"postgresql_where": sa.text(where)}
        if where is not None:
            partial["sqlite_where"] = sa.text(where)
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
