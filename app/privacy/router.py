"""The personal-data access record, for the data protection officer (admins)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from app.auth.deps import requires
from app.core.db import SessionDep
from app.core.pagination import paged
from app.core.schemas import IdFilter, Page, PageParams, page_params
from app.privacy.models import PersonalDataAccess
from app.privacy.schemas import PersonalDataAccessRead

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
Auditor = requires("audit:read")


@router.get(
    "/personal-data",
    response_model=Page[PersonalDataAccessRead],
    summary="Who was shown which case's personal data, and when (newest first)",
)
async def personal_data_reads(
    _: Auditor,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    case_id: IdFilter = None,
    actor: Annotated[str | None, Query(max_length=64, description="e.g. user:12")] = None,
    at_from: datetime | None = None,
    at_to: datetime | None = None,
):
    stmt = select(PersonalDataAccess)
    if case_id is not None:
        stmt = stmt.where(PersonalDataAccess.case_id == case_id)
    if actor is not None:
        stmt = stmt.where(PersonalDataAccess.actor == actor)
    if at_from is not None:
        stmt = stmt.where(PersonalDataAccess.at >= at_from)
    if at_to is not None:
        stmt = stmt.where(PersonalDataAccess.at < at_to)
    stmt = stmt.order_by(PersonalDataAccess.at.desc(), PersonalDataAccess.id.desc())
    rows, total = await paged(session, stmt, page)
    return Page(items=rows, total=total, limit=page.limit, offset=page.offset)
