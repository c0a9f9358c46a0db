"""The reading routes' statements and answers: one case, and a page of the queue or of a search.

A read is answered from plain rows, not ORM objects: the columns CaseRead shows, selected in
its order, become a dict in that order and are serialised once (orjson) into the very bytes
FastAPI would have sent for the response model (the routes keep `response_model` for OpenAPI).
No object is built, and nothing is validated twice (the rows come from our own table).

One statement per read: a case comes with its partners' webhook receipts (a LEFT JOIN, empty
for nearly every case), and on PostgreSQL the record of a person's read of personal data is an
INSERT in the statement's WITH clause (app/privacy/service.py). The statements are built once
(per access rule, per shape of list request) with bind parameters, so SQLAlchemy neither builds
nor walks them again: their cache key is memoized on the statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from operator import attrgetter, itemgetter
from typing import Any

import orjson
from sqlalchemy import (
    ARRAY,
    BigInteger,
    DateTime,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    column,
    func,
    literal_column,
    select,
    table,
    tuple_,
    type_coerce,
    union_all,
)
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import TSVECTOR

from app.auth.deps import Principal
from app.auth.permissions import Role
from app.cases import access
from app.cases.models import OPEN_CASES, OPEN_STATUSES, SETTLED_CASES, Case, CaseAgency
from app.cases.queries import (
    filter_clauses,
    in_category,
    ordering,
    past_id,
    seek,
    text_search,
    tsquery,
)
from app.cases.schemas import PERSONAL_FIELDS, CaseRead
from app.cases.workflow import TRANSITIONS, Action, allowed_actions
from app.core.db import Record
from app.core.pagination import count_of
from app.core.types import UTCDateTime
from app.privacy.service import SHOWS_PERSONAL_DATA_COLUMNS, reads_recorded
from app.reference.models import Agency, AgencyKind

_TABLE = Case.__table__
FIELDS = tuple(CaseRead.model_fields)
COLUMNS = tuple(_TABLE.c[name] for name in FIELDS if name in _TABLE.c)
"""The columns an answer shows, in CaseRead's order (the others are computed)."""
_NAMES = tuple(c.name for c in COLUMNS)
_AWARE = DateTime(timezone=True)
_BY_ATTRIBUTE = attrgetter(*_NAMES)
_BY_KEY = itemgetter(*_NAMES)


def shown_values(case: Any) -> tuple[Any, ...]:
    """The values of COLUMNS of a case: a Case, a SQLAlchemy Row, or a db.Record (read by
    key from the asyncpg record in one C call: 45 look-ups through Record.__getattr__ cost
    25 µs a case, a create's answer)."""
    if isinstance(case, Record):
        return _BY_KEY(case.values)
    return _BY_ATTRIBUTE(case)


def _read_as(column: Any, dialect: str) -> Any:
    """A column as a read selects it. PostgreSQL is always reached through asyncpg
    (Settings forces the driver), which returns timestamptz values as UTC-aware datetimes
    already: there the UTCDateTime columns are read as plain DateTime(timezone=True), without
    UTCDateTime's call per value (needed on SQLite, which drops the zone) — 8 timestamps a case,
    400 calls for a page of the queue."""
    if dialect == "postgresql" and isinstance(column.type, UTCDateTime):
        return type_coerce(column, _AWARE).label(column.name)
    return column


@lru_cache(maxsize=4)
def _columns(dialect: str) -> tuple[Any, ...]:
    return tuple(_read_as(c, dialect) for c in COLUMNS)


_EMPTY = dict.fromkeys(FIELDS)  # every field, in order: filled by update, never reordered
_OPEN = frozenset(OPEN_STATUSES)


# --- statements ----------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def one_case(dialect: str, rule: str, by_kind: bool, recorded: bool) -> Select:
    """One case within reach of the access rule (bind parameters: case_id, kind if by_kind,
    the rule's), a row per partner agency given it (none: one row of nulls), ordered by agency;
    `recorded`: with the INSERT of the read's record (bind parameters: reader_values())."""
    shown = select(*_columns(dialect)).where(Case.id == bindparam("case_id"), access.clause(rule))
    if by_kind:
        shown = shown.where(Case.kind == bindparam("kind"))
    shown = shown.cte("shown")
    partners = CaseAgency.__table__.join(
        Agency.__table__,
        and_(Agency.id == CaseAgency.agency_id, Agency.kind == AgencyKind.partner.value),
    )
    stmt = (
        select(
            shown,
            CaseAgency.agency_id,
            Agency.name,
            _read_as(CaseAgency.delivered_at, dialect),
        )
        .select_from(shown.outerjoin(partners, CaseAgency.case_id == shown.c.id))
        .order_by(CaseAgency.agency_id)
    )
    if recorded:
        stmt = stmt.add_cte(reads_recorded(shown, "read").cte("recorded"))
    return stmt


