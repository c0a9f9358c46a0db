"""Routes whose dependencies are solved by a plan made once, at start-up.

FastAPI solves a route's dependencies anew for every request, generically: for each dependency
it works out again how to call it and under which cache key, and it wraps the endpoint in
telemetry, body and streaming handling a plain read does not use. On the most frequent
request, one case by id, that was a quarter of the process's CPU (bench/inprocess.py: 541 →
393 µs with the dependencies called directly).

`PlannedRoute` (the cases router's route class) keeps FastAPI's route — its path, OpenAPI
operation, matching and exception handling — and replaces only its request handler, and only
for routes the plan covers:

- the endpoint is a coroutine annotated to return a `Response` (it builds its own answer, so
  there is no response model to serialise: FastAPI would pass it through as it is), and it
  may take a JSON body (not a form);
- every dependency is a coroutine function, or an object whose `__call__` is one (no
  generators, no thread pool, no concurrency limits), and asks only for path, query and
  header parameters, the request, its security scopes and other such dependencies (no body,
  no cookies, no Response, no BackgroundTasks).

Any other route keeps FastAPI's handler. A planned request first reads what FastAPI reads
before it calls anything — an `application/json` body (orjson), every path, query and header
parameter (validated by the same fields, as `request_params_to_args` does) and the body's
fields (`request_body_to_args`) — and if any of it is not plainly right, the request is handed
to FastAPI's handler, which answers it exactly as it always does (its 422, or a 401 of a
dependency it calls first). Otherwise the dependencies are called in FastAPI's order with the
same arguments and the same per-request cache (one session, however many dependencies ask for
it), then the endpoint. FastAPI's handler also takes over while the application has
dependency overrides (tests), while FastAPI telemetry is recording, and when the setting
`planned_routes` is off (tests/cases/test_planned_routes.py compares the two answer for
answer).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Hashable, Iterator
from copy import deepcopy
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Response, params
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_body_to_args, request_params_to_args
from fastapi.routing import APIRoute
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase
from pydantic_core import PydanticUndefined
from starlette.datastructures import Headers, ImmutableMultiDict
from starlette.exceptions import HTTPException
from starlette.requests import Request

try:  # the included route's own dependant (router dependencies added), as FastAPI finds it
    from fastapi.routing import _effective_route_context_var
except ImportError:  # pragma: no cover - another FastAPI: every route keeps FastAPI's handler
    _effective_route_context_var = None

try:  # how FastAPI reads a parameter (used once per field, when the route is planned)
    from fastapi._compat import field_annotation_is_sequence
    from fastapi.dependencies.utils import _get_param_aliases, _get_param_model, _is_json_field
except ImportError:  # pragma: no cover - another FastAPI: its request_params_to_args reads them
    _get_param_aliases = None

try:
    from fastapi.telemetry import get_telemetry_data
except ImportError:  # pragma: no cover - a FastAPI without telemetry

    def get_telemetry_data() -> None:
        return None


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


@dataclass(frozen=True, slots=True)
class Param:
    """A path or query parameter as FastAPI's request_params_to_args reads it, with what it
    works out for every request (the key, whether repeated, the default) worked out once."""

    field: Any  # FastAPI's ModelField
    name: str
    key: str  # in the request
    loc: tuple[str, str]
    repeated: bool  # read with getlist
    sequence: bool  # an empty value counts as absent
    required: bool
    default: Any
    validate_default: bool


def _param(field: Any) -> Param | None:
    """The Param of a field, None for what only request_params_to_args reads (a model of
    parameters, alias choices)."""
    if _get_param_aliases is None or _get_param_model(field) is not None:
        return None
    aliases = _get_param_aliases(field)
    if len(aliases) != 1:
        return None
    key = aliases[0][1]
    info = field.field_info
    sequence = field_annotation_is_sequence(info.annotation)
    return Param(
        field=field,
        name=field.name,
        key=key,
        loc=(info.in_.value, key),
        repeated=sequence and not _is_json_field(field),
        sequence=sequence,
        required=info.is_required(),
        default=field.default,
        validate_default=bool(info.validate_default),
    )


def _params(fields: list[Any]) -> tuple[Param, ...] | list[Any]:
    """The fields as Params; if any is not one, the fields as they are (request_params_to_args
    reads them all)."""
    found = tuple(_param(f) for f in fields)
    return list(fields) if None in found else found  # type: ignore[return-value]


def _read(params: tuple[Param, ...] | list[Any], received: Any) -> dict[str, Any] | None:
    """The validated values of the parameters (None if any is wrong), as
    request_params_to_args gives them."""
    if isinstance(params, list):
        values, errors = request_params_to_args(params, received)
        return None if errors else values
    values = {}
    multi = isinstance(received, (ImmutableMultiDict, Headers))
    for p in params:
        value = received.getlist(p.key) if p.repeated and multi else received.get(p.key)
        if value is None or (p.sequence and len(value) == 0):
            if p.required:
                return None
            value = deepcopy(p.default)
            if not p.validate_default:
                values[p.name] = value
                continue
        value, errors = p.field.validate(value, values, loc=p.loc)
        if errors:
            return None
        values[p.name] = value
    return values


@dataclass(frozen=True, slots=True)
class Step:
    """One dependency (or the endpoint, at the root) and what it is called with."""

    call: Callable[..., Any]
    name: str | None  # the parameter of the caller it fills (None: called for its effect)
    key: Hashable  # FastAPI's dependency cache key
    use_cache: bool
    steps: tuple[Step, ...]  # its own dependencies, in order
    path_params: tuple[Param, ...] | list[Any]  # a list: FastAPI ModelFields (_params)
    query_params: tuple[Param, ...] | list[Any]
    header_params: tuple[Param, ...] | list[Any]
    body_params: list[Any]  # the endpoint's only
    request_names: tuple[str, ...]  # parameters given the Request itself
    scopes_name: str | None  # the SecurityScopes parameter
    scopes: tuple[str, ...]


class NotPlanned(Exception):
    """What makes a route's dependencies something only FastAPI's own solving handles."""


def _is_coroutine(call: Any) -> bool:
    if inspect.isclass(call):
        return False
    for candidate in (call, getattr(call, "__call__", None)):  # noqa: B004
        if candidate is None:
            continue
        if inspect.isgeneratorfunction(candidate) or inspect.isasyncgenfunction(candidate):
            return False
        if inspect.iscoroutinefunction(candidate):
            return True
    return False


def _oauth_scopes(dependant: Dependant) -> list[str]:
    scopes = list(dependant.parent_oauth_scopes or [])
    scopes += [s for s in dependant.own_oauth_scopes or [] if s not in scopes]
    return scopes


def _uses_scopes(dependant: Dependant) -> bool:
    return bool(
        dependant.own_oauth_scopes
        or dependant.security_scopes_param_name
        or isinstance(inspect.unwrap(dependant.call), SecurityBase)
        or any(_uses_scopes(d) for d in dependant.dependencies)
    )


def _cache_key(dependant: Dependant) -> Hashable:
    """FastAPI's key (fastapi.dependencies.models): the callable, the scopes if it or a
    dependency of it uses them, and its scope (none for a coroutine)."""
    scopes = tuple(sorted(set(_oauth_scopes(dependant)))) if _uses_scopes(dependant) else ()
    return (dependant.call, scopes, dependant.scope or "")


def plan(dependant: Dependant, name: str | None = None, *, root: bool = True) -> Step:
    """The step of a dependant and of everything it depends on; NotPlanned if any part of it
    needs FastAPI's own solving. Only the endpoint (the root) may take a body."""
    call = dependant.call
    if call is None or not _is_coroutine(call):
        raise NotPlanned(f"{call!r} is not a coroutine function")
    unsupported = {
        "cookie parameters": dependant.cookie_params,
        "a body (a dependency)": not root and dependant.body_params,
        "the Response": dependant.response_param_name,
        "BackgroundTasks": dependant.background_tasks_param_name,
        "a WebSocket": dependant.websocket_param_name,
        "a concurrency limit": getattr(dependant, "concurrency", None),
    }
    for what, present in unsupported.items():
        if present:
            raise NotPlanned(f"{call!r} takes {what}")
    requests = tuple(
        n for n in (dependant.request_param_name, dependant.http_connection_param_name) if n
    )
    return Step(
        call=call,
        name=name,
        key=_cache_key(dependant),
        use_cache=dependant.use_cache,
        steps=tuple(plan(d, d.name, root=False) for d in dependant.dependencies),
        path_params=_params(dependant.path_params),
        query_params=_params(dependant.query_params),
        header_params=_params(dependant.header_params),
        body_params=list(dependant.body_params),
        request_names=requests,
        scopes_name=dependant.security_scopes_param_name,
        scopes=tuple(_oauth_scopes(dependant)),
    )


