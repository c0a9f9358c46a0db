"""outbox rows without their own foreign key to the case

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29 03:30:00

webhook_event.case_id is checked against case_file for every outbox row: two of them per new
incident in a batch, ~9 ms of PostgreSQL per 1,000 cases (a lookup in case_file's primary key
each, for a case the same statement has just written). The key guards nothing the other one
does not: every outbox row that names a case is written by the trigger on case_event from an
event of that case, with case_event_id set, and fk_webhook_event_case_event_id_case_event
(ON DELETE CASCADE) removes the row with its event, which goes with its case. (Rows without an
event, the pings, name no case; and on PostgreSQL a case with events is never deleted at all,
its events being immutable.) So fk_webhook_event_case_id_case_file goes; case_id stays, a
plain column, as the dispatcher reads it.

SQLite drops a constraint only by copying the table (batch mode). Dropping the old
webhook_event then deletes its rows first, with foreign keys on, and that cascades into
webhook_delivery (ON DELETE CASCADE): the deliveries are kept aside in a temporary table and
put back. The partial indexes are made again by name, with their WHERE clause, after the copy;
and the outbox trigger on case_event, which writes into webhook_event, is set aside for the
copy (SQLite refuses to rename a table while a trigger names one that is missing) and made
again from its own stored text.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "webhook_event"
KEY = "fk_webhook_event_case_id_case_file"
PENDING = sa.text("dispatched_at IS NULL")
DISPATCHED = sa.text("dispatched_at IS NOT NULL")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(KEY, TABLE, type_="foreignkey")
        return
    with _sqlite_copy() as batch_op:
        batch_op.drop_constraint(KEY, type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # NOT VALID, then VALIDATE: the check of the existing rows takes no lock that blocks
        # new outbox rows.
        op.execute(
            f"ALTER TABLE {TABLE} ADD CONSTRAINT {KEY} FOREIGN KEY (case_id) "
            "REFERENCES case_file (id) ON DELETE CASCADE NOT VALID"
        )
        op.execute(f"ALTER TABLE {TABLE} VALIDATE CONSTRAINT {KEY}")
        return
    with _sqlite_copy() as batch_op:
        batch_op.create_foreign_key(KEY, "case_file", ["case_id"], ["id"], ondelete="CASCADE")


class _sqlite_copy:  # noqa: N801 (used as a context manager, like batch_alter_table)
    """batch_alter_table("webhook_event") on SQLite, keeping webhook_delivery's rows and the
    table's partial indexes."""

    def __enter__(self):
        bind = op.get_bind()
        self._triggers = bind.execute(
            sa.text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                "AND tbl_name <> :table AND sql LIKE :named"
            ),
            {"table": TABLE, "named": f"%{TABLE}%"},
        ).all()
        for name, _ in self._triggers:
            op.execute(f'DROP TRIGGER "{name}"')
        op.execute("DROP TABLE IF EXISTS temp.webhook_delivery_kept")
        op.execute("CREATE TEMP TABLE webhook_delivery_kept AS SELECT * FROM webhook_delivery")
        op.drop_index("ix_webhook_event_pending", table_name=TABLE)
        op.drop_index("ix_webhook_event_dispatched", table_name=TABLE)
        self._batch = op.batch_alter_table(TABLE, recreate="always")
        return self._batch.__enter__()

    def __exit__(self, *exc):
        if self._batch.__exit__(*exc):
            return True
        if exc[0] is not None:
            return False
        op.create_index("ix_webhook_event_pending", TABLE, ["id"], sqlite_where=PENDING)
        op.create_index(
            "ix_webhook_event_dispatched", TABLE, ["dispatched_at"], sqlite_where=DISPATCHED
        )
        for _, sql in self._triggers:
            op.execute(sql)
        # Whatever the copy's DROP cascaded into, back (the same ids: nothing else wrote since).
        op.execute("DELETE FROM webhook_delivery")
        op.execute("INSERT INTO webhook_delivery SELECT * FROM temp.webhook_delivery_kept")
        op.execute("DROP TABLE temp.webhook_delivery_kept")
        return False