@dataclass(frozen=True)
class PageShape:
    """What makes two list requests the same statement (their values are bind parameters)."""

    dialect: str
    rule: str  # access.rule_of
    given: frozenset[str]  # the filters given (queries.given), and category_id if given
    overdue: bool | None
    reopened: bool | None
    statuses_open: bool  # queries.open_only
    statuses_settled: bool  # queries.settled_only
    sort: str
    cursor: str | None  # None, "value", or "null" (already among the nulls of due_at)
    recorded: bool  # with the INSERT of the record (PostgreSQL)
    # A search page's size, written into its statement (_limit); None for the other pages,
    # whose statement binds it (page_limit), whatever the size.
    limit: int | None = None


def _limit(n: int) -> Any:
    """A row limit written into the statement, not bound. A prepared statement is planned for
    its parameters (a custom plan) until a plan made without them (a generic plan) looks no
    dearer, and PostgreSQL prices `LIMIT $1` in a generic plan as a tenth of the rows: every
    search page was planned anew (0.6-1.5 ms of PostgreSQL's 1.3-5.1 ms for a page, EXPLAIN
    ANALYZE at 1M; pg_prepared_statements: custom plans only). With its limits in the text it
    runs a generic plan after five pages, the same walk (the statement fixes its shape: the
    walk, the one-time filters, the fallback behind OFFSET 0). Queue pages keep a bound
    limit: their generic plans, for status and time filters of any value, were slower than
    the custom ones (measured over HTTP)."""
    return literal_column(str(int(n)))


def page(shape: PageShape, q: str | None = None) -> tuple[Select, Select]:
    """A page's statement (bind parameters: f_<filter> for each filter given, f_now,
    page_limit = limit + 1 unless the shape holds the size (a search page's), cursor_value
    and cursor_id after a cursor, the access rule's, shown_limit and reader_values() if
    recorded) and the count of its cases. Built once per shape; except SQLite's search,
    whose clauses depend on the words (`q`, the search text)."""
    if q is not None and shape.dialect != "postgresql":
        return _page(shape, q)
    return _cached_page(shape)


@lru_cache(maxsize=512)
def _cached_page(shape: PageShape) -> tuple[Select, Select]:
    return _page(shape, None)


def _page(shape: PageShape, q: str | None) -> tuple[Select, Select]:
    others, text = _clauses(shape, q)
    open_only = _open_only(shape)
    where = [access.clause(shape.rule), *others] + ([] if text is None else [text])
    base = select(*_columns(shape.dialect)).where(*where)
    if text is not None and shape.dialect == "postgresql" and shape.sort in _BY_TIME:
        stmt = _searched(shape, others, base)
    elif text is not None and not open_only:  # by last change or deadline
        stmt = _searched_in_order(shape, others, base)
    elif text is None and shape.rule == "agency" and shape.sort in _BY_TIME and not open_only:
        stmt = _agency_page(shape, others)
    elif text is None and shape.rule == "agency":
        stmt = _agency_open_page(shape, where)
    else:
        stmt = _ordered_page(base, shape)
    if shape.recorded:
        stmt = _recorded_page(stmt, shape.sort)
    count = _agency_count(others) if text is None and shape.rule == "agency" else count_of(base)
    return stmt, count


def _ordered_page(stmt: Select, shape: PageShape) -> Select:
    """`stmt` in the shape's order, past its cursor if it has one, limited to page_limit."""
    if shape.sort in _BY_DEADLINE and (
        shape.cursor is not None or shape.sort == "-due_at" or not _open_only(shape)
    ):
        return _by_deadline(stmt, shape)
    stmt = stmt.order_by(*ordering(shape.sort))
    if shape.cursor is not None:
        value, last_id = bindparam("cursor_value"), bindparam("cursor_id")
        stmt = stmt.where(seek(shape.sort, value, last_id))
    return stmt.limit(bindparam("page_limit", type_=Integer))


