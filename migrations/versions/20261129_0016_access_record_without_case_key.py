"""the personal-data access record keeps no foreign key to case_file

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29 03:20:00

Every read of a case's personal data by a person inserts a row into personal_data_access, on
PostgreSQL in the very statement that reads the page (app/privacy/service.py): 43-50 rows per
page of the queue. Its foreign key to case_file made each of those rows look the case up
again and take a KEY SHARE lock on it — a write of the case's row header (xmax, a MultiXact
when readers overlap) on every read — about 0.3 ms of PostgreSQL per page of 50.

The key guarded nothing the app needs: cases are never deleted by the app, and the record is
evidence of who was shown what, which must outlive anything — with ON DELETE CASCADE a deleted
case took its access record with it. The index (case_id, at) stays: the audit route reads the
record by case.

Downgrade restores the key as it was; rows of cases that no longer exist (which the old
key would have removed with them) are removed first, or the key could not be made.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FK = "fk_personal_data_access_case_id_case_file"


def upgrade() -> None:
    with op.batch_alter_table("personal_data_access", schema=None) as batch_op:
        batch_op.drop_constraint(FK, type_="foreignkey")


def downgrade() -> None:
    op.execute(
        "DELETE FROM personal_data_access WHERE NOT EXISTS "
        "(SELECT 1 FROM case_file WHERE case_file.id = personal_data_access.case_id)"
    )
    with op.batch_alter_table("personal_data_access", schema=None) as batch_op:
        batch_op.create_foreign_key(FK, "case_file", ["case_id"], ["id"], ondelete="CASCADE")
