"""The case list as a download: the list's filters, sort and visibility, streamed from the
database in chunks through a session of its own (the request's is closed by then)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, select
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import aliased

from app.auth.deps import Principal
from app.cases import access
from app.cases.models import OPEN_STATUSES, Case
from app.cases.queries import CaseFilters, apply_filters, ordering
from app.cases.schemas import PERSONAL_FIELDS
from app.reference.models import Agency, Category, Territory
from app.stats.export import Column, Kind

CHUNK_ROWS = 1000

_category = aliased(Category, name="export_category")
_territory = aliased(Territory, name="export_territory")
_agency = aliased(Agency, name="export_agency")


def _columns(now: datetime) -> list[tuple[str, Any, Kind]]:
    overdue = case((and_(Case.status.in_(OPEN_STATUSES), Case.due_at < now), True), else_=False)
    return [
        ("id", Case.id, "int"),
        ("number", Case.number, "text"),
        ("kind", Case.kind, "text"),
        ("status", Case.status, "text"),
        ("priority", Case.priority, "text"),
        ("category_id", Case.category_id, "int"),
        ("category", _category.name_ru, "text"),
        ("territory_id", Case.territory_id, "int"),
        ("territory", _territory.name, "text"),
        ("agency_id", Case.agency_id, "int"),
        ("agency", _agency.name, "text"),
        ("source_system", Case.source_system, "text"),
        ("external_id", Case.external_id, "text"),
        ("network", Case.network, "text"),
        ("channel", Case.channel, "text"),
        ("legal_regime", Case.legal_regime, "text"),
        ("post_url", Case.post_url, "text"),
        ("author_handle", Case.author_handle, "text"),
        ("published_at", Case.published_at, "datetime"),
        ("reach", Case.reach, "int"),
        ("missing_person", Case.missing_person, "bool"),
        ("important", Case.important, "bool"),
        ("applicant_name", Case.applicant_name, "text"),
        ("applicant_email", Case.applicant_email, "text"),
        ("applicant_phone", Case.applicant_phone, "text"),
        ("attachment_urls", Case.attachment_urls, "list"),
        ("text", Case.text, "text"),
        ("address", Case.address, "text"),
        ("latitude", Case.latitude, "float"),
        ("longitude", Case.longitude, "float"),
        ("created_at", Case.created_at, "datetime"),
        ("due_at", Case.due_at, "datetime"),
        ("overdue", overdue, "bool"),
        ("assigned_at", Case.assigned_at, "datetime"),
        ("first_response_at", Case.first_response_at, "datetime"),
        ("first_response_hours", Case.first_response_seconds, "hours"),
        ("first_response_working_hours", Case.first_response_working_seconds, "hours"),
        ("interim_answer", Case.interim_answer, "text"),
        ("interim_planned_date", Case.interim_planned_date, "date"),
        ("closed_at", Case.closed_at, "datetime"),
        ("close_hours", Case.close_seconds, "hours"),
        ("close_working_hours", Case.close_working_seconds, "hours"),
        ("final_answer", Case.final_answer, "text"),
        ("resolution", Case.resolution, "text"),
        ("responsible_official", Case.responsible_official, "text"),
        ("reopen_count", Case.reopen_count, "int"),
        ("duplicate_of_id", Case.duplicate_of_id, "int"),
        ("updated_at", Case.updated_at, "datetime"),
    ]


def export_statement(
    principal: Principal,
    filters: CaseFilters,
    category_ids: list[int] | None,
    sort: str,
    *,
    now: datetime,
    dialect: str,
) -> tuple[list[Column], Select]:
    """The columns the caller may see and the one statement that reads them."""
    columns = _columns(now)
    if not access.sees_personal_data(principal):
        columns = [c for c in columns if c[0] not in PERSONAL_FIELDS]
    stmt = (
        select(*(expr.label(name) for name, expr, _ in columns))
        .select_from(Case)
        .outerjoin(_category, _category.id == Case.category_id)
        .outerjoin(_territory, _territory.id == Case.territory_id)
        .outerjoin(_agency, _agency.id == Case.agency_id)
        .where(access.visible(principal))
    )
    stmt = apply_filters(stmt, filters, category_ids, dialect).order_by(*ordering(sort))
    return [Column(name, kind) for name, _, kind in columns], stmt


async def stream_rows(
    sessionmaker: async_sessionmaker, stmt: Select, chunk: int = CHUNK_ROWS
) -> AsyncIterator[Sequence[Sequence[Any]]]:
    """The statement's rows, `chunk` at a time, from a server-side cursor."""
    async with sessionmaker() as session:
        result = await session.stream(stmt.execution_options(yield_per=chunk))
        async for rows in result.partitions():
            yield rows
