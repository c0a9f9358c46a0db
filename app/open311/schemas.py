"""Open311 documents in the spec's field order (XML elements follow it). These models give the
JSON shape and its OpenAPI schema; XML is rendered from the same data (app/open311/formats.py).
Datetimes are W3C strings with the region's offset, ids are strings (opaque to clients)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"


class Endpoint(BaseModel):
    specification: str = SPECIFICATION
    url: str
    changeset: str
    type: Literal["production", "test"]
    formats: list[str]


class Discovery(BaseModel):
    changeset: str = Field(description="When services or their definitions last changed")
    contact: str
    key_service: str = Field(description="How to get an api_key")
    endpoints: list[Endpoint]


class Service(BaseModel):
    service_code: str = Field(description="The category's code")
    service_name: str
    description: str
    metadata: bool = Field(description="true: see the service definition for attributes")
    type: Literal["realtime", "batch", "blackbox"]
    keywords: str = Field(description="Comma separated synonyms")
    group: str = Field(description="The sector")


class AttributeValue(BaseModel):
    key: str
    name: str


class Attribute(BaseModel):
    variable: bool
    code: str
    datatype: Literal["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]
    required: bool
    datatype_description: str | None
    order: int
    description: str
    values: list[AttributeValue]


class ServiceDefinition(BaseModel):
    service_code: str
    attributes: list[Attribute]


class RequestCreated(BaseModel):
    service_request_id: str
    service_notice: str | None
    account_id: str | None = Field(default=None, description="Never stored, always null")


class ServiceRequest(BaseModel):
    service_request_id: str
    status: Literal["open", "closed"]
    status_notes: str | None
    service_name: str | None
    service_code: str | None
    description: str | None = Field(
        description="Only for requests the caller's own system submitted; otherwise null"
    )
    agency_responsible: str | None = Field(description="The agency the case is assigned to")
    service_notice: str | None
    requested_datetime: str
    updated_datetime: str
    expected_datetime: str | None = Field(description="The answer's legal deadline")
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float | None
    long: float | None
    media_url: str | None = Field(
        description="Only for requests the caller's own system submitted; otherwise null"
    )


class Error(BaseModel):
    code: int
    description: str


@dataclass
class RequestForm:
    """POST requests' form fields (all optional in the spec's sense: empty means absent)."""

    service_code: str | None = None
    lat: str | None = None
    long: str | None = None
    address_string: str | None = None
    address_id: str | None = None
    email: str | None = None
    device_id: str | None = None
    account_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    description: str | None = None
    media_url: str | None = None
    external_id: str | None = None
    attributes: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class RequestQuery:
    """GET requests' query, as sent (parsed and checked by the service)."""

    service_request_id: str | None = None
    service_code: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    status: str | None = None
