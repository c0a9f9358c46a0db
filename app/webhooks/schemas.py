from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, HttpUrl, StringConstraints, field_validator

from app.cases.models import CaseKind
from app.core.schemas import Input, Output, Patch
from app.webhooks.models import Audience, DeliveryStatus, EventType
from app.webhooks.ssrf import parse_entry

Url = Annotated[HttpUrl, StringConstraints(max_length=2000)]
Description = Annotated[str, StringConstraints(max_length=300)]
Secret = Annotated[str, StringConstraints(min_length=24, max_length=200, pattern=r"^[\x21-\x7e]+$")]
SourceSystem = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.\-]{1,63}$")]
Ids = Annotated[list[Annotated[int, Field(ge=1, le=2**31 - 1)]], Field(max_length=100)]
EventTypes = Annotated[list[EventType], Field(min_length=1, max_length=len(EventType))]
ALL_EVENT_TYPES = list(EventType)


def _unique(values: list[Any] | None) -> list[Any] | None:
    return list(dict.fromkeys(values)) if values is not None else None


class SubscriptionCreate(Input):
    url: Url = Field(description="Where events are POSTed; https in production")
    description: Description | None = None
    event_types: EventTypes = Field(
        default_factory=lambda: list(ALL_EVENT_TYPES), description="Default: every type"
    )
    agency_ids: Ids = Field(
        default_factory=list, description="Only cases assigned to one of these agencies"
    )
    category_ids: Ids = Field(
        default_factory=list,
        description="Only cases in these categories (a sector includes its subcategories)",
    )
    kinds: list[CaseKind] = Field(default_factory=list, description="incident and/or appeal")
    include_personal_data: bool = Field(
        default=True,
        description="Send applicants' and authors' personal data, where the owner may read it",
    )
    secret: Secret | None = Field(
        default=None, description="The signing secret; leave out to have one generated"
    )
    is_active: bool = True
    owner_agency_id: int | None = Field(
        default=None, description="Admins only: make it an agency's subscription"
    )
    owner_source_system: SourceSystem | None = Field(
        default=None, description="Admins only: make it an integration client's subscription"
    )

    _dedupe = field_validator("event_types", "agency_ids", "category_ids", "kinds")(_unique)


class SubscriptionUpdate(Patch):
    NOT_NULL = frozenset(
        {"url", "event_types", "agency_ids", "category_ids", "kinds"}
        | {"include_personal_data", "is_active"}
    )

    url: Url | None = None
    description: Description | None = None
    event_types: EventTypes | None = None
    agency_ids: Ids | None = None
    category_ids: Ids | None = None
    kinds: list[CaseKind] | None = None
    include_personal_data: bool | None = None
    is_active: bool | None = None

    _dedupe = field_validator("event_types", "agency_ids", "category_ids", "kinds")(_unique)


class SubscriptionRead(Output):
    id: int
    url: str
    description: str | None
    event_types: list[str]
    agency_ids: list[int]
    category_ids: list[int]
    kinds: list[str]
    include_personal_data: bool
    owner_role: Audience
    owner_agency_id: int | None
    owner_source_system: str | None
    is_active: bool
    created_by: str
    created_at: datetime
    updated_at: datetime
    secret_rotated_at: datetime
    previous_secret_expires_at: datetime | None = Field(
        description="Until then deliveries are signed with the previous secret too"
    )


class SubscriptionWithSecret(Output):
    subscription: SubscriptionRead
    secret: str = Field(description="The signing secret; shown only now")


class DeliveryRead(Output):
    id: int
    subscription_id: int
    event_id: int
    event_type: str
    case_id: int | None
    status: DeliveryStatus
    priority: int = Field(description="0 goes first (missing persons to partners)")
    attempts: int
    next_attempt_at: datetime | None = Field(description="When pending: the next try")
    first_attempt_at: datetime | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime


class DeliveryDetail(DeliveryRead):
    payload: dict[str, Any] = Field(description="The body as sent (signed byte for byte)")


class DeliveryPage(Output):
    items: list[DeliveryRead]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page")


class AllowlistEntryCreate(Input):
    entry: Annotated[str, StringConstraints(min_length=1, max_length=255)] = Field(
        description="A host name, `*.domain` for every name under it, an IP address or a "
        "network (CIDR)",
        examples=["mintrans.krasnodar.local", "*.corp.krasnodar.ru", "10.20.0.0/16"],
    )
    note: Description | None = None

    @field_validator("entry")
    @classmethod
    def _canonical(cls, value: str) -> str:
        return parse_entry(value)


class AllowlistEntryRead(Output):
    id: int
    entry: str
    note: str | None
    created_by: str
    created_at: datetime
