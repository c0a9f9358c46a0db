"""Cases (incidents and appeals in one table, so the queue, workflow and statistics see both)
and their immutable event history."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, utcnow


class CaseKind(enum.StrEnum):
    incident = "incident"
    appeal = "appeal"


class CaseStatus(enum.StrEnum):
    new = "new"
    assigned = "assigned"
    in_progress = "in_progress"
    returned = "returned"
    closed = "closed"
    rejected = "rejected"


OPEN_STATUSES = (CaseStatus.new, CaseStatus.assigned, CaseStatus.in_progress, CaseStatus.returned)


class Priority(enum.StrEnum):
    low = "low"
    normal = "normal"
    high = "high"
    urgent = "urgent"


class Network(enum.StrEnum):
    vk = "vk"
    ok = "ok"
    telegram = "telegram"
    dzen = "dzen"
    other = "other"


class Channel(enum.StrEnum):
    web = "web"
    mobile_app = "mobile_app"
    widget = "widget"
    email = "email"
    paper = "paper"


class LegalRegime(enum.StrEnum):
    pos = "pos"  # the federal feedback platform's rules
    fz59 = "fz59"  # federal law 59-ФЗ


# 64-bit ids on PostgreSQL (tens of millions of rows, years of events); SQLite's rowid is 64-bit.
BigId = BigInteger().with_variant(Integer, "sqlite")


def _str(length: int, nullable: bool = True, **kw: Any) -> Column:
    return Column(String(length), nullable=nullable, **kw)


def _fk(table: str, index: bool = True, nullable: bool = True) -> Column:
    return Column(Integer, ForeignKey(f"{table}.id"), nullable=nullable, index=index)


_VERSION = Column("version", Integer, nullable=False)
_OPEN_LIST = ", ".join(f"'{status}'" for status in OPEN_STATUSES)
OPEN_CASES = f"status IN ({_OPEN_LIST})"
SETTLED_CASES = f"status NOT IN ({_OPEN_LIST})"
"""The open cases and the others (closed, rejected, any status to come) as literal predicates,
those of the partial indexes: a query's `status IN (...)` of open statuses implies the first, so
the planner can use those indexes; a statement that holds either as written (reads._by_deadline)
lets any plan of it use them, even one made without its parameters' values."""
_OPEN = text(OPEN_CASES)
_SETTLED = text(SETTLED_CASES)
# The regional centre's inbox: the cases waiting for its triage (new, or returned by an agency).
_INBOX = text("status IN ('new', 'returned')")


