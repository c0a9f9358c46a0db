"""The application factory."""

from __future__ import annotations

import asyncio
import gc
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.datastructures import State

from app.accounts.router import router as accounts_router
from app.auth.router import router as auth_router
from app.cases.router import BUSIEST
from app.cases.router import router as cases_router
from app.core.callers import TokenSubjects
from app.core.config import Environment, Settings, get_settings
from app.core.db import make_engine, make_read_sessionmaker, make_sessionmaker
from app.core.dispatch import HotRoutes
from app.core.docs_ui import install_docs
from app.core.errors import install_error_handlers
from app.core.limits import RATE_HEADERS, install_limits
from app.core.schemas import refuse_nul_in_query
from app.deadlines.calendar import preload as preload_calendar
from app.deadlines.router import router as deadlines_router
from app.health.router import router as health_router
from app.observability.logging import lean_records
from app.observability.middleware import install_observability
from app.observability.router import router as metrics_router
from app.open311.router import router as open311_router
from app.privacy.router import router as privacy_router
from app.reference.router import router as reference_router
from app.routing.router import router as routing_router
from app.stats.router import router as stats_router
from app.webhooks.router import router as webhooks_router

DESCRIPTION = """
Incident and appeal routing for regional control centres.

Authenticate with **Authorize**: people use the *password* flow, ministry and monitoring
systems the *client credentials* flow. Errors are RFC 9457 `application/problem+json`.
"""


# FastAPI's native OpenTelemetry, off unless the setting `opentelemetry` asks for it: with no
# provider configured it records nothing, yet it asks the three global providers on every
# request whether one is (six calls and three environment look-ups per request).
TELEMETRY_OFF: dict[str, Any] = {"tracing": False, "metrics": False, "logs": False}


class AppState(State):
    """`app.state`, whose values are also plain attributes. Starlette's State keeps them in a
    dict behind `__getattr__`, which Python calls only after the ordinary look-up has failed:
    every read (the settings, the sessionmakers, the token checks: seven on a get) first
    formatted and raised an AttributeError, then caught it. Here a read is found at once;
    State's dict and its other ways in (items, iteration, `len`) stay as they are."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        super().__init__(state)
        self.__dict__.update(self._state)

    def __setattr__(self, key: str, value: Any) -> None:
        self._state[key] = value
        self.__dict__[key] = value

    def __delattr__(self, key: str) -> None:
        del self._state[key]
        del self.__dict__[key]

    __setitem__ = __setattr__
    __delitem__ = __delattr__


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine = make_engine(settings)
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        app.state.read_sessionmaker = make_read_sessionmaker(engine)
        if settings.env is Environment.production:
            lean_records()
        if settings.env is not Environment.test:
            preload_calendar(datetime.now(UTC).date())
            # What start-up built (modules, models, routes, the OpenAPI schema, the calendar's
            # tables) lives as long as the process: moved out of the collector's generations,
            # the full collections that requests trigger no longer walk it (shorter pauses, a
            # lower latency tail).
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="RegionDesk",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # both served offline by install_docs below
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
        swagger_ui_parameters={"persistAuthorization": True},
        telemetry=None if settings.opentelemetry else TELEMETRY_OFF,
    )
    app.state = AppState(app.state._state)
    app.state.settings = settings
    app.state.batch_gate = asyncio.Semaphore(settings.batch_concurrency)
    callers = TokenSubjects(settings)
    # first, so innermost: between the app's middleware and FastAPI's own layers
    app.add_middleware(HotRoutes, fastapi_app=app, count=len(BUSIEST))
    install_limits(app, settings, callers)  # inside CORS, so 413/429 answers carry its headers
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["ETag", "Location", "Retry-After", "X-Request-ID", *RATE_HEADERS],
        )
    install_observability(app, settings, callers)  # outermost: ids, logs, metrics, headers
    install_error_handlers(app)
    install_docs(app, settings)
    routers = (
        health_router,
        metrics_router,
        auth_router,
        accounts_router,
        reference_router,
        routing_router,
        deadlines_router,
        cases_router,
        privacy_router,
        stats_router,
        webhooks_router,
    )
    for router in routers:
        if router is cases_router:
            documented_at = len(app.router.routes)
        app.include_router(router, dependencies=[Depends(refuse_nul_in_query)])
    app.include_router(open311_router)  # the spec's arguments: NUL is stripped by its parser
    _cases_first(app, documented_at)
    return app


def _cases_first(app: FastAPI, documented_at: int) -> None:
    """Requests are matched against the routes in order, and nearly all of them are the cases'
    (the queue, one case, intake): their router goes first, before the 40 routes of the
    routers above it (matching took 89 µs of a request, now 14). No path of those routers is
    one of the cases' (/api/v1/cases, /incidents, /appeals), so no request changes hands. The
    OpenAPI document keeps listing the routers in the order above (Swagger UI groups by it)."""
    routes = app.router.routes
    cases = routes.pop(documented_at)
    routes.insert(0, cases)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            matching = app.router.routes
            documented = [r for r in matching if r is not cases]
            documented.insert(documented_at, cases)
            app.router.routes = documented
            try:
                return generate()
            finally:
                app.router.routes = matching
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
