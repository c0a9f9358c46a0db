"""stats snapshots

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-28 23:45:00

Stored answers of the stats routes (app/stats/snapshots.py). An exact aggregate over every case
takes seconds at a million cases; the answer is computed once, kept here with its time, and
served to every worker and instance while it is younger than REGIONDESK_STATS_MAX_AGE_SECONDS.
The key is a sha256 of the resolved request; last_requested_at tells the worker which ones
people still look at (refreshed) and which ones nobody asks for (deleted).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.types

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stats_snapshot",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("report", sa.String(length=16), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("generated_at", app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("took_ms", sa.Integer(), nullable=False),
        sa.Column("last_requested_at", app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index(
        "ix_stats_snapshot_last_requested_at", "stats_snapshot", ["last_requested_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_stats_snapshot_last_requested_at", table_name="stats_snapshot")
    op.drop_table("stats_snapshot")
