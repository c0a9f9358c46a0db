from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response
from pydantic import AwareDatetime

from app.auth.deps import Principal, requires
from app.cases import reads
from app.cases.models import CaseKind, CaseStatus, Priority
from app.cases.queries import CaseFilters, SortKey
from app.cases.schemas import (
    AcceptBody,
    AppealBatch,
    AppealCreate,
    AssignBody,
    BatchItem,
    BatchResult,
    CaseEdit,
    CaseEventRead,
    CasePage,
    CaseRead,
    CloseBody,
    IncidentBatch,
    IncidentCreate,
    InterimAnswerBody,
    RejectBody,
    ReopenBody,
    ReturnBody,
)
from app.cases.service import CaseService
from app.cases.workflow import Action, describe
from app.core.config import Settings, app_settings
from app.core.db import SessionDep
from app.core.errors import PreconditionFailed
from app.core.idempotency import IdempotencyDep
from app.core.planned_routes import PlannedRoute
from app.core.schemas import MAX_ID, MAX_PAGE_SIZE, IdFilter

router = APIRouter(prefix="/api/v1", tags=["cases"], route_class=PlannedRoute)
JSON = "application/json"

Reader = requires("cases:read")
Submitter = requires("cases:submit")
Triage = requires("cases:triage")
SettingsDep = Annotated[Settings, Depends(app_settings)]
# ids past the column range: 422, not a database overflow (500, found by tests/reliability)
CaseId = Annotated[int, Path(ge=1, le=MAX_ID)]
NOT_FOUND = {404: {"description": "No such case within your reach"}}
ACTION_ERRORS = {
    **NOT_FOUND,
    403: {"description": "Your role or agency may not take this action"},
    409: {"description": "The case's status does not allow this action (lists what it allows)"},
    412: {"description": "If-Match names a version that is not current"},
}


async def if_match_version(
    if_match: Annotated[
        str | None,
        Header(description='The ETag you last saw, e.g. "3"; the change is refused if stale'),
    ] = None,
) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    value = if_match.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise PreconditionFailed(f"If-Match: {if_match!r} is not an ETag of a case")
    return int(value)


IfMatch = Annotated[int | None, Depends(if_match_version)]


def _service(session, settings, principal: Principal) -> CaseService:
    return CaseService(session, settings, principal)


def _respond(response: Response, service: CaseService, case) -> CaseRead:
    response.headers["ETag"] = f'"{case.version}"'
    return service.read(case)


async def _respond_in_full(
    service: CaseService, case_id: int, kind: CaseKind | None = None
) -> Response:
    """One case as its own page shows it (with the partners' webhook receipts): the bytes of
    its CaseRead, built from a plain row (app/cases/reads.py), and its ETag."""
    data = await service.show(case_id, kind)
    return Response(
        reads.case_json(data), media_type=JSON, headers={"ETag": f'"{data["version"]}"'}
    )


async def list_filters(
    status: Annotated[list[CaseStatus] | None, Query()] = None,
    category_id: IdFilter = None,
    territory_id: IdFilter = None,
    agency_id: IdFilter = None,
    priority: Priority | None = None,
    overdue: bool | None = None,
    source: Annotated[str | None, Query(max_length=16, description="network or channel")] = None,
    source_system: Annotated[str | None, Query(max_length=64)] = None,
    # With a zone (…Z, …+03:00): an instant without one was a 500 at the database (UTCDateTime
    # refuses naive values), now a 422 naming the parameter.
    created_from: AwareDatetime | None = None,
    created_to: AwareDatetime | None = None,
    due_from: AwareDatetime | None = None,
    due_to: AwareDatetime | None = None,
    reopened: bool | None = None,
    q: Annotated[str | None, Query(min_length=1, max_length=200, description="Full text")] = None,
) -> CaseFilters:
    return CaseFilters(
        status=status,
        category_id=category_id,
        territory_id=territory_id,
        agency_id=agency_id,
        priority=priority,
        overdue=overdue,
        source=source,
        source_system=source_system,
        created_from=created_from,
        created_to=created_to,
        due_from=due_from,
        due_to=due_to,
        reopened=reopened,
        q=q,
    )


Filters = Annotated[CaseFilters, Depends(list_filters)]


async def _list(
    principal: Principal,
    session,
    settings,
    filters: CaseFilters,
    sort: str,
    limit: int,
    cursor: str | None,
    with_total: bool,
) -> Response:
    """A page of the queue or of a search: the bytes of its CasePage (app/cases/reads.py)."""
    service = _service(session, settings, principal)
    items, next_cursor, total = await service.list(filters, sort, limit, cursor, with_total)
    return Response(reads.page_json(items, next_cursor, total), media_type=JSON)


Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
Cursor = Annotated[str | None, Query(max_length=500)]


