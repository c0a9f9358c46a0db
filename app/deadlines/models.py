"""Deadline policies (admin-configurable legal terms) and production-calendar exceptions."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Boolean, Column, Date, ForeignKey, Integer, String
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, utcnow


class TermStart(enum.StrEnum):
    registration = "registration"  # 59-ФЗ: from the day the appeal is registered
    assignment = "assignment"  # incidents: from dispatch to the executor


class CalendarDayKind(enum.StrEnum):
    holiday = "holiday"
    workday = "workday"


class DeadlinePolicy(SQLModel, table=True):
    """A legal term. The most specific active policy matching a case applies (criteria left
    empty match anything); a routing rule may also name one explicitly."""

    __tablename__ = "deadline_policy"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String(200), nullable=False))
    kind: str | None = Field(default=None, sa_column=Column(String(16), nullable=True))
    legal_regime: str | None = Field(default=None, sa_column=Column(String(8), nullable=True))
    priority: str | None = Field(default=None, sa_column=Column(String(16), nullable=True))
    category_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("category.id"), nullable=True, index=True),
    )
    unit: str = Field(sa_column=Column(String(16), nullable=False))
    amount: int = Field(sa_column=Column(Integer, nullable=False))
    starts_at: str = Field(
        default=TermStart.assignment, sa_column=Column(String(16), nullable=False)
    )
    # After an interim answer the final answer is due within this term (e.g. 7 working days).
    after_interim_unit: str | None = Field(default=None, sa_column=Column(String(16)))
    after_interim_amount: int | None = Field(default=None, sa_column=Column(Integer))
    is_active: bool = Field(default=True, sa_column=Column(Boolean, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class CalendarException(SQLModel, table=True):
    """An admin-entered change to the production calendar (a regional day off, a moved day)."""

    __tablename__ = "calendar_exception"

    day: date = Field(sa_column=Column(Date, primary_key=True))
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    note: str = Field(default="", sa_column=Column(String(300), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
