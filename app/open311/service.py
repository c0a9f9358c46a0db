"""Open311 on top of the domain: categories become services, a POSTed request becomes an
appeal through CaseService, cases are read back within the client's reach. Only flushes.

What leaves here is never personal data: no applicant's name, e-mail or phone, no author
handle, no agency's answer text (it may address the citizen by name); the request's own
description and media_url go back only to the system that submitted it (they are its own
data, and another system's text may name people)."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth.deps import Principal
from app.cases import access
from app.cases.models import OPEN_STATUSES, Case, CaseStatus, Channel, LegalRegime
from app.cases.schemas import AppealCreate
from app.cases.service import CaseService, Intake
from app.core.config import Environment, Settings
from app.core.errors import NotFound
from app.core.types import utcnow
from app.deadlines.models import DeadlinePolicy
from app.open311.errors import InvalidArgument
from app.open311.formats import w3c
from app.open311.schemas import (
    Attribute,
    AttributeValue,
    Discovery,
    Endpoint,
    RequestForm,
    RequestQuery,
    Service,
    ServiceDefinition,
    ServiceRequest,
)
from app.reference.models import Agency, AgencyKind, Category, Territory

WINDOW = timedelta(days=90)  # the spec's default span, and the widest allowed
MAX_REQUESTS = 1000  # the spec's default (and here the only) page
MAX_DESCRIPTION = 4000  # the spec's limit for description
MAX_BIGINT = 2**63 - 1
FORMATS = ["text/xml", "application/json"]
TERRITORY = "territory"

# AppealCreate's fields under the names an Open311 client sent them.
_FORM_NAMES = {
    "text": "description",
    "latitude": "lat",
    "longitude": "long",
    "address": "address_string",
    "applicant_name": "first_name/last_name",
    "applicant_email": "email",
    "applicant_phone": "phone",
    "attachment_urls": "media_url",
    "number": "external_id",
}

_STATUS_NOTES = {
    CaseStatus.new: "Registered; the control centre is routing it to the responsible agency",
    CaseStatus.assigned: "Assigned to the responsible agency",
    CaseStatus.in_progress: "Accepted by the responsible agency",
    CaseStatus.returned: "Returned by the agency; the control centre is re-routing it",
    CaseStatus.closed: "Closed",
    CaseStatus.rejected: "Rejected",
}
_RESOLUTIONS = {
    "solved": "Closed: resolved",
    "explained": "Closed: explained",
    "planned": "Closed: the work is planned",
    "refused": "Closed: refused",
}


def _present(value: str | None) -> str | None:
    """The spec's optional arguments: an empty value is the same as none. NUL characters are
    dropped: no text column can keep them (PostgreSQL refuses them outright)."""
    if value is None:
        return None
    value = value.replace("\x00", "").strip()
    return value or None


def _csv(value: str | None) -> list[str]:
    return [part for part in (_present(p) for p in (value or "").split(",")) if part]


def _is_id(value: str) -> bool:
    return re.fullmatch(r"[0-9]{1,19}", value) is not None and 1 <= int(value) <= MAX_BIGINT


def _status_notes(case: Case) -> str:
    status = CaseStatus(case.status)
    if status is CaseStatus.closed:
        return _RESOLUTIONS.get(case.resolution or "", _STATUS_NOTES[status])
    if status is CaseStatus.rejected and case.duplicate_of_id is not None:
        return "Rejected as a duplicate of another request"
    if status is CaseStatus.in_progress and case.interim_planned_date:
        planned = case.interim_planned_date
        return f"Accepted by the responsible agency; completion planned for {planned}"
    return _STATUS_NOTES[status]


class Open311Service:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings

    def _w3c(self, value: datetime | None) -> str | None:
        return w3c(value, self.settings.tz)

    # --- discovery and services ------------------------------------------------------------

    async def discovery(self, endpoint_url: str) -> Discovery:
        changed = []
        for model in (Category, Territory):
            changed.append(
                (await self.session.execute(select(func.max(model.updated_at)))).scalar()
            )
        latest = max((c for c in changed if c is not None), default=None)
        # Microseconds: two changes within a second must still give two changesets.
        zone = self.settings.tz
        changeset = (
            (latest or datetime(1970, 1, 1, tzinfo=UTC))
            .astimezone(zone)
            .isoformat(timespec="microseconds")
        )
        centre = (
            (
                await self.session.execute(
                    select(Agency)
                    .where(Agency.kind == AgencyKind.control_centre, Agency.is_active)
                    .order_by(Agency.id)
                    .limit(1)
                )
            )
            .scalars()
            .first()
        )
        if centre is not None:
            reach = ", ".join(v for v in (centre.email, centre.phone, centre.website) if v)
            contact = f"{centre.name}: {reach}" if reach else centre.name
        else:
            contact = "The regional control centre"
        production = self.settings.env is Environment.production
        return Discovery(
            changeset=changeset,
            contact=contact,
            key_service=(
                "The control centre's administrators issue api_keys: a machine client "
                "(POST /api/v1/clients, role integration) gives the key "
                "<client_id>:<client_secret>."
            ),
            endpoints=[
                Endpoint(
                    url=endpoint_url,
                    changeset=changeset,
                    type="production" if production else "test",
                    formats=FORMATS,
                )
            ],
        )

    async def services(self) -> list[Service]:
        """Every active category is a service — sectors too, since intake accepts them; a
        subcategory's group is its sector."""
        rows = (
            (
                await self.session.execute(
                    select(Category).where(Category.is_active).order_by(Category.code)
                )
            )
            .scalars()
            .all()
        )
        sectors = await self._by_id(Category, {c.parent_id for c in rows if c.parent_id})
        services = []
        for category in rows:
            sector = sectors.get(category.parent_id, category)
            keywords = dict.fromkeys((category.name_en, sector.name_en, sector.name_ru))
            keywords.pop(category.name_ru, None)
            services.append(
                Service(
                    service_code=category.code,
                    service_name=category.name_ru,
                    description=category.name_en,
                    metadata=True,
                    type="realtime",
                    keywords=", ".join(keywords),
                    group=sector.name_ru,
                )
            )
        return services

    async def definition(self, service_code: str) -> ServiceDefinition:
        category = await self._category(_present(service_code))
        territories = (
            (
                await self.session.execute(
                    select(Territory).where(Territory.is_active).order_by(Territory.code)
                )
            )
            .scalars()
            .all()
        )
        territory = Attribute(
            variable=True,
            code=TERRITORY,
            datatype="singlevaluelist",
            required=False,
            datatype_description="The territory's code",
            order=1,
            description="The municipality the request is about (it helps route the request)",
            values=[AttributeValue(key=t.code, name=t.name) for t in territories],
        )
        return ServiceDefinition(service_code=category.code, attributes=[territory])

    async def _category(self, service_code: str | None) -> Category:
        if service_code is None:
            raise InvalidArgument("service_code was not provided")
        category = (
            (
                await self.session.execute(
                    select(Category).where(Category.code == service_code, Category.is_active)
                )
            )
            .scalars()
            .first()
        )
        if category is None:
            raise NotFound(f"service_code '{service_code}' was not found")
        return category

    async def _by_id(self, model: Any, ids: Iterable[int | None]) -> dict[int, Any]:
        wanted = {i for i in ids if i is not None}
        if not wanted:
            return {}
        rows = await self.session.execute(select(model).where(model.id.in_(wanted)))
        return {row.id: row for row in rows.scalars()}

    # --- POST requests ---------------------------------------------------------------------

    async def submit(self, principal: Principal, form: RequestForm) -> tuple[Intake, str]:
        """Files the request as an appeal under 59-ФЗ (channel web, or mobile_app when a
        device_id is sent), routed like any other intake; the same external_id again gives
        back the request already filed."""
        category = await self._category(_present(form.service_code))
        territory_id = await self._territory(form.attributes)
        data = self._appeal(form, category.id, territory_id)
        intake = await CaseService(self.session, self.settings, principal).submit(data)
        return intake, await self._notice(intake.case)

    async def _territory(self, attributes: dict[str, list[str]]) -> int | None:
        unknown = sorted(set(attributes) - {TERRITORY})
        if unknown:
            raise InvalidArgument(
                *(f"attribute[{code}]: the service has no such attribute" for code in unknown)
            )
        values = [v for v in (_present(v) for v in attributes.get(TERRITORY, [])) if v]
        if not values:
            return None
        if len(values) > 1:
            raise InvalidArgument(f"attribute[{TERRITORY}]: takes one value")
        territory = (
            (
                await self.session.execute(
                    select(Territory).where(Territory.code == values[0], Territory.is_active)
                )
            )
            .scalars()
            .first()
        )
        if territory is None:
            raise InvalidArgument(f"attribute[{TERRITORY}]: no territory '{values[0]}'")
        return territory.id

    def _appeal(self, form: RequestForm, category_id: int, territory_id: int | None):
        problems: list[str] = []
        point: dict[str, float] = {}
        lat, long = _present(form.lat), _present(form.long)
        if (lat is None) != (long is None):
            problems.append("lat and long: send both")
        for name, raw in (("latitude", lat), ("longitude", long)):
            if lat is not None and long is not None:
                try:
                    point[name] = float(raw)
                    if not math.isfinite(point[name]):
                        raise ValueError
                except ValueError:
                    problems.append(f"{_FORM_NAMES[name]}: '{raw}' is not a number")
        address = _present(form.address_string)
        if not point and address is None and not problems:
            if _present(form.address_id):
                problems.append(
                    "address_id: this jurisdiction has no address repository; "
                    "send lat & long or address_string"
                )
            else:
                problems.append("A location is required: lat & long, or address_string")
        description = _present(form.description)
        if description is None:
            problems.append("description is required")
        elif len(description) > MAX_DESCRIPTION:
            problems.append(f"description: at most {MAX_DESCRIPTION} characters")
        name = " ".join(p for p in (_present(form.first_name), _present(form.last_name)) if p)
        if not name:
            problems.append(
                "first_name or last_name is required: appeals under 59-ФЗ are not anonymous"
            )
        if problems:
            raise InvalidArgument(*problems)
        phone = _present(form.phone)
        media_url = _present(form.media_url)
        try:
            return AppealCreate(
                text=description,
                category_id=category_id,
                territory_id=territory_id,
                address=address,
                **point,
                channel=Channel.mobile_app if _present(form.device_id) else Channel.web,
                legal_regime=LegalRegime.fz59,
                number=_present(form.external_id) or f"open311-{uuid.uuid4().hex}",
                applicant_name=name,
                applicant_email=_present(form.email),
                applicant_phone=re.sub(r"[\s().\-]", "", phone) if phone else None,
                attachment_urls=[media_url] if media_url else [],
            )
        except ValidationError as exc:
            raise InvalidArgument(
                *(
                    f"{_FORM_NAMES.get(str(e['loc'][0]), e['loc'][0]) if e['loc'] else 'request'}"
                    f": {e['msg']}"
                    for e in exc.errors()
                )
            ) from None

    async def _notice(self, case: Case) -> str:
        parts = [f"Registered as {case.number}"]
        agency = await self.session.get(Agency, case.agency_id) if case.agency_id else None
        if agency is not None:
            parts.append(f"assigned to {agency.name}")
        else:
            parts.append("the control centre will route it to the responsible agency")
        if case.due_at is not None and case.status in OPEN_STATUSES:
            parts.append(f"an answer is due by {self._w3c(case.due_at)}")
        return "; ".join(parts)

    # --- GET requests ----------------------------------------------------------------------

    def _when(self, name: str, raw: str | None) -> datetime | None:
        text = _present(raw)
        if text is None:
            return None
        # An unencoded '+' of the UTC offset arrives as a space.
        text = re.sub(r" (\d\d:?\d\d)$", r"+\1", text)
        try:
            if "T" not in text:
                return datetime.combine(date.fromisoformat(text), time(), self.settings.tz)
            value = datetime.fromisoformat(text)
        except ValueError:
            value = None
        if value is None or value.tzinfo is None:
            raise InvalidArgument(
                f"{name}: '{raw}' is not a W3C datetime with a time zone, "
                "e.g. 2026-11-28T12:00:00+03:00 or 2026-11-28T09:00:00Z"
            )
        return value

    def _window(self, query: RequestQuery) -> tuple[datetime, datetime]:
        start = self._when("start_date", query.start_date)
        end = self._when("end_date", query.end_date)
        if start is not None and end is not None:
            if end < start:
                raise InvalidArgument("end_date is before start_date")
            if end - start > WINDOW:
                raise InvalidArgument("start_date and end_date may not span more than 90 days")
            return start, end
        if start is not None:
            return start, start + WINDOW
        end = end or utcnow()
        return end - WINDOW, end

    async def requests(self, principal: Principal, query: RequestQuery) -> list[ServiceRequest]:
        """Newest first, at most 1,000, within the caller's reach. service_request_id
        overrides every other argument; otherwise requests made within the window (the last
        90 days unless start_date/end_date say otherwise)."""
        stmt = select(Case).where(access.visible(principal))
        ids = _csv(query.service_request_id)
        if ids:
            if len(ids) > MAX_REQUESTS:
                raise InvalidArgument(f"service_request_id: at most {MAX_REQUESTS} ids")
            bad = [i for i in ids if not _is_id(i)]
            if bad:
                raise InvalidArgument(
                    *(f"service_request_id: '{i}' is not a request id" for i in bad)
                )
            stmt = stmt.where(Case.id.in_({int(i) for i in ids}))
        else:
            start, end = self._window(query)
            stmt = stmt.where(Case.created_at >= start, Case.created_at <= end)
            statuses = _csv(query.status)
            if statuses:
                unknown = [s for s in statuses if s not in ("open", "closed")]
                if unknown:
                    raise InvalidArgument(
                        *(f"status: '{s}' is not open or closed" for s in unknown)
                    )
                wanted = set(OPEN_STATUSES) if "open" in statuses else set()
                if "closed" in statuses:
                    wanted |= {CaseStatus.closed, CaseStatus.rejected}
                stmt = stmt.where(Case.status.in_(wanted))
            codes = _csv(query.service_code)
            if codes:
                found = dict(
                    (
                        await self.session.execute(
                            select(Category.code, Category.id).where(Category.code.in_(codes))
                        )
                    ).all()
                )
                missing = [c for c in codes if c not in found]
                if missing:
                    raise InvalidArgument(
                        *(f"service_code: '{c}' is not a service" for c in missing)
                    )
                stmt = stmt.where(Case.category_id.in_(found.values()))
        stmt = stmt.order_by(Case.created_at.desc(), Case.id.desc()).limit(MAX_REQUESTS)
        cases = list((await self.session.execute(stmt)).scalars().all())
        return await self._reads(principal, cases)

    async def request(self, principal: Principal, service_request_id: str) -> ServiceRequest:
        case = None
        if _is_id(service_request_id):
            stmt = select(Case).where(Case.id == int(service_request_id), access.visible(principal))
            case = (await self.session.execute(stmt)).scalars().first()
        if case is None:
            raise NotFound(f"No service request '{service_request_id}'")
        [read] = await self._reads(principal, [case])
        return read

    async def _reads(self, principal: Principal, cases: list[Case]) -> list[ServiceRequest]:
        categories = await self._by_id(Category, (c.category_id for c in cases))
        agencies = await self._by_id(Agency, (c.agency_id for c in cases))
        policies = await self._by_id(DeadlinePolicy, (c.deadline_policy_id for c in cases))
        reads = []
        for case in cases:
            category = categories.get(case.category_id)
            agency = agencies.get(case.agency_id)
            policy = policies.get(case.deadline_policy_id)
            own = principal.source_system is not None and case.source_system == (
                principal.source_system
            )
            media = (case.attachment_urls or [None])[0] if own else None
            reads.append(
                ServiceRequest(
                    service_request_id=str(case.id),
                    status="open" if case.status in OPEN_STATUSES else "closed",
                    status_notes=_status_notes(case),
                    service_name=category.name_ru if category else None,
                    service_code=category.code if category else None,
                    description=case.text if own else None,
                    agency_responsible=agency.name if agency else None,
                    service_notice=policy.name if policy else None,
                    requested_datetime=self._w3c(case.created_at),
                    updated_datetime=self._w3c(case.updated_at),
                    expected_datetime=self._w3c(case.due_at),
                    address=case.address,
                    address_id=None,
                    zipcode=None,
                    lat=case.latitude,
                    long=case.longitude,
                    media_url=media,
                )
            )
        return reads