@router.get("/cases", response_model=CasePage, summary="The combined queue of cases")
async def list_cases(
    principal: Reader,
    session: SessionDep,
    settings: SettingsDep,
    filters: Filters,
    kind: CaseKind | None = None,
    sort: SortKey = "-created_at",
    limit: Limit = 50,
    cursor: Cursor = None,
    with_total: bool = False,
) -> Response:
    filters.kind = kind
    return await _list(principal, session, settings, filters, sort, limit, cursor, with_total)


@router.get("/cases/{case_id}", response_model=CaseRead, responses=NOT_FOUND)
async def get_case(
    principal: Reader, session: SessionDep, case_id: CaseId, request: Request
) -> Response:
    # The settings straight from the app (what SettingsDep gives): one dependency less to
    # solve on the most frequent request.
    service = _service(session, request.app.state.settings, principal)
    return await _respond_in_full(service, case_id)


@router.patch(
    "/cases/{case_id}",
    response_model=CaseRead,
    responses=ACTION_ERRORS,
    summary="Change category, territory or priority of an open case (recorded)",
)
async def edit_case(
    principal: Triage,
    session: SessionDep,
    settings: SettingsDep,
    case_id: CaseId,
    data: CaseEdit,
    if_match: IfMatch,
    response: Response,
):
    service = _service(session, settings, principal)
    return _respond(response, service, await service.edit(case_id, data, if_match))


@router.get(
    "/cases/{case_id}/events",
    response_model=list[CaseEventRead],
    responses=NOT_FOUND,
    summary="The case's history, oldest first (append-only)",
)
async def case_events(
    principal: Reader,
    session: SessionDep,
    settings: SettingsDep,
    case_id: CaseId,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
):
    return await _service(session, settings, principal).events(case_id, limit, offset)


ACTION_BODIES: dict[Action, Any] = {
    Action.assign: AssignBody,
    Action.accept: AcceptBody | None,
    Action.interim_answer: InterimAnswerBody,
    Action.close: CloseBody,
    Action.return_: ReturnBody,
    Action.reject: RejectBody,
    Action.reopen: ReopenBody,
}


def _optional(body_type: Any) -> bool:
    return type(None) in getattr(body_type, "__args__", ())


def _action_route(action: Action, body_type: Any):
    scope = (
        "cases:answer"
        if action in (Action.accept, Action.interim_answer, Action.close, Action.return_)
        else "cases:triage"
    )
    Actor = requires(scope)

    async def take_action(
        principal: Actor,
        session: SessionDep,
        settings: SettingsDep,
        case_id: CaseId,
        if_match: IfMatch,
        response: Response,
        idempotency: IdempotencyDep,
        body: Annotated[body_type, Body()],
    ):
        if (replay := await idempotency.start(principal.subject)) is not None:
            return replay
        service = _service(session, settings, principal)
        case = await service.act(case_id, action, body, if_match)
        result = _respond(response, service, case)
        idempotency.remember(response, 200, result)
        return result

    take_action.__name__ = f"case_{action.name.rstrip('_')}"
    # The body is required unless its type allows None (accept): a missing one was a 500.
    take_action.__defaults__ = (None,) if _optional(body_type) else None
    router.add_api_route(
        f"/cases/{{case_id}}/{action.value}",
        take_action,
        methods=["POST"],
        response_model=CaseRead,
        responses=ACTION_ERRORS,
        summary=describe(action),
        name=take_action.__name__,
    )


for _action, _body in ACTION_BODIES.items():
    _action_route(_action, _body)


_BATCH_ITEM_FIELDS = tuple(BatchItem.model_fields)
_FILED_FIELDS = ("id", "number", "status", "priority", "agency_id", "due_at")


def _batch_body(outcomes) -> bytes:
    """The BatchResult as JSON, written straight from the outcomes: a thousand BatchItem models
    validated and serialised again by the response model cost more than the intake's own
    Python. Same bytes as pydantic's (UTC as Z); the route keeps response_model for OpenAPI,
    and a test holds the two together."""
    items = []
    count = Counter()
    for o in outcomes:
        if o.intake is None:
            item = dict.fromkeys(_BATCH_ITEM_FIELDS)
            item.update(index=o.index, outcome="failed", problem=o.problem)
        else:
            case = o.intake.case
            outcome = "created" if o.intake.created else "existing"
            item = {"index": o.index, "outcome": outcome}
            for name in _FILED_FIELDS:
                item[name] = getattr(case, name)
            item["problem"] = None
        count[item["outcome"]] += 1
        items.append(item)
    result = {
        "created": count["created"],
        "existing": count["existing"],
        "failed": count["failed"],
        "items": items,
    }
    return orjson.dumps(result, option=orjson.OPT_UTC_Z)


