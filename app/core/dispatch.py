"""The busiest routes dispatched straight to their handler, past FastAPI's routing layers.

Between the application's middleware and a route's handler FastAPI puts three layers: the
exception middleware (it puts the exception handlers in the scope), an exit stack (for the
files of form bodies), and the router. This FastAPI's router matches a request twice when the
route belongs to an included router: once when the application's router asks the included one
whether it matches (the answer is kept, the match thrown away), again when it hands the request
over; each time it first recomputes the routes' version, walking every route of the router.
On one case by id, going past them takes 15 % of the request's instructions off in process
(bench.instructions: 1,004,816 → 856,787 a get; docs/benchmarks.md).

`HotRoutes` sits just inside the application's own middleware. A request for one of the first
routes FastAPI tries (the cases router's busiest four, app/cases/router.py `BUSIEST`: the
queue, one case, the two intakes) is matched by FastAPI's own matching of that route
(`_EffectiveRouteContext.matches`) and given to it with the scope FastAPI would have built:
the router, the included router and the route's context, its path parameters, the route, the
exception handlers and the exit stack. FastAPI tries those routes first, in this order, and
takes the first that matches fully, so the route chosen is the one FastAPI would choose. Any
other request, and any that matches one of them only partly (another method: FastAPI goes on
looking, then answers 405), goes the usual way, through all three layers.

The route's own handler (FastAPI's `request_response`) still wraps it in the exception
handlers, so an error is answered as before; only the outer copy of that wrapping, which sees
nothing the inner one has not handled, is skipped. Nothing is dispatched this way when this
FastAPI is built differently from what is described here (other layers, no included routers,
other private names: the plan is then empty), nor while the setting `planned_routes` is off
(tests/cases/test_dispatch.py compares the two answer for answer).
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.asyncexitstack import AsyncExitStackMiddleware
from fastapi.routing import APIRoute
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

try:  # the private parts of FastAPI's routing that its router uses to hand a request over
    from fastapi.routing import (
        _FASTAPI_EFFECTIVE_ROUTE_CONTEXT_KEY,
        _FASTAPI_INCLUDED_ROUTER_KEY,
        _apply_router_form_limits,
        _EffectiveRouteContext,
        _get_fastapi_scope,
        _IncludedRouter,
        _route_selected,
        _update_scope,
    )
except ImportError:  # pragma: no cover - another FastAPI: every request goes the usual way
    _IncludedRouter = None


@dataclass(frozen=True, slots=True)
class Hot:
    """One route dispatched directly: its context (its matching, its handler) in the included
    router that holds it."""

    context: Any  # _EffectiveRouteContext
    included: Any  # _IncludedRouter
    path: str  # the path template, as FastAPI reports the selected route


class HotRoutes:
    """ASGI middleware; add it before any other, so that it is the innermost and its `app` is
    FastAPI's exception middleware. `count`: how many of the first included router's leading
    routes are dispatched directly."""

    def __init__(self, app: ASGIApp, *, fastapi_app: FastAPI, count: int) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.count = count
        self._plan: tuple[Hot, ...] | None = None
        self._handlers: tuple[Any, Any] = ({}, {})

    def plan(self) -> tuple[Hot, ...]:
        """The routes dispatched directly, made on the first request (all routes are in place
        by then); empty unless the layers below are exactly FastAPI's three."""
        if self._plan is None:
            self._plan = self._make_plan()
        return self._plan

    def _make_plan(self) -> tuple[Hot, ...]:
        router = self.fastapi_app.router
        exceptions = self.app
        if (
            _IncludedRouter is None
            or not isinstance(exceptions, ExceptionMiddleware)
            or not isinstance(exceptions.app, AsyncExitStackMiddleware)
            or exceptions.app.app is not router
            or not router.routes
            or not isinstance(router.routes[0], _IncludedRouter)
        ):
            return ()
        self._handlers = (exceptions._exception_handlers, exceptions._status_handlers)
        included = router.routes[0]
        hot = []
        for candidate in included.effective_candidates()[: self.count]:
            if not isinstance(candidate, _EffectiveRouteContext) or not isinstance(
                candidate.original_route, APIRoute
            ):
                break  # only the leading routes keep FastAPI's order of trying
            path = getattr(candidate.starlette_route, "path_format", None)
            hot.append(Hot(candidate, included, path or candidate.path_format))
        return tuple(hot)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.fastapi_app.state.settings.planned_routes:
            for hot in self.plan():
                match, child_scope = hot.context.matches(scope)
                if match is Match.FULL:
                    await self._dispatch(hot, child_scope, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _dispatch(
        self, hot: Hot, child_scope: Scope, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """What the three layers do before they call the route, in their order."""
        scope["starlette.exception_handlers"] = self._handlers  # ExceptionMiddleware
        async with AsyncExitStack() as files:  # AsyncExitStackMiddleware
            scope["fastapi_middleware_astack"] = files
            # the application's router, then the included one (_IncludedRouter.handle and
            # _handle_selected)
            router = self.fastapi_app.router
            _apply_router_form_limits(scope, router.form_limits)
            if "router" not in scope:
                scope["router"] = router
            included = hot.included
            _apply_router_form_limits(scope, included.include_context.form_limits)
            fastapi_scope = _get_fastapi_scope(scope)
            fastapi_scope[_FASTAPI_INCLUDED_ROUTER_KEY] = included
            _update_scope(scope, child_scope)
            _route_selected(scope=scope, path=hot.path, mount=False)
            fastapi_scope[_FASTAPI_EFFECTIVE_ROUTE_CONTEXT_KEY] = hot.context
            route = hot.context.original_route
            scope["route"] = route
            await route.handle(scope, receive, send)