def _parameters(step: Step, request: Request, found: list[dict[str, Any]]) -> bool:
    """Every step's path, query and header parameters, validated as FastAPI validates them,
    appended to `found` in the order `_solve` reads them; False at the first wrong one."""
    for sub in step.steps:
        if not _parameters(sub, request, found):
            return False
    values: dict[str, Any] = {}
    if step.path_params:
        path = _read(step.path_params, request.path_params)
        if path is None:
            return False
        values.update(path)
    if step.query_params:
        query = _read(step.query_params, request.query_params)
        if query is None:
            return False
        values.update(query)
    if step.header_params:
        headers = _read(step.header_params, request.headers)
        if headers is None:
            return False
        values.update(headers)
    found.append(values)
    return True


_JSON = "application/json"


async def _json_body(request: Request) -> Any:
    """The request's JSON body as FastAPI would read it, or PydanticUndefined when FastAPI's
    own reading is needed (another content type, no body, a body json.loads alone takes or
    refuses, an error while receiving it but the HTTPExceptions FastAPI lets through).
    orjson and json.loads give the same values for what both accept."""
    content_type = request.headers.get("content-type")
    if content_type is None or content_type.partition(";")[0].strip().lower() != _JSON:
        return PydanticUndefined
    try:
        raw = await request.body()  # kept on the request: FastAPI's handler reads it again
    except HTTPException:
        raise
    except Exception:
        return PydanticUndefined
    if not raw:
        return PydanticUndefined
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return PydanticUndefined


