"""The case list: filters, keyset pagination, optional total, full-text search."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    ARRAY,
    BindParameter,
    ColumnElement,
    Select,
    and_,
    any_,
    func,
    literal_column,
    or_,
    select,
)

from app.cases.models import OPEN_STATUSES, Case, CaseStatus
from app.core.errors import Unprocessable
from app.core.types import utcnow
from app.reference.models import Category
from app.routing.text import stems

SortKey = Literal["created_at", "-created_at", "updated_at", "-updated_at", "due_at", "-due_at"]


@dataclass
class CaseFilters:
    status: list[CaseStatus] | None = None
    kind: str | None = None
    category_id: int | None = None  # a sector includes its subcategories
    territory_id: int | None = None
    agency_id: int | None = None
    priority: str | None = None
    overdue: bool | None = None
    source: str | None = None  # incident network or appeal channel
    source_system: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    due_from: datetime | None = None
    due_to: datetime | None = None
    reopened: bool | None = None
    q: str | None = None


def overdue_clause(now: Any = None):
    now = utcnow() if now is None else now
    return and_(Case.status.in_(OPEN_STATUSES), Case.due_at.is_not(None), Case.due_at < now)


def in_category(category_id: Any, dialect: str) -> ColumnElement[bool]:
    """The category, or a sector with its subcategories, looked up by the query itself (no
    round trip of its own). On PostgreSQL as `= ANY(ARRAY(subquery))`: evaluated once and
    planned like a list of ids; `IN (subquery)` was planned as a join, 15 times slower."""
    ids = select(Category.id).where(
        (Category.id == category_id) | (Category.parent_id == category_id)
    )
    if dialect == "postgresql":
        return Case.category_id == any_(func.array(ids.scalar_subquery()))
    return Case.category_id.in_(ids)


# Filters given when not empty (a list, a text, a date) and when not None (ids); overdue and
# reopened are flags that choose the clause, and category_id is given as its clause.
_NON_EMPTY = (
    "status",
    "kind",
    "priority",
    "source",
    "source_system",
    "created_from",
    "created_to",
    "due_from",
    "due_to",
    "q",
)
_NOT_NONE = ("territory_id", "agency_id")


def given(f: CaseFilters) -> dict[str, Any]:
    """The filters given, each by the rule it has always had (see _NON_EMPTY, _NOT_NONE)."""
    values = {name: v for name in _NON_EMPTY if (v := getattr(f, name))}
    values |= {name: v for name in _NOT_NONE if (v := getattr(f, name)) is not None}
    return values


def open_only(statuses: list[CaseStatus] | None) -> bool:
    return bool(statuses) and set(statuses) <= set(OPEN_STATUSES)


def settled_only(statuses: list[CaseStatus] | None) -> bool:
    """Statuses given, none of them open (closed, rejected)."""
    return bool(statuses) and not set(statuses) & set(OPEN_STATUSES)


def filter_clauses(
    values: dict[str, Any],
    *,
    overdue: bool | None,
    reopened: bool | None,
    statuses_open: bool,
    dialect: str,
    now: Any,
    categories: ColumnElement[bool] | None = None,
) -> list[ColumnElement[bool]]:
    """The WHERE clauses of the given filters (given()), their values either plain or bind
    parameters (for a statement built once per shape of filters, app/cases/reads.py)."""
    clauses: list[ColumnElement[bool]] = []
    if "status" in values:
        clauses.append(_among(Case.status, values["status"]))
    if "kind" in values:
        clauses.append(Case.kind == values["kind"])
    if categories is not None:
        clauses.append(categories)
    if "territory_id" in values:
        clauses.append(Case.territory_id == values["territory_id"])
    if "agency_id" in values:
        clauses.append(Case.agency_id == values["agency_id"])
    if "priority" in values:
        clauses.append(Case.priority == values["priority"])
    if overdue and statuses_open:
        # The statuses are already open ones: repeating `status IN (...)` made the planner
        # count it twice (a 20th of the rows expected) and sort instead of reading the open
        # queue's index by due_at.
        clauses += [Case.due_at.is_not(None), Case.due_at < now]
    elif overdue is not None:
        clauses.append(overdue_clause(now) if overdue else ~overdue_clause(now))
    if "source" in values:
        clauses.append(or_(Case.network == values["source"], Case.channel == values["source"]))
    if "source_system" in values:
        clauses.append(Case.source_system == values["source_system"])
    if "created_from" in values:
        clauses.append(Case.created_at >= values["created_from"])
    if "created_to" in values:
        clauses.append(Case.created_at < values["created_to"])
    if "due_from" in values:
        clauses.append(Case.due_at >= values["due_from"])
    if "due_to" in values:
        clauses.append(Case.due_at < values["due_to"])
    if reopened is not None:
        clauses.append(Case.reopen_count > 0 if reopened else Case.reopen_count == 0)
    if "q" in values:
        clauses.append(text_search(values["q"], dialect))
    return clauses


def _among(column: Any, value: Any) -> ColumnElement[bool]:
    """`column IN (...)`; for a PostgreSQL array parameter `column = ANY(:array)`: one
    parameter however many values, no expanding IN to render into the SQL at each execution
    (SQLAlchemy did that per request, a twentieth of a queue page's CPU)."""
    if isinstance(value, BindParameter) and isinstance(value.type, ARRAY):
        return column == any_(value)
    return column.in_(value)


def apply_filters(stmt: Select, f: CaseFilters, category_ids: list[int] | None, dialect: str):
    categories = Case.category_id.in_(category_ids) if category_ids is not None else None
    clauses = filter_clauses(
        given(f),
        overdue=f.overdue,
        reopened=f.reopened,
        statuses_open=open_only(f.status),
        dialect=dialect,
        now=utcnow(),
        categories=categories,
    )
    return stmt.where(*clauses) if clauses else stmt


def tsquery(q: Any) -> Any:
    """The search's words as a PostgreSQL tsquery, parsed once per statement: a scalar
    subquery, which PostgreSQL runs once (an InitPlan) and passes on as a parameter, also to
    the GIN index. `websearch_to_tsquery(...)` itself is only stable: a plan that does not
    fold it (a prepared statement's generic plan) evaluates it where it is used. Measured on
    the bench's 16 search words at 1M cases: 2.3-2.9 -> 1.4-1.6 ms of PostgreSQL's CPU per
    search page (docs/benchmarks.md)."""
    return select(func.websearch_to_tsquery("russian", q)).scalar_subquery()


def text_search(q: Any, dialect: str):
    if dialect == "postgresql":
        # The stored column search_vector = to_tsvector('russian', text), GIN-indexed
        # (migration 0008; not in the model, which cannot express a generated tsvector).
        return literal_column("case_file.search_vector").op("@@")(tsquery(q))
    # SQLite fallback: every word's stem must occur in the text (case-insensitive via the
    # Unicode-aware casefold function registered on each SQLite connection).
    words = sorted(stems(q))
    if not words:
        raise Unprocessable(
            "q: the search has no words",
            errors=[{"loc": ["query", "q"], "msg": "no searchable words", "type": "value_error"}],
        )
    return and_(*(func.rd_casefold(Case.text).like(f"%{w}%") for w in words))


# --- keyset pagination -----------------------------------------------------------------------

_COLUMNS = {"created_at": Case.created_at, "updated_at": Case.updated_at, "due_at": Case.due_at}


def encode_cursor(sort: str, case: Mapping[str, Any]) -> str:
    """The cursor after this case (a mapping of its fields) in this sort order."""
    value = case[sort.lstrip("-")]
    payload = {"s": sort, "v": value.isoformat() if value else None, "id": case["id"]}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def decode_cursor(sort: str, cursor: str) -> tuple[datetime | None, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        if payload["s"] != sort:
            raise ValueError("cursor made for another sort order")
        value = datetime.fromisoformat(payload["v"]) if payload["v"] else None
        return value, int(payload["id"])
    except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise Unprocessable(
            f"cursor: not a cursor from this list ({exc})",
            errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor", "type": "value_error"}],
        ) from None


def ordering(sort: str, columns=None) -> list[Any]:
    """ORDER BY (key, id) in one direction, of the case table or of a selectable's columns of
    the same names (a CTE of a page). due_at may be null: nulls sort last in both directions."""
    key = sort.lstrip("-")
    column = _COLUMNS[key] if columns is None else columns[key]
    id_ = Case.id if columns is None else columns.id
    nullable = key == "due_at"
    if sort.startswith("-"):
        return [column.desc().nulls_last() if nullable else column.desc(), id_.desc()]
    return [column.asc().nulls_last() if nullable else column.asc(), id_.asc()]


def past_id(sort: str, last_id: Any, columns: Any = None) -> ColumnElement[bool]:
    """Rows past last_id in the sort's direction, of the case table or of a selectable's
    columns of the same names (as in ordering)."""
    id_ = Case.id if columns is None else columns.id
    return id_ < last_id if sort.startswith("-") else id_ > last_id


def seek(sort: str, value: Any, last_id: Any, columns: Any = None) -> ColumnElement[bool]:
    """Rows strictly past (value, last_id) in the sort order, both plain values or bind
    parameters, among those whose key is not null (due_at's nulls are read apart:
    app/cases/reads.py _by_deadline). With a bound an index can start from: PostgreSQL takes
    `key < value OR (key = value AND id < last)` as a filter only, so each page walked the
    order's index from its first entry, past every case of the pages before (the fifth page
    of a filter read five pages' cases, each one a heap row, most of them outside the buffer
    cache at 10M cases). `key <= value` beside it is an index condition: a page reads its
    own rows."""
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    column = _COLUMNS[key] if columns is None else columns[key]
    past_value = column < value if descending else column > value
    bound = column <= value if descending else column >= value
    return and_(bound, or_(past_value, and_(column == value, past_id(sort, last_id, columns))))
