"""Webhooks: subscriptions, the outbox of case events, deliveries, the URL allowlist and the
overdue marks that make one overdue event per deadline."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from app.cases.models import BigId
from app.core.types import UTCDateTime, utcnow


class EventType(enum.StrEnum):
    created = "case.created"
    assigned = "case.assigned"
    accepted = "case.accepted"
    interim_answer = "case.interim_answer"
    closed = "case.closed"
    returned = "case.returned"
    rejected = "case.rejected"
    reopened = "case.reopened"
    overdue = "case.overdue"


PING = "ping"  # a test event sent on request; not a subscription choice

# CaseEvent.action -> webhook event type. The outbox trigger (migration 0004) is written from
# this table; tests check that the two agree.
ACTION_EVENT_TYPES: dict[str, EventType] = {
    "create": EventType.created,
    "assign": EventType.assigned,
    "accept": EventType.accepted,
    "interim-answer": EventType.interim_answer,
    "close": EventType.closed,
    "return": EventType.returned,
    "reject": EventType.rejected,
    "reopen": EventType.reopened,
    "overdue": EventType.overdue,
}


class DeliveryStatus(enum.StrEnum):
    pending = "pending"  # waiting for its (next) attempt, or being attempted now
    delivered = "delivered"
    failed = "failed"  # the retry window ended; can be redelivered


class Audience(enum.StrEnum):
    """Whose eyes a subscription delivers to: it gets what that role could read by API."""

    admin = "admin"
    agency = "agency"
    integration = "integration"


class WebhookSubscription(SQLModel, table=True):
    __tablename__ = "webhook_subscription"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(sa_column=Column(String(2000), nullable=False))
    description: str | None = Field(default=None, sa_column=Column(String(300), nullable=True))
    # A shared secret: kept readable because every delivery is signed with it.
    secret: str = Field(sa_column=Column(String(200), nullable=False))
    previous_secret: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    previous_secret_expires_at: datetime | None = Field(
        default=None, sa_type=UTCDateTime, nullable=True
    )
    event_types: list[str] = Field(sa_column=Column(JSON, nullable=False))
    # Filters; an empty list matches everything.
    agency_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    category_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    kinds: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    include_personal_data: bool = Field(default=True, sa_column=Column(Boolean, nullable=False))
    owner_role: str = Field(sa_column=Column(String(16), nullable=False))
    owner_agency_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("agency.id"), nullable=True, index=True),
    )
    owner_source_system: str | None = Field(
        default=None, sa_column=Column(String(64), nullable=True, index=True)
    )
    is_active: bool = Field(default=True, sa_column=Column(Boolean, nullable=False))
    created_by: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    secret_rotated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class WebhookEvent(SQLModel, table=True):
    """The outbox: one row per case event that subscribers may hear about, written by a
    database trigger on case_event in the same transaction (so no committed change lacks its
    event and no rolled-back change has one). The worker fans each out to deliveries."""

    __tablename__ = "webhook_event"
    __table_args__ = (
        Index(
            "ix_webhook_event_pending",
            "id",
            postgresql_where=text("dispatched_at IS NULL"),
            sqlite_where=text("dispatched_at IS NULL"),
        ),
        # The retention job (dispatched_at < cutoff): dispatched rows only, so a new outbox
        # row adds no entry (0015).
        Index(
            "ix_webhook_event_dispatched",
            "dispatched_at",
            postgresql_where=text("dispatched_at IS NOT NULL"),
            sqlite_where=text("dispatched_at IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    case_event_id: int | None = Field(
        default=None,
        sa_column=Column(BigId, ForeignKey("case_event.id", ondelete="CASCADE"), nullable=True),
    )
    # No key of its own to case_file (0017): the row goes with its case_event, which goes with
    # the case; checking the case again cost every new outbox row a lookup.
    case_id: int | None = Field(default=None, sa_column=Column(BigId, nullable=True))
    event_type: str = Field(sa_column=Column(String(32), nullable=False))
    occurred_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    dispatched_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class WebhookDelivery(SQLModel, table=True):
    """One event for one subscription: its signed body and its attempts."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id"),
        Index("ix_webhook_delivery_subscription", "subscription_id", "id"),
        Index("ix_webhook_delivery_event", "event_id"),  # cascades and the retention job
        # What the workers claim, subscription by subscription: pending, by priority, then by
        # when it is due.
        Index(
            "ix_webhook_delivery_due_per_subscription",
            "subscription_id",
            "priority",
            "next_attempt_at",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        # The failed ones, for /metrics and the deliveries list's status filter.
        Index(
            "ix_webhook_delivery_failed",
            "subscription_id",
            postgresql_where=text("status = 'failed'"),
            sqlite_where=text("status = 'failed'"),
        ),
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    subscription_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("webhook_subscription.id", ondelete="CASCADE"), nullable=False
        )
    )
    event_id: int = Field(
        sa_column=Column(BigId, ForeignKey("webhook_event.id", ondelete="CASCADE"), nullable=False)
    )
    case_id: int | None = Field(default=None, sa_column=Column(BigId, nullable=True))
    event_type: str = Field(sa_column=Column(String(32), nullable=False))
    payload: str = Field(sa_column=Column(Text, nullable=False))
    priority: int = Field(sa_column=Column(SmallInteger, nullable=False))
    status: str = Field(
        default=DeliveryStatus.pending, sa_column=Column(String(16), nullable=False)
    )
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    next_attempt_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    locked_by: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    first_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    last_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    last_status_code: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    last_error: str | None = Field(default=None, sa_column=Column(String(500), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class WebhookAllowlistEntry(SQLModel, table=True):
    """A host name (or *.suffix) or an IP network that webhook URLs may reach although it is
    internal: ministry systems on the regional network, allowed one by one by an admin."""

    __tablename__ = "webhook_allowlist_entry"

    id: int | None = Field(default=None, primary_key=True)
    entry: str = Field(sa_column=Column(String(255), nullable=False, unique=True))
    note: str | None = Field(default=None, sa_column=Column(String(300), nullable=True))
    created_by: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class CaseOverdue(SQLModel, table=True):
    """One row per (case, deadline) found overdue: the key makes one overdue event per deadline,
    however many workers look."""

    __tablename__ = "case_overdue"

    case_id: int = Field(
        sa_column=Column(BigId, ForeignKey("case_file.id", ondelete="CASCADE"), primary_key=True)
    )
    due_at: datetime = Field(sa_column=Column(UTCDateTime, primary_key=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
