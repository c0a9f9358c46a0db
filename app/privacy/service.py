"""Personal data under 152-ФЗ: who read it (a record per read, naming its cases) and how long
it is kept."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Insert,
    Select,
    and_,
    bindparam,
    case,
    cast,
    event,
    exists,
    false,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by, array
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth.deps import Principal
from app.cases import access
from app.cases.models import Case, CaseEvent, CaseStatus
from app.cases.schemas import PERSONAL_FIELDS
from app.core.pagination import count_of
from app.core.schemas import PageParams
from app.core.types import utcnow
from app.privacy.models import CaseIds, PersonalDataAccess
from app.privacy.schemas import PersonalDataAccessPage, PersonalDataAccessRead

ERASE_CHUNK = 1000
RETENTION_ACTOR = ("system:retention", "Срок хранения персональных данных", "system")


def _is_person(principal: Principal) -> bool:
    return principal.kind == "user" and access.sees_personal_data(principal)


def records_reads(principal: Principal) -> bool:
    """Whether showing a case's personal data to this caller is recorded: people who see it."""
    return _is_person(principal)


def has_personal_data(case: Case | Mapping[str, Any]) -> bool:
    """Whether the case (an object, or a mapping of its fields) holds personal data to show."""
    if isinstance(case, Mapping):
        return any(case[field] for field in PERSONAL_FIELDS)
    return any(getattr(case, field) for field in PERSONAL_FIELDS)


def record_reads(
    session: AsyncSession, principal: Principal, cases: Iterable[Case | Mapping], via: str
) -> None:
    """Note that a person was shown these cases' personal data (objects, or mappings of their
    fields): one record naming those of them that hold any. Written when the request's
    transaction commits (one statement for all of a request's records), so a read that fails
    to commit is not recorded and a recorded one did happen."""
    if not _is_person(principal):
        return
    case_ids = sorted(
        case["id"] if isinstance(case, Mapping) else case.id
        for case in cases
        if has_personal_data(case)
    )
    if not case_ids:
        return
    session.sync_session.info.setdefault(_PENDING, []).append(
        {
            "case_ids": case_ids,
            "actor": principal.subject,
            "actor_name": principal.name,
            "actor_role": principal.role.value,
            "via": via,
            "at": utcnow(),
        }
    )


# --- the record's list --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadFilters:
    case_id: int | None = None
    actor: str | None = None
    at_from: datetime | None = None
    at_to: datetime | None = None


def reads_selected(filters: ReadFilters, dialect: str) -> Select:
    """The records the filters select, newest first: a walk back along an index whatever the
    record's size (an actor's, or the whole record's in time order); a case's records are
    found by the GIN index of their cases on PostgreSQL, by reading the lists on SQLite."""
    table = PersonalDataAccess
    stmt = select(table)
    if filters.case_id is not None:
        stmt = stmt.where(_names_case(table.case_ids, filters.case_id, dialect))
    if filters.actor is not None:
        stmt = stmt.where(table.actor == filters.actor)
    if filters.at_from is not None:
        stmt = stmt.where(table.at >= filters.at_from)
    if filters.at_to is not None:
        stmt = stmt.where(table.at < filters.at_to)
    return stmt.order_by(table.at.desc(), table.id.desc())


def _names_case(case_ids, case_id: int, dialect: str) -> ColumnElement[bool]:
    if dialect == "postgresql":  # `@>`, which the GIN index answers
        return case_ids.contains(cast(array([case_id]), CaseIds))
    listed = func.json_each(case_ids).table_valued("value")
    return exists(select(literal(1)).select_from(listed).where(listed.c.value == case_id))


async def list_reads(
    session: AsyncSession, filters: ReadFilters, page: PageParams, *, with_total: bool
) -> PersonalDataAccessPage:
    """A page of the record, newest first, one row past the page to tell whether there is a
    next one. Counted only when asked."""
    stmt = reads_selected(filters, session.bind.dialect.name)
    total = None
    if with_total:
        total = (await session.exec(count_of(stmt))).scalar_one()
    found = await session.exec(stmt.limit(page.limit + 1).offset(page.offset))
    rows = list(found.scalars().all())
    more = len(rows) > page.limit
    return PersonalDataAccessPage(
        items=[PersonalDataAccessRead.model_validate(r) for r in rows[: page.limit]],
        total=total,
        limit=page.limit,
        offset=page.offset,
        next_offset=page.offset + page.limit if more else None,
    )


# --- the record written by the read itself (PostgreSQL) ------------------------------------------
#
# On PostgreSQL a reading request runs in autocommit (app/core/db.py): the read and its record
# can be one statement, the record an INSERT in a WITH clause of the SELECT that shows the cases.
# The rows read and their record are committed together, or neither is: no second round trip,
# no window between them (in a transactional session they commit with it). As before, an
# answer lost after that (the client gone) still counts as shown.


def shows_personal_data(columns) -> ColumnElement[bool]:
    """has_personal_data() in SQL (PostgreSQL), over the columns of a selectable: a non-empty
    applicant or author field (NULL <> '' is not true), or a non-empty list of attachments."""
    urls = columns.attachment_urls
    attachments = case(
        (func.json_typeof(urls) == "array", func.json_array_length(urls) > 0), else_=false()
    )
    return or_(*(columns[field] != "" for field in _PERSONAL_TEXT), attachments)


