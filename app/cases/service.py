"""Cases: intake with routing, the workflow actions, operator edits, reads. Only flushes."""

from __future__ import annotations

import enum
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, NamedTuple

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import (
    JSON,
    Boolean,
    Integer,
    Row,
    Select,
    String,
    TextClause,
    any_,
    bindparam,
    column,
    func,
    literal,
    null,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.schema import Sequence as DbSequence
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth.deps import Principal
from app.cases import access, reads
from app.cases.models import (
    OPEN_STATUSES,
    Case,
    CaseAgency,
    CaseEvent,
    CaseKind,
    CaseStatus,
    Priority,
)
from app.cases.queries import (
    CaseFilters,
    decode_cursor,
    encode_cursor,
    given,
    open_only,
    settled_only,
)
from app.cases.schemas import (
    AppealCreate,
    AssignBody,
    CaseEdit,
    CaseRead,
    CloseBody,
    IncidentCreate,
    InterimAnswerBody,
    RejectBody,
    ReopenBody,
    ReturnBody,
)
from app.cases.workflow import TRANSITIONS, Action, target_status
from app.core.config import Settings
from app.core.db import engine_of, insert_rows, read_rows, savepoint, write_one
from app.core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidReference,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    domain_problem,
    validation_problem,
)
from app.core.references import resolve
from app.core.schemas import MAX_ID
from app.core.types import utcnow
from app.deadlines.service import due_after_interim, due_from, production_calendar, select_policy
from app.privacy.service import reader_values, record_reads, records_reads
from app.reference.models import Agency, Category, Territory
from app.routing.engine import CaseFacts, RoutingDecision, RuleSet, current_rules
from app.routing.service import sector_of
from app.stats.durations import elapsed

SYSTEM_ACTOR = ("system:routing", "Маршрутизация", "system")
_CASE_COLUMNS = tuple(Case.__table__.columns)  # every field of Case, for plain-row reads


MAX_BATCH = 1000
_STALE = object()  # _file_one: the remembered references no longer hold, nothing was written

_CASES = Case.__table__
_EVENTS = CaseEvent.__table__
# Every column of a new case row, in table order (the bulk insert names them all).
_CASE_NAMES = tuple(c.name for c in _CASES.columns)
# What a new case holds before the request's fields, routing and the deadline fill it in: the
# columns with a value of their own; a row holds only what is set (any other column is NULL,
# read with .get): half the memory of a dict of every column, a thousand times in a batch.
_NEW_CASE: dict[str, Any] = {
    "version": 1,
    "reopen_count": 0,
    "missing_person": False,
    "important": False,
}
# What a new case's events say (the case id and the time come from the case).
_EVENT_FIELDS = tuple(
    c.name for c in _EVENTS.columns if c.name not in ("id", "case_id", "created_at")
)
_EVENT_NAMES = ("case_id", *_EVENT_FIELDS, "created_at")
_ACCESS_NAMES = ("case_id", "agency_id", "case_created_at")
# PostgreSQL's sequence behind case_file.id (a bigserial): new ids, and so numbers, up front.
_CASE_IDS = DbSequence(f"{_CASES.name}_id_seq")


class Filed(NamedTuple):
    """What a batch answers about each of its cases (BatchItem's fields)."""

    id: int
    number: str
    status: str
    priority: str
    agency_id: int | None
    due_at: datetime | None


_FILED_COLUMNS = (*(_CASES.c[name] for name in Filed._fields), _CASES.c.external_id)


@dataclass(slots=True)
class Intake:
    case: Case | Row | Filed  # a row of _CASE_COLUMNS (read() takes it), or a batch's Filed
    created: bool


@dataclass(slots=True)
class BatchOutcome:
    index: int
    intake: Intake | None = None
    problem: dict[str, Any] | None = None
    same_as: int | None = None  # an earlier item of the same batch with the same source id


@dataclass(frozen=True, slots=True)
class _Plan:
    """What routing and the deadline policy make of every case with the same facts: the
    columns they set, the case's events and the agencies given access. A batch computes one
    per distinct set of facts, not per item."""

    columns: dict[str, Any]
    events: tuple[tuple[Any, ...], ...]  # rows of _EVENT_FIELDS
    grants: tuple[int, ...]


@dataclass(slots=True)
class _Prepared:
    row: dict[str, Any]  # the case_file row (id and number are set by the insert)
    plan: _Plan


@dataclass(slots=True)
class _References:
    """The categories (id -> active, parent) and territories (id -> active) a request names,
    and the agencies (id -> active) routing may assign its cases to."""

    categories: dict[int, tuple[bool, int | None]]
    territories: dict[int, bool]
    agencies: dict[int, bool]

    def check(self, data: IncidentCreate | AppealCreate) -> None:
        """As `resolve` would: a 422 naming the field for an unknown or inactive reference."""
        if data.category_id is not None:
            found = self.categories.get(data.category_id)
            _check_reference("category_id", "category", data.category_id, found and found[0])
        if data.territory_id is not None:
            found = self.territories.get(data.territory_id)
            _check_reference("territory_id", "territory", data.territory_id, found)

    def sector(self, category_id: int | None) -> int | None:
        """The sector of a checked category: its parent, or itself."""
        if category_id is None:
            return None
        return self.categories[category_id][1] or category_id


def _check_reference(field: str, label: str, obj_id: int, active: bool | None) -> None:
    if active is None:
        raise InvalidReference(field, f"{field}: no {label} with id {obj_id}")
    if not active:
        raise InvalidReference(field, f"{field}: {label} {obj_id} is inactive")


