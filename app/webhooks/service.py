"""Webhook subscriptions, their deliveries, the URL allowlist, and the partners' receipt of
cases. Only flushes; the request's unit of work commits."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import ColumnElement, false, select, true
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth.deps import Principal
from app.auth.permissions import Role
from app.cases.models import CaseAgency
from app.cases.schemas import PartnerDelivery
from app.core.config import Environment, Settings
from app.core.errors import Conflict, DomainError, Forbidden, NotFound, Unprocessable
from app.core.pagination import paged
from app.core.passwords import new_secret
from app.core.references import resolve
from app.core.schemas import MAX_ID, PageParams
from app.core.types import utcnow
from app.reference.models import Agency, AgencyKind, Category
from app.webhooks.models import (
    PING,
    Audience,
    DeliveryStatus,
    WebhookAllowlistEntry,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)
from app.webhooks.outbox import PRIORITY_NORMAL, render
from app.webhooks.schemas import (
    AllowlistEntryCreate,
    DeliveryDetail,
    SubscriptionCreate,
    SubscriptionUpdate,
)
from app.webhooks.ssrf import Allowlist, Resolver, UrlRefused, check_url


class UrlNotAllowed(DomainError):
    """A webhook URL that may not be called (internal address, plain http in production…)."""

    status, code = 422, "url-not-allowed"

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"url: {detail}",
            errors=[{"loc": ["body", "url"], "msg": detail, "type": self.code}],
        )


# --- the allowlist and URL checks ----------------------------------------------------------------


async def load_allowlist(session: AsyncSession) -> Allowlist:
    entries = await session.execute(select(WebhookAllowlistEntry.entry))
    return Allowlist.of(entries.scalars())


def https_required(settings: Settings) -> bool:
    return settings.env is Environment.production


async def check_subscription_url(
    session: AsyncSession, settings: Settings, url: str, resolver: Resolver | None = None
) -> None:
    try:
        await check_url(
            url,
            await load_allowlist(session),
            require_https=https_required(settings),
            resolver=resolver,
        )
    except UrlRefused as exc:
        raise UrlNotAllowed(str(exc)) from None


async def list_allowlist(session: AsyncSession, page: PageParams):
    stmt = select(WebhookAllowlistEntry).order_by(WebhookAllowlistEntry.entry)
    return await paged(session, stmt, page)


async def add_allowlist_entry(
    session: AsyncSession, principal: Principal, data: AllowlistEntryCreate
) -> WebhookAllowlistEntry:
    found = await session.execute(
        select(WebhookAllowlistEntry.id).where(WebhookAllowlistEntry.entry == data.entry)
    )
    if found.first() is not None:
        raise Conflict(f"{data.entry} is already on the allowlist", field="entry")
    entry = WebhookAllowlistEntry(entry=data.entry, note=data.note, created_by=principal.subject)
    session.add(entry)
    await session.flush()
    return entry


async def delete_allowlist_entry(session: AsyncSession, entry_id: int) -> None:
    entry = await session.get(WebhookAllowlistEntry, entry_id) if entry_id <= MAX_ID else None
    if entry is None:
        raise NotFound(f"No allowlist entry with id {entry_id}")
    await session.delete(entry)
    await session.flush()


# --- subscriptions -------------------------------------------------------------------------------


def owned_by(principal: Principal) -> ColumnElement[bool]:
    """The subscriptions a caller manages: admins all; an agency's staff and clients the
    agency's; an integration client those of its source system."""
    sub = WebhookSubscription
    if principal.role is Role.admin:
        return true()
    if principal.role is Role.agency and principal.agency_id is not None:
        return (sub.owner_role == Audience.agency) & (sub.owner_agency_id == principal.agency_id)
    if principal.role is Role.integration and principal.source_system is not None:
        return (sub.owner_role == Audience.integration) & (
            sub.owner_source_system == principal.source_system
        )
    return false()


async def get_subscription(
    session: AsyncSession, principal: Principal, subscription_id: int
) -> WebhookSubscription:
    stmt = select(WebhookSubscription).where(
        WebhookSubscription.id == subscription_id, owned_by(principal)
    )
    sub = (await session.execute(stmt)).scalars().first() if subscription_id <= MAX_ID else None
    if sub is None:
        raise NotFound(f"No webhook subscription with id {subscription_id}")
    return sub