class Case(SQLModel, table=True):
    __tablename__ = "case_file"
    __table_args__ = (
        UniqueConstraint("source_system", "external_id"),
        # The triage queue and its filters; keyset pagination walks (created_at, id).
        Index("ix_case_file_status_created", "status", "created_at", "id"),
        Index("ix_case_file_agency_status_created", "agency_id", "status", "created_at", "id"),
        Index("ix_case_file_created", "created_at", "id"),
        # The open queue's two common orders, over open cases only: a page is the first 50
        # entries of the index, however many cases are open (no sort of all of them).
        Index(
            "ix_case_file_open_by_created",
            "created_at",
            "id",
            postgresql_where=_OPEN,
            sqlite_where=_OPEN,
        ),
        Index(
            "ix_case_file_open_by_due",
            "due_at",
            "id",
            postgresql_where=_OPEN,
            sqlite_where=_OPEN,
        ),
        # The queue's filter by sector (and territory), over open cases only: not a bitmap of
        # every case of the category ever registered (0012).
        Index(
            "ix_case_file_open_by_category",
            "category_id",
            "territory_id",
            postgresql_where=_OPEN,
            sqlite_where=_OPEN,
        ),
        # Open cases of a territory in order of their last change (0018): a territory's page
        # sorted by updated_at walks its first entries, not every open case of the territory
        # sorted (a number that grows with the table: 22 at 100k cases, 2,374 at 10M).
        Index(
            "ix_case_file_open_by_territory_updated",
            "territory_id",
            "updated_at",
            "id",
            postgresql_where=_OPEN,
            sqlite_where=_OPEN,
        ),
        # Open cases of a priority and kind in order of registration (0020): their page is a
        # walk over them alone, not over every open case back in time, each row read to test
        # its priority (29,979 rows read to find none past a cursor at 10M: 783 ms).
        Index(
            "ix_case_file_open_by_priority_created",
            "priority",
            "kind",
            "created_at",
            "id",
            postgresql_where=_OPEN,
            sqlite_where=_OPEN,
        ),
        # The centre's inbox, newest first (0021): its page walks the waiting cases alone,
        # however many there are and whatever the statistics say. Without it PostgreSQL either
        # walked the open cases back in time testing each one's status (past a deep cursor at
        # 1M: 5,542 rows read to find 25, 7-59 ms), or, with statistics older than an intake
        # burst, took every waiting case and sorted them (36,000 new cases: 82-103 ms).
        Index(
            "ix_case_file_inbox_by_created",
            "created_at",
            "id",
            postgresql_where=_INBOX,
            sqlite_where=_INBOX,
        ),
        # Every list in order of last change (0024): a page walks the order, testing each
        # case against the filters, instead of sorting every case that passes them (the
        # register by -updated_at at 1M: 1.5 s a page). The open cases have their own, or the
        # walk went past the closed ones first (an agency's open cases by updated_at: 299 ms).
        # No such index of due_at: the open queue's deadline pages, planned without their
        # values after five runs, walked it past the closed cases (migration 0024); the
        # closed and rejected cases have their own instead (below).
        Index("ix_case_file_updated", "updated_at", "id"),
        Index(
            "ix_case_file_open_by_updated",
            "updated_at",
            "id",
            postgresql_where=_OPEN,
            sqlite_where=_OPEN,
        ),
        # The other cases by deadline (0025): with ix_case_file_open_by_due, a list by deadline
        # outside the open queue reads both in order, a page from each, instead of sorting
        # every case its filters let through (the register: 1.1-1.5 s a page at 1M). Not one
        # index over every case, which the open queue's generic plans walked (0024).
        Index(
            "ix_case_file_settled_by_due",
            "due_at",
            "id",
            postgresql_where=_SETTLED,
            sqlite_where=_SETTLED,
        ),
    )
    # Optimistic locking: every UPDATE checks and bumps the version (sent as the ETag).
    __mapper_args__ = {"version_id_col": _VERSION}

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    number: str | None = Field(default=None, sa_column=_str(32, unique=True))
    kind: str = Field(sa_column=_str(16, nullable=False))
    status: str = Field(sa_column=_str(16, nullable=False))
    priority: str = Field(default=Priority.normal, sa_column=_str(16, nullable=False, index=True))
    version: int = Field(default=1, sa_column=_VERSION)

    category_id: int | None = Field(default=None, sa_column=_fk("category"))
    territory_id: int | None = Field(default=None, sa_column=_fk("territory"))
    agency_id: int | None = Field(default=None, sa_column=_fk("agency", index=False))
    routing_rule_id: int | None = Field(default=None, sa_column=_fk("routing_rule"))
    routing_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    deadline_policy_id: int | None = Field(default=None, sa_column=_fk("deadline_policy"))

    source_system: str = Field(sa_column=_str(64, nullable=False))  # the unique key leads
    external_id: str | None = Field(default=None, sa_column=_str(200))
    submitted_by: str = Field(sa_column=_str(64, nullable=False))

    text: str = Field(sa_column=Column(Text, nullable=False))
    address: str | None = Field(default=None, sa_column=_str(500))
    latitude: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    longitude: float | None = Field(default=None, sa_column=Column(Float, nullable=True))

    # incident
    network: str | None = Field(default=None, sa_column=_str(16))
    post_url: str | None = Field(default=None, sa_column=_str(2000))
    author_handle: str | None = Field(default=None, sa_column=_str(200))
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    reach: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    missing_person: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    important: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))

    # appeal (applicant_* are personal data under 152-ФЗ)
    channel: str | None = Field(default=None, sa_column=_str(16))
    legal_regime: str | None = Field(default=None, sa_column=_str(8))
    applicant_name: str | None = Field(default=None, sa_column=_str(300))
    applicant_email: str | None = Field(default=None, sa_column=_str(254))
    applicant_phone: str | None = Field(default=None, sa_column=_str(32))
    attachment_urls: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))

    # deadlines and answers
    due_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    assigned_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    first_response_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    interim_answer: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    interim_planned_date: str | None = Field(default=None, sa_column=_str(10))
    final_answer: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    resolution: str | None = Field(default=None, sa_column=_str(16))
    responsible_official: str | None = Field(default=None, sa_column=_str(300))
    reopen_count: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    duplicate_of_id: int | None = Field(
        default=None,
        sa_column=Column(BigId, ForeignKey("case_file.id"), nullable=True),
    )

    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)

    # Durations for statistics (app/stats), in whole seconds from registration (created_at),
    # stored when they happen: working time follows the production calendar, which lives in
    # Python, so SQL could not compute it. close_* are cleared on reopen, set at each close.
    first_response_seconds: int | None = Field(
        default=None, sa_column=Column(Integer, nullable=True)
    )
    first_response_working_seconds: int | None = Field(
        default=None, sa_column=Column(Integer, nullable=True)
    )
    close_seconds: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    close_working_seconds: int | None = Field(
        default=None, sa_column=Column(Integer, nullable=True)
    )
    # When retention removed the personal data (152-ФЗ); the case itself is kept.
    personal_data_erased_at: datetime | None = Field(
        default=None, sa_type=UTCDateTime, nullable=True
    )


