"""Domain errors and their one rendering: RFC 9457 problem details."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.observability.request_id import current_request_id

log = logging.getLogger("regiondesk.errors")

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://regiondesk.example/problems/"

# Path prefixes that speak another standard, whose errors are not problems (Open311 registers
# "/open311/"): requests there that reach no route (unknown path or method) are rendered by it.
FOREIGN_ERROR_FORMATS: dict[str, Callable[[Request, StarletteHTTPException], Response]] = {}


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON

    def render(self, content: Any) -> bytes:
        # Every problem names its request, so a caller's report leads to the log lines.
        request_id = current_request_id()
        if request_id and isinstance(content, dict) and "request_id" not in content:
            content = {**content, "request_id": request_id}
        return orjson.dumps(content)


class DomainError(Exception):
    """An error a client can act on. Subclasses fix the status and the problem type."""

    status: int = 400
    code: str = "bad-request"
    title: str | None = None

    def __init__(
        self,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        code: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        if code is not None:
            self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


class NotFound(DomainError):
    status, code = 404, "not-found"


class Conflict(DomainError):
    status, code = 409, "conflict"


class InvalidReference(DomainError):
    """A referenced object does not exist or may not be used; names the field."""

    status, code = 422, "invalid-reference"

    def __init__(self, field: str, detail: str, **extra: Any) -> None:
        super().__init__(
            detail,
            errors=[{"loc": ["body", *field.split(".")], "msg": detail, "type": self.code}],
            **extra,
        )


class Unprocessable(DomainError):
    status, code = 422, "unprocessable"


class PreconditionFailed(DomainError):
    status, code = 412, "precondition-failed"


class PreconditionRequired(DomainError):
    status, code = 428, "precondition-required"


class Unauthorized(DomainError):
    status, code = 401, "unauthorized"

    def __init__(self, detail: str = "Missing or invalid credentials", **extra: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, **extra)


class Forbidden(DomainError):
    status, code = 403, "forbidden"


class TooManyRequests(DomainError):
    status, code = 429, "too-many-requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)}, retry_after=retry_after)


class PayloadTooLarge(DomainError):
    status, code = 413, "payload-too-large"


def problem(
    status: int,
    detail: str | None,
    *,
    code: str | None = None,
    title: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> ProblemResponse:
    body = problem_body(status, detail, code=code, title=title, instance=instance, **extra)
    return ProblemResponse(body, status_code=status, headers=headers)


def problem_body(
    status: int,
    detail: str | None,
    *,
    code: str | None = None,
    title: str | None = None,
    instance: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The problem document itself, also used inside batch answers (one per failed item)."""
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (code or phrase.lower().replace(" ", "-")),
        "title": title or phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    return body


def domain_problem(exc: DomainError, instance: str | None = None) -> dict[str, Any]:
    return problem_body(
        exc.status, exc.detail, code=exc.code, title=exc.title, instance=instance, **exc.extra
    )


def validation_problem(errors: Sequence[Any], prefix: Sequence[str | int] = ("body",)) -> dict:
    """A 422 problem for pydantic errors, each located under `prefix`."""
    items = [
        {"loc": [*prefix, *err.get("loc", ())], "msg": err.get("msg", ""), "type": err.get("type")}
        for err in errors
    ]
    fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in items[:5])
    return problem_body(
        422,
        f"The request is not valid: {fields}" if fields else "The request is not valid",
        code="validation-error",
        title="Validation error",
        errors=items,
    )


def internal_error(instance: str | None) -> ProblemResponse:
    """The one answer to a failure we did not foresee: no trace, SQL or path in it."""
    return problem(500, "An unexpected error occurred; it has been logged.", instance=instance)


DATABASE_RETRY_AFTER = 5  # seconds; a pool reconnects on the next request


def database_unavailable(exc: BaseException) -> bool:
    """The database (or the connection to it) is gone, rather than the query being wrong."""
    if isinstance(exc, OperationalError | PoolTimeoutError | ConnectionError | TimeoutError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details; `errors` names each bad field (422)",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "required": ["type", "title", "status"],
}


def document_problems(app: FastAPI) -> None:
    """FastAPI documents every 422 as application/json HTTPValidationError; the handler below
    sends application/problem+json. Rewrites those entries of the OpenAPI document to match."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
                PROBLEM_SCHEMA
            )
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    invalid = operation.get("responses", {}).get("422")
                    if invalid and "application/json" in invalid.get("content", {}):
                        invalid["content"] = {
                            PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}
                        }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI) -> None:
    document_problems(app)

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> ProblemResponse:
        body = domain_problem(exc, instance=request.url.path)
        return ProblemResponse(body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> ProblemResponse:
        body = validation_problem(exc.errors(), prefix=())
        body["instance"] = request.url.path
        return ProblemResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        for prefix, render in FOREIGN_ERROR_FORMATS.items():
            if request.url.path.startswith(prefix):
                return render(request, exc)
        detail = exc.detail if isinstance(exc.detail, str) else None
        return problem(
            exc.status_code,
            detail,
            instance=request.url.path,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(StaleDataError)
    async def _stale(request: Request, exc: StaleDataError) -> ProblemResponse:
        # Optimistic locking: another transaction changed the row between our read and write.
        status = 412 if request.headers.get("If-Match") else 409
        return problem(
            status,
            "The record was changed by someone else at the same time; reload it and retry",
            code="concurrent-change",
            instance=request.url.path,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> ProblemResponse:
        # Log the cause for operators; never send a trace, SQL or paths to the client.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return internal_error(request.url.path)

    async def _database(request: Request, exc: Exception) -> ProblemResponse:
        if not database_unavailable(exc):
            raise exc  # a wrong query, not an outage: the generic 500 above
        # The class names only: the message holds the SQL.
        cause = getattr(exc, "orig", None)
        log.warning(
            "database unavailable on %s %s: %s%s",
            request.method,
            request.url.path,
            type(exc).__name__,
            f" ({type(cause).__name__})" if cause is not None else "",
        )
        return problem(
            503,
            "The database is not reachable at the moment; retry shortly",
            code="database-unavailable",
            instance=request.url.path,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
        )

    for error in (DBAPIError, PoolTimeoutError, ConnectionError, TimeoutError):
        app.add_exception_handler(error, _database)
