"""Open311 GeoReport v2 under /open311/v2: the format is the path's suffix (.json or .xml).

Discovery, services and service definitions are public, as the spec has them. Requests need an
api_key both to be filed and to be read: the spec leaves reading open, but cases are only ever
shown within a client's reach (app/cases/access.py), and without a key there is no reach.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request, Security
from fastapi.responses import Response

from app.auth.deps import Principal
from app.core.config import Settings, app_settings
from app.core.db import SessionDep
from app.open311.api_keys import api_key_query, client_principal
from app.open311.errors import Open311Route
from app.open311.formats import Format, respond
from app.open311.schemas import (
    Discovery,
    Error,
    RequestCreated,
    RequestForm,
    RequestQuery,
    Service,
    ServiceDefinition,
    ServiceRequest,
)
from app.open311.service import Open311Service

PREFIX = "/open311/v2"
router = APIRouter(prefix=PREFIX, tags=["Open311"], route_class=Open311Route)

SettingsDep = Annotated[Settings, Depends(app_settings)]
_ERRORS = {
    400: "Invalid arguments",
    403: "Missing or invalid api_key, or the key's client may not do this",
    404: "No such resource within the client's reach, or an unknown format",
}


def _docs(model: Any, *errors: int, ok: int = 200) -> dict[int | str, dict[str, Any]]:
    """OpenAPI: the JSON schema, XML as the alternative, and the spec's error list."""
    xml = {"text/xml": {"schema": {"type": "string", "description": "The same, as XML"}}}
    docs: dict[int | str, dict[str, Any]] = {ok: {"model": model, "content": xml}}
    for status in (*errors, 404):
        docs[status] = {"model": list[Error], "description": _ERRORS[status], "content": xml}
    # Never problem+json, never 422: every other error (429, 5xx) takes the same form.
    docs["default"] = {"model": list[Error], "description": "Other errors", "content": xml}
    return docs


async def reader(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    api_key: Annotated[str | None, Security(api_key_query)],
) -> Principal:
    return await client_principal(request, session, settings, api_key, "cases:read")


async def submitter(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    query_key: Annotated[str | None, Security(api_key_query)],
    api_key: Annotated[
        str | None, Form(description="<client_id>:<client_secret> (or in the query)")
    ] = None,
) -> Principal:
    key = api_key or query_key
    return await client_principal(request, session, settings, key, "cases:submit")


Reader = Annotated[Principal, Depends(reader)]
Submitter = Annotated[Principal, Depends(submitter)]
_ATTRIBUTE = re.compile(r"^attribute\[([^\]]+)\](\[\])?$")


async def request_form(
    request: Request,
    service_code: Annotated[str | None, Form(description="From GET services")] = None,
    lat: Annotated[str | None, Form(description="WGS84 latitude, with long")] = None,
    long: Annotated[str | None, Form(description="WGS84 longitude, with lat")] = None,
    address_string: Annotated[str | None, Form(description="Where, in words")] = None,
    address_id: Annotated[
        str | None, Form(description="Not supported: there is no address repository")
    ] = None,
    email: Annotated[str | None, Form()] = None,
    device_id: Annotated[str | None, Form(description="Makes the channel mobile_app")] = None,
    account_id: Annotated[str | None, Form(description="Ignored and never stored")] = None,
    first_name: Annotated[str | None, Form()] = None,
    last_name: Annotated[str | None, Form()] = None,
    phone: Annotated[str | None, Form()] = None,
    description: Annotated[str | None, Form(description="Up to 4,000 characters")] = None,
    media_url: Annotated[str | None, Form()] = None,
    external_id: Annotated[
        str | None,
        Form(
            description="RegionDesk extension: the request's id in your system; the same "
            "external_id again returns the request already filed (safe retries)"
        ),
    ] = None,
) -> RequestForm:
    """The spec's form fields, plus attribute[code]=value (attribute[code][]=value for lists)."""
    attributes: dict[str, list[str]] = {}
    for key, value in (await request.form()).multi_items():
        match = _ATTRIBUTE.match(key)
        if match and isinstance(value, str):
            attributes.setdefault(match.group(1), []).append(value)
    return RequestForm(
        service_code=service_code,
        lat=lat,
        long=long,
        address_string=address_string,
        address_id=address_id,
        email=email,
        device_id=device_id,
        account_id=account_id,
        first_name=first_name,
        last_name=last_name,
        phone=phone,
        description=description,
        media_url=media_url,
        external_id=external_id,
        attributes=attributes,
    )


