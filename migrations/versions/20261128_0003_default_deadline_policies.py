"""default deadline policies

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 20:00:00

The legal terms from public sources (docs/domain.md, Deadlines), as editable policies:
social-media incidents 9 working hours (4 for high and urgent ones) from dispatch, then 7
working days after an interim answer; platform (ПОС) messages 8 days and 59-ФЗ appeals 30 days
from registration.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import app.core.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CREATED = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)

deadline_policy = sa.table(
    "deadline_policy",
    sa.column("id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("kind", sa.String),
    sa.column("legal_regime", sa.String),
    sa.column("priority", sa.String),
    sa.column("category_id", sa.Integer),
    sa.column("unit", sa.String),
    sa.column("amount", sa.Integer),
    sa.column("starts_at", sa.String),
    sa.column("after_interim_unit", sa.String),
    sa.column("after_interim_amount", sa.Integer),
    sa.column("is_active", sa.Boolean),
    sa.column("created_at", app.core.types.UTCDateTime()),
    sa.column("updated_at", app.core.types.UTCDateTime()),
)


def _policy(
    name,
    *,
    kind,
    unit,
    amount,
    starts_at,
    legal_regime=None,
    priority=None,
    after_interim_unit=None,
    after_interim_amount=None,
):
    return {
        "name": name,
        "kind": kind,
        "legal_regime": legal_regime,
        "priority": priority,
        "category_id": None,
        "unit": unit,
        "amount": amount,
        "starts_at": starts_at,
        "after_interim_unit": after_interim_unit,
        "after_interim_amount": after_interim_amount,
        "is_active": True,
        "created_at": CREATED,
        "updated_at": CREATED,
    }


_INCIDENT = {
    "kind": "incident",
    "unit": "working_hours",
    "starts_at": "assignment",
    "after_interim_unit": "working_days",
    "after_interim_amount": 7,
}

POLICIES = [
    _policy("Инцидент: 9 рабочих часов", amount=9, **_INCIDENT),
    _policy("Инцидент высокой важности: 4 рабочих часа", priority="high", amount=4, **_INCIDENT),
    _policy("Срочный инцидент: 4 рабочих часа", priority="urgent", amount=4, **_INCIDENT),
    _policy(
        "Сообщение ПОС: 8 дней",
        kind="appeal",
        legal_regime="pos",
        unit="calendar_days",
        amount=8,
        starts_at="registration",
    ),
    _policy(
        "Обращение 59-ФЗ: 30 дней",
        kind="appeal",
        legal_regime="fz59",
        unit="calendar_days",
        amount=30,
        starts_at="registration",
    ),
]
NAMES = [p["name"] for p in POLICIES]


def upgrade() -> None:
    # Idempotent: a policy an administrator already created under the same name is kept.
    existing = set(
        op.get_bind()
        .execute(sa.select(deadline_policy.c.name).where(deadline_policy.c.name.in_(NAMES)))
        .scalars()
    )
    rows = [p for p in POLICIES if p["name"] not in existing]
    if rows:
        op.bulk_insert(deadline_policy, rows)


def downgrade() -> None:
    # Policies that cases or routing rules already point at are kept (they are valid rows in
    # revision 0002 too); deleting them would fail or erase history.
    referenced = sa.union(
        sa.select(sa.column("deadline_policy_id")).select_from(sa.table("case_file")),
        sa.select(sa.column("deadline_policy_id")).select_from(sa.table("routing_rule")),
    ).subquery()
    op.execute(
        deadline_policy.delete()
        .where(deadline_policy.c.name.in_(NAMES))
        .where(
            deadline_policy.c.id.not_in(
                sa.select(referenced.c.deadline_policy_id).where(
                    referenced.c.deadline_policy_id.is_not(None)
                )
            )
        )
    )
