"""The outbox and its fan-out.

Case events reach the outbox (webhook_event) through a database trigger on case_event (see
migration 0004): in the same transaction as the change, whatever code inserted the event. The
worker's dispatcher then turns each outbox row into one delivery per matching subscription —
event type, filters, and the owner's right to see the case, mirroring app/cases/access.py —
with the body built once, here, and signed byte for byte at every attempt.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Row,
    any_,
    bindparam,
    delete,
    exists,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth.deps import Principal
from app.auth.permissions import ROLE_SCOPES, Role
from app.cases import access
from app.cases.models import OPEN_STATUSES, Case, CaseAgency, CaseEvent
from app.cases.schemas import PERSONAL_FIELDS, CaseRead
from app.core.upsert import insert_for
from app.reference.models import Agency, AgencyKind, Category
from app.webhooks.models import (
    Audience,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)

# Lower goes first: missing-person cases reach partner agencies ahead of all other traffic.
PRIORITY_MISSING_PERSON_PARTNER = 0
PRIORITY_MISSING_PERSON = 1
PRIORITY_NORMAL = 5

# The case as the API shows it (CaseRead), minus what depends on the caller. It has every
# column the filters and the visibility rule look at, too (kind, agency, category, source).
CASE_FIELDS = tuple(name for name in CaseRead.model_fields if name in Case.model_fields)


@dataclass(frozen=True)
class Subscriber:
    """A subscription as the fan-out needs it: what it wants and whose eyes it has."""

    id: int
    role: Audience
    agency_id: int | None
    source_system: str | None
    partner: bool  # owned by a partner agency (missing-person searchers)
    event_types: frozenset[str]
    agency_ids: frozenset[int]
    category_ids: frozenset[int]
    kinds: frozenset[str]
    include_personal_data: bool
    since: datetime

    @classmethod
    def of(cls, sub: WebhookSubscription, agency_kind: str | None) -> Subscriber:
        return cls(
            id=sub.id,
            role=Audience(sub.owner_role),
            agency_id=sub.owner_agency_id,
            source_system=sub.owner_source_system,
            partner=agency_kind == AgencyKind.partner,
            event_types=frozenset(sub.event_types),
            agency_ids=frozenset(sub.agency_ids),
            category_ids=frozenset(sub.category_ids),
            kinds=frozenset(sub.kinds),
            include_personal_data=sub.include_personal_data,
            since=sub.created_at,
        )

    @property
    def principal(self) -> Principal:
        """The owner as the API knows it (for the personal-data rule of app/cases/access.py)."""
        role = Role(self.role)
        return Principal(
            "client",
            0,
            f"webhook:{self.id}",
            role,
            ROLE_SCOPES[role],
            self.agency_id,
            self.source_system,
        )

    def can_see(self, case: Case | Row, granted_agencies: Collection[int]) -> bool:
        """access.visible(), for one case already loaded: admins see every case, agencies
        the cases ever given to them, integration clients what their system submitted."""
        if self.role is Audience.admin:
            return True
        if self.role is Audience.agency:
            return self.agency_id in granted_agencies
        if self.role is Audience.integration:
            return case.source_system == self.source_system
        return False

    def sees_personal_data(self) -> bool:
        return self.include_personal_data and access.sees_personal_data(self.principal)

    def may_want(self, event_type: str, occurred_at: datetime) -> bool:
        return event_type in self.event_types and occurred_at >= self.since

    def wants(self, event_type: str, case: Case | Row, sector_id: int | None) -> bool:
        return (
            event_type in self.event_types
            and (not self.kinds or case.kind in self.kinds)
            and (not self.agency_ids or case.agency_id in self.agency_ids)
            and (
                not self.category_ids
                or case.category_id in self.category_ids
                or sector_id in self.category_ids
            )
        )

    def priority(self, case: Case | Row) -> int:
        if not case.missing_person:
            return PRIORITY_NORMAL
        return PRIORITY_MISSING_PERSON_PARTNER if self.partner else PRIORITY_MISSING_PERSON


def case_json(case: Row, *, personal: bool, now: datetime) -> dict[str, Any]:
    """The case in a body; `case` is a row whose first columns are CASE_FIELDS (see _context)."""
    data: dict[str, Any] = dict(zip(CASE_FIELDS, case, strict=False))
    due_at = data["due_at"]
    data["overdue"] = bool(due_at and data["status"] in OPEN_STATUSES and due_at < now)
    if not personal:
        for name in PERSONAL_FIELDS:
            data[name] = None
    data["personal_data_hidden"] = not personal
    return data


def render(
    event_id: int,
    event_type: str,
    occurred_at: datetime,
    case: dict[str, Any] | None,
    *,
    case_event_id: int | None = None,
    change: dict[str, Any] | None = None,
) -> str:
    """The delivery body: the event's id (receivers dedupe by it), type, time, and the case."""
    body = {
        "id": event_id,
        "type": event_type,
        "occurred_at": occurred_at,
        "case_event_id": case_event_id,
        "change": change,
        "case": case,
    }
    return orjson.dumps(body, option=orjson.OPT_UTC_Z).decode()


