"""The personal-data access record, for the data protection officer (admins)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.auth.deps import requires
from app.core.db import SessionDep
from app.core.schemas import MAX_ID, PageParams, page_params
from app.privacy.schemas import PersonalDataAccessPage
from app.privacy.service import ReadFilters, list_reads

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
Auditor = requires("audit:read")


@router.get(
    "/personal-data",
    response_model=PersonalDataAccessPage,
    summary="Who was shown which case's personal data, and when (newest first)",
)
async def personal_data_reads(
    _: Auditor,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    case_id: Annotated[
        int | None,
        Query(ge=1, le=MAX_ID, description="The reads that showed this case (among others)"),
    ] = None,
    actor: Annotated[str | None, Query(max_length=64, description="e.g. user:12")] = None,
    at_from: datetime | None = None,
    at_to: datetime | None = None,
    with_total: Annotated[
        bool,
        Query(description="Also count the records the filters select (slow on a large record)"),
    ] = False,
):
    filters = ReadFilters(case_id=case_id, actor=actor, at_from=at_from, at_to=at_to)
    return await list_reads(session, filters, page, with_total=with_total)
