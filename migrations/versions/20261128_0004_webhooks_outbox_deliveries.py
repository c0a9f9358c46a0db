"""webhooks: subscriptions, the outbox of case events, deliveries, the URL allowlist,
overdue marks, and case_agency.delivered_at (the partner has received the case)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 21:00:00

The outbox is filled by a trigger on case_event, so every committed case event that subscribers
may hear about has its outbox row in the same transaction, whatever code inserted the event
(ORM, bulk or Core inserts), and a rolled-back change leaves none.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# case_event.action -> webhook event type, as of this revision (app.webhooks.models holds the
# live table; a test checks that the trigger and the table agree).
ACTION_EVENT_TYPES = {
    "create": "case.created",
    "assign": "case.assigned",
    "accept": "case.accepted",
    "interim-answer": "case.interim_answer",
    "close": "case.closed",
    "return": "case.returned",
    "reject": "case.rejected",
    "reopen": "case.reopened",
    "overdue": "case.overdue",
}


def _event_type_sql(column: str) -> str:
    whens = " ".join(f"WHEN '{a}' THEN '{t}'" for a, t in ACTION_EVENT_TYPES.items())
    return f"CASE {column} {whens} END"


def _actions_sql() -> str:
    return ", ".join(f"'{a}'" for a in ACTION_EVENT_TYPES)


def upgrade() -> None:
    op.create_table(
        "webhook_allowlist_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry", sa.String(length=255), nullable=False),
        sa.Column("note", sa.String(length=300), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_allowlist_entry")),
        sa.UniqueConstraint("entry", name=op.f("uq_webhook_allowlist_entry_entry")),
    )
    op.create_table(
        "webhook_subscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("description", sa.String(length=300), nullable=True),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("previous_secret", sa.String(length=200), nullable=True),
        sa.Column(
            "previous_secret_expires_at",
            app.core.types.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("agency_ids", sa.JSON(), nullable=False),
        sa.Column("category_ids", sa.JSON(), nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("include_personal_data", sa.Boolean(), nullable=False),
        sa.Column("owner_role", sa.String(length=16), nullable=False),
        sa.Column("owner_agency_id", sa.Integer(), nullable=True),
        sa.Column("owner_source_system", sa.String(length=64), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("secret_rotated_at", app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_agency_id"],
            ["agency.id"],
            name=op.f("fk_webhook_subscription_owner_agency_id_agency"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscription")),
    )
    op.create_index(
        op.f("ix_webhook_subscription_owner_agency_id"),
        "webhook_subscription",
        ["owner_agency_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_webhook_subscription_owner_source_system"),
        "webhook_subscription",
        ["owner_source_system"],
        unique=False,
    )
    op.create_table(
        "case_overdue",
        sa.Column("case_id", BIG_ID, nullable=False),
        sa.Column("due_at", app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["case_file.id"],
            name=op.f("fk_case_overdue_case_id_case_file"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", "due_at", name=op.f("pk_case_overdue")),
    )
    op.create_table(
        "webhook_event",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("case_event_id", BIG_ID, nullable=True),
        sa.Column("case_id", BIG_ID, nullable=True),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("occurred_at", app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("dispatched_at", app.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_event_id"],
            ["case_event.id"],
            name=op.f("fk_webhook_event_case_event_id_case_event"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["case_file.id"],
            name=op.f("fk_webhook_event_case_id_case_file"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_event")),
    )
    op.create_index(
        "ix_webhook_event_pending",
        "webhook_event",
        ["id"],
        unique=False,
        postgresql_where=sa.text("dispatched_at IS NULL"),
        sqlite_where=sa.text("dispatched_at IS NULL"),
    )
    op.create_index("ix_webhook_event_dispatched", "webhook_event", ["dispatched_at"], unique=False)
    op.create_table(
        "webhook_delivery",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("event_id", BIG_ID, nullable=False),
        sa.Column("case_id", BIG_ID, nullable=True),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("locked_until", app.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("locked_by", sa.String(length=64), nullable=True),
        sa.Column("first_attempt_at", app.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", app.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", app.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["webhook_event.id"],
            name=op.f("fk_webhook_delivery_event_id_webhook_event"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["webhook_subscription.id"],
            name=op.f("fk_webhook_delivery_subscription_id_webhook_subscription"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_delivery")),
        sa.UniqueConstraint(
            "subscription_id",
            "event_id",
            name=op.f("uq_webhook_delivery_subscription_id_event_id"),
        ),
    )
    op.create_index(
        "ix_webhook_delivery_due",
        "webhook_delivery",
        ["priority", "next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_webhook_delivery_subscription",
        "webhook_delivery",
        ["subscription_id", "id"],
        unique=False,
    )
    op.create_index("ix_webhook_delivery_event", "webhook_delivery", ["event_id"], unique=False)
    # Plain ALTER TABLE on both databases (no SQLite table copy).
    op.add_column(
        "case_agency",
        sa.Column("delivered_at", app.core.types.UTCDateTime(timezone=True), nullable=True),
    )

    if op.get_bind().dialect.name == "postgresql":
        # Once per statement, from the transition table: a batch of a thousand events costs
        # one INSERT … SELECT, not a thousand.
        op.execute(
            "CREATE FUNCTION case_event_webhook_outbox() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN "
            "INSERT INTO webhook_event (case_event_id, case_id, event_type, occurred_at) "
            f"SELECT id, case_id, {_event_type_sql('action')}, created_at FROM new_events "
            f"WHERE action IN ({_actions_sql()}) ORDER BY id; "
            "RETURN NULL; "
            "END $$"
        )
        op.execute(
            "CREATE TRIGGER case_event_webhook_outbox AFTER INSERT ON case_event "
            "REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT "
            "EXECUTE FUNCTION case_event_webhook_outbox()"
        )
    else:
        op.execute(
            "CREATE TRIGGER case_event_webhook_outbox AFTER INSERT ON case_event "
            f"WHEN NEW.action IN ({_actions_sql()}) BEGIN "
            "INSERT INTO webhook_event (case_event_id, case_id, event_type, occurred_at) "
            f"VALUES (NEW.id, NEW.case_id, {_event_type_sql('NEW.action')}, NEW.created_at); "
            "END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS case_event_webhook_outbox ON case_event")
        op.execute("DROP FUNCTION IF EXISTS case_event_webhook_outbox()")
    else:
        op.execute("DROP TRIGGER IF EXISTS case_event_webhook_outbox")
    op.drop_column("case_agency", "delivered_at")  # SQLite >= 3.35 drops columns in place
    op.drop_index("ix_webhook_delivery_event", table_name="webhook_delivery")
    op.drop_index("ix_webhook_delivery_subscription", table_name="webhook_delivery")
    op.drop_index("ix_webhook_delivery_due", table_name="webhook_delivery")
    op.drop_table("webhook_delivery")
    op.drop_index("ix_webhook_event_dispatched", table_name="webhook_event")
    op.drop_index("ix_webhook_event_pending", table_name="webhook_event")
    op.drop_table("webhook_event")
    op.drop_table("case_overdue")
    op.drop_index(
        op.f("ix_webhook_subscription_owner_source_system"), table_name="webhook_subscription"
    )
    op.drop_index(
        op.f("ix_webhook_subscription_owner_agency_id"), table_name="webhook_subscription"
    )
    op.drop_table("webhook_subscription")
    op.drop_table("webhook_allowlist_entry")