_BY_DEADLINE = frozenset({"due_at", "-due_at"})


_OPEN_CASES, _SETTLED = sql_text(OPEN_CASES), sql_text(SETTLED_CASES)


def _open_only(shape: PageShape) -> bool:
    return shape.statuses_open or bool(shape.overdue)


def _by_deadline(
    stmt: Select, shape: PageShape, columns: Any = None, limit: Any = None, name: str = ""
) -> Select:
    """`stmt` by due_at: the cases with a deadline, then (nulls sort last both ways) those
    without, read as two parts, each in the order of a deadline index (due_at, id). As one
    statement the order had no index to start from: past a cursor, `due_at > v OR (due_at = v
    AND id > last) OR due_at IS NULL` is no index condition, so each page walked the index
    from its first entry (a page a week into the open queue's deadlines at 1M: 5,685 rows read
    and dropped, 7 ms); and `due_at DESC NULLS LAST` is no index's order (an index read
    backwards gives nulls first), so each page of -due_at sorted every case that passed the
    filters (the open queue's: 35 ms at 1M).

    - dated: the cases with a deadline, past the cursor (queries.seek: its bound is an
      index condition), in the index's order (descending: nulls first, of which it has none),
      limited to the page;
    - undated: those without, ordered by (due_at, id) too (id order among nulls, and the
      index's), only as many as the dated part left of the page: none when it filled the
      page, and then it is not run at all (LIMIT 0). Run whenever asked, it would walk the
      undated cases until one passed the filters (57 ms for the closed cases' second page at
      1M, where few closed cases lack a deadline, measured with an index of due_at over
      every case, since left out: migration 0024).

    The two are sorted again together, at most page_limit rows. Past a cursor among the
    undated, the undated part alone. Each part reads the open cases and the others apart
    (_by_status), unless the filters keep to one of them. `columns`: those of a subquery
    that `stmt` selects from (a search's matches), read as it is; `limit`: rows to take
    other than page_limit; `name`: a prefix of its parts' names, if a statement holds two."""
    limit = bindparam("page_limit", type_=Integer) if limit is None else limit
    c = _TABLE.c if columns is None else columns
    arms = _by_status(stmt, shape) if columns is None else [stmt]
    if shape.cursor == "null":  # already among the undated
        return _first_of(arms, _first_part(shape, columns), limit, shape.sort, c)
    first = _first_of(arms, _first_part(shape, columns), limit, shape.sort, c)
    first = first.cte(f"{name}dated")
    left = limit - select(func.count()).select_from(first).scalar_subquery()
    undated = [c.due_at.is_(None)]
    rest = _first_of(arms, undated, left, shape.sort, c).subquery(f"{name}undated")
    both = union_all(select(first), rest.select()).subquery(f"{name}by_deadline")
    return select(both).order_by(*ordering(shape.sort, both.c))


def _deadline_order(sort: str, c: Any) -> list[Any]:
    """(due_at, id) in the sort's direction as a deadline index gives it (descending: nulls
    first): the order of one part of _by_deadline, all dated or all undated."""
    return [c.due_at.desc(), c.id.desc()] if sort.startswith("-") else [c.due_at, c.id]


def _first_part(shape: PageShape, columns: Any = None) -> list[Any]:
    """The conditions of the first part a deadline page reads: the cases with a deadline past
    the cursor, or (past a cursor among them) those without."""
    c = _TABLE.c if columns is None else columns
    if shape.cursor == "null":
        return [c.due_at.is_(None), past_id(shape.sort, bindparam("cursor_id"), columns)]
    dated = [c.due_at.is_not(None)]
    if shape.cursor == "value":
        value, last_id = bindparam("cursor_value"), bindparam("cursor_id")
        dated.append(seek(shape.sort, value, last_id, columns))
    return dated


ORDERED_WALK = 2_000
"""How many cases a search page by last change or deadline walks in that order (in each index it
reads) before it sorts every match instead: a word in 1 of 40 cases fills a page of 50 within
it when no other filter narrows the list (each case read from the table, ~1 µs)."""

