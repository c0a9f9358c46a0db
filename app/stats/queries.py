"""The statistics as SQL: one aggregate statement per request, the same figures on SQLite and
PostgreSQL.

Shape of every statement:

    SELECT keys, names, measures FROM (
        SELECT keys, count(*) FILTER (…), percentiles … FROM (
            SELECT keys, the case's columns [, SQLite: ranks for the percentiles]
            FROM case_file [JOIN category / territory] WHERE filters
        ) GROUP BY keys
    ) LEFT JOIN category / territory / agency (for the names)

Percentiles are `percentile_cont` (linear interpolation between the two nearest ranks). On
PostgreSQL that is the ordered-set aggregate itself; SQLite has none, so the innermost select
numbers each group's values with window functions and the aggregate picks the two ranks around
the position (n - 1)·q and interpolates, in integer arithmetic until the last division.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Float,
    Select,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.orm import aliased

from app.cases.models import OPEN_STATUSES, Case, CaseStatus
from app.cases.queries import CaseFilters, apply_filters
from app.reference.models import Agency, Category, Territory, TerritoryKind
from app.stats.schemas import Dimension, Interval

MUNICIPAL_KINDS = (
    TerritoryKind.city_district,
    TerritoryKind.municipal_district,
    TerritoryKind.municipal_okrug,
)

# (column, name in the answer) for the four stored durations.
DURATIONS = (
    (Case.first_response_seconds, "first_response"),
    (Case.first_response_working_seconds, "first_response_working"),
    (Case.close_seconds, "close"),
    (Case.close_working_seconds, "close_working"),
)
# Quantiles as exact fractions (numerator, denominator, name).
QUANTILES = ((1, 2, "median"), (9, 10, "p90"))

COUNTS = (
    "received",
    "open",
    "closed",
    "rejected",
    "returned",
    "overdue_now",
    "closed_on_time",
    "responded",
    "reopened",
    "resolved_ever",
)

# Which reference table names each id dimension's rows.
_NAMED = {
    Dimension.category: (Category, Category.name_ru),
    Dimension.sector: (Category, Category.name_ru),
    Dimension.territory: (Territory, Territory.name),
    Dimension.municipality: (Territory, Territory.name),
    Dimension.agency: (Agency, Agency.name),
}


@dataclass(frozen=True)
class Bucketing:
    """Timeseries buckets in the region's local time."""

    interval: Interval
    timezone: str
    utc_offset: timedelta  # SQLite only: the zone's offset (fixed for Russian zones since 2014)


@dataclass(frozen=True)
class Cohort:
    """Which cases are counted: the list's filters (the period is created_from/created_to)."""

    filters: CaseFilters
    category_ids: list[int] | None  # the category filter with its subcategories