async def list_subscriptions(
    session: AsyncSession, principal: Principal, page: PageParams, *, is_active: bool | None
):
    stmt = select(WebhookSubscription).where(owned_by(principal))
    if is_active is not None:
        stmt = stmt.where(WebhookSubscription.is_active == is_active)
    return await paged(session, stmt.order_by(WebhookSubscription.id), page)


async def _owner(
    session: AsyncSession, principal: Principal, data: SubscriptionCreate
) -> tuple[Audience, int | None, str | None]:
    if principal.role is Role.admin:
        if data.owner_agency_id is not None and data.owner_source_system is not None:
            raise Unprocessable(
                "A subscription belongs to an agency or to a source system, not both",
                errors=[
                    {
                        "loc": ["body", "owner_source_system"],
                        "msg": "give owner_agency_id or owner_source_system, not both",
                        "type": "value_error",
                    }
                ],
            )
        if data.owner_agency_id is not None:
            await resolve(session, Agency, data.owner_agency_id, "owner_agency_id")
            return Audience.agency, data.owner_agency_id, None
        if data.owner_source_system is not None:
            return Audience.integration, None, data.owner_source_system
        return Audience.admin, None, None
    if (data.owner_agency_id is not None and data.owner_agency_id != principal.agency_id) or (
        data.owner_source_system is not None and data.owner_source_system != principal.source_system
    ):
        raise Forbidden("Only administrators create subscriptions for others")
    if principal.role is Role.agency and principal.agency_id is not None:
        return Audience.agency, principal.agency_id, None
    if principal.role is Role.integration and principal.source_system is not None:
        return Audience.integration, None, principal.source_system
    raise Forbidden("Your account is not bound to an agency or a source system")


async def _check_filters(session: AsyncSession, agency_ids, category_ids) -> None:
    for agency_id in agency_ids or ():
        await resolve(session, Agency, agency_id, "agency_ids", must_be_active=False)
    for category_id in category_ids or ():
        await resolve(session, Category, category_id, "category_ids", must_be_active=False)


async def create_subscription(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    data: SubscriptionCreate,
    resolver: Resolver | None = None,
) -> tuple[WebhookSubscription, str]:
    role, agency_id, source_system = await _owner(session, principal, data)
    await _check_filters(session, data.agency_ids, data.category_ids)
    url = str(data.url)
    await check_subscription_url(session, settings, url, resolver)
    secret = data.secret or new_secret(32)
    sub = WebhookSubscription(
        url=url,
        description=data.description,
        secret=secret,
        event_types=[str(t) for t in data.event_types],
        agency_ids=data.agency_ids,
        category_ids=data.category_ids,
        kinds=[str(k) for k in data.kinds],
        include_personal_data=data.include_personal_data,
        owner_role=role,
        owner_agency_id=agency_id,
        owner_source_system=source_system,
        is_active=data.is_active,
        created_by=principal.subject,
    )
    session.add(sub)
    await session.flush()
    return sub, secret


async def update_subscription(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    subscription_id: int,
    data: SubscriptionUpdate,
    resolver: Resolver | None = None,
) -> WebhookSubscription:
    sub = await get_subscription(session, principal, subscription_id)
    changes = data.model_dump(mode="json", exclude_unset=True)
    await _check_filters(session, changes.get("agency_ids"), changes.get("category_ids"))
    if "url" in changes:
        await check_subscription_url(session, settings, changes["url"], resolver)
    for key, value in changes.items():
        setattr(sub, key, value)
    sub.updated_at = utcnow()
    await session.flush()
    return sub


async def delete_subscription(
    session: AsyncSession, principal: Principal, subscription_id: int
) -> None:
    sub = await get_subscription(session, principal, subscription_id)
    await session.delete(sub)
    await session.flush()


async def rotate_secret(
    session: AsyncSession, settings: Settings, principal: Principal, subscription_id: int
) -> tuple[WebhookSubscription, str]:
    """A new secret; the old one keeps signing alongside it for the grace period."""
    sub = await get_subscription(session, principal, subscription_id)
    now = utcnow()
    grace = timedelta(hours=settings.webhook_secret_grace_hours)
    sub.previous_secret = sub.secret if grace else None
    sub.previous_secret_expires_at = now + grace if grace else None
    sub.secret = new_secret(32)
    sub.secret_rotated_at = sub.updated_at = now
    await session.flush()
    return sub, sub.secret