AGENCY_ORDERED_WALK = 10_000
"""ORDERED_WALK for an agency's page: the walk is of the region's cases, of which the agency
holds a part, so a page needs a longer one. Within 10,000, a word in 1 of 20 cases fills a page
of 20 for an agency given 1 in 25 of the region's cases (the city administration, 15 % at 1M:
309-337 ms a page by last change or deadline with a walk of 2,000, then every match sorted;
4-11 ms). A smaller agency's page falls back to every match either way, after a walk longer by
5-15 ms."""


def _searched_in_order(shape: PageShape, others: list[Any], base: Select) -> Select:
    """A search page by last change or deadline of a list that holds more than open cases, the
    same rows as `base` in that order, found the cheaper of two ways whatever the word's
    frequency (as _searched does by time):

    - walk: the next ORDERED_WALK (an agency's: AGENCY_ORDERED_WALK) cases in the order (the
      indexes of updated_at or due_at), each one's words tested, the matches joined to
      case_file by key for the access rule and the filters, until the page is full
      (PostgreSQL; the words tested on case_file itself, PostgreSQL took every match from the
      GIN index for the join). By deadline, the first part of _by_deadline alone (the cases
      with a deadline, or the undated past a cursor among them), its open and settled cases
      merged as they are read: with both parts, the walk was read whole before its first
      match (the undated part counts the dated one, and in `-due_at NULLS LAST` the parts were
      sorted), 2,000 of each part for every page whatever the word. A walk that ends in the
      first part falls short, and the fallback has the rest;
    - if the walk found fewer (a rare word, narrow filters, the end of the list): every match
      (behind OFFSET 0, from the GIN index), read once and sorted.

    Left to choose, PostgreSQL walked the order's index to the end, testing each case's words
    (its guess of a word's frequency is a constant): at 1M, a word in no case took 1.3-1.5 s a
    page by last change (migration 0024's index) and 2.5 s by deadline (0025's). Sorting every
    match took 150-350 ms for a word in 45,000 cases. The open queue's search pages walk the
    open cases' indexes whole, which hold the work in hand, not the register. On SQLite, the
    matches sorted."""
    matched = base.offset(literal_column("0")).cte("search_matched")
    sorted_ = _taken_in_order(select(matched), shape, matched.c, name="matched_")
    if shape.dialect != "postgresql":
        return sorted_
    limit = bindparam("page_limit", type_=Integer)
    vector = literal_column("case_file.search_vector", TSVECTOR).label("search_vector")
    candidates = select(Case.id, _TABLE.c[shape.sort.lstrip("-")], vector)
    stretch = _limit(AGENCY_ORDERED_WALK if shape.rule == "agency" else ORDERED_WALK)
    if shape.sort in _BY_DEADLINE:  # the first part alone, merged as it is read
        by_status = _by_status(candidates, shape)
        walked = _first_of(by_status, _first_part(shape), stretch, shape.sort)
        walked = walked.subquery("order_walked")
        walked_order = _deadline_order(shape.sort, walked.c)
    else:
        walked = _taken_in_order(candidates, shape, limit=stretch).subquery("order_walked")
        walked_order = ordering(shape.sort, walked.c)
    words = walked.c.search_vector.op("@@")(tsquery(bindparam("f_q")))
    walk = (
        select(*_columns(shape.dialect))
        .select_from(walked.join(_TABLE, _TABLE.c.id == walked.c.id))
        .where(words, access.clause(shape.rule), *others)
        .order_by(*walked_order)
        .limit(limit)
        .cte("order_walk")
    )
    found = select(func.count()).select_from(walk).scalar_subquery()
    rest = sorted_.subquery("search_sorted")
    pages = union_all(
        select(walk).where(found == limit), select(rest).where(found < limit)
    ).subquery("search_page")
    return select(pages).order_by(*ordering(shape.sort, pages.c))


def _taken_in_order(
    stmt: Select, shape: PageShape, columns: Any = None, limit: Any = None, name: str = ""
) -> Select:
    """The first `limit` (page_limit) rows of `stmt` in the shape's order past its cursor: by
    deadline, _by_deadline; by last change, the seek and the order. `columns`: those of a
    subquery that `stmt` selects from, read as it is; `name`: _by_deadline's."""
    if shape.sort in _BY_DEADLINE:
        return _by_deadline(stmt, shape, columns, limit, name)
    limit = bindparam("page_limit", type_=Integer) if limit is None else limit
    if shape.cursor is not None:
        value, last_id = bindparam("cursor_value"), bindparam("cursor_id")
        stmt = stmt.where(seek(shape.sort, value, last_id, columns))
    return stmt.order_by(*ordering(shape.sort, columns)).limit(limit)