# The references intakes have read, per database engine (a process has one; each test app its
# own), active or not: a create whose references are all here skips their query, and its INSERT
# checks in the same statement that they still are as remembered (_single_intake's guard). So an
# admin's edit counts at once, in every process, and however it was made: a remembered fact that
# no longer holds costs the create a fallback to the query, never a case filed against an
# inactive category. PostgreSQL only (there the create is one statement).
_KNOWN_REFERENCES: weakref.WeakKeyDictionary[Any, _References] = weakref.WeakKeyDictionary()
_KNOWN_LIMIT = 10_000  # entries per table; reference tables hold hundreds


def _remember_references(engine: Any, found: _References) -> None:
    known = _KNOWN_REFERENCES.get(engine)
    if known is None:
        known = _KNOWN_REFERENCES[engine] = _References({}, {}, {})
    for mine, theirs in (
        (known.categories, found.categories),
        (known.territories, found.territories),
        (known.agencies, found.agencies),
    ):
        if len(mine) + len(theirs) > _KNOWN_LIMIT:
            mine.clear()
        mine.update(theirs)


def _forget_references(engine: Any) -> None:
    _KNOWN_REFERENCES.pop(engine, None)


def _known_references(engine: Any, data: Any, rules: RuleSet) -> _References | None:
    """The references of one item as remembered, if every one it needs is (and its category
    and territory are active: a refusal goes through the query, which words it); else None."""
    known = _KNOWN_REFERENCES.get(engine)
    if known is None:
        return None
    found = _References({}, {}, {})
    if data.category_id is not None:
        category = known.categories.get(data.category_id)
        if category is None or not category[0]:
            return None
        found.categories[data.category_id] = category
    if data.territory_id is not None:
        if not known.territories.get(data.territory_id):
            return None
        found.territories[data.territory_id] = True
    for agency_id in rules.agencies([data.territory_id]):
        active = known.agencies.get(agency_id)
        if active is None:
            return None
        found.agencies[agency_id] = active
    return found


def _guard_values(refs: _References) -> dict[str, Any]:
    """The parameters of _single_intake's guard: the remembered facts it checks."""
    [(category_id, (_, parent_id))] = refs.categories.items() or [(None, (None, None))]
    [territory_id] = refs.territories or [None]
    return {
        "ref_category_id": category_id,
        "ref_category_parent": parent_id,
        "ref_territory_id": territory_id,
        "ref_active_agencies": [a for a, on in refs.agencies.items() if on],
        "ref_inactive_agencies": [a for a, on in refs.agencies.items() if not on],
    }


def _external_id(data: IncidentCreate | AppealCreate) -> str:
    return data.post_id if isinstance(data, IncidentCreate) else data.number


@cache
def _adapter(model: Any) -> TypeAdapter:
    return TypeAdapter(model)


def _actor(principal: Principal | None) -> tuple[str, str, str]:
    if principal is None:
        return SYSTEM_ACTOR
    return principal.subject, principal.name, principal.role.value


def _event(case: Case, principal: Principal | None, action: str, **kw: Any) -> CaseEvent:
    actor, name, role = _actor(principal)
    return CaseEvent(
        case_id=case.id, action=action, actor=actor, actor_name=name, actor_role=role, **kw
    )


_EVENT_DEFAULTS: dict[str, Any] = dict.fromkeys(
    ("from_status", "to_status", "from_agency_id", "to_agency_id", "reason", "comment"),
) | {"changes": None, "data": None}


def _event_row(principal: Principal | None, action: str, **kw: Any) -> tuple[Any, ...]:
    """An event of a new case, as a row of _EVENT_FIELDS."""
    actor, name, role = _actor(principal)
    values = _EVENT_DEFAULTS | kw
    values.update(action=action, actor=actor, actor_name=name, actor_role=role)
    return tuple(values[name] for name in _EVENT_FIELDS)


def _number_prefix(kind: str, created_at: datetime) -> str:
    return f"{'INC' if kind == CaseKind.incident else 'APL'}-{created_at.year}-"


def _new_case(data: IncidentCreate | AppealCreate, now: datetime) -> dict[str, Any]:
    """The request's fields as a case_file row (plain values, as stored)."""
    incident = isinstance(data, IncidentCreate)
    source_id = "post_id" if incident else "number"  # an appeal's number is not the case's
    row = _NEW_CASE.copy()
    for name, value in data.__dict__.items():  # the fields (no extras: Input forbids them)
        if value is not None and name != source_id:
            row[name] = value.value if isinstance(value, enum.Enum) else value
    if incident:
        row["post_url"] = str(data.post_url)
        row["kind"] = CaseKind.incident.value
        if data.missing_person:
            row["priority"] = Priority.urgent.value
        elif data.important:
            row["priority"] = Priority.high.value
    else:
        row["attachment_urls"] = [str(url) for url in data.attachment_urls]
        row["kind"] = CaseKind.appeal.value
    row["priority"] = row.get("priority") or Priority.normal.value
    row["status"] = CaseStatus.new.value
    row["external_id"] = _external_id(data)
    row["created_at"] = row["updated_at"] = now
    return row


async def _category_and_sector(session, category_id: int | None, field: str = "category_id"):
    category = await resolve(session, Category, category_id, field)
    if category is None:
        return None, None
    return category, (category.parent_id or category.id)


def _validate(
    items: Sequence[Any], model: type, outcomes: list[BatchOutcome]
) -> list[tuple[int, Any]]:
    """The batch's items as `model`s, validated as one list (a third faster than one by one);
    when some item is bad, item by item, each bad one with its own problem."""
    try:
        return list(enumerate(_adapter(list[model]).validate_python(items)))
    except ValidationError:
        pass
    adapter = _adapter(model)
    valid = []
    for i, raw in enumerate(items):
        try:
            valid.append((i, adapter.validate_python(raw)))
        except ValidationError as exc:
            outcomes[i].problem = validation_problem(exc.errors(), ("body", "items", i))
    return valid


