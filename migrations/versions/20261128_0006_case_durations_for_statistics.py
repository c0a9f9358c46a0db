"""case durations for statistics

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 21:00:00

Four integer columns on case_file, whole seconds from registration (created_at): to the first
response and to the close, each in calendar and in working time (the production calendar lives
in Python, so the service stores them when they happen). Cases answered before this revision
have none; the statistics leave them out of the duration figures.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    "first_response_seconds",
    "first_response_working_seconds",
    "close_seconds",
    "close_working_seconds",
)


def upgrade() -> None:
    with op.batch_alter_table("case_file", schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE … DROP COLUMN (SQLite >= 3.35 has it): a batch table copy would DROP
    # case_file, and with foreign keys on that cascades into case_event and case_agency.
    for name in reversed(COLUMNS):
        op.drop_column("case_file", name)