def _by_status(stmt: Select, shape: PageShape) -> list[Select]:
    """`stmt` as the parts a deadline index serves: itself if its filters keep to the open
    cases (ix_case_file_open_by_due); with the other cases' predicate written in if they keep
    to those (ix_case_file_settled_by_due, migration 0025); else the open cases and the others
    apart. Written as the indexes' predicates are, so that any plan can use them; the open
    queue's statements are left as they were (their generic plans: migration 0024)."""
    if _open_only(shape):
        return [stmt]
    if shape.statuses_settled:
        return [stmt.where(_SETTLED)]
    return [stmt.where(_OPEN_CASES), stmt.where(_SETTLED)]


def _first_of(arms: list[Select], where: list[Any], n: Any, sort: str, c: Any = None) -> Select:
    """The first `n` rows of the arms that pass `where` (one part of a deadline page), in its
    order (_deadline_order, of the columns `c`: the table's unless given): each arm read in
    its index's order and limited, then (two arms) both merged in the same order and limited,
    at most 2n rows. PostgreSQL 15 plans
    no ordered walk of a UNION ALL of plain selects (it sorted all the rows of both), only of
    arms that are ordered themselves, and merges them as they come (Merge Append) only in
    their own order: in `-due_at NULLS LAST` (the page's) it sorted them whole."""
    in_order = _deadline_order(sort, _TABLE.c if c is None else c)
    if len(arms) == 1:
        return arms[0].where(*where).order_by(*in_order).limit(n)
    parts = [a.where(*where).order_by(*in_order).limit(n).subquery() for a in arms]
    both = union_all(*(part.select() for part in parts)).subquery()
    return select(both).order_by(*_deadline_order(sort, both.c)).limit(n)


def _clauses(shape: PageShape, q: str | None) -> tuple[list[Any], Any]:
    """The WHERE clauses of the shape's filters but the search (bind parameters f_<filter>,
    f_now), and the search's clause if there is one (f_q; SQLite's from the words of `q`)."""
    values: dict[str, Any] = {
        name: bindparam(f"f_{name}") for name in shape.given - {"category_id", "status", "q"}
    }
    if "status" in shape.given:  # an array on PostgreSQL (queries._among), else expanding IN
        values["status"] = (
            bindparam("f_status", type_=ARRAY(String))
            if shape.dialect == "postgresql"
            else bindparam("f_status", expanding=True)
        )
    categories = None
    if "category_id" in shape.given:
        categories = in_category(bindparam("f_category_id", type_=Integer), shape.dialect)
    clauses = filter_clauses(
        values,
        overdue=shape.overdue,
        reopened=shape.reopened,
        statuses_open=shape.statuses_open,
        dialect=shape.dialect,
        now=bindparam("f_now"),
        categories=categories,
    )
    text = None
    if "q" in shape.given:
        text = text_search(bindparam("f_q") if q is None else q, shape.dialect)
    return clauses, text


# --- an agency's pages ---------------------------------------------------------------------------

_LINKS = CaseAgency.__table__