async def all_subscribers(session: AsyncSession) -> list[Subscriber]:
    """Paused subscriptions too: their deliveries wait, unclaimed, until they are resumed."""
    rows = await session.execute(
        select(WebhookSubscription, Agency.kind)
        .outerjoin(Agency, Agency.id == WebhookSubscription.owner_agency_id)
        .order_by(WebhookSubscription.id)
    )
    return [Subscriber.of(sub, kind) for sub, kind in rows.all()]


async def dispatch(session: AsyncSession, *, now: datetime, batch: int) -> int:
    """Fans one batch of outbox rows out to deliveries; returns how many rows it took.

    The rows are taken and marked dispatched in one statement; on PostgreSQL they are picked
    with FOR UPDATE SKIP LOCKED, so several workers share the outbox without taking the same
    row (the unique (subscription, event) key makes a repeated fan-out harmless anyway). The
    caller commits; a fan-out that fails leaves the rows undispatched."""
    table = WebhookEvent.__table__
    c = table.c
    undispatched = (
        select(c.id)
        .where(c.dispatched_at.is_(None))
        .order_by(c.id)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    taken = await session.execute(
        update(table)
        .where(c.id.in_(undispatched))
        .values(dispatched_at=now)
        .returning(c.id, c.case_event_id, c.case_id, c.event_type, c.occurred_at)  # _fan_out order
    )
    events = sorted(taken.all(), key=lambda e: e.id)
    if not events:
        return 0
    subscribers = await all_subscribers(session)
    # Only the events someone may want (by type, and not older than the subscription) need
    # their cases read: a backlog nobody subscribed to is marked dispatched and that is all.
    wanted = [
        e for e in events if any(s.may_want(e.event_type, e.occurred_at) for s in subscribers)
    ]
    rows = _fan_out(wanted, subscribers, *(await _context(session, wanted, subscribers)), now)
    if rows:
        deliveries = WebhookDelivery.__table__
        stmt = insert_for(session, deliveries).on_conflict_do_nothing(
            index_elements=[deliveries.c.subscription_id, deliveries.c.event_id]
        )
        await session.execute(stmt, rows)
    return len(events)


def among(session: AsyncSession, column: Any, ids: Collection[int]) -> ColumnElement[bool]:
    """`column IN ids`, for id columns. On PostgreSQL `= ANY(:ids)`: one array parameter however
    many ids, where IN renders a placeholder each (in Python, per statement) and makes a new
    prepared statement for every length."""
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=ARRAY(BigInteger)))
    return column.in_(ids)