def reads_recorded(shown, via: str) -> Insert:
    """An INSERT of the record of the cases `shown` selects (a CTE or subquery with the case's
    id and personal columns), naming those that hold personal data, for a WITH clause; none
    when none do. The reader and the time are bind parameters: pass
    reader_values(principal)."""
    table = PersonalDataAccess.__table__
    record = (
        select(
            bindparam("reader", type_=table.c.actor.type),
            bindparam("reader_name", type_=table.c.actor_name.type),
            bindparam("reader_role", type_=table.c.actor_role.type),
            literal(via, table.c.via.type),
            bindparam("read_at", type_=table.c.at.type),
            func.array_agg(aggregate_order_by(shown.c.id, shown.c.id)),
        )
        .where(shows_personal_data(shown.c))
        .having(func.count() > 0)
    )
    return insert(table).from_select(
        ["actor", "actor_name", "actor_role", "via", "at", "case_ids"], record
    )


def reader_values(principal: Principal) -> dict[str, Any]:
    return {
        "reader": principal.subject,
        "reader_name": principal.name,
        "reader_role": principal.role.value,
        "read_at": utcnow(),
    }


_PENDING = "personal_data_reads"


@event.listens_for(Session, "before_commit")
def _write_reads(session: Session) -> None:
    rows = session.info.pop(_PENDING, None)
    if rows:
        session.execute(insert(PersonalDataAccess.__table__), rows)


@event.listens_for(Session, "after_rollback")
def _forget_reads(session: Session) -> None:
    session.info.pop(_PENDING, None)


# Attachments come only with appeals, which always name their applicant; and a JSON column
# stores Python's None as JSON null, so the text columns are what tell.
_PERSONAL_TEXT = ("applicant_name", "applicant_email", "applicant_phone", "author_handle")
SHOWS_PERSONAL_DATA_COLUMNS = (*_PERSONAL_TEXT, "attachment_urls")
"""The columns shows_personal_data() reads (with the case's id, all reads_recorded() needs)."""


def _with_personal_data():
    return or_(*(getattr(Case, field).is_not(None) for field in _PERSONAL_TEXT))


async def record_export(session: AsyncSession, principal: Principal, cases: Select) -> None:
    """One record for an export of any size, naming every exported case with personal data,
    made in one statement. `cases` selects the exported cases' ids (Case.id as its only
    column)."""
    if not _is_person(principal):
        return
    ids = cases.where(_with_personal_data()).subquery()
    if session.bind.dialect.name == "postgresql":
        listed = func.array_agg(aggregate_order_by(ids.c.id, ids.c.id))
    else:
        ordered = select(ids.c.id).order_by(ids.c.id).subquery()
        ids, listed = ordered, func.json_group_array(ordered.c.id)
    table = PersonalDataAccess.__table__
    record = select(
        literal(principal.subject),
        literal(principal.name),
        literal(principal.role.value),
        literal("export"),
        literal(utcnow(), table.c.at.type),
        listed,
    ).having(func.count() > 0)
    await session.execute(
        insert(table).from_select(
            ["actor", "actor_name", "actor_role", "via", "at", "case_ids"],
            record.select_from(ids),
        )
    )


@dataclass
class Erasure:
    cutoff: datetime
    cases: int


def _erasable(cutoff: datetime):
    finished = Case.status.in_((CaseStatus.closed, CaseStatus.rejected))
    since = func.coalesce(Case.closed_at, Case.updated_at)
    return and_(
        finished, since < cutoff, Case.personal_data_erased_at.is_(None), _with_personal_data()
    )


async def erase_expired(
    session: AsyncSession, retention_days: int, *, now: datetime | None = None, dry_run: bool
) -> Erasure:
    """Remove the personal data of cases closed or rejected more than `retention_days` ago.
    The case, its history and its place in the statistics stay; each erasure is an event."""
    now = now or utcnow()
    cutoff = now - timedelta(days=retention_days)
    if dry_run:
        count = await session.execute(select(func.count()).where(_erasable(cutoff)))
        return Erasure(cutoff, count.scalar_one())
    erased = 0
    actor, name, role = RETENTION_ACTOR
    while True:
        ids = list(
            (
                await session.execute(
                    select(Case.id).where(_erasable(cutoff)).order_by(Case.id).limit(ERASE_CHUNK)
                )
            ).scalars()
        )
        if not ids:
            return Erasure(cutoff, erased)
        blank = dict.fromkeys(PERSONAL_FIELDS, null())
        await session.execute(
            update(Case)
            .where(Case.id.in_(ids))
            .values(**blank, personal_data_erased_at=now, version=Case.version + 1)
            .execution_options(synchronize_session=False)
        )
        session.add_all(
            CaseEvent(
                case_id=case_id,
                action="erase_personal_data",
                actor=actor,
                actor_name=name,
                actor_role=role,
                reason="retention",
                data={"retention_days": retention_days},
                created_at=now,
            )
            for case_id in ids
        )
        await session.flush()
        erased += len(ids)