class _OneBatchAtATime(PlannedRoute):
    """A worker takes a few batches at a time (REGIONDESK_BATCH_CONCURRENCY, 2 by default:
    while one batch waits for PostgreSQL — its COPYs and commit, most of its time — the next
    one's Python runs; more than two add memory, not speed, on one thread), and a batch waits
    for its turn before its body is read: the waiting ones hold no parsed copy of a thousand
    items (the server stops reading a body nobody reads)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def one_at_a_time(request: Request) -> Response:
            async with request.app.state.batch_gate:
                return await handler(request)

        return one_at_a_time


def _kind_routes(kind: CaseKind, path: str, create_model: type, batch_model: type) -> None:
    async def submit(
        principal: Submitter,
        session: SessionDep,
        settings: SettingsDep,
        data: Annotated[create_model, Body()],
        idempotency: IdempotencyDep,
    ) -> Response:
        if (replay := await idempotency.start(principal.subject)) is not None:
            return replay
        service = _service(session, settings, principal)
        # Without an Idempotency-Key nothing else is written: the create may be one statement
        # on its own (CaseService.submit's `alone`); with one, its record commits with the case.
        intake = await service.submit(data, alone=idempotency.record is None)
        # The CaseRead's bytes written from the row (reads.case_json), as the reads do: the
        # response model's validation and serialisation of the same fields cost more than the
        # intake's own Python. The route keeps response_model for OpenAPI; a test holds the
        # bytes to the model's.
        case = intake.case
        body = reads.case_json(service.answer(case))
        headers = {"Location": f"/api/v1/cases/{case.id}", "ETag": f'"{case.version}"'}
        status = 201 if intake.created else 200
        answer = Response(body, status_code=status, media_type=JSON, headers=headers)
        idempotency.remember(answer, status, body)
        return answer

    async def submit_batch(
        principal: Submitter,
        session: SessionDep,
        settings: SettingsDep,
        batch: Annotated[batch_model, Body()],
        idempotency: IdempotencyDep,
    ) -> Response:
        if (replay := await idempotency.start(principal.subject)) is not None:
            return replay
        service = _service(session, settings, principal)
        body = _batch_body(await service.submit_many(batch.items, create_model))
        answer = Response(content=body, media_type=JSON)
        idempotency.remember(answer, 200, body)
        return answer

    async def list_kind(
        principal: Reader,
        session: SessionDep,
        settings: SettingsDep,
        filters: Filters,
        sort: SortKey = "-created_at",
        limit: Limit = 50,
        cursor: Cursor = None,
        with_total: bool = False,
    ) -> Response:
        filters.kind = kind
        return await _list(principal, session, settings, filters, sort, limit, cursor, with_total)

    async def get_kind(
        principal: Reader,
        session: SessionDep,
        settings: SettingsDep,
        case_id: CaseId,
    ) -> Response:
        return await _respond_in_full(_service(session, settings, principal), case_id, kind)

    router.add_api_route(
        path,
        submit,
        methods=["POST"],
        response_model=CaseRead,
        status_code=201,
        summary=f"Submit an {kind.value}; the same source id again returns the existing case (200)",
        name=f"submit_{kind.value}",
        responses={200: {"description": "Already submitted"}},
    )
    router.add_api_route(
        f"{path}/batch",
        submit_batch,
        methods=["POST"],
        response_model=BatchResult,
        summary=f"Submit up to 1,000 {kind.value}s at once, answered item by item",
        description="Each item is validated, deduplicated and routed like a single intake; "
        "a bad item gets its own problem and never sinks the rest. The same source id as an "
        "existing case (or as an earlier item) is `existing`. More than 1,000 items: 413.",
        name=f"submit_{kind.value}_batch",
        responses={413: {"description": "More than 1,000 items"}},
        route_class_override=_OneBatchAtATime,
    )
    router.add_api_route(
        path,
        list_kind,
        methods=["GET"],
        response_model=CasePage,
        name=f"list_{kind.value}s",
        summary=f"List {kind.value}s",
    )
    router.add_api_route(
        f"{path}/{{case_id}}",
        get_kind,
        methods=["GET"],
        response_model=CaseRead,
        responses=NOT_FOUND,
        name=f"get_{kind.value}",
        summary=f"One {kind.value}",
    )


_kind_routes(CaseKind.incident, "/incidents", IncidentCreate, IncidentBatch)
_kind_routes(CaseKind.appeal, "/appeals", AppealCreate, AppealBatch)


# Requests are matched against the routes in their order: an intake was matched against the 11
# routes before its own first (`/cases/{case_id}`, its actions…), 8 % of a create's CPU in process
# (py-spy). The routes that take nearly every request go first (the queue, one case, the two
# intakes), the others keep their order; no two routes match the same request, so only the time
# to find one changes (and the order Swagger UI lists them in: these four first).
BUSIEST = (
    ("GET", "/api/v1/cases"),
    ("GET", "/api/v1/cases/{case_id}"),
    ("POST", "/api/v1/incidents"),
    ("POST", "/api/v1/appeals"),
)


def _rank(route: Any) -> int:
    for method in getattr(route, "methods", None) or ():
        if (method, route.path) in BUSIEST:
            return BUSIEST.index((method, route.path))
    return len(BUSIEST)


router.routes.sort(key=_rank)
