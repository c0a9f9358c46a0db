"""due deliveries per subscription

Revision ID: 0014
Revises: 0010
Create Date: 2026-11-28 23:30:00

The worker claims each subscription's due deliveries apart (a share per receiver, so a slow one
cannot starve the others): per subscription, a short range of an index on (subscription_id,
priority, next_attempt_at, id) over the pending ones. It replaces the index on (priority,
next_attempt_at), which only the old claim in one global order used.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_index(
        "ix_webhook_delivery_due_per_subscription",
        "webhook_delivery",
        ["subscription_id", "priority", "next_attempt_at", "id"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.drop_index("ix_webhook_delivery_due", table_name="webhook_delivery")


def downgrade() -> None:
    op.create_index(
        "ix_webhook_delivery_due",
        "webhook_delivery",
        ["priority", "next_attempt_at"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.drop_index("ix_webhook_delivery_due_per_subscription", table_name="webhook_delivery")
