from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from app.auth.deps import requires
from app.cases.models import CaseKind
from app.core.config import Settings, app_settings
from app.core.db import SessionDep
from app.core.references import get_or_404
from app.core.schemas import Page, PageParams, page_params
from app.deadlines import service
from app.deadlines.models import DeadlinePolicy
from app.deadlines.schemas import (
    CalendarDays,
    CalendarExceptionPut,
    CalendarExceptionRead,
    DeadlinePolicyCreate,
    DeadlinePolicyRead,
    DeadlinePolicyUpdate,
    DueRequest,
    DueResponse,
)

router = APIRouter(
    prefix="/api/v1", tags=["deadlines"], responses={404: {"description": "No such record"}}
)

RoutingReader = requires("routing:read")
RoutingWriter = requires("routing:write")
Reader = requires("reference:read")
PageDep = Annotated[PageParams, Depends(page_params)]
SettingsDep = Annotated[Settings, Depends(app_settings)]
CONFLICT = {409: {"description": "Name already used, or still referred to"}}


# --- deadline policies -----------------------------------------------------------------------


@router.get("/deadline-policies", response_model=Page[DeadlinePolicyRead])
async def list_policies(
    _: RoutingReader,
    session: SessionDep,
    page: PageDep,
    kind: CaseKind | None = None,
    is_active: bool | None = None,
):
    rows, total = await service.list_policies(session, page, kind=kind, is_active=is_active)
    return Page(items=rows, total=total, limit=page.limit, offset=page.offset)


@router.post(
    "/deadline-policies", response_model=DeadlinePolicyRead, status_code=201, responses=CONFLICT
)
async def create_policy(_: RoutingWriter, session: SessionDep, data: DeadlinePolicyCreate):
    return await service.create_policy(session, data)


@router.get("/deadline-policies/{policy_id}", response_model=DeadlinePolicyRead)
async def get_policy(_: RoutingReader, session: SessionDep, policy_id: int):
    return await get_or_404(session, DeadlinePolicy, policy_id)


@router.patch(
    "/deadline-policies/{policy_id}", response_model=DeadlinePolicyRead, responses=CONFLICT
)
async def update_policy(
    _: RoutingWriter, session: SessionDep, policy_id: int, data: DeadlinePolicyUpdate
):
    return await service.update_policy(session, policy_id, data)


@router.delete("/deadline-policies/{policy_id}", status_code=204, responses=CONFLICT)
async def delete_policy(_: RoutingWriter, session: SessionDep, policy_id: int):
    await service.delete_policy(session, policy_id)
    return Response(status_code=204)


# --- production calendar ---------------------------------------------------------------------

FromDay = Annotated[date, Query(alias="from", description="First day, YYYY-MM-DD")]
ToDay = Annotated[date, Query(alias="to", description="Last day (inclusive), YYYY-MM-DD")]


@router.get("/calendar/exceptions", response_model=Page[CalendarExceptionRead])
async def list_exceptions(
    _: Reader,
    session: SessionDep,
    page: PageDep,
    from_: Annotated[date | None, Query(alias="from")] = None,
    to: Annotated[date | None, Query(alias="to")] = None,
):
    rows, total = await service.list_exceptions(session, page, start=from_, end=to)
    return Page(items=rows, total=total, limit=page.limit, offset=page.offset)


@router.put("/calendar/exceptions/{day}", response_model=CalendarExceptionRead)
async def put_exception(
    _: RoutingWriter, session: SessionDep, day: date, data: CalendarExceptionPut
):
    """Makes `day` a day off (holiday) or a working day (workday), whatever the law says."""
    return await service.put_exception(session, day, data)


@router.delete("/calendar/exceptions/{day}", status_code=204)
async def delete_exception(_: RoutingWriter, session: SessionDep, day: date):
    await service.delete_exception(session, day)
    return Response(status_code=204)


@router.get("/calendar/days", response_model=CalendarDays)
async def calendar_days(
    _: Reader, session: SessionDep, settings: SettingsDep, from_: FromDay, to: ToDay
):
    """Each day in [from, to] (at most 366 days): working or not, and why."""
    return await service.calendar_days(session, settings, from_, to)


@router.post("/calendar/due", response_model=DueResponse)
async def calculate_due(
    _: RoutingReader, session: SessionDep, settings: SettingsDep, data: DueRequest
):
    """When a term of `amount` `unit` starting at `start` ends, in the region's time zone."""
    due_at = await service.calculate_due(session, settings, data.start, data.amount, data.unit)
    return DueResponse(due_at=due_at)