def signing_secrets(sub_secret: str, previous: str | None, expires: datetime | None, now):
    """The secrets a delivery is signed with now: the current one, and the previous one
    while its grace period lasts."""
    if previous and expires is not None and expires > now:
        return (sub_secret, previous)
    return (sub_secret,)


async def ping(
    session: AsyncSession, principal: Principal, subscription_id: int
) -> WebhookDelivery:
    """A test event for this subscription alone, delivered by the worker like any other."""
    sub = await get_subscription(session, principal, subscription_id)
    now = utcnow()
    event = WebhookEvent(event_type=PING, occurred_at=now, dispatched_at=now)
    session.add(event)
    await session.flush()
    delivery = WebhookDelivery(
        subscription_id=sub.id,
        event_id=event.id,
        event_type=PING,
        payload=render(event.id, PING, now, None),
        priority=PRIORITY_NORMAL,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(delivery)
    await session.flush()
    return delivery


# --- deliveries ----------------------------------------------------------------------------------


async def list_deliveries(
    session: AsyncSession,
    principal: Principal,
    subscription_id: int,
    *,
    status: DeliveryStatus | None,
    case_id: int | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[WebhookDelivery], str | None]:
    """Newest first, a keyset page (deliveries grow without bound; no COUNT, no OFFSET)."""
    await get_subscription(session, principal, subscription_id)
    stmt = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
    if status is not None:
        stmt = stmt.where(WebhookDelivery.status == status)
    if case_id is not None:
        stmt = stmt.where(WebhookDelivery.case_id == case_id)
    if cursor is not None:
        if not cursor.isdigit():
            raise Unprocessable(
                "cursor: not a cursor from this list",
                errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor", "type": "value"}],
            )
        stmt = stmt.where(WebhookDelivery.id < int(cursor))
    rows = list(
        (await session.execute(stmt.order_by(WebhookDelivery.id.desc()).limit(limit + 1)))
        .scalars()
        .all()
    )
    next_cursor = str(rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


async def get_delivery(
    session: AsyncSession, principal: Principal, subscription_id: int, delivery_id: int
) -> WebhookDelivery:
    await get_subscription(session, principal, subscription_id)
    stmt = select(WebhookDelivery).where(
        WebhookDelivery.id == delivery_id, WebhookDelivery.subscription_id == subscription_id
    )
    delivery = (await session.execute(stmt)).scalars().first() if delivery_id <= MAX_ID else None
    if delivery is None:
        raise NotFound(f"No delivery {delivery_id} for webhook subscription {subscription_id}")
    return delivery


def delivery_detail(delivery: WebhookDelivery) -> DeliveryDetail:
    data: dict[str, Any] = delivery.model_dump()
    data["payload"] = orjson.loads(delivery.payload)
    return DeliveryDetail.model_validate(data)


async def redeliver(
    session: AsyncSession, principal: Principal, subscription_id: int, delivery_id: int
) -> WebhookDelivery:
    """Back to pending, due now, with a fresh retry window (attempts keep counting)."""
    delivery = await get_delivery(session, principal, subscription_id, delivery_id)
    now = utcnow()
    delivery.status = DeliveryStatus.pending
    delivery.next_attempt_at = now
    delivery.first_attempt_at = None
    delivery.locked_until = delivery.locked_by = None
    await session.flush()
    return delivery


# --- the partner's receipt of a case -------------------------------------------------------------


async def partner_deliveries(
    session: AsyncSession, case_ids: list[int]
) -> dict[int, list[PartnerDelivery]]:
    """For each case, the partner agencies given it (missing-person searchers and the like)
    and when a webhook about it first reached each one's subscription. One query."""
    result: dict[int, list[PartnerDelivery]] = defaultdict(list)
    if not case_ids:
        return {}
    rows = await session.execute(
        select(CaseAgency.case_id, CaseAgency.agency_id, Agency.name, CaseAgency.delivered_at)
        .join(Agency, Agency.id == CaseAgency.agency_id)
        .where(CaseAgency.case_id.in_(case_ids), Agency.kind == AgencyKind.partner)
        .order_by(CaseAgency.case_id, CaseAgency.agency_id)
    )
    for case_id, agency_id, name, delivered_at in rows.all():
        result[case_id].append(
            PartnerDelivery(agency_id=agency_id, agency_name=name, delivered_at=delivered_at)
        )
    return {case_id: result.get(case_id, []) for case_id in case_ids}