async def _solve(
    step: Step, request: Request, cache: dict[Hashable, Any], found: Iterator[dict[str, Any]]
) -> dict[str, Any]:
    """The arguments of a step, as FastAPI's solve_dependencies gives them: each dependency
    solved in order (its own dependencies first, even when its value is cached), called unless
    cached, its value cached under its key."""
    values: dict[str, Any] = {}
    for sub in step.steps:
        arguments = await _solve(sub, request, cache, found)
        if sub.use_cache and sub.key in cache:
            value = cache[sub.key]
        else:
            value = await sub.call(**arguments)
        if sub.name is not None:
            values[sub.name] = value
        if sub.key not in cache:
            cache[sub.key] = value
    values.update(next(found))
    for name in step.request_names:
        values[name] = request
    if step.scopes_name:
        values[step.scopes_name] = SecurityScopes(scopes=list(step.scopes))
    return values


def planned_handler(root: Step, general: Handler, embed_body_fields: bool = False) -> Handler:
    """The route's handler: the plan, or FastAPI's own (`general`) when the plan does not
    apply to this request."""

    async def handle(request: Request) -> Response:
        app = request.app
        if (
            app.dependency_overrides
            or not app.state.settings.planned_routes
            or get_telemetry_data() is not None
        ):
            return await general(request)
        if root.body_params:  # FastAPI reads the body first
            body = await _json_body(request)
            if body is PydanticUndefined:
                return await general(request)
        found: list[dict[str, Any]] = []
        if not _parameters(root, request, found):
            return await general(request)  # FastAPI's answer to wrong parameters
        if root.body_params:
            values, errors = await request_body_to_args(
                body_fields=root.body_params,
                received_body=body,
                embed_body_fields=embed_body_fields,
            )
            if errors:
                return await general(request)
            found[-1].update(values)  # the endpoint's own, read last
        arguments = await _solve(root, request, {}, iter(found))
        response = await root.call(**arguments)
        if not isinstance(response, Response):
            raise TypeError(f"{root.call.__name__} returned {type(response).__name__}")
        return response

    return handle


def _returns_response(endpoint: Callable[..., Any]) -> bool:
    """Whether the endpoint is annotated to return a Response (a class, or its name as a
    string that the endpoint's module resolves)."""
    annotation = inspect.signature(endpoint).return_annotation
    if isinstance(annotation, str):
        annotation = getattr(inspect.unwrap(endpoint), "__globals__", {}).get(annotation)
    return inspect.isclass(annotation) and issubclass(annotation, Response)


class PlannedRoute(APIRoute):
    """An APIRoute whose requests are solved by a plan when the plan covers the route."""

    def get_route_handler(self) -> Handler:
        general = super().get_route_handler()
        if _effective_route_context_var is None:
            return general
        route: Any = self
        context = _effective_route_context_var.get()
        if context is not None and context.original_route is self:
            route = context  # with the including routers' dependencies
        embed = getattr(route, "_embed_body_fields", None)
        if not _returns_response(self.endpoint) or (route.body_field and embed is None):
            return general
        body_field = route.body_field
        if body_field is not None and isinstance(body_field.field_info, params.Form):
            return general  # forms and files: FastAPI reads them
        try:
            root = plan(route.dependant)
        except NotPlanned:
            return general
        return planned_handler(root, general, bool(embed))
