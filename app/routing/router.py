from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from app.auth.deps import requires
from app.core.db import SessionDep
from app.core.references import get_or_404
from app.core.schemas import Page, PageParams, page_params
from app.routing import service
from app.routing.models import RoutingRule
from app.routing.schemas import (
    DryRunCase,
    DryRunResult,
    RoutingRuleCreate,
    RoutingRuleRead,
    RoutingRuleUpdate,
)

router = APIRouter(
    prefix="/api/v1", tags=["routing"], responses={404: {"description": "No such record"}}
)

Reader = requires("routing:read")
Writer = requires("routing:write")
PageDep = Annotated[PageParams, Depends(page_params)]
INVALID = {422: {"description": "Invalid body, or an unknown or inactive referenced object"}}
URL = "/routing-rules"
MAX_ID = 2**31 - 1
RuleId = Annotated[int, Path(ge=1, le=MAX_ID)]
AgencyFilter = Annotated[int | None, Query(ge=1, le=MAX_ID, description="Rules assigning to it")]


@router.get(URL, response_model=Page[RoutingRuleRead])
async def list_rules(
    _: Reader,
    session: SessionDep,
    page: PageDep,
    enabled: bool | None = None,
    agency_id: AgencyFilter = None,
):
    rows, total = await service.list_rules(session, page, enabled=enabled, agency_id=agency_id)
    return Page(items=rows, total=total, limit=page.limit, offset=page.offset)


@router.post(URL, response_model=RoutingRuleRead, status_code=201, responses=INVALID)
async def create_rule(_: Writer, session: SessionDep, data: RoutingRuleCreate):
    return await service.create_rule(session, data)


@router.post(f"{URL}/dry-run", response_model=DryRunResult, responses=INVALID)
async def dry_run(_: Reader, session: SessionDep, data: DryRunCase):
    """What routing would decide for the case described, with every rule's reasons."""
    return await service.dry_run(session, data)


@router.get(f"{URL}/{{rule_id}}", response_model=RoutingRuleRead)
async def get_rule(_: Reader, session: SessionDep, rule_id: RuleId):
    return await get_or_404(session, RoutingRule, rule_id)


@router.patch(f"{URL}/{{rule_id}}", response_model=RoutingRuleRead, responses=INVALID)
async def update_rule(_: Writer, session: SessionDep, rule_id: RuleId, data: RoutingRuleUpdate):
    return await service.update_rule(session, rule_id, data)


@router.delete(
    f"{URL}/{{rule_id}}",
    status_code=204,
    responses={409: {"description": "Cases record this rule; disable it instead"}},
)
async def delete_rule(_: Writer, session: SessionDep, rule_id: RuleId):
    await service.delete_rule(session, rule_id)
    return Response(status_code=204)
