from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from app.auth.deps import requires
from app.core.config import Settings, app_settings
from app.core.db import SessionDep
from app.core.schemas import MAX_ID, Page, PageParams, page_params
from app.webhooks import metrics as _metrics  # noqa: F401 - registers the /metrics collector
from app.webhooks import service
from app.webhooks.models import DeliveryStatus
from app.webhooks.schemas import (
    AllowlistEntryCreate,
    AllowlistEntryRead,
    DeliveryDetail,
    DeliveryPage,
    DeliveryRead,
    SubscriptionCreate,
    SubscriptionRead,
    SubscriptionUpdate,
    SubscriptionWithSecret,
)

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])

Manager = requires("webhooks:manage")
Admin = requires("webhooks:admin")
SettingsDep = Annotated[Settings, Depends(app_settings)]
PageDep = Annotated[PageParams, Depends(page_params)]
WebhookId = Annotated[int, Path(ge=1, le=MAX_ID)]
DeliveryId = Annotated[int, Path(ge=1)]
NOT_FOUND = {404: {"description": "No such subscription (or delivery) within your reach"}}
REFUSED = {
    422: {
        "description": "Invalid body; or the URL is refused (internal address not on the "
        "allowlist, plain http in production, does not resolve)"
    }
}


def _with_secret(sub, secret: str) -> SubscriptionWithSecret:
    return SubscriptionWithSecret(subscription=SubscriptionRead.model_validate(sub), secret=secret)


# --- the allowlist (declared before /{webhook_id}) ------------------------------------------------


@router.get("/allowlist", response_model=Page[AllowlistEntryRead])
async def list_allowlist(_: Admin, session: SessionDep, page: PageDep):
    """Internal hosts and networks webhook URLs may reach (checked after DNS resolution)."""
    rows, total = await service.list_allowlist(session, page)
    return Page(items=rows, total=total, limit=page.limit, offset=page.offset)


@router.post(
    "/allowlist",
    response_model=AllowlistEntryRead,
    status_code=201,
    responses={409: {"description": "Already on the allowlist"}},
)
async def add_allowlist_entry(principal: Admin, session: SessionDep, data: AllowlistEntryCreate):
    """Allow a host name, `*.domain`, an IP address or a network, e.g. a ministry system on
    the regional network. Allowlisted hosts may also use plain http in production."""
    return await service.add_allowlist_entry(session, principal, data)


@router.delete("/allowlist/{entry_id}", status_code=204, responses=NOT_FOUND)
async def delete_allowlist_entry(
    _: Admin, session: SessionDep, entry_id: Annotated[int, Path(ge=1)]
):
    await service.delete_allowlist_entry(session, entry_id)
    return Response(status_code=204)


# --- subscriptions ------------------------------------------------------------------------------


@router.get("", response_model=Page[SubscriptionRead])
async def list_subscriptions(
    principal: Manager, session: SessionDep, page: PageDep, is_active: bool | None = None
):
    """Admins see every subscription; agencies and integration clients their own."""
    rows, total = await service.list_subscriptions(session, principal, page, is_active=is_active)
    return Page(items=rows, total=total, limit=page.limit, offset=page.offset)


@router.post(
    "",
    response_model=SubscriptionWithSecret,
    status_code=201,
    responses=REFUSED,
    summary="Subscribe a URL to case events; the signing secret is shown once",
)
async def create_subscription(
    principal: Manager, session: SessionDep, settings: SettingsDep, data: SubscriptionCreate
):
    sub, secret = await service.create_subscription(session, settings, principal, data)
    return _with_secret(sub, secret)


@router.get("/{webhook_id}", response_model=SubscriptionRead, responses=NOT_FOUND)
async def get_subscription(principal: Manager, session: SessionDep, webhook_id: WebhookId):
    return await service.get_subscription(session, principal, webhook_id)


@router.patch("/{webhook_id}", response_model=SubscriptionRead, responses={**NOT_FOUND, **REFUSED})
async def update_subscription(
    principal: Manager,
    session: SessionDep,
    settings: SettingsDep,
    webhook_id: WebhookId,
    data: SubscriptionUpdate,
):
    """Change the URL, event types, filters; `is_active: false` pauses deliveries (they wait)."""
    return await service.update_subscription(session, settings, principal, webhook_id, data)


@router.delete("/{webhook_id}", status_code=204, responses=NOT_FOUND)
async def delete_subscription(principal: Manager, session: SessionDep, webhook_id: WebhookId):
    """Deletes the subscription with its deliveries."""
    await service.delete_subscription(session, principal, webhook_id)
    return Response(status_code=204)


@router.post(
    "/{webhook_id}/rotate-secret",
    response_model=SubscriptionWithSecret,
    responses=NOT_FOUND,
    summary="A new signing secret (shown once); the old one co-signs for a grace period",
)
async def rotate_secret(
    principal: Manager, session: SessionDep, settings: SettingsDep, webhook_id: WebhookId
):
    sub, secret = await service.rotate_secret(session, settings, principal, webhook_id)
    return _with_secret(sub, secret)


@router.post(
    "/{webhook_id}/ping",
    response_model=DeliveryRead,
    status_code=202,
    responses=NOT_FOUND,
    summary="Queue a test event (type `ping`) for this subscription",
)
async def ping(principal: Manager, session: SessionDep, webhook_id: WebhookId):
    return await service.ping(session, principal, webhook_id)


# --- deliveries ---------------------------------------------------------------------------------


@router.get("/{webhook_id}/deliveries", response_model=DeliveryPage, responses=NOT_FOUND)
async def list_deliveries(
    principal: Manager,
    session: SessionDep,
    webhook_id: WebhookId,
    status: DeliveryStatus | None = None,
    case_id: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
):
    """Newest first. `status=failed` lists what gave up after the retry window."""
    rows, next_cursor = await service.list_deliveries(
        session, principal, webhook_id, status=status, case_id=case_id, limit=limit, cursor=cursor
    )
    return DeliveryPage(
        items=[DeliveryRead.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@router.get(
    "/{webhook_id}/deliveries/{delivery_id}", response_model=DeliveryDetail, responses=NOT_FOUND
)
async def get_delivery(
    principal: Manager, session: SessionDep, webhook_id: WebhookId, delivery_id: DeliveryId
):
    delivery = await service.get_delivery(session, principal, webhook_id, delivery_id)
    return service.delivery_detail(delivery)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryRead,
    status_code=202,
    responses=NOT_FOUND,
    summary="Send again: back to pending, due now, with a fresh retry window",
)
async def redeliver(
    principal: Manager, session: SessionDep, webhook_id: WebhookId, delivery_id: DeliveryId
):
    return await service.redeliver(session, principal, webhook_id, delivery_id)