class CaseAgency(SQLModel, table=True):
    """Every agency a case was ever assigned to: agency staff keep seeing what they handled."""

    __tablename__ = "case_agency"
    # An agency's cases in order of registration (its pages that reach into closed cases walk
    # it, app/cases/reads.py); also serves look-ups by agency alone (migration 0022).
    __table_args__ = (
        Index("ix_case_agency_agency_created", "agency_id", "case_created_at", "case_id"),
    )

    case_id: int = Field(
        sa_column=Column(
            BigId,
            ForeignKey("case_file.id", ondelete="CASCADE"),
            primary_key=True,
        )
    )
    agency_id: int = Field(sa_column=Column(Integer, ForeignKey("agency.id"), primary_key=True))
    # When a webhook about the case first reached one of the agency's subscriptions.
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    # The case's created_at, which never changes: the order of the agency's pages.
    case_created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)

    @classmethod
    def given(cls, case: Case, agency_id: int) -> CaseAgency:
        """The row that gives the case to the agency, with the case's registration time."""
        return cls(case_id=case.id, agency_id=agency_id, case_created_at=case.created_at)


class CaseEvent(SQLModel, table=True):
    """One step in a case's life. Append-only: no route edits or deletes these, and the
    database refuses UPDATE (triggers in the migration)."""

    __tablename__ = "case_event"
    __table_args__ = (Index("ix_case_event_case_id_id", "case_id", "id"),)

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    case_id: int = Field(
        sa_column=Column(BigId, ForeignKey("case_file.id", ondelete="CASCADE"), nullable=False)
    )
    action: str = Field(sa_column=_str(32, nullable=False))
    actor: str = Field(sa_column=_str(64, nullable=False))
    actor_name: str = Field(sa_column=_str(200, nullable=False))
    actor_role: str = Field(sa_column=_str(16, nullable=False))
    from_status: str | None = Field(default=None, sa_column=_str(16))
    to_status: str | None = Field(default=None, sa_column=_str(16))
    from_agency_id: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    to_agency_id: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    reason: str | None = Field(default=None, sa_column=_str(64))
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    changes: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    data: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
