"""intake: fewer indexes to maintain per new case and per outbox row

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29 00:40:00

Every new case adds an entry to every index of case_file, and every event an outbox row to
every index of webhook_event: a batch of 1,000 incidents pays for each index a thousand times
(two thousand for the outbox). Four of them serve no reader:

- ix_case_file_source_system (source_system): the unique key (source_system, external_id)
  starts with the same column and answers the same lookups (an integration client's cases,
  the dedup of intake);
- ix_case_file_kind (kind): two values, a quarter and three quarters of the cases; no plan
  uses it (the queue's kind filter goes through ix_case_file_open_by_priority);
- ix_case_file_open_due (status, due_at): the overdue sweep and the queue's deadline order
  read the open cases by due_at through ix_case_file_open_by_due (0010);
- ix_webhook_event_dispatched (dispatched_at): only the retention job reads it, for
  dispatched_at < cutoff; a new outbox row is never dispatched, so the index now holds the
  dispatched rows only (partial), and a new row adds no entry to it.

Checked with pg_stat_user_indexes after the bench's get, queue, search, stats and webhooks
scenarios at 100k (idx_scan 0 for the three case_file indexes) and EXPLAIN of the overdue
sweep and the retention query.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DISPATCHED = sa.text("dispatched_at IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_case_file_source_system", table_name="case_file")
    op.drop_index("ix_case_file_kind", table_name="case_file")
    op.drop_index("ix_case_file_open_due", table_name="case_file")
    op.drop_index("ix_webhook_event_dispatched", table_name="webhook_event")
    op.create_index(
        "ix_webhook_event_dispatched",
        "webhook_event",
        ["dispatched_at"],
        postgresql_where=DISPATCHED,
        sqlite_where=DISPATCHED,
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_event_dispatched", table_name="webhook_event")
    op.create_index("ix_webhook_event_dispatched", "webhook_event", ["dispatched_at"])
    op.create_index("ix_case_file_open_due", "case_file", ["status", "due_at"])
    op.create_index("ix_case_file_kind", "case_file", ["kind"])
    op.create_index("ix_case_file_source_system", "case_file", ["source_system"])
