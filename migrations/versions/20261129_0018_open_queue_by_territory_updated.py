"""open cases of a territory by their last change

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-29 08:10:00

A territory's queue sorted by updated_at (the bench's Sochi x housing page, `-updated_at`) took
every open case of the territory and category from ix_case_file_open_by_category and sorted
them for the first 51: 22 cases at 100k, 2,374 at 10M (6.6-8.0 ms a page at 10M, EXPLAIN
ANALYZE, warm), so the page grew with the table. Over the open cases, in (territory_id,
updated_at, id) order, the page is a walk from the newest change until the filters have filled
it, whatever the table's size. Each new (open) case adds an entry, as to the other open-queue
indexes of 0010 and 0012; an update of an open case moves its entry, as its status, agency or
deadline already move theirs.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = "status IN ('new', 'assigned', 'in_progress', 'returned')"


def upgrade() -> None:
    op.create_index(
        "ix_case_file_open_by_territory_updated",
        "case_file",
        ["territory_id", "updated_at", "id"],
        postgresql_where=sa.text(OPEN),
        sqlite_where=sa.text(OPEN),
    )


def downgrade() -> None:
    op.drop_index("ix_case_file_open_by_territory_updated", table_name="case_file")
