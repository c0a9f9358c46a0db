from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from app.cases.models import CaseKind, LegalRegime, Priority
from app.core.schemas import Input, Output, Patch
from app.deadlines.calendar import DeadlineUnit
from app.deadlines.models import CalendarDayKind, TermStart

# Hard ceiling for any term; day-based terms are further capped at a year (checked in the
# service, because the cap depends on the unit, which a PATCH may not repeat).
MAX_AMOUNT = 10_000
MAX_DAYS = 365

PolicyName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Amount = Annotated[
    int,
    Field(
        ge=1,
        le=MAX_AMOUNT,
        description=f"Up to {MAX_AMOUNT} working hours, or {MAX_DAYS} working/calendar days",
    ),
]
Note = Annotated[str, StringConstraints(max_length=300)]


# --- deadline policies -----------------------------------------------------------------------


class DeadlinePolicyCreate(Input):
    name: PolicyName
    kind: CaseKind | None = Field(default=None, description="Empty: any kind")
    legal_regime: LegalRegime | None = Field(
        default=None, description="Appeals only; empty: any regime"
    )
    priority: Priority | None = Field(default=None, description="Empty: any priority")
    category_id: int | None = Field(
        default=None, description="A sector (top-level category); empty: any sector"
    )
    unit: DeadlineUnit
    amount: Amount
    starts_at: TermStart = Field(
        default=TermStart.assignment,
        description="registration: from the case's registration; assignment: from dispatch",
    )
    after_interim_unit: DeadlineUnit | None = Field(
        default=None, description="Term for the final answer after an interim one"
    )
    after_interim_amount: Amount | None = None
    is_active: bool = True


class DeadlinePolicyUpdate(Patch):
    NOT_NULL = frozenset({"name", "unit", "amount", "starts_at", "is_active"})

    name: PolicyName | None = None
    kind: CaseKind | None = None
    legal_regime: LegalRegime | None = None
    priority: Priority | None = None
    category_id: int | None = None
    unit: DeadlineUnit | None = None
    amount: Amount | None = None
    starts_at: TermStart | None = None
    after_interim_unit: DeadlineUnit | None = None
    after_interim_amount: Amount | None = None
    is_active: bool | None = None


class DeadlinePolicyRead(Output):
    id: int
    name: str
    kind: CaseKind | None
    legal_regime: LegalRegime | None
    priority: Priority | None
    category_id: int | None
    unit: DeadlineUnit
    amount: int
    starts_at: TermStart
    after_interim_unit: DeadlineUnit | None
    after_interim_amount: int | None
    is_active: bool
    created_at: datetime
    updated_at: datetime


# --- production calendar ---------------------------------------------------------------------


class CalendarExceptionPut(Input):
    kind: CalendarDayKind = Field(description="holiday: a day off; workday: a working day")
    note: Note = ""


class CalendarExceptionRead(Output):
    day: date
    kind: CalendarDayKind
    note: str
    created_at: datetime = Field(description="When this entry was last set")


DaySource = Literal["weekend", "holiday", "transferred", "exception", "weekday", "weekend_workday"]


class CalendarDay(Output):
    day: date
    working: bool
    source: DaySource = Field(
        description="weekday/weekend: ordinary; holiday: a public holiday; transferred: a day "
        "off moved by law; weekend_workday: a Saturday or Sunday made working by law; "
        "exception: set by an administrator"
    )
    note: str | None = Field(default=None, description="The administrator's note (exceptions)")


class CalendarDays(Output):
    items: list[CalendarDay]
    working_days: int


class DueRequest(Input):
    start: AwareDatetime = Field(description="With a UTC offset, e.g. 2026-06-11T16:00:00+03:00")
    amount: Amount
    unit: DeadlineUnit


class DueResponse(Output):
    due_at: datetime = Field(description="In the region's time zone")
