"""personal data access record and retention

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 22:00:00

152-ФЗ: every time a person is shown a case's personal data a row records who, when and which
case; `case_file.personal_data_erased_at` marks cases whose personal data retention removed.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "personal_data_access",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("case_id", BIG_ID, nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("actor_name", sa.String(length=200), nullable=False),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("at", app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case_file.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_personal_data_access_case_at", "personal_data_access", ["case_id", "at"], unique=False
    )
    op.create_index(
        "ix_personal_data_access_actor_at", "personal_data_access", ["actor", "at"], unique=False
    )
    with op.batch_alter_table("case_file", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "personal_data_erased_at", app.core.types.UTCDateTime(timezone=True), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("case_file", schema=None) as batch_op:
        batch_op.drop_column("personal_data_erased_at")
    op.drop_index("ix_personal_data_access_actor_at", table_name="personal_data_access")
    op.drop_index("ix_personal_data_access_case_at", table_name="personal_data_access")
    op.drop_table("personal_data_access")