def _agency_page(shape: PageShape, others: list[Any]) -> Select:
    """A page of an agency's cases (the access rule "agency") in created_at order, either way,
    that may hold closed cases: the same rows as the rule's EXISTS, taken from the agency's own
    list (case_agency: a row per case and agency, with a copy of the case's created_at,
    migration 0022) in the order of its index, each case read by its key and tested against
    the filters, until the page is full. Its cost grows with the agency's cases, not the
    region's. Through the EXISTS, PostgreSQL walked the region's cases back in time, testing
    whether the agency had each: at 1M, 48-55 ms for the first page of a district
    administration with 3,777 cases, 0.4-0.5 ms this way (EXPLAIN ANALYZE).

    Pages of open cases alone (open statuses, or overdue) keep the EXISTS: the region's open
    cases have partial indexes of their own, bounded by the work in hand rather than history.
    Walking the agency's list (mostly closed cases) for them measured no faster for small
    agencies and 13-19 times slower for a large one (the health ministry's 110,947 cases:
    92-93 ms a page against 5-7 ms, whole requests at 1M)."""
    newest = shape.sort.startswith("-")
    a = _LINKS.c
    stmt = (
        select(*_columns(shape.dialect))
        .select_from(_LINKS.join(_TABLE, _TABLE.c.id == a.case_id))
        .where(a.agency_id == bindparam("visible_agency_id", type_=a.agency_id.type), *others)
        .order_by(*_in_order(newest, a.case_created_at, a.case_id))
    )
    if shape.cursor is not None:
        stmt = stmt.where(_past_cursor(newest, a.case_created_at, a.case_id))
    return stmt.limit(bindparam("page_limit", type_=Integer))


def _agency_count(others: list[Any]) -> Select:
    """How many of an agency's cases pass the filters (`with_total`), counted from its own list
    (case_agency: a row per case and agency) rather than through the access rule's EXISTS: with
    no filter, from the list's index alone, without reading a case. Through the EXISTS,
    PostgreSQL walked every case of the region: at 1M, a first page with its total took the
    city administration (149,090 cases) 83-84 ms, now 11-13; districts (7,653-16,561) 13-19
    ms, now 2.3-2.9 (bench/agency_pages.py, whole requests in process). With filters, the
    cases are joined by key and tested, which measured the same as the EXISTS."""
    a = _LINKS.c
    listed = _LINKS.join(_TABLE, _TABLE.c.id == a.case_id) if others else _LINKS
    return (
        select(func.count())
        .select_from(listed)
        .where(a.agency_id == bindparam("visible_agency_id", type_=a.agency_id.type), *others)
    )


def _agency_open_page(shape: PageShape, where: list[Any]) -> Select:
    """A page of an agency's cases that _agency_page does not serve (open cases alone, or an
    order other than created_at's): its ids chosen first, then its rows read by key.
    Choosing the ids needs no more than the filtered columns, which an index holds (open
    statuses: the (status, created_at, id) index), so PostgreSQL can join the region's open
    cases to the agency's list without reading their rows; asked for whole rows, it read
    every open case in the filtered statuses, 45 columns each, before the join kept the
    agency's few: 20-30 ms a page for a district at 1M, now 10-16 (bench/agency_pages.py)."""
    key = Case.__table__.c[shape.sort.lstrip("-")]  # for the order of a page in two parts
    ids = _ordered_page(select(Case.id, key).where(*where), shape).subquery("page_ids")
    return (
        select(*_columns(shape.dialect))
        .where(Case.id.in_(select(ids.c.id)))
        .order_by(*ordering(shape.sort))
    )


# --- search pages (PostgreSQL) -------------------------------------------------------------------

_BY_TIME = frozenset({"created_at", "-created_at"})

SEARCH_WALK = 10_000
"""How many cases a search page walks in time order (case_search) before it asks the GIN index
instead: a word in 1 of 500 cases fills a page of 20 within it (walked at ~0.3 µs a case)."""

AGENCY_SEARCH_WALK = 2_000
"""How many of its own cases an agency's search page walks in time order (case_agency, each
case's words read from case_search by key, ~5 µs a case) before it asks the GIN index instead:
a word in 1 of 100 of the agency's cases fills a page of 20 within it."""

# Migration 0014: (created_at, id, search_vector) of every case, in created_at order, its key
# (created_at, id). Not a model: PostgreSQL only, written by triggers on case_file.
_CASE_SEARCH = table(
    "case_search",
    column("created_at", _AWARE),
    column("id", BigInteger),
    column("search_vector", TSVECTOR),
)


