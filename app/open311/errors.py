"""Open311's own error format, `[{"code": 400, "description": "..."}]` / `<errors><error>…`,
instead of the rest of the API's problem+json.

The spec's statuses: 404 for what does not exist, 403 for a missing or wrong api_key, 400 for
anything else the request gets wrong; server faults stay 5xx and throttling stays 429.

Open311 routes use `Open311Route`, which gives each of its requests its own exception handlers.
They run where the application's would (outside the endpoint and its dependencies), so the
request's unit of work has already rolled back when an error is rendered. Requests that reach
no Open311 route (a missing format, an unknown path or method under the prefix) are rendered
through `app.core.errors.FOREIGN_ERROR_FORMATS`.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from app.core.errors import FOREIGN_ERROR_FORMATS, DomainError
from app.open311.formats import Format, format_of, respond

log = logging.getLogger("regiondesk.open311")

PREFIX = "/open311/"
_KEPT = {403, 404, 405, 413, 429}


class InvalidArgument(DomainError):
    """400 with one or more descriptions (the spec's answer is a list of errors)."""

    status, code = 400, "invalid-argument"

    def __init__(self, *descriptions: str) -> None:
        super().__init__("; ".join(descriptions), descriptions=list(descriptions))


class InvalidApiKey(DomainError):
    status, code = 403, "invalid-api-key"


def open311_status(status: int) -> int:
    if status in _KEPT or status >= 500:
        return status
    return 403 if status == 401 else 400


def error_response(
    request: Request,
    status: int,
    descriptions: list[str],
    headers: dict[str, str] | None = None,
) -> Response:
    status = open311_status(status)
    errors = [{"code": status, "description": d} for d in descriptions]
    headers = {k: v for k, v in (headers or {}).items() if k.lower() != "www-authenticate"}
    return respond(format_of(request), "errors", errors, status, headers)


def _phrase(status: int) -> str:
    return HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"


async def _domain(request: Request, exc: DomainError) -> Response:
    descriptions = exc.extra.get("descriptions") or [exc.detail]
    return error_response(request, exc.status, descriptions, exc.headers)


async def _invalid(request: Request, exc: RequestValidationError) -> Response:
    errors = exc.errors()
    if any(tuple(e.get("loc", ())) == ("path", "format") for e in errors):
        named = request.path_params.get("format", "")
        formats = " or ".join(f".{f.value}" for f in Format)
        return error_response(request, 404, [f"Unknown format '{named}': use {formats}"])
    descriptions = [
        f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg', '')}"
        for e in errors
    ]
    return error_response(request, 400, descriptions)


def render_http_error(request: Request, exc: StarletteHTTPException) -> Response:
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else None
    if exc.status_code == 404 and detail in (None, _phrase(404)):
        detail = f"No Open311 resource at {request.url.path}: paths end in .json or .xml"
    return error_response(
        request, exc.status_code, [detail or _phrase(exc.status_code)], exc.headers
    )


async def _http(request: Request, exc: StarletteHTTPException) -> Response:
    return render_http_error(request, exc)


async def _stale(request: Request, exc: StaleDataError) -> Response:
    return error_response(request, 409, ["The record changed at the same time; retry"])


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(request, 500, ["An unexpected error occurred; it has been logged."])


HANDLERS: dict[Any, Any] = {
    DomainError: _domain,
    RequestValidationError: _invalid,
    StarletteHTTPException: _http,
    StaleDataError: _stale,
    Exception: _unexpected,
}


class Open311Route(APIRoute):
    """A route whose errors are rendered in Open311's format (see the module docstring)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Starlette looks the handlers up in the scope when the endpoint is wrapped, so these
        # replace the application's for this request only.
        scope["starlette.exception_handlers"] = (HANDLERS, {})
        await super().handle(scope, receive, send)


FOREIGN_ERROR_FORMATS[PREFIX] = render_http_error
