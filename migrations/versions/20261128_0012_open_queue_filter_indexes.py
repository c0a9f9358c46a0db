"""open queue filter indexes

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 23:50:00

The triage queue filters open cases by category (a sector is its subcategories too), by
category and territory, and by priority and kind. The planner answered those by intersecting a
bitmap of the open cases with a bitmap of every case of the category (or priority) ever
registered: 15,000–24,000 entries at 100k cases, ten times more at 1M. Partial indexes over the
open cases hold only the queue's own rows. EXPLAIN ANALYZE at 100k (the bench's queue filters,
as prepared statements): sector 1.7-2.3 -> 0.35-0.38 ms, sector and territory 3.5-7.6 -> 0.08-
0.10 ms, kind and priority 0.50-0.60 -> 0.05 ms. Each new (open) case adds an entry to each, as
to the other two open-queue indexes of 0010.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status IN ('new', 'assigned', 'in_progress', 'returned')"


def upgrade() -> None:
    for name, columns in (
        ("ix_case_file_open_by_category", ["category_id", "territory_id"]),
        ("ix_case_file_open_by_priority", ["priority", "kind"]),
    ):
        op.create_index(
            name,
            "case_file",
            columns,
            postgresql_where=sa.text(OPEN),
            sqlite_where=sa.text(OPEN),
        )


def downgrade() -> None:
    op.drop_index("ix_case_file_open_by_priority", table_name="case_file")
    op.drop_index("ix_case_file_open_by_category", table_name="case_file")
