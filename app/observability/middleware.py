"""One pure ASGI middleware per request: the request id (accepted or made, returned in
X-Request-ID, put in the context for every log line), the security headers, the access-log
line and the HTTP metrics. It sits outside the routes' error handling, so it also answers an
unhandled error: the 500 then carries the request id and the security headers like any other
answer. One layer, not one per concern: each costs every request a call and a wrapped send."""

from __future__ import annotations

import logging
import time

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.callers import TokenSubjects
from app.core.config import Environment, Settings
from app.core.docs_ui import DOCS_PAGES, STATIC_PREFIX
from app.core.errors import internal_error
from app.core.security_headers import SecurityHeaders
from app.observability.logging import DirectLine
from app.observability.metrics import HttpMetrics, Scraper, route_label
from app.observability.request_id import accepted_or_new, request_id_var

access_log = logging.getLogger("regiondesk.access")
_access_line = DirectLine(access_log)


class ObservabilityMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: HttpMetrics | None,
        subjects: TokenSubjects,
        security: SecurityHeaders,
        log_access: bool = True,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.subjects = subjects
        self.security = security
        self.log_access = log_access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        incoming = authorization = None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                incoming = value
            elif key == b"authorization":
                authorization = value
        request_id = accepted_or_new(incoming)
        id_header = (b"x-request-id", request_id.encode("ascii"))
        context = request_id_var.set(request_id)
        status = 500
        started = False

        security = self.security

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = [*message.get("headers", ()), id_header]
                security.add(headers, scope["path"])
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # The error handler outside us logs it (the request id is still in the context)
            # and would answer without our headers: answer here, then let it through.
            if not started:
                await internal_error(scope["path"])(scope, receive, send_with_id)
            raise
        except BaseException:
            if not started:
                status = 499  # cancelled: the client went away before an answer
            raise
        else:
            request_id_var.reset(context)
        finally:
            seconds = time.perf_counter() - start
            route = route_label(scope)
            if self.metrics is not None:
                self.metrics.observe(scope["method"], route, status, seconds)
            if self.log_access and access_log.isEnabledFor(logging.INFO):
                self._log(scope, route, status, seconds, authorization, request_id)

    def _log(self, scope, route, status, seconds, authorization, request_id) -> None:
        # Never the query string (search terms, names) nor any header value but the subject.
        ms = round(seconds * 1000, 2)
        method, path = scope["method"], scope["path"]
        fields = {
            "method": method,
            "path": path,
            "route": route,
            "status": status,
            "duration_ms": ms,
        }
        if authorization is not None and status != 401:
            subject = self.subjects.subject(authorization)
            if subject:
                fields["subject"] = subject
        # Straight to the service's own handler when nothing else would see the record
        # (app.observability.logging.DirectLine), else through logging.
        if not _access_line.line(f"{method} {path} {status} {ms}ms", request_id, fields):
            fields["request_id"] = request_id
            access_log.info("%s %s %s %sms", method, path, status, ms, extra=fields)


def install_observability(app: FastAPI, settings: Settings, subjects: TokenSubjects) -> None:
    """Adds the request-id/security-headers/log/metrics middleware (call after the other
    middlewares, so it wraps everything)."""
    metrics = HttpMetrics()
    app.state.metrics = Scraper(metrics, settings.metrics_cache_seconds)
    security = SecurityHeaders(
        production=settings.env is Environment.production,
        docs_pages=DOCS_PAGES if settings.docs_enabled else (),
        cacheable_prefixes=(STATIC_PREFIX,) if settings.docs_enabled else (),
    )
    app.add_middleware(
        ObservabilityMiddleware,
        metrics=metrics if settings.metrics_served else None,
        subjects=subjects,
        security=security,
        log_access=settings.log_access,
    )
