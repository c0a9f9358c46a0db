"""failed deliveries index

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 23:30:00

/metrics counts failed webhook deliveries at every scrape: a partial index keeps that a read of
the failed ones only, however many deliveries the table holds.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_webhook_delivery_failed",
        "webhook_delivery",
        ["subscription_id"],
        unique=False,
        postgresql_where=sa.text("status = 'failed'"),
        sqlite_where=sa.text("status = 'failed'"),
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_delivery_failed", table_name="webhook_delivery")
