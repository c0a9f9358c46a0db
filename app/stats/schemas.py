"""Statistics: query vocabulary and the typed answers (every figure's definition is in its
description, and in docs/statistics.md)."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Literal

from pydantic import Field

from app.core.schemas import Output


class Dimension(enum.StrEnum):
    category = "category"
    sector = "sector"  # the top-level category (a subcategory counts under its sector)
    territory = "territory"
    municipality = "municipality"  # a settlement counts under its municipal district/okrug
    agency = "agency"
    kind = "kind"
    source = "source"  # incident network or appeal channel
    status = "status"


class Source(enum.StrEnum):
    """An incident's network or an appeal's channel."""

    vk = "vk"
    ok = "ok"
    telegram = "telegram"
    dzen = "dzen"
    other = "other"
    web = "web"
    mobile_app = "mobile_app"
    widget = "widget"
    email = "email"
    paper = "paper"


class Interval(enum.StrEnum):
    day = "day"
    week = "week"  # starting Monday
    month = "month"


class LeagueBy(enum.StrEnum):
    agency = "agency"
    territory = "territory"  # municipalities: city districts, municipal districts and okrugs


class ExportFormat(enum.StrEnum):
    json = "json"
    csv = "csv"
    xlsx = "xlsx"


Delimiter = Literal[";", ","]

GENERATED_AT = (
    "When the figures were computed, the 'now' of overdue_now: every figure is exact as of "
    "this moment (a stored answer keeps its own; the Age header says how long ago)"
)


class Period(Output):
    date_from: datetime | None = Field(
        description="First instant counted (UTC); null: since the first case"
    )
    date_to: datetime | None = Field(
        description="First instant no longer counted (UTC, exclusive); null: up to now"
    )
    timezone: str = Field(description="The region's time zone the period's dates are read in")


class Measures(Output):
    """The cohort is the cases received (registered, created_at) in the period that match the
    filters; every figure below is about that cohort, as of `generated_at`."""

    received: int = Field(description="Cases received in the period")
    open: int = Field(description="Of those, open now: new, assigned, in_progress or returned")
    closed: int = Field(description="Closed now (a reopened case counts again once re-closed)")
    rejected: int = Field(description="Rejected now (spam, duplicate, not a complaint, …)")
    returned: int = Field(description="Returned by the agency and waiting for triage now")
    overdue_now: int = Field(description="Open now and past their deadline: due_at < now")
    closed_on_time: int = Field(
        description="Closed and closed_at <= due_at (a case without a deadline is not on time)"
    )
    on_time_share: float | None = Field(
        description="closed_on_time / closed, 0..1; null when nothing is closed"
    )
    responded: int = Field(
        description="Cases with a first response (interim answer, close or return)"
    )
    first_response_median_hours: float | None = Field(
        description="Median calendar hours from registration to the first response"
    )
    first_response_p90_hours: float | None = Field(
        description="90th percentile (linear interpolation) of the same"
    )
    first_response_median_working_hours: float | None = Field(
        description="Median working hours (production calendar) to the first response"
    )
    first_response_p90_working_hours: float | None = Field(
        description="90th percentile of working hours to the first response"
    )
    close_median_hours: float | None = Field(
        description="Median calendar hours from registration to the close, over closed cases"
    )
    close_p90_hours: float | None = Field(description="90th percentile of the same")
    close_median_working_hours: float | None = Field(
        description="Median working hours from registration to the close"
    )
    close_p90_working_hours: float | None = Field(
        description="90th percentile of working hours to the close"
    )
    reopened: int = Field(description="Cases reopened at least once")
    reopen_rate: float | None = Field(
        description="reopened / cases that were closed or rejected at least once (closed or "
        "rejected now, or reopened); null when there are none"
    )


class GroupKey(Output):
    dimension: Dimension
    id: int | None = Field(
        description="category, sector, territory, municipality, agency: the id; null for "
        "cases without one, and for kind, source and status"
    )
    code: str | None = Field(description="The reference's code, or the kind/source/status value")
    name: str | None = Field(description="Name of the category, territory or agency; a label")


class SummaryRow(Measures):
    keys: list[GroupKey] = Field(description="One per group_by dimension, in its order")


class Summary(Output):
    period: Period
    group_by: list[Dimension]
    generated_at: datetime = Field(description=GENERATED_AT)
    items: list[SummaryRow]


class TimeseriesRow(Measures):
    bucket: date = Field(description="First local day of the bucket (a Monday for weeks)")
    keys: list[GroupKey]


class Timeseries(Output):
    period: Period
    interval: Interval
    group_by: list[Dimension]
    generated_at: datetime = Field(description=GENERATED_AT)
    items: list[TimeseriesRow] = Field(
        description="Every bucket of the period for every group found, zeros where no case "
        "was received; ordered by group, then bucket"
    )


class LeagueRow(Measures):
    rank: int | None = Field(
        description="1 = best; equal on-time share and median close time share a rank; null "
        "when not comparable"
    )
    comparable: bool = Field(description="closed >= min_volume")
    id: int
    code: str | None
    name: str | None


class League(Output):
    by: LeagueBy
    min_volume: int
    period: Period
    generated_at: datetime = Field(description=GENERATED_AT)
    ranking: str = Field(description="How rows are ranked")
    items: list[LeagueRow]
