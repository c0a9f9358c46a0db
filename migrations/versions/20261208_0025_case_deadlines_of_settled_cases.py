"""case lists by deadline outside the open queue: an index of the other cases by due_at

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-08 01:40:00

A list may be sorted by due_at, either way. Only the open cases had an index in that order
(ix_case_file_open_by_due): any other list by deadline (the register, a territory's or an
agency's cases, the closed ones, a priority) sorted every case that passed its filters for each
page, 0.2-1.5 s a page at 1M cases (bench.list_orders), ten times that at 10M.

ix_case_file_settled_by_due is (due_at, id) over the cases that are not open (closed, rejected,
and any status added later, which the open statuses' list does not name). Such a list reads a
page from each of the two indexes, in order, and keeps the first of both (app/cases/reads.py,
_by_deadline); a list of closed or rejected cases reads this one alone. Its statements write
the two predicates as the indexes do, so even a plan made without the parameters' values can
use them.

Not one index of due_at over every case: with it, the open queue's overdue pages past a cursor,
once prepared and run five times on a connection, were given a plan made without their values
(PostgreSQL's generic plan), which cannot use the open cases' partial index (`status = ANY($1)`
proves nothing about it) and walked the full one past the closed cases instead: 22 ms a page
against 0.5 at 100k (migration 0024). That plan cannot use this index either.

A new case is open, so intake adds no entry here; a case enters it when it is closed or
rejected (an UPDATE of its status, which already writes new entries in every index).

Built CONCURRENTLY on PostgreSQL, outside the migration's transaction, like 0021 and 0024: a
rerun after an interrupted build drops what it left and builds it anew.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_case_file_settled_by_due"
SETTLED = "status NOT IN ('new', 'assigned', 'in_progress', 'returned')"


def upgrade() -> None:
    partial = {"postgresql_where": sa.text(SETTLED), "sqlite_where": sa.text(SETTLED)}
    if op.get_context().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.drop_index(NAME, table_name="case_file", postgresql_concurrently=True, if_exists=True)
            op.create_index(
                NAME, "case_file", ["due_at", "id"], postgresql_concurrently=True, **partial
            )
    else:
        op.create_index(NAME, "case_file", ["due_at", "id"], **partial)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.drop_index(NAME, table_name="case_file", postgresql_concurrently=True)
    else:
        op.drop_index(NAME, table_name="case_file")