async def request_query(
    service_request_id: Annotated[
        str | None, Query(description="Comma separated ids; overrides every other argument")
    ] = None,
    service_code: Annotated[str | None, Query(description="Comma separated")] = None,
    start_date: Annotated[
        str | None, Query(description="W3C datetime, e.g. 2026-11-01T00:00:00+03:00")
    ] = None,
    end_date: Annotated[
        str | None, Query(description="W3C datetime; at most 90 days after start_date")
    ] = None,
    status: Annotated[str | None, Query(description="open, closed or open,closed")] = None,
) -> RequestQuery:
    return RequestQuery(service_request_id, service_code, start_date, end_date, status)


@router.get(
    "/discovery.{format}",
    summary="Service discovery: the endpoint, its formats and how to get an api_key",
    responses=_docs(Discovery),
)
async def discovery(
    request: Request, session: SessionDep, settings: SettingsDep, format: Format
) -> Response:
    url = str(request.base_url).rstrip("/") + PREFIX
    document = await Open311Service(session, settings).discovery(url)
    return respond(format, "discovery", document.model_dump(mode="json"))


@router.get(
    "/services.{format}",
    summary="The service list: every active category (public)",
    responses=_docs(list[Service]),
)
async def services(session: SessionDep, settings: SettingsDep, format: Format) -> Response:
    rows = await Open311Service(session, settings).services()
    return respond(format, "services", [s.model_dump(mode="json") for s in rows])


@router.get(
    "/services/{service_code}.{format}",
    summary="A service definition: its attributes (public)",
    responses=_docs(ServiceDefinition),
)
async def service_definition(
    session: SessionDep, settings: SettingsDep, service_code: str, format: Format
) -> Response:
    definition = await Open311Service(session, settings).definition(service_code)
    return respond(format, "service_definition", definition.model_dump(mode="json"))


@router.post(
    "/requests.{format}",
    summary="File a service request: an appeal under 59-ФЗ, routed like any other intake",
    status_code=201,
    responses={
        **_docs(list[RequestCreated], 400, 403, ok=201),
        200: {
            "model": list[RequestCreated],
            "description": "Filed before with this external_id: that request",
        },
    },
)
async def create_request(
    principal: Submitter,
    session: SessionDep,
    settings: SettingsDep,
    form: Annotated[RequestForm, Depends(request_form)],
    format: Format,
) -> Response:
    intake, notice = await Open311Service(session, settings).submit(principal, form)
    created = RequestCreated(service_request_id=str(intake.case.id), service_notice=notice)
    return respond(
        format,
        "service_requests",
        [created.model_dump(mode="json")],
        status_code=201 if intake.created else 200,
        headers={"Location": f"{PREFIX}/requests/{intake.case.id}.{format.value}"},
    )


@router.get(
    "/requests.{format}",
    summary="Service requests within the api_key's reach: newest first, 90 days, 1,000 at most",
    responses=_docs(list[ServiceRequest], 400, 403),
)
async def list_requests(
    principal: Reader,
    session: SessionDep,
    settings: SettingsDep,
    query: Annotated[RequestQuery, Depends(request_query)],
    format: Format,
) -> Response:
    rows = await Open311Service(session, settings).requests(principal, query)
    return respond(format, "service_requests", [r.model_dump(mode="json") for r in rows])


@router.get(
    "/requests/{service_request_id}.{format}",
    summary="One service request within the api_key's reach",
    responses=_docs(list[ServiceRequest], 403),
)
async def get_request(
    principal: Reader,
    session: SessionDep,
    settings: SettingsDep,
    service_request_id: str,
    format: Format,
) -> Response:
    row = await Open311Service(session, settings).request(principal, service_request_id)
    return respond(format, "service_requests", [row.model_dump(mode="json")])