def _searched(shape: PageShape, others: list[Any], base: Select) -> Select:
    """A search page in created_at order (either way), the same rows as `base` ordered and
    limited, found the cheaper of two ways whatever the word's frequency:

    - walk: the next SEARCH_WALK cases in order from case_search (narrow rows, stored in that
      order), each one's vector tested, the matches joined to case_file for the other filters
      and the access rule, until limit + 1 of them. A common word stops within a few
      thousand cases, at any table size.
    - if the walk found fewer (a rare word, or filters that few cases pass): every match from
      the GIN index of case_file, sorted. A rare word has few; the subquery behind OFFSET 0
      keeps the planner from walking case_file's created_at index for it instead (its row
      estimates of word combinations are often ten times off).

    The second part runs only when the first fell short (a one-time filter on the walk's count).

    An agency's page walks its own list instead (case_agency, in created_at order, each case's
    words read from case_search by key; at most AGENCY_SEARCH_WALK cases), and asks the GIN
    index only if the walk fell short before the list's end. The region's walk holds a
    district's cases one in a hundred: a word in 1 of 26 of a district's 16,554 cases filled
    no page within it, and every match of the word in the region (44,710 at 1M) was tested
    against the district's list. Whole requests at 1M (bench/agency_pages.py, medians of
    three): districts of 7,644-16,554 cases, 158-178 ms a page, now 5.7-7.0; a word in no
    case, 3.4-3.6 ms, now 7.8-11.5 (the walk of 2,000 before the GIN index)."""
    newest = shape.sort.startswith("-")
    limit = _limit(shape.limit + 1)
    words = tsquery(bindparam("f_q"))
    rest = base
    if shape.cursor is not None:
        rest = rest.where(seek(shape.sort, bindparam("cursor_value"), bindparam("cursor_id")))
    s = _CASE_SEARCH.c
    listed = None
    if shape.rule == "agency":  # the agency's list is its access rule
        listed = _agency_listed(shape)
        ls = listed.subquery("listed").c
        # Each case's words read by its key, a subplan per case walked: as a join, PostgreSQL
        # may read every case's words instead, when its guess of a word's frequency (a
        # constant) makes that look cheaper (100k cases, a generic plan: 32 ms, not 1-3).
        words_of = select(s.search_vector).where(s.created_at == ls.created_at, s.id == ls.id)
        walked = select(ls.id, ls.created_at, words_of.scalar_subquery().label("search_vector"))
        seen = []
    else:
        walked = select(s.id, s.created_at, s.search_vector)
        if shape.cursor is not None:
            walked = walked.where(_past_cursor(newest, s.created_at, s.id))
        walked = walked.order_by(*_in_order(newest, s.created_at, s.id))
        walked = walked.limit(_limit(SEARCH_WALK))
        seen = [access.clause(shape.rule)]
    walked = walked.subquery("walked")
    walk = (
        select(*_columns(shape.dialect))
        .select_from(walked.join(_TABLE, _TABLE.c.id == walked.c.id))
        .where(walked.c.search_vector.op("@@")(words), *seen, *others)
        .order_by(*_in_order(newest, walked.c.created_at, walked.c.id))
        .limit(limit)
        .cte("search_walk")
    )
    found = select(func.count()).select_from(walk).scalar_subquery()
    short = found < limit
    if listed is not None:  # a walk to the end of the agency's list found every match
        listed_all = select(func.count()).select_from(listed.subquery("listed_all"))
        short = and_(short, listed_all.scalar_subquery() == _limit(AGENCY_SEARCH_WALK))
    matched = rest.offset(literal_column("0")).subquery("search_matched")
    pages = union_all(
        select(walk).where(~short),
        select(matched).where(short).order_by(*ordering(shape.sort, matched.c)).limit(limit),
    ).subquery("search_page")
    return select(pages).order_by(*ordering(shape.sort, pages.c)).limit(limit)


def _agency_listed(shape: PageShape) -> Select:
    """The next AGENCY_SEARCH_WALK cases of the agency's list (case_agency, in its index's
    created_at order) past the page's cursor, as (id, created_at): case_search's key."""
    newest = shape.sort.startswith("-")
    a = _LINKS.c
    listed = select(a.case_id.label("id"), a.case_created_at.label("created_at")).where(
        a.agency_id == bindparam("visible_agency_id", type_=a.agency_id.type)
    )
    if shape.cursor is not None:
        listed = listed.where(_past_cursor(newest, a.case_created_at, a.case_id))
    listed = listed.order_by(*_in_order(newest, a.case_created_at, a.case_id))
    return listed.limit(_limit(AGENCY_SEARCH_WALK))