_REFERENCE_TABLES = {"category": Category, "territory": Territory, "agency": Agency}


def _among(column: Any, name: str, dialect: str) -> Any:
    """`column IN (:name…)`, on PostgreSQL as `= ANY(:name)` with the list as one array: the
    same statement for any number of values, where an IN list is rendered anew per call
    (with a cast per value) and prepared anew per length."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=postgresql.ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


@cache
def _references_query(kinds: tuple[str, ...], dialect: str) -> Select:
    """(table name, id, is_active, parent_id) of the rows named by the `<name>_ids` lists;
    built once per combination of tables (a statement built per request costs more Python
    than its round trip)."""
    parts = []
    for name in kinds:
        table = _REFERENCE_TABLES[name].__table__
        parent = table.c.parent_id if name == "category" else null()
        named = _among(table.c.id, f"{name}_ids", dialect)
        parts.append(select(literal(name), table.c.id, table.c.is_active, parent).where(named))
    return parts[0] if len(parts) == 1 else union_all(*parts)


@cache
def _filed_query(columns: tuple[Any, ...], dialect: str) -> Select:
    """The cases of a source system with the given `external_ids`."""
    among = _among(_CASES.c.external_id, "external_ids", dialect)
    return select(*columns).where(_CASES.c.source_system == bindparam("source_system"), among)


# What the guard of a create from remembered references checks (_known_references): the
# category still active with the same parent (its sector routes), the territory still active,
# and every agency routing may pick still as active or inactive as remembered. Columns named
# from the models, never from input.
_CATEGORY, _TERRITORY, _AGENCY = (m.__table__.name for m in (Category, Territory, Agency))
_GUARD_IDS = ("ref_category_id", "ref_category_parent", "ref_territory_id")
_GUARD_LISTS = ("ref_active_agencies", "ref_inactive_agencies")
_REFERENCES_HOLD = (
    "SELECT (CAST(:ref_category_id AS integer) IS NULL OR EXISTS ("  # noqa: S608
    f"SELECT FROM {_CATEGORY} WHERE id = :ref_category_id AND is_active "
    "AND parent_id IS NOT DISTINCT FROM CAST(:ref_category_parent AS integer))) "
    "AND (CAST(:ref_territory_id AS integer) IS NULL OR EXISTS ("
    f"SELECT FROM {_TERRITORY} WHERE id = :ref_territory_id AND is_active)) "
    f"AND (SELECT count(*) FROM {_AGENCY} WHERE id = ANY(:ref_active_agencies) AND is_active) "
    "= cardinality(:ref_active_agencies) "
    f"AND NOT EXISTS (SELECT FROM {_AGENCY} "
    "WHERE id = ANY(:ref_inactive_agencies) AND is_active) AS held"
)


@cache
def _single_intake(dialect: str, guarded: bool = False) -> TextClause:
    """INSERT of one case that numbers it in the same statement (its id from the sequence, or
    on SQLite the next rowid, which the statement's write lock keeps) and does nothing when its
    (source system, external id) is taken: no savepoint, no UPDATE after. RETURNING the row as
    stored, for the answer. On PostgreSQL the same statement writes the case's events and
    access rows (given as JSON arrays: :events without case_id and created_at, which come from
    the case; :grants), only if the case went in: one round trip for the whole intake.

    `guarded` (PostgreSQL): the references were remembered, not read (_known_references); the
    case goes in only if they still hold (_REFERENCES_HOLD), and the answer's last column,
    references_held, says whether they did (false: nothing was written).

    Written out as text: SQLAlchemy never caches an INSERT … ON CONFLICT (its dialects' Insert
    sets inherit_cache=False), and compiling this one anew took longer than the database took
    to run it."""
    # Built from the tables' own names, never from input (hence the noqa S608 below).
    names = [n for n in _CASE_NAMES if n not in ("id", "number")]
    if dialect == "postgresql":
        new_id = f"SELECT nextval('{_CASE_IDS.name}') AS id"
        digits = "CAST(n.id AS text)"  # {id:06d}: six digits at least (lpad alone cuts)
        number = f"lpad({digits}, greatest(6, length({digits})), '0')"
    else:
        new_id = f"SELECT coalesce(max(id), 0) + 1 AS id FROM {_CASES.name}"  # noqa: S608
        number = "printf('%06d', n.id)"
    columns, values = ", ".join(names), ", ".join(f":{n}" for n in names)
    case = (
        f"INSERT INTO {_CASES.name} (id, number, {columns}) "  # noqa: S608
        f"SELECT n.id, :number_prefix || {number}, {values} "
        # SQLite reads ON CONFLICT right after a FROM as a join's ON: hence the WHERE.
        f"FROM ({new_id}) AS n{', ok' if guarded else ''} "
        f"WHERE {'ok.held' if guarded else 'true'} "
        "ON CONFLICT (source_system, external_id) DO NOTHING "
        f"RETURNING {', '.join(_CASE_NAMES)}"
    )
    binds = [bindparam("number_prefix", type_=String)]
    binds += [bindparam(n, type_=_CASES.c[n].type) for n in names]
    if dialect == "postgresql":
        events, access = _EVENTS.name, CaseAgency.__table__.name
        fields = ", ".join(_EVENT_FIELDS)
        returned = f"SELECT {', '.join(f'c.{n}' for n in _CASE_NAMES)}"
        if guarded:  # a row whatever happened, saying whether the references held
            returned += ", ok.held AS references_held FROM ok LEFT JOIN c ON true"
        else:
            returned += " FROM c"
        sql = (
            f"WITH {f'ok AS ({_REFERENCES_HOLD}), ' if guarded else ''}"  # noqa: S608
            f"c AS ({case}), "
            f"e AS (INSERT INTO {events} (case_id, {fields}, created_at) "
            f"SELECT c.id, {', '.join(f'e.{n}' for n in _EVENT_FIELDS)}, c.created_at "
            f"FROM c, json_populate_recordset(CAST(NULL AS {events}), :events) AS e), "
            f"g AS (INSERT INTO {access} (case_id, agency_id, case_created_at) "
            "SELECT c.id, g.agency_id, c.created_at "
            f"FROM c, json_populate_recordset(CAST(NULL AS {access}), :grants) AS g) "
            f"{returned}"
        )
        binds += [bindparam("events", type_=JSON), bindparam("grants", type_=JSON)]
        if guarded:
            ids = postgresql.ARRAY(Integer)
            binds += [bindparam(n, type_=Integer) for n in _GUARD_IDS]
            binds += [bindparam(n, type_=ids) for n in _GUARD_LISTS]
    else:
        sql = case
    returned_columns = [*_CASE_COLUMNS]
    if guarded:
        returned_columns.append(column("references_held", Boolean))
    return text(sql).bindparams(*binds).columns(*returned_columns)


class CaseService:
    def __init__(self, session: AsyncSession, settings: Settings, principal: Principal):
        self.session = session
        self.settings = settings
        self.principal = principal

    # --- intake ------------------------------------------------------------------------------
    #
    # A case is prepared in memory as a plain row (references checked, routed, deadline
    # computed) and inserted with its number; then its events and access rows follow. Routing,
    # the deadline policy and the events are worked out once per distinct set of facts, so a
    # batch of 1,000 items costs a handful of statements and little more Python than a few
    # single intakes. No ORM objects: a batch answers from the rows it wrote.

    async def submit(self, data: IncidentCreate | AppealCreate, alone: bool = False) -> Intake:
        """The case filed (or the one filed before with its source id). `alone`: the caller
        writes nothing else in this request (no Idempotency-Key record); then a create that is
        one statement (remembered references, PostgreSQL) may run by itself, in autocommit
        (write_one), unless its answer records a read of personal data, which must commit
        with the case."""
        source_system = self._source_system()
        external_id = _external_id(data)
        rules = await current_rules(self.session)
        engine = self._engine()
        known = _known_references(engine, data, rules) if self._postgresql() else None
        if known is not None:  # one statement: the references are checked by the INSERT
            [prepared] = await self._prepare([data], source_system, rules, known)
            alone = alone and not records_reads(self.principal)
            row = await self._file_one(prepared, known, alone)
            if row is not _STALE:
                return await self._filed_or_existing(row, source_system, external_id)
            _forget_references(engine)  # something changed: read them all again
        try:
            refs = await self._references([data], rules)
            refs.check(data)
        except DomainError:
            # The case filed before answers a repeat, whatever the repeat refers to.
            existing = await self._by_external_id(source_system, [external_id])
            if existing:
                return Intake(existing[external_id], created=False)
            raise
        [prepared] = await self._prepare([data], source_system, rules, refs)
        row = await self._file_one(prepared)
        return await self._filed_or_existing(row, source_system, external_id)

    async def _filed_or_existing(
        self, row: Row | None, source_system: str, external_id: str
    ) -> Intake:
        if row is None:  # filed before, or by a request racing this one (it waited for it)
            existing = await self._by_external_id(source_system, [external_id])
            return Intake(existing[external_id], created=False)
        return Intake(row, created=True)

    def _engine(self) -> Any:
        return engine_of(self.session)

    def _postgresql(self) -> bool:
        return self.session.bind.dialect.name == "postgresql"

    async def submit_many(
        self, items: Sequence[Any], model: type[IncidentCreate] | type[AppealCreate]
    ) -> list[BatchOutcome]:
        """Item by item outcomes: created, already there, or the item's own problem."""
        if len(items) > MAX_BATCH:
            raise PayloadTooLarge(
                f"At most {MAX_BATCH} items per batch; this one has {len(items)}",
                limit=MAX_BATCH,
            )
        source_system = self._source_system()
        outcomes = [BatchOutcome(index=i) for i in range(len(items))]
        valid = _validate(items, model, outcomes)

        existing = await self._by_external_id(
            source_system, [_external_id(d) for _, d in valid], _FILED_COLUMNS
        )
        rules = await current_rules(self.session)
        refs = await self._references([d for _, d in valid], rules)
        first: dict[str, int] = {}  # external id -> index of its first item in this batch
        todo: list[IncidentCreate | AppealCreate] = []
        for i, data in valid:
            external_id = _external_id(data)
            if external_id in existing:
                outcomes[i].intake = Intake(existing[external_id], created=False)
            elif external_id in first:
                outcomes[i].same_as = first[external_id]
            else:
                try:
                    refs.check(data)
                except DomainError as exc:
                    outcomes[i].problem = domain_problem(exc)
                    continue
                first[external_id] = i
                todo.append(data)
        del valid, existing

        # From here on the rows are the batch: the validated items go (memory).
        prepared = await self._prepare(todo, source_system, rules, refs)
        del todo
        try:
            async with savepoint(self.session):
                await self._insert_many(prepared)
        except IntegrityError:
            # Another request took one of these source ids meanwhile (rare): one by one.
            adapter = _adapter(model)
            for i in first.values():
                outcomes[i].intake = await self.submit(adapter.validate_python(items[i]))
        else:
            await self._record_intake(prepared)
            for i, p in zip(first.values(), prepared, strict=True):
                row = p.row
                filed = Filed(*map(row.get, Filed._fields))
                outcomes[i].intake = Intake(filed, created=True)
        for outcome in outcomes:
            if outcome.same_as is not None:
                outcome.intake = Intake(outcomes[outcome.same_as].intake.case, created=False)
        return outcomes

    def _source_system(self) -> str:
        return self.principal.source_system or "operator"

    async def _by_external_id(
        self, source_system: str, external_ids: list[str], columns: Sequence[Any] = _CASE_COLUMNS
    ) -> dict[str, Row]:
        """The cases already filed under these source ids: rows of `columns` (every column of
        the case, for an answer in full; or a batch's few, _FILED_COLUMNS)."""
        if not external_ids:
            return {}
        stmt = _filed_query(tuple(columns), self.session.bind.dialect.name)
        params = {"source_system": source_system, "external_ids": list(set(external_ids))}
        return {row.external_id: row for row in await self.session.execute(stmt, params)}

    async def _references(self, items: Sequence[Any], rules: RuleSet) -> _References:
        """The categories and territories the items name, and the agencies the rules may
        route them to, in one query (a batch's too)."""
        found = _References({}, {}, {})
        wanted = {
            "category": {d.category_id for d in items},
            "territory": {d.territory_id for d in items},
            "agency": rules.agencies(d.territory_id for d in items),
        }
        params = {
            f"{name}_ids": [i for i in ids if i is not None and 1 <= i <= MAX_ID]  # else no row
            for name, ids in wanted.items()
        }
        kinds = tuple(name for name in wanted if params[f"{name}_ids"])
        if not kinds:  # nothing to look up; remembered as such, so the next one needn't ask
            if self._postgresql():
                _remember_references(self._engine(), found)
            return found
        for name, obj_id, active, parent in await self.session.execute(
            _references_query(kinds, self.session.bind.dialect.name),
            {f"{name}_ids": params[f"{name}_ids"] for name in kinds},
        ):
            if name == "category":
                found.categories[obj_id] = (bool(active), parent)
            elif name == "territory":
                found.territories[obj_id] = bool(active)
            else:
                found.agencies[obj_id] = bool(active)
        if self._postgresql():
            _remember_references(self._engine(), found)
        return found

    async def _prepare(
        self, items: list[Any], source_system: str, rules: RuleSet, refs: _References
    ) -> list[_Prepared]:
        """New cases as rows (their references checked), routed and (where a rule names an
        active agency) assigned, not yet inserted. All get the same registration time: they
        arrive in one request."""
        if not items:
            return []
        now = utcnow()
        routed = []
        for i, data in enumerate(items):
            items[i] = None  # the row replaces the model (the caller keeps no other reference)
            row = _new_case(data, now)
            row["source_system"] = source_system
            row["submitted_by"] = self.principal.subject
            sector_id = refs.sector(data.category_id)
            facts = CaseFacts(
                kind=row["kind"],
                category_id=row.get("category_id"),
                sector_id=sector_id,
                territory_id=row.get("territory_id"),
                source=row.get("network") or row.get("channel"),
                text=row["text"],
                missing_person=row["missing_person"],
                important=row["important"],
            )
            routed.append((row, sector_id, rules.evaluate(facts, explain=False)))

        active = refs.agencies
        unknown = {decision.agency_id for _, _, decision in routed} - {None} - active.keys()
        if unknown:  # cannot happen (the references hold every agency a rule may pick)
            table = Agency.__table__
            stmt = select(table.c.id, table.c.is_active).where(table.c.id.in_(unknown))
            active |= {agency_id: bool(on) for agency_id, on in await self.session.execute(stmt)}
        plans: dict[tuple, _Plan] = {}
        prepared = []
        for row, sector_id, d in routed:
            key = (
                d.rule_id,
                d.agency_id,
                d.priority,
                d.deadline_policy_id,
                d.notify_agency_ids,
                d.reason,
                row["kind"],
                row.get("legal_regime"),
                row["priority"],
                sector_id,
            )
            plan = plans.get(key)
            if plan is None:
                plan = plans[key] = await self._plan(d, row, sector_id, active, now)
            row.update(plan.columns)
            prepared.append(_Prepared(row, plan))
        return prepared

    async def _plan(
        self,
        decision: RoutingDecision,
        case: dict[str, Any],
        sector_id: int | None,
        active: dict[int, bool],
        now: datetime,
    ) -> _Plan:
        """Routing's decision applied to a new case: reason, priority, policy, and (when its
        agency is active) the assignment with its deadline; the events that record it."""
        columns: dict[str, Any] = {
            "routing_reason": decision.reason,
            "routing_rule_id": decision.rule_id,
            "priority": decision.priority or case["priority"],
            "deadline_policy_id": decision.deadline_policy_id,
        }
        events = [_event_row(self.principal, "create", to_status=CaseStatus.new.value)]
        grants = list(decision.notify_agency_ids)
        if grants:
            notified = {"agency_ids": grants.copy()}
            events.append(_event_row(None, "notify", data=notified, comment=decision.reason))
        agency_id = decision.agency_id
        if agency_id is not None and not active.get(agency_id):
            columns["routing_reason"] = (
                f"{decision.reason}; agency {agency_id} is inactive, left for triage"
            )
        elif agency_id is not None:
            policy = await select_policy(
                self.session,
                kind=case["kind"],
                legal_regime=case.get("legal_regime"),
                priority=columns["priority"],
                sector_id=sector_id,
                policy_id=columns["deadline_policy_id"],
            )
            due_at = None
            if policy is not None:
                calendar = await production_calendar(self.session, self.settings)
                columns["deadline_policy_id"] = policy.id
                # in UTC, as an assignment by hand (_apply_assignment) and its event
                due_at = due_from(calendar, policy, registered_at=now, now=now).astimezone(UTC)
            columns.update(
                status=CaseStatus.assigned.value,
                agency_id=agency_id,
                assigned_at=now,
                due_at=due_at,
            )
            events.append(
                _event_row(
                    None,
                    "assign",
                    from_status=CaseStatus.new.value,
                    to_status=CaseStatus.assigned.value,
                    from_agency_id=None,
                    to_agency_id=agency_id,
                    data={"due_at": due_at.isoformat() if due_at else None},
                    reason="routing",
                    comment=decision.reason,
                )
            )
            grants.append(agency_id)
        return _Plan(columns, tuple(events), tuple(dict.fromkeys(grants)))

    async def _file_one(
        self, prepared: _Prepared, known: _References | None = None, alone: bool = False
    ) -> Any:
        """The case inserted and numbered, with its events and access rows: its row as stored,
        or None (and nothing written) when its source id is taken. PostgreSQL does it all in
        one statement, and waits for a racing request's transaction before deciding. With
        `known` (remembered references, PostgreSQL), _STALE (and nothing written) when they no
        longer hold. `alone`: the statement is the request's only write, and may run in
        autocommit if the session has begun nothing (write_one)."""
        row = prepared.row
        dialect = self.session.bind.dialect.name
        params = {name: row.get(name) for name in _CASE_NAMES if name not in ("id", "number")}
        params["number_prefix"] = _number_prefix(row["kind"], row["created_at"])
        if dialect == "postgresql":
            params["events"] = [
                dict(zip(_EVENT_FIELDS, event, strict=True)) for event in prepared.plan.events
            ]
            params["grants"] = [{"agency_id": agency_id} for agency_id in prepared.plan.grants]
        if known is not None:
            params |= _guard_values(known)
        statement = _single_intake(dialect, guarded=known is not None)
        if alone:
            stored = await write_one(self.session, statement, params)
        else:
            stored = (await self.session.execute(statement, params)).first()
        if known is not None and not stored.references_held:
            return _STALE
        if stored is None or stored.id is None:
            return None
        row["id"], row["number"] = stored.id, stored.number
        if dialect != "postgresql":
            await self._record_intake([prepared])
        return stored

    async def _insert_many(self, prepared: list[_Prepared]) -> None:
        """Ids drawn for all the cases first, so each row goes in with its number, in bulk.
        Inside a savepoint: on SQLite that holds the write lock the ids depend on."""
        if not prepared:
            return
        if self.session.bind.dialect.name == "postgresql":
            series = func.generate_series(1, len(prepared))
            stmt = select(_CASE_IDS.next_value()).select_from(series)
            ids = list((await self.session.execute(stmt)).scalars())
        else:
            last = await self.session.execute(select(func.coalesce(func.max(_CASES.c.id), 0)))
            start = last.scalar_one() + 1
            ids = list(range(start, start + len(prepared)))
        for p, case_id in zip(prepared, ids, strict=True):
            row = p.row
            row["id"] = case_id
            row["number"] = f"{_number_prefix(row['kind'], row['created_at'])}{case_id:06d}"
        # Streamed: each tuple is made as COPY sends it (a list of them all is half a MB more).
        rows = (tuple(map(p.row.get, _CASE_NAMES)) for p in prepared)
        await insert_rows(self.session, _CASES, _CASE_NAMES, rows, count=len(prepared))

    async def _record_intake(self, prepared: list[_Prepared]) -> None:
        """Events and access rows of freshly inserted cases, in bulk (the outbox trigger on
        case_event sees them like any other insert)."""
        # Streamed to COPY, as the cases were.
        events = (
            (p.row["id"], *event, p.row["created_at"]) for p in prepared for event in p.plan.events
        )
        grants = [
            (p.row["id"], agency_id, p.row["created_at"])
            for p in prepared
            for agency_id in p.plan.grants
        ]
        count = sum(len(p.plan.events) for p in prepared)
        await insert_rows(self.session, _EVENTS, _EVENT_NAMES, events, count=count)
        await insert_rows(self.session, CaseAgency.__table__, _ACCESS_NAMES, grants)

    # --- reads -------------------------------------------------------------------------------

    async def get(self, case_id: int, kind: CaseKind | None = None) -> Case:
        stmt = select(Case).where(Case.id == case_id, access.visible(self.principal))
        if kind is not None:
            stmt = stmt.where(Case.kind == kind)
        case = (await self.session.execute(stmt)).scalars().first()
        if case is None:
            raise NotFound(f"No case with id {case_id}")
        return case

    async def show(self, case_id: int, kind: CaseKind | None = None) -> dict[str, Any]:
        """One case as its own page shows it (CaseRead's fields, reads.answer), with the
        partners' webhook receipts; a person shown personal data is recorded. One statement."""
        rule, params = access.rule_of(self.principal)
        recorded, in_statement = self._records()
        stmt = reads.one_case(self._dialect(), rule, kind is not None, in_statement)
        params["case_id"] = case_id
        if kind is not None:
            params["kind"] = kind.value
        if in_statement:
            params |= reader_values(self.principal)
        rows = await read_rows(self.session, stmt, params)
        if not rows:
            raise NotFound(f"No case with id {case_id}")
        partners = [reads.partner(*row[-3:]) for row in rows if row[-3] is not None]
        data = reads.answer(rows[0], self.principal, self._hidden(), utcnow(), partners)
        if recorded and not in_statement:
            record_reads(self.session, self.principal, [data], "read")
        return data

    async def events(self, case_id: int, limit: int, offset: int) -> list[CaseEvent]:
        await self.get(case_id)
        stmt = (
            select(CaseEvent)
            .where(CaseEvent.case_id == case_id)
            .order_by(CaseEvent.id)
            .limit(limit)
            .offset(offset)
        )
        return list((await self.session.execute(stmt)).scalars().all())

    async def list(
        self, filters: CaseFilters, sort: str, limit: int, cursor: str | None, with_total: bool
    ) -> tuple[list[dict[str, Any]], str | None, int | None]:
        """A page of cases as the list shows them (reads.answer, without partners), the
        cursor of the next page and, if asked, the total. One statement (two with the total),
        built once per shape of request (reads.page); a person shown personal data is
        recorded (in that statement on PostgreSQL)."""
        dialect = self._dialect()
        rule, params = access.rule_of(self.principal)
        values = given(filters)
        if filters.category_id is not None:
            values["category_id"] = filters.category_id
        value = last_id = None
        if cursor is not None:
            value, last_id = decode_cursor(sort, cursor)
            params |= {"cursor_value": value, "cursor_id": last_id}
        recorded, in_statement = self._records()
        shape = reads.PageShape(
            dialect=dialect,
            rule=rule,
            given=frozenset(values),
            overdue=filters.overdue,
            reopened=filters.reopened,
            statuses_open=open_only(filters.status),
            statuses_settled=settled_only(filters.status),
            sort=sort,
            cursor=None if cursor is None else "value" if value is not None else "null",
            recorded=in_statement,
            # a search page's statement holds its size (reads._limit)
            limit=limit if dialect == "postgresql" and "q" in values else None,
        )
        page, count = reads.page(shape, values.get("q"))
        params |= {f"f_{name}": v for name, v in values.items()}
        params |= {"f_now": utcnow(), "page_limit": limit + 1}
        if in_statement:
            params |= reader_values(self.principal) | {"shown_limit": limit}
        rows = await read_rows(self.session, page, params)
        hidden, now = self._hidden(), utcnow()
        items = [reads.answer(row, self.principal, hidden, now) for row in rows[:limit]]
        if recorded and not in_statement:
            record_reads(self.session, self.principal, items, "list")
        next_cursor = encode_cursor(sort, items[-1]) if len(rows) > limit else None
        total = None
        if with_total:
            total = (await read_rows(self.session, count, params))[0][0]
        return items, next_cursor, total

    def read(self, case: Case, via: str = "read") -> CaseRead:
        """The case as this caller may see it (the answer of a change); a person shown personal
        data is recorded."""
        return CaseRead.model_validate(self.answer(case, via))

    def answer(self, case: Case | Row, via: str = "read") -> dict[str, Any]:
        """What `read` validates: CaseRead's fields as a dict (reads.answer), for an answer
        written straight as JSON (reads.case_json); a person shown personal data is
        recorded."""
        row = reads.shown_values(case)
        hidden = self._hidden()
        if not hidden:
            record_reads(self.session, self.principal, [case], via)
        return reads.answer(row, self.principal, hidden, utcnow())

    def _hidden(self) -> bool:
        return not access.sees_personal_data(self.principal)

    def _records(self) -> tuple[bool, bool]:
        """Whether reads are recorded for this caller, and whether within the reading statement
        (PostgreSQL: an INSERT in its WITH clause) rather than at commit."""
        recorded = records_reads(self.principal)
        return recorded, recorded and self._dialect() == "postgresql"

    def _dialect(self) -> str:
        return self.session.bind.dialect.name

    # --- workflow ----------------------------------------------------------------------------

    async def _for_action(self, case_id: int, action: Action, if_match: int | None) -> Case:
        case = await self.get(case_id)
        if if_match is not None and if_match != case.version:
            raise PreconditionFailed(
                f"The case is at version {case.version}, not {if_match}; reload it and retry",
                current_version=case.version,
            )
        needed = TRANSITIONS[action].scope
        if needed == "cases:answer" and case.agency_id != self.principal.agency_id:
            raise Forbidden("The case is not assigned to your agency (any more)")
        return case

    async def act(self, case_id: int, action: Action, body: Any, if_match: int | None) -> Case:
        case = await self._for_action(case_id, action, if_match)
        before = case.status
        target = target_status(action, before)
        handler = getattr(self, f"_do_{action.name}")
        await handler(case, body)
        if action is not Action.assign and action is not Action.reopen:
            case.status = target
        case.updated_at = utcnow()
        self.session.add(case)
        await self.session.flush()
        return case

    async def _grant(self, case: Case, agency_ids) -> None:
        known = set(
            (
                await self.session.execute(
                    select(CaseAgency.agency_id).where(CaseAgency.case_id == case.id)
                )
            ).scalars()
        )
        for agency_id in dict.fromkeys(agency_ids):
            if agency_id not in known:
                self.session.add(CaseAgency.given(case, agency_id))

    async def _policy_for(self, case: Case):
        """The deadline policy of the case: the one routing or a previous assignment chose,
        else the most specific one for its kind, regime, priority and sector."""
        return await select_policy(
            self.session,
            kind=case.kind,
            legal_regime=case.legal_regime,
            priority=case.priority,
            sector_id=await sector_of(self.session, case.category_id),
            policy_id=case.deadline_policy_id,
        )

    async def _assign(
        self,
        case: Case,
        agency_id: int,
        principal: Principal | None,
        *,
        action: str = "assign",
        reason: str | None = None,
        comment: str | None = None,
    ) -> None:
        await self._grant(case, [agency_id])
        step = await self._apply_assignment(case, agency_id, registered_at=case.created_at)
        self.session.add(_event(case, principal, action, reason=reason, comment=comment, **step))

    async def _apply_assignment(
        self, case: Case, agency_id: int, *, registered_at: datetime
    ) -> dict[str, Any]:
        """Give the case to the agency and set its deadline; returns the event's fields."""
        now = utcnow()
        before_status, before_agency = case.status, case.agency_id
        case.status, case.agency_id, case.assigned_at = CaseStatus.assigned, agency_id, now
        policy = await self._policy_for(case)
        if policy is not None:
            calendar = await production_calendar(self.session, self.settings)
            case.deadline_policy_id = policy.id
            # In UTC, as the case's other instants and every read's answer (the calendar
            # counts in the region's zone, and this object answers the action as it is).
            due_at = due_from(calendar, policy, registered_at=registered_at, now=now)
            case.due_at = due_at.astimezone(UTC)
        return {
            "from_status": before_status,
            "to_status": CaseStatus.assigned,
            "from_agency_id": before_agency,
            "to_agency_id": agency_id,
            "data": {"due_at": case.due_at.isoformat() if case.due_at else None},
        }

    async def _active_agency(self, agency_id: int) -> int:
        agency = await resolve(self.session, Agency, agency_id, "agency_id")
        return agency.id

    async def _do_assign(self, case: Case, body: AssignBody) -> None:
        await self._assign(
            case, await self._active_agency(body.agency_id), self.principal, comment=body.comment
        )

    def _record(self, case: Case, action: Action, **kw: Any) -> None:
        self.session.add(
            _event(
                case,
                self.principal,
                action.value,
                from_status=case.status,
                to_status=TRANSITIONS[action].target,
                from_agency_id=case.agency_id,
                to_agency_id=case.agency_id,
                **kw,
            )
        )

    async def _first_response(self, case: Case, now: datetime | None = None) -> None:
        if case.first_response_at is None:
            case.first_response_at = now or utcnow()
            case.first_response_seconds, case.first_response_working_seconds = await elapsed(
                self.session, self.settings, case.created_at, case.first_response_at
            )

    async def _do_accept(self, case: Case, body) -> None:
        self._record(case, Action.accept, comment=body.comment if body else None)

    async def _do_interim_answer(self, case: Case, body: InterimAnswerBody) -> None:
        await self._first_response(case)
        case.interim_answer = body.text
        case.interim_planned_date = body.planned_date.isoformat()
        policy = await self._policy_for(case)
        before_due = case.due_at
        if policy is not None:
            calendar = await production_calendar(self.session, self.settings)
            new_due = due_after_interim(calendar, policy, now=utcnow())
            if new_due is not None:
                case.due_at = new_due.astimezone(UTC)  # as the assignment's (_apply_assignment)
        self._record(
            case,
            Action.interim_answer,
            comment=body.text,
            data={"planned_date": body.planned_date.isoformat()},
            changes=_changes({"due_at": (before_due, case.due_at)}),
        )

    async def _do_close(self, case: Case, body: CloseBody) -> None:
        now = utcnow()
        await self._first_response(case, now)
        case.final_answer = body.answer
        case.resolution = body.resolution
        case.responsible_official = body.responsible_official
        case.closed_at = now
        case.close_seconds, case.close_working_seconds = await elapsed(
            self.session, self.settings, case.created_at, now
        )
        self._record(
            case,
            Action.close,
            reason=body.resolution,
            comment=body.answer,
            data={"responsible_official": body.responsible_official},
        )

    async def _do_return_(self, case: Case, body: ReturnBody) -> None:
        await self._first_response(case)
        self._record(case, Action.return_, reason=body.reason, comment=body.comment)

    async def _do_reject(self, case: Case, body: RejectBody) -> None:
        if body.duplicate_of is not None:
            if body.duplicate_of == case.id:
                raise InvalidReference(
                    "duplicate_of", "duplicate_of: a case cannot duplicate itself"
                )
            original = await self.session.execute(
                select(Case.id).where(Case.id == body.duplicate_of, access.visible(self.principal))
            )
            if original.first() is None:
                raise InvalidReference("duplicate_of", f"duplicate_of: no case {body.duplicate_of}")
            case.duplicate_of_id = body.duplicate_of
        self._record(
            case,
            Action.reject,
            reason=body.reason,
            comment=body.comment,
            data={"duplicate_of": body.duplicate_of} if body.duplicate_of else None,
        )

    async def _do_reopen(self, case: Case, body: ReopenBody) -> None:
        agency_id = body.agency_id or case.agency_id
        if agency_id is None:
            raise InvalidReference(
                "agency_id", "agency_id: the case was never assigned; name the agency"
            )
        agency_id = await self._active_agency(agency_id)
        case.reopen_count += 1
        case.closed_at = case.close_seconds = case.close_working_seconds = None
        await self._assign(
            case,
            agency_id,
            self.principal,
            action="reopen",
            reason=body.reason,
            comment=body.comment,
        )

    # --- operator edits ----------------------------------------------------------------------

    async def edit(self, case_id: int, data: CaseEdit, if_match: int | None) -> Case:
        case = await self._for_action(case_id, Action.assign, if_match)
        if case.status not in OPEN_STATUSES:
            raise Conflict(f"Only open cases can be edited; this one is {case.status}")
        changes = data.model_dump(exclude_unset=True, exclude={"comment"})
        if "category_id" in changes:
            await _category_and_sector(self.session, changes["category_id"])
        if "territory_id" in changes:
            await resolve(self.session, Territory, changes["territory_id"], "territory_id")
        diff = {k: (getattr(case, k), v) for k, v in changes.items() if getattr(case, k) != v}
        if not diff:
            return case
        for key, (_, new) in diff.items():
            setattr(case, key, new)
        case.updated_at = utcnow()
        self.session.add(
            _event(
                case,
                self.principal,
                "edit",
                from_status=case.status,
                to_status=case.status,
                comment=data.comment,
                changes=_changes(diff),
            )
        )
        await self.session.flush()
        return case


def _changes(diff: dict[str, tuple[Any, Any]]) -> dict[str, Any] | None:
    def plain(v: Any) -> Any:
        return v.isoformat() if isinstance(v, datetime) else v

    out = {k: {"old": plain(a), "new": plain(b)} for k, (a, b) in diff.items() if a != b}
    return out or None
