"""each agency's cases in order of registration

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 04:30:00

An agency's staff see the cases their agency was ever given (case_agency). Their lists are
newest first, and most reach into closed cases: the default list (no filter), the archive
(`status=closed`). Nothing gave an agency's cases in that order, so PostgreSQL walked every case
of the region back in time, testing whether the agency had it: the fewer cases the agency has,
the longer the walk, and it grows with the region's history. At 1M cases, a district
administration with 3,777 cases waited 30-38 ms for its first page, 78-81 ms for its third
(whole requests, in process); this way 6-8 ms and 5-7 ms.

case_agency gets a copy of its case's registration time, `case_created_at` (it never changes),
and an index of (agency_id, case_created_at, case_id): such a page walks the agency's own list
in order and reads the cases it names (app/cases/reads.py). The index replaces the one of
agency_id alone, which it begins with.

The column is filled from case_file in this migration's transaction: the ALTER holds off writes
to case_agency (new cases, assignments) until it commits, 24 s for the 1,056,440 rows of 1M
cases on the benchmark machine. Stop the previous release's processes first: they do not write
the column, and it is NOT NULL.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMN = "case_created_at"
INDEX = "ix_case_agency_agency_created"
REPLACED = "ix_case_agency_agency_id"


def upgrade() -> None:
    postgresql = op.get_context().dialect.name == "postgresql"
    # UTCDateTime is DateTime(timezone=True) underneath, as case_file.created_at is.
    op.add_column("case_agency", sa.Column(COLUMN, sa.DateTime(timezone=True), nullable=True))
    if postgresql:  # one join of the two tables, not a look-up per row
        op.execute(
            "UPDATE case_agency AS a SET case_created_at = c.created_at "
            "FROM case_file AS c WHERE c.id = a.case_id"
        )
        op.alter_column("case_agency", COLUMN, nullable=False)
        op.drop_index(REPLACED, table_name="case_agency")
    else:
        op.execute(
            "UPDATE case_agency SET case_created_at = "
            "(SELECT created_at FROM case_file WHERE case_file.id = case_agency.case_id)"
        )
        with op.batch_alter_table("case_agency") as batch:
            batch.alter_column(COLUMN, existing_type=sa.DateTime(timezone=True), nullable=False)
            batch.drop_index(REPLACED)
    op.create_index(INDEX, "case_agency", ["agency_id", COLUMN, "case_id"])
    if postgresql:  # the planner's statistics of the new column, before the first page asks
        op.execute("ANALYZE case_agency")


def downgrade() -> None:
    op.drop_index(INDEX, table_name="case_agency")
    op.create_index(REPLACED, "case_agency", ["agency_id"])
    if op.get_context().dialect.name == "postgresql":
        op.drop_column("case_agency", COLUMN)
    else:
        with op.batch_alter_table("case_agency") as batch:
            batch.drop_column(COLUMN)
