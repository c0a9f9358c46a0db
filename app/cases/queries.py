"""The case list: filters, keyset pagination, optional total, full-text search."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, any_, func, literal_column, or_, select

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


def overdue_clause():
    return and_(Case.status.in_(OPEN_STATUSES), Case.due_at.is_not(None), Case.due_at < utcnow())


def in_category(category_id: int, dialect: str) -> ColumnElement[bool]:
    """The category, or a sector with its subcategories, looked up by the query itself (no
    round trip of its own). On PostgreSQL as `= ANY(ARRAY(subquery))`: evaluated once and
    planned like a list of ids; `IN (subquery)` was planned as a join, 15 times slower."""
    ids = select(Category.id).where(
        (Category.id == category_id) | (Category.parent_id == category_id)
    )
    if dialect == "postgresql":
        return Case.category_id == any_(func.array(ids.scalar_subquery()))
    return Case.category_id.in_(ids)


def apply_filters(stmt: Select, f: CaseFilters, category_ids: list[int] | None, dialect: str):
    if f.status:
        stmt = stmt.where(Case.status.in_(f.status))
    if f.kind:
        stmt = stmt.where(Case.kind == f.kind)
    if category_ids is not None:
        stmt = stmt.where(Case.category_id.in_(category_ids))
    if f.territory_id is not None:
        stmt = stmt.where(Case.territory_id == f.territory_id)
    if f.agency_id is not None:
        stmt = stmt.where(Case.agency_id == f.agency_id)
    if f.priority:
        stmt = stmt.where(Case.priority == f.priority)
    if f.overdue and f.status and set(f.status) <= set(OPEN_STATUSES):
        # The statuses are already open ones: repeating `status IN (...)` made the planner
        # count it twice (a 20th of the rows expected) and sort instead of reading the open
        # queue's index by due_at.
        stmt = stmt.where(Case.due_at.is_not(None), Case.due_at < utcnow())
    elif f.overdue is not None:
        stmt = stmt.where(overdue_clause() if f.overdue else ~overdue_clause())
    if f.source:
        stmt = stmt.where(or_(Case.network == f.source, Case.channel == f.source))
    if f.source_system:
        stmt = stmt.where(Case.source_system == f.source_system)
    if f.created_from:
        stmt = stmt.where(Case.created_at >= f.created_from)
    if f.created_to:
        stmt = stmt.where(Case.created_at < f.created_to)
    if f.due_from:
        stmt = stmt.where(Case.due_at >= f.due_from)
    if f.due_to:
        stmt = stmt.where(Case.due_at < f.due_to)
    if f.reopened is not None:
        stmt = stmt.where(Case.reopen_count > 0 if f.reopened else Case.reopen_count == 0)
    if f.q:
        stmt = stmt.where(text_search(f.q, dialect))
    return stmt


def text_search(q: str, dialect: str):
    if dialect == "postgresql":
        # The stored column search_vector = to_tsvector('russian', text), GIN-indexed
        # (migration 0008; not in the model, which cannot express a generated tsvector).
        return literal_column("case_file.search_vector").op("@@")(
            func.websearch_to_tsquery("russian", q)
        )
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


def order_and_seek(stmt: Select, sort: str, cursor: str | None) -> Select:
    """ORDER BY (key, id) in one direction; after a cursor, rows strictly past it.
    due_at may be null: nulls sort last in both directions and are walked by id."""
    descending = sort.startswith("-")
    column = _COLUMNS[sort.lstrip("-")]
    nullable = column is Case.due_at
    stmt = stmt.order_by(*ordering(sort))
    if cursor is None:
        return stmt
    value, last_id = decode_cursor(sort, cursor)
    past_id = Case.id < last_id if descending else Case.id > last_id
    if value is None:  # already among the null tail
        return stmt.where(column.is_(None), past_id)
    past_value = column < value if descending else column > value
    seek = or_(past_value, and_(column == value, past_id))
    if nullable:
        seek = or_(seek, column.is_(None))
    return stmt.where(seek)