def _bucket(bucketing: Bucketing, dialect: str) -> ColumnElement:
    if dialect == "postgresql":
        local = func.timezone(bucketing.timezone, Case.created_at)
        return cast(func.date_trunc(bucketing.interval.value, local), Date)
    minutes = int(bucketing.utc_offset.total_seconds() // 60)
    modifiers = {
        Interval.day: (),
        Interval.week: ("weekday 0", "-6 days"),  # the Sunday on or after, back to its Monday
        Interval.month: ("start of month",),
    }[bucketing.interval]
    return func.date(Case.created_at, f"{minutes:+d} minutes", *modifiers)


class _Sources:
    """The reference tables a dimension needs joined in the innermost select."""

    def __init__(self) -> None:
        self.category = aliased(Category, name="case_category")
        self.territory = aliased(Territory, name="case_territory")
        self.joins: dict[str, Any] = {}

    def expression(self, dimension: Dimension) -> ColumnElement:
        if dimension is Dimension.category:
            return Case.category_id
        if dimension is Dimension.sector:
            self.joins["category"] = (self.category, self.category.id == Case.category_id)
            return func.coalesce(self.category.parent_id, self.category.id)
        if dimension is Dimension.territory:
            return Case.territory_id
        if dimension is Dimension.municipality:
            self.joins["territory"] = (self.territory, self.territory.id == Case.territory_id)
            return case(
                (self.territory.kind.in_(MUNICIPAL_KINDS), self.territory.id),
                (self.territory.kind == TerritoryKind.settlement, self.territory.parent_id),
                else_=None,
            )
        if dimension is Dimension.agency:
            return Case.agency_id
        if dimension is Dimension.kind:
            return Case.kind
        if dimension is Dimension.source:
            return func.coalesce(Case.network, Case.channel)
        return Case.status


def _percentile_sqlite(columns, column: str, num: int, den: int) -> ColumnElement:
    """percentile_cont(num/den) over the group from the window columns rn_<c> and n_<c>."""
    value, rn, n = columns[column], columns[f"rn_{column}"], columns[f"n_{column}"]
    position = (n - 1) * num  # the quantile sits at position / den (0-based rank)
    below, weight = position // den, position % den
    weighted = func.sum(
        case(
            (rn == below + 1, value * (den - weight)),
            (rn == below + 2, value * weight),
            else_=None,
        )
    )
    return cast(weighted, Float) / den


def statement(
    cohort: Cohort,
    dimensions: Sequence[Dimension],
    *,
    now: datetime,
    dialect: str,
    bucketing: Bucketing | None = None,
) -> Select:
    """One statement: a row per group (and bucket) with its keys, names and raw measures."""
    sources = _Sources()
    keys = [sources.expression(d).label(f"k{i}") for i, d in enumerate(dimensions)]
    if bucketing is not None:
        keys.append(_bucket(bucketing, dialect).label("bucket"))
    key_expressions = [k.element for k in keys]

    columns = [
        Case.status,
        Case.due_at,
        Case.closed_at,
        Case.reopen_count,
        *(c.label(name) for c, name in DURATIONS),
    ]
    if dialect != "postgresql":
        for c, name in DURATIONS:
            partition = key_expressions or None
            columns.append(
                func.row_number()
                .over(partition_by=partition, order_by=c.asc().nulls_last())
                .label(f"rn_{name}")
            )
            columns.append(func.count(c).over(partition_by=partition).label(f"n_{name}"))
    inner = select(*keys, *columns).select_from(Case)
    for target, onclause in sources.joins.values():
        inner = inner.outerjoin(target, onclause)
    inner = apply_filters(inner, cohort.filters, cohort.category_ids, dialect).subquery("cohort")

    c = inner.c
    is_open = c.status.in_(OPEN_STATUSES)
    closed = c.status == CaseStatus.closed
    counts = {
        "received": func.count(),
        "open": func.count().filter(is_open),
        "closed": func.count().filter(closed),
        "rejected": func.count().filter(c.status == CaseStatus.rejected),
        "returned": func.count().filter(c.status == CaseStatus.returned),
        "overdue_now": func.count().filter(and_(is_open, c.due_at < now)),
        "closed_on_time": func.count().filter(and_(closed, c.closed_at <= c.due_at)),
        "responded": func.count(c.first_response),
        "reopened": func.count().filter(c.reopen_count > 0),
        "resolved_ever": func.count().filter(
            or_(c.status.in_((CaseStatus.closed, CaseStatus.rejected)), c.reopen_count > 0)
        ),
    }
    measures = [expr.label(name) for name, expr in counts.items()]
    for _, name in DURATIONS:
        if dialect == "postgresql":
            # Both quantiles from one sort: percentile_cont(array[...]) returns an array.
            fractions = array([literal(num / den, Float) for num, den, _ in QUANTILES])
            measures.append(func.percentile_cont(fractions).within_group(c[name]).label(name))
        else:
            measures.extend(
                _percentile_sqlite(c, name, num, den).label(f"{name}_{q}")
                for num, den, q in QUANTILES
            )
    group_keys = [c[k.name] for k in keys]
    aggregated = select(*group_keys, *measures).group_by(*group_keys).subquery("aggregated")

    a = aggregated.c
    out = [a[k.name] for k in keys]
    final_from: Any = aggregated
    for i, dimension in enumerate(dimensions):
        named = _NAMED.get(dimension)
        if named is None:
            out += [
                literal(None, String).label(f"code{i}"),
                literal(None, String).label(f"name{i}"),
            ]
            continue
        model, _ = named
        table = aliased(model, name=f"names{i}")
        final_from = final_from.outerjoin(table, table.id == a[f"k{i}"])
        name_column = table.name_ru if model is Category else table.name
        out += [table.code.label(f"code{i}"), name_column.label(f"name{i}")]
    out += [a[m.name] for m in measures]
    return select(*out).select_from(final_from)


def percentiles(row: Any, dialect: str) -> dict[str, float | None]:
    """{'<duration>_<quantile>': seconds} from a result row, on either database."""
    found: dict[str, float | None] = {}
    for _, name in DURATIONS:
        if dialect == "postgresql":
            values = row._mapping[name] or [None] * len(QUANTILES)
            for (_, _, q), value in zip(QUANTILES, values, strict=True):
                found[f"{name}_{q}"] = value
        else:
            for _, _, q in QUANTILES:
                found[f"{name}_{q}"] = row._mapping[f"{name}_{q}"]
    return found