def _past_cursor(newest: bool, created_at: Any, id_: Any) -> Any:
    """(created_at, id) past the page's cursor (cursor_value, cursor_id) in its order, the
    values bound as the columns' types (SQLite's UTCDateTime is text in its own format)."""
    past = tuple_(
        bindparam("cursor_value", type_=created_at.type), bindparam("cursor_id", type_=id_.type)
    )
    key = tuple_(created_at, id_)
    return key < past if newest else key > past


def _in_order(newest: bool, created_at: Any, id_: Any) -> list[Any]:
    return [created_at.desc(), id_.desc()] if newest else [created_at.asc(), id_.asc()]


# The page's rows by name, typed as PostgreSQL reads them (only there is the record written in
# the statement): the statement around a page refers to them as `page.<column>`, a CTE named
# page, so no per-request CTE needs column objects of its own (making those for 40 columns cost
# more than the rest of the request).
_PAGE = table("page", *(column(c.name, _read_as(c, "postgresql").type) for c in COLUMNS))


def _recorded_page(page: Select, sort: str) -> Select:
    """A page (`limit` + 1 rows, the last only telling that there is a next page) with the
    INSERT of the record of the `limit` rows shown (bind parameter shown_limit)."""
    order, recorded = _around_page(sort)
    return select(_PAGE).order_by(*order).add_cte(page.cte("page"), recorded)


@lru_cache(maxsize=16)
def _around_page(sort: str) -> tuple[list[Any], Any]:
    """The page's order and the INSERT of its record (a CTE after the page's), made once.
    The rows shown are told from the extra one by sorting the page again: only the columns
    the record reads and the order's go through that sort, not the page's 45 (a tenth less
    PostgreSQL time for the statement, measured with EXPLAIN ANALYZE at 1M)."""
    order = ordering(sort, _PAGE.c)
    needed = dict.fromkeys(("id", sort.lstrip("-"), *SHOWS_PERSONAL_DATA_COLUMNS))
    shown = (
        select(*(_PAGE.c[name] for name in needed))
        .order_by(*order)
        .limit(bindparam("shown_limit"))
        .subquery("shown")
    )
    return order, reads_recorded(shown, "list").cte("recorded")


# --- answers -------------------------------------------------------------------------------------


def answer(
    row: Sequence[Any],
    principal: Principal,
    hidden: bool,
    now: datetime,
    partners: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """CaseRead's fields, in its order, from a row whose first values are COLUMNS."""
    data = _EMPTY.copy()
    data.update(zip(_NAMES, row, strict=False))
    status, due_at = data["status"], data["due_at"]
    data["overdue"] = bool(due_at and status in _OPEN and due_at < now)
    if hidden:
        for field in PERSONAL_FIELDS:
            data[field] = None
    data["personal_data_hidden"] = hidden
    data["partner_deliveries"] = partners
    answers = principal.role is not Role.agency or data["agency_id"] == principal.agency_id
    data["allowed_actions"] = _allowed(status, principal.scopes, answers)
    return data


def partner(agency_id: int, name: str | None, delivered_at: datetime | None) -> dict[str, Any]:
    """A PartnerDelivery, as a dict in its field order."""
    return {"agency_id": agency_id, "agency_name": name, "delivered_at": delivered_at}


@lru_cache(maxsize=1024)
def _allowed(status: str, scopes: frozenset[str], answers: bool) -> tuple[str, ...]:
    """What the caller may do with a case in this status; only its own agency's staff answer."""
    actions = allowed_actions(status, scopes)
    if not answers:
        actions = [a for a in actions if TRANSITIONS[Action(a)].scope != "cases:answer"]
    return tuple(actions)


# orjson writes these dicts exactly as pydantic writes the response models (UTC as "Z", the
# shortest float that round-trips, UTF-8 unescaped, enums by value: checked on every answer of
# the bench's reads, and by tests against model_dump_json), eight times faster than pydantic's
# own to_json on dicts (56 vs 436 µs for a page of 50).
_JSON = orjson.OPT_UTC_Z


def case_json(data: dict[str, Any]) -> bytes:
    """The bytes of a CaseRead, as FastAPI would send the response model."""
    return orjson.dumps(data, option=_JSON)


def page_json(items: list[dict[str, Any]], next_cursor: str | None, total: int | None) -> bytes:
    """The bytes of a CasePage."""
    return orjson.dumps({"items": items, "next_cursor": next_cursor, "total": total}, option=_JSON)