async def _context(session: AsyncSession, events, subscribers: list[Subscriber]):
    """The cases (with their sectors), the events' changes and the agencies given each case:
    three queries for the whole batch. The cases are plain rows of the columns the body shows,
    not ORM objects: building those took a third of the dispatcher's time."""
    case_ids = list({e.case_id for e in events if e.case_id is not None})
    cases: dict[int, tuple[Row, int | None]] = {}  # case id -> (its row, its sector)
    changes: dict[int, dict[str, Any]] = {}
    grants: dict[int, set[int]] = defaultdict(set)
    if not subscribers or not case_ids:
        return cases, changes, grants
    columns = Case.__table__.c
    found = await session.execute(
        select(*(columns[name] for name in CASE_FIELDS), Category.parent_id.label("sector_id"))
        .outerjoin(Category, Category.id == columns.category_id)
        .where(among(session, columns.id, case_ids))
    )
    for case in found.all():
        cases[case.id] = (case, case.sector_id or case.category_id)
    event_ids = [e.case_event_id for e in events if e.case_event_id is not None]
    found = await session.execute(
        select(
            CaseEvent.id,
            CaseEvent.from_status,
            CaseEvent.to_status,
            CaseEvent.from_agency_id,
            CaseEvent.to_agency_id,
            CaseEvent.reason,
        ).where(among(session, CaseEvent.id, event_ids))
    )
    for row in found.all():
        change = row._asdict()
        changes[change.pop("id")] = change
    if any(s.role is Audience.agency for s in subscribers):
        found = await session.execute(
            select(CaseAgency.case_id, CaseAgency.agency_id).where(
                among(session, CaseAgency.case_id, case_ids)
            )
        )
        for case_id, agency_id in found.all():
            grants[case_id].add(agency_id)
    return cases, changes, grants


def _fan_out(events, subscribers, cases, changes, grants, now: datetime) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    sees_personal = {sub.id: sub.sees_personal_data() for sub in subscribers}
    pending = DeliveryStatus.pending.value
    for event_id, case_event_id, case_id, event_type, occurred_at in events:
        if case_id not in cases:
            continue
        case, sector_id = cases[case_id]
        granted = grants.get(case_id, frozenset())
        bodies: dict[bool, str] = {}  # the body with and without personal data, made once
        for sub in subscribers:
            if (
                occurred_at < sub.since
                or not sub.wants(event_type, case, sector_id)
                or not sub.can_see(case, granted)
            ):
                continue
            personal = sees_personal[sub.id]
            if personal not in bodies:
                bodies[personal] = render(
                    event_id,
                    event_type,
                    occurred_at,
                    case_json(case, personal=personal, now=now),
                    case_event_id=case_event_id,
                    change=changes.get(case_event_id),
                )
            rows.append(
                {
                    "subscription_id": sub.id,
                    "event_id": event_id,
                    "case_id": case_id,
                    "event_type": event_type,
                    "payload": bodies[personal],
                    "priority": sub.priority(case),
                    "status": pending,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
    return rows


async def purge_finished(session: AsyncSession, *, before: datetime, batch: int) -> int:
    """Deletes outbox events dispatched before `before` whose deliveries are all finished
    (delivered or failed), with those deliveries: their bodies may carry personal data and are
    kept only for the retention period. Returns how many events went. The caller commits."""
    waiting = exists().where(
        WebhookDelivery.event_id == WebhookEvent.id,
        WebhookDelivery.status == DeliveryStatus.pending.value,
    )
    ids = (
        (
            await session.execute(
                select(WebhookEvent.id)
                .where(WebhookEvent.dispatched_at < before, ~waiting)
                .order_by(WebhookEvent.dispatched_at)
                .limit(batch)
            )
        )
        .scalars()
        .all()
    )
    if ids:
        await session.execute(delete(WebhookDelivery).where(WebhookDelivery.event_id.in_(ids)))
        await session.execute(delete(WebhookEvent).where(WebhookEvent.id.in_(ids)))
    return len(ids)
