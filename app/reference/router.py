from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from app.auth.deps import requires
from app.core.db import SessionDep
from app.core.references import get_or_404
from app.core.schemas import IdFilter, Page, PageParams, page_params
from app.reference import service
from app.reference.models import Agency, AgencyKind, Category, Territory, TerritoryKind
from app.reference.schemas import (
    AgencyCreate,
    AgencyRead,
    AgencyUpdate,
    CategoryCreate,
    CategoryRead,
    CategoryUpdate,
    TerritoryCreate,
    TerritoryRead,
    TerritoryUpdate,
)

router = APIRouter(
    prefix="/api/v1", tags=["reference data"], responses={404: {"description": "No such record"}}
)

Reader = requires("reference:read")
Writer = requires("reference:write")
PageDep = Annotated[PageParams, Depends(page_params)]
Search = Annotated[str | None, Query(max_length=100, description="Substring of code or name")]
CONFLICT = {409: {"description": "Code already used, or still referenced"}}


@router.get("/categories", response_model=Page[CategoryRead])
async def list_categories(
    _: Reader,
    session: SessionDep,
    page: PageDep,
    parent_id: IdFilter = None,
    sectors_only: bool = False,
    is_active: bool | None = None,
    q: Search = None,
):
    rows, total = await service.list_categories(
        session, page, parent_id=parent_id, sectors_only=sectors_only, is_active=is_active, q=q
    )
    return Page(items=rows, total=total, limit=page.limit, offset=page.offset)


@router.post("/categories", response_model=CategoryRead, status_code=201, responses=CONFLICT)
async def create_category(_: Writer, session: SessionDep, data: CategoryCreate):
    return await service.create_category(session, data)


@router.get("/categories/{category_id}", response_model=CategoryRead)
async def get_category(_: Reader, session: SessionDep, category_id: int):
    return await get_or_404(session, Category, category_id)


@router.patch("/categories/{category_id}", response_model=CategoryRead, responses=CONFLICT)
async def update_category(_: Writer, session: SessionDep, category_id: int, data: CategoryUpdate):
    return await service.update_category(session, category_id, data)


@router.delete("/categories/{category_id}", status_code=204, responses=CONFLICT)
async def delete_category(_: Writer, session: SessionDep, category_id: int):
    await service.delete_category(session, category_id)
    return Response(status_code=204)


@router.get("/territories", response_model=Page[TerritoryRead])
async def list_territories(
    _: Reader,
    session: SessionDep,
    page: PageDep,
    kind: TerritoryKind | None = None,
    parent_id: IdFilter = None,
    is_active: bool | None = None,
    q: Search = None,
):
    rows, total = await service.list_territories(
        session, page, kind=kind, parent_id=parent_id, is_active=is_active, q=q
    )
    return Page(items=rows, total=total, limit=page.limit, offset=page.offset)


@router.post("/territories", response_model=TerritoryRead, status_code=201, responses=CONFLICT)
async def create_territory(_: Writer, session: SessionDep, data: TerritoryCreate):
    return await service.create_territory(session, data)


@router.get("/territories/{territory_id}", response_model=TerritoryRead)
async def get_territory(_: Reader, session: SessionDep, territory_id: int):
    return await get_or_404(session, Territory, territory_id)


@router.patch("/territories/{territory_id}", response_model=TerritoryRead, responses=CONFLICT)
async def update_territory(
    _: Writer, session: SessionDep, territory_id: int, data: TerritoryUpdate
):
    return await service.update_territory(session, territory_id, data)


@router.delete("/territories/{territory_id}", status_code=204, responses=CONFLICT)
async def delete_territory(_: Writer, session: SessionDep, territory_id: int):
    await service.delete_territory(session, territory_id)
    return Response(status_code=204)


@router.get("/agencies", response_model=Page[AgencyRead])
async def list_agencies(
    _: Reader,
    session: SessionDep,
    page: PageDep,
    kind: AgencyKind | None = None,
    territory_id: IdFilter = None,
    sector_id: IdFilter = None,
    is_active: bool | None = None,
    q: Search = None,
):
    rows, total = await service.list_agencies(
        session,
        page,
        kind=kind,
        territory_id=territory_id,
        sector_id=sector_id,
        is_active=is_active,
        q=q,
    )
    items = await service.agency_reads(session, rows)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post("/agencies", response_model=AgencyRead, status_code=201, responses=CONFLICT)
async def create_agency(_: Writer, session: SessionDep, data: AgencyCreate):
    agency = await service.create_agency(session, data)
    return (await service.agency_reads(session, [agency]))[0]


@router.get("/agencies/{agency_id}", response_model=AgencyRead)
async def get_agency(_: Reader, session: SessionDep, agency_id: int):
    agency = await get_or_404(session, Agency, agency_id)
    return (await service.agency_reads(session, [agency]))[0]


@router.patch("/agencies/{agency_id}", response_model=AgencyRead, responses=CONFLICT)
async def update_agency(_: Writer, session: SessionDep, agency_id: int, data: AgencyUpdate):
    agency = await service.update_agency(session, agency_id, data)
    return (await service.agency_reads(session, [agency]))[0]


@router.delete("/agencies/{agency_id}", status_code=204, responses=CONFLICT)
async def delete_agency(_: Writer, session: SessionDep, agency_id: int):
    await service.delete_agency(session, agency_id)
    return Response(status_code=204)
