"""the centre's inbox (new and returned cases) in order of registration

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 03:20:00

The regional centre's inbox is the cases waiting for its triage, new or returned by an agency,
newest first (`status=new&status=returned&sort=-created_at`). No index gave them in that order:
PostgreSQL either walked the index of all open cases back in time, reading each row to test its
status, or took every waiting case from the (status, created_at) index and sorted them. Both
grow with the wrong number:

- past a deep cursor, where waiting cases are rare among the open ones (the stalled cases),
  the walk read 5,542 rows to find 25 at 1M (7-59 ms; 22,058 rows, 132 ms at 10M);
- after an intake burst, before autoanalyze has run, the planner still expects the few waiting
  cases of its last statistics and sorts them all: 36,000 new cases, 82-103 ms a page at 1M.

An index of (created_at, id) over the waiting cases alone serves both in 0.07-0.3 ms. It holds
an entry for every case registered (each starts as new) and one for every return; an entry
whose case was since assigned stays until vacuum clears it, as in the other partial indexes.

On PostgreSQL it is built CONCURRENTLY, outside the migration's transaction: the case table
takes new cases all day, and a plain CREATE INDEX would hold them until it had read the whole
table. A concurrent build that is interrupted (a lost connection, a cancelled release job)
leaves an INVALID index of that name behind, which PostgreSQL keeps updating but never reads,
and the revision unrecorded: running the migration again drops what is there first, then
builds it anew.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_case_file_inbox_by_created"
INBOX = "status IN ('new', 'returned')"


def upgrade() -> None:
    where = {"postgresql_where": sa.text(INBOX), "sqlite_where": sa.text(INBOX)}
    if op.get_context().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.drop_index(
                NAME, table_name="case_file", postgresql_concurrently=True, if_exists=True
            )
            op.create_index(
                NAME, "case_file", ["created_at", "id"], postgresql_concurrently=True, **where
            )
    else:
        op.create_index(NAME, "case_file", ["created_at", "id"], **where)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.drop_index(NAME, table_name="case_file", postgresql_concurrently=True)
    else:
        op.drop_index(NAME, table_name="case_file")
