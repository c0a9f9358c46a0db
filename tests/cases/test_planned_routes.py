"""The cases' reads and intake solve their dependencies by a plan made at start-up
(app/core/planned_routes.py): the same answers as FastAPI's own solving, for good requests and
bad, without FastAPI's solving on a good one."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import fastapi.routing
import orjson
import pytest
from fastapi import Body, Cookie, Depends, FastAPI, Header, Request, Response
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.core.planned_routes import NotPlanned, PlannedRoute, plan
from app.core.schemas import MAX_ID
from tests.cases.conftest import appeal, incident


@contextmanager
def solved_by_fastapi() -> Iterator[list[str]]:
    """The paths of the requests whose dependencies FastAPI solved itself."""
    seen: list[str] = []
    original = fastapi.routing.solve_dependencies

    async def counting(*, request, **kw):
        seen.append(request.url.path)
        return await original(request=request, **kw)

    fastapi.routing.solve_dependencies = counting
    try:
        yield seen
    finally:
        fastapi.routing.solve_dependencies = original


@contextmanager
def planned(client: TestClient, on: bool) -> Iterator[None]:
    state = client.app.state
    settings = state.settings
    state.settings = settings.model_copy(update={"planned_routes": on})
    try:
        yield
    finally:
        state.settings = settings


UNSTABLE = {"date"}
SAME_ID = {"X-Request-ID": "parity-check"}  # problems carry it


def answer(response) -> tuple:
    headers = sorted((k, v) for k, v in response.headers.items() if k not in UNSTABLE)
    return response.status_code, headers, response.content


def requests(cases: dict) -> list[tuple[str, dict]]:
    sochi, krasnodar = cases["sochi"], cases["krasnodar"]
    expired = {"Authorization": cases["operator"]["Authorization"][:-4] + "AAAA"}
    return [
        # one case: each role, another agency's case, an appeal asked for as an incident
        (f"/api/v1/cases/{sochi}", cases["operator"]),
        (f"/api/v1/cases/{sochi}", cases["analyst"]),
        (f"/api/v1/cases/{sochi}", cases["sochi_agency"]),
        (f"/api/v1/cases/{sochi}", cases["pos"]),
        (f"/api/v1/cases/{krasnodar}", cases["sochi_agency"]),
        (f"/api/v1/appeals/{sochi}", cases["operator"]),
        (f"/api/v1/incidents/{sochi}", cases["operator"]),
        (f"/api/v1/incidents/{krasnodar}", cases["analyst"]),
        ("/api/v1/cases/999999", cases["operator"]),
        # wrong ids, tokens and scopes
        ("/api/v1/cases/0", cases["operator"]),
        (f"/api/v1/cases/{MAX_ID + 1}", cases["operator"]),
        ("/api/v1/cases/abc", cases["operator"]),
        (f"/api/v1/cases/{sochi}", {}),
        (f"/api/v1/cases/{sochi}", expired),
        (f"/api/v1/cases/{sochi}", {"Authorization": "Basic b3BlcmF0b3I6eA=="}),
        ("/api/v1/cases/abc", {}),  # both wrong: FastAPI's order decides
        # pages: filters, sorts, cursors, totals, search; and wrong parameters
        ("/api/v1/cases", cases["operator"]),
        ("/api/v1/cases?limit=1&with_total=true", cases["operator"]),
        ("/api/v1/cases?status=new&status=assigned&sort=due_at", cases["operator"]),
        ("/api/v1/cases?kind=appeal&priority=normal&overdue=false", cases["analyst"]),
        ("/api/v1/cases?q=воды", cases["operator"]),
        ("/api/v1/cases", cases["sochi_agency"]),
        ("/api/v1/appeals?limit=5", cases["pos"]),
        ("/api/v1/incidents?sort=-updated_at", cases["operator"]),
        ("/api/v1/cases?limit=0", cases["operator"]),
        ("/api/v1/cases?status=bogus&limit=x", cases["operator"]),
        ("/api/v1/cases?sort=sideways", cases["operator"]),
        ("/api/v1/cases?created_from=2026-01-01T00:00:00", cases["operator"]),
        ("/api/v1/cases?source=%00", cases["operator"]),
        ("/api/v1/cases?cursor=not-a-cursor", cases["operator"]),
        ("/api/v1/cases?limit=0", {}),
    ]


def test_the_plan_answers_every_request_as_fastapi_does(client, cases):
    for path, headers in requests(cases):
        headers = {**headers, **SAME_ID}
        with planned(client, False):
            general = client.get(path, headers=headers)
        with planned(client, True):
            fast = client.get(path, headers=headers)
        assert answer(fast) == answer(general), path
    first = client.get("/api/v1/cases?limit=1", headers=cases["operator"]).json()
    cursor = f"/api/v1/cases?limit=1&cursor={first['next_cursor']}"
    headers = {**cases["operator"], **SAME_ID}
    with planned(client, False):
        general = client.get(cursor, headers=headers)
    assert answer(client.get(cursor, headers=headers)) == answer(general)
    assert general.status_code == 200 and len(general.json()["items"]) == 1


def test_a_good_read_is_not_solved_by_fastapi(client, cases):
    reads = [
        f"/api/v1/cases/{cases['sochi']}",
        f"/api/v1/appeals/{cases['sochi']}",
        "/api/v1/cases?limit=5&sort=due_at",
        "/api/v1/incidents",
    ]
    with solved_by_fastapi() as seen:
        for path in reads:
            assert client.get(path, headers=cases["operator"]).status_code == 200
    assert seen == []
    with planned(client, False), solved_by_fastapi() as seen:
        for path in reads:
            assert client.get(path, headers=cases["operator"]).status_code == 200
    assert len(seen) == len(reads)


def test_bad_parameters_and_other_routes_go_to_fastapi(client, cases):
    sochi = cases["sochi"]
    with solved_by_fastapi() as seen:
        assert client.get("/api/v1/cases/0", headers=cases["operator"]).status_code == 422
        assert client.get("/api/v1/cases?limit=0", headers=cases["operator"]).status_code == 422
        # a route the plan does not cover: its endpoint returns models, not a Response
        events = client.get(f"/api/v1/cases/{sochi}/events", headers=cases["operator"])
        assert events.status_code == 200
    assert seen == ["/api/v1/cases/0", "/api/v1/cases", f"/api/v1/cases/{sochi}/events"]


def test_dependency_overrides_are_honoured(client, cases):
    from app.core.config import app_settings

    calls = []

    def overridden() -> Settings:
        calls.append(1)
        return client.app.state.settings

    client.app.dependency_overrides[app_settings] = overridden
    try:
        with solved_by_fastapi() as seen:
            assert client.get("/api/v1/cases", headers=cases["operator"]).status_code == 200
    finally:
        client.app.dependency_overrides.clear()
    assert seen == ["/api/v1/cases"] and calls == [1]


def test_one_session_per_planned_request(client, cases):
    """The account's session and the route's are one (FastAPI's per-request cache)."""
    state = client.app.state
    made = []
    for name in ("sessionmaker", "read_sessionmaker"):
        maker = getattr(state, name)

        def counting(maker=maker, **kw):
            made.append(1)
            return maker(**kw)

        setattr(state, f"_{name}", maker)
        setattr(state, name, counting)
    try:
        client.app.state.account_cache = None  # the account read through the session
        answer = client.get(f"/api/v1/cases/{cases['sochi']}", headers=cases["operator"])
    finally:
        for name in ("sessionmaker", "read_sessionmaker"):
            setattr(state, name, getattr(state, f"_{name}"))
    assert answer.status_code == 200
    assert made == [1]


# --- what the plan covers ------------------------------------------------------------------------


async def _dep(request: Request) -> int:
    return 1


async def _with_cookie(session_id: Annotated[str, Cookie()]) -> str:
    return session_id


async def _with_body(data: Annotated[dict, Body()]) -> dict:
    return data


async def _generator():
    yield 1


def _sync() -> int:
    return 1


def _route(endpoint) -> PlannedRoute:
    return PlannedRoute("/x/{n}", endpoint, methods=["GET"])


@pytest.mark.parametrize(
    "dependency",
    [_with_cookie, _with_body, _generator, _sync],
    ids=["cookie", "body", "generator", "sync"],
)
def test_what_only_fastapi_solves_is_not_planned(dependency):
    async def endpoint(n: int, value: Annotated[object, Depends(dependency)]) -> Response:
        return Response()

    with pytest.raises(NotPlanned):
        plan(_route(endpoint).dependant)


def test_a_route_returning_models_keeps_fastapis_handler():
    async def models(n: int, value: Annotated[int, Depends(_dep)]) -> dict:
        return {"n": n}

    async def response(n: int, value: Annotated[int, Depends(_dep)]) -> Response:
        return Response(str(n + value))

    app = FastAPI()
    app.state.settings = Settings(_env_file=None, database_url="sqlite:///unused.db")
    for path, endpoint in (("/models/{n}", models), ("/response/{n}", response)):
        app.router.routes.append(PlannedRoute(path, endpoint, methods=["GET"]))
    test = TestClient(app)
    with solved_by_fastapi() as seen:
        assert test.get("/models/2").json() == {"n": 2}
        assert test.get("/response/2").text == "3"
        assert test.get("/response/x").status_code == 422
    assert seen == ["/models/2", "/response/x"]


def test_headers_are_read_by_the_plan_as_fastapi_reads_them():
    """Header parameters are planned like path and query ones (FastAPI's request_params_to_args
    cost an intake 24 µs for its one header, the plan 4): underscores read as hyphens, any
    case, a repeated header as a list, an alias; a wrong one is FastAPI's to answer."""

    async def headed(
        x_trace_id: Annotated[str | None, Header()] = None,
        x_tag: Annotated[list[str] | None, Header()] = None,
        key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=5)] = None,
    ) -> Response:
        return Response(orjson.dumps([x_trace_id, x_tag, key]), media_type="application/json")

    route = PlannedRoute("/headed", headed, methods=["GET"])
    assert isinstance(plan(route.dependant).header_params, tuple)  # planned, not FastAPI's
    app = FastAPI()
    app.state.settings = Settings(_env_file=None, database_url="sqlite:///unused.db")
    app.router.routes.append(route)
    test = TestClient(app)
    sent = [("X-Trace-Id", "t-1"), ("x-tag", "a"), ("X-TAG", "b"), ("idempotency-key", "k1")]
    with solved_by_fastapi() as seen:
        assert test.get("/headed", headers=sent).json() == ["t-1", ["a", "b"], "k1"]
        assert test.get("/headed").json() == [None, None, None]
        too_long = test.get("/headed", headers={"Idempotency-Key": "k" * 6})
    assert too_long.status_code == 422
    assert too_long.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert seen == ["/headed"]  # only the wrong one


def test_the_busiest_routes_are_matched_first(client):
    """A request is matched against each route before its own: the queue, one case and the two
    intakes are the first four the app tries (app.main._cases_first, the cases router's own
    order), and the documentation still lists the cases after the routers before them."""
    routes = []
    for route in client.app.router.routes:  # each included router's routes as included
        routes += getattr(route, "effective_route_contexts", lambda route=route: [route])()
    first = [(method, route.path) for route in routes[:4] for method in sorted(route.methods)]
    assert first == [
        ("GET", "/api/v1/cases"),
        ("GET", "/api/v1/cases/{case_id}"),
        ("POST", "/api/v1/incidents"),
        ("POST", "/api/v1/appeals"),
    ]
    documented = list(client.get("/openapi.json").json()["paths"])
    assert documented.index("/api/v1/auth/token") < documented.index("/api/v1/cases")


def test_the_cache_keys_are_fastapis(client):
    """The plan caches dependencies under FastAPI's own keys (when this FastAPI has them)."""
    models = pytest.importorskip("fastapi.dependencies.models")
    get_cache_key = getattr(models, "_get_cache_key", None)
    if get_cache_key is None:
        pytest.skip("this FastAPI keys its cache otherwise")
    from app.core.planned_routes import _cache_key

    checked = 0
    routes = []
    for route in client.app.router.routes:  # each included router's routes as included
        routes += getattr(route, "effective_route_contexts", lambda route=route: [route])()
    for route in routes:
        dependant = getattr(route, "dependant", None)
        stack = [dependant] if dependant is not None else []
        while stack:
            node = stack.pop()
            stack.extend(node.dependencies)
            assert _cache_key(node) == get_cache_key(dependant=node)
            checked += 1
    assert checked > 50


# --- intake: a JSON body ---------------------------------------------------------------------

MADE = {"id", "number", "external_id", "created_at", "updated_at", "due_at", "assigned_at"}


def made(response) -> tuple:
    """An intake's answer, less what differs between two cases made one after the other."""
    headers = sorted(
        (k, v)
        for k, v in response.headers.items()
        if k not in {"date", "location", "etag", "content-length"}
    )
    body = response.json()
    if response.status_code in (200, 201):
        body = {k: v for k, v in body.items() if k not in MADE}
    return response.status_code, headers, body


def test_intake_is_answered_as_fastapi_does(client, cases, world):
    social = {**cases["social"], **SAME_ID}
    json_as = {**social, "Content-Type": "application/json; charset=utf-8"}
    base = incident(territory_id=world.krasnodar.id)
    bodies = {n: {**base, "post_id": f"parity-{n}"} for n in "abcde"}
    posts = iter(range(1000))

    def fresh() -> dict:
        return {**base, "post_id": f"parity-fresh-{next(posts)}"}

    for planned_first in (True, False):
        first, second = ("a", "b") if planned_first else ("d", "e")
        with planned(client, planned_first):
            one = client.post("/api/v1/incidents", json=bodies[first], headers=social)
        with planned(client, not planned_first):
            other = client.post("/api/v1/incidents", json=bodies[second], headers=social)
        assert one.status_code == 201 and made(one) == made(other)
    # the same post again (200, the existing case), a charset, bad bodies, keys and callers
    nan = orjson_body(incident(n="parity-nan", territory_id=world.krasnodar.id)).replace(
        b'"text"', b'"latitude": NaN, "text"'
    )
    sent = [
        ("/api/v1/incidents", {"json": bodies["a"]}, social),
        ("/api/v1/incidents", {"content": lambda: orjson_body(fresh())}, json_as),
        ("/api/v1/incidents", {"content": b'{"network": "vk",'}, json_as),
        ("/api/v1/incidents", {"content": nan}, json_as),
        ("/api/v1/incidents", {"content": b"[1, 2]"}, json_as),
        ("/api/v1/incidents", {"content": b""}, json_as),
        (
            "/api/v1/incidents",
            {"content": orjson_body(bodies["c"])},
            {**social, "Content-Type": "text/plain"},
        ),
        ("/api/v1/incidents", {"json": {**bodies["c"], "reach": "many"}}, social),
        ("/api/v1/incidents", {"json": bodies["c"]}, {**social, "Idempotency-Key": "with space"}),
        ("/api/v1/incidents", {"json": bodies["c"]}, {**social, "Idempotency-Key": "k" * 256}),
        ("/api/v1/incidents", {"json": bodies["c"]}, SAME_ID),
        ("/api/v1/incidents", {"json": bodies["c"]}, {**cases["analyst"], **SAME_ID}),
        (
            "/api/v1/appeals",
            {"json": appeal(n="parity-x")},
            {**cases["pos"], **SAME_ID, "Content-Type": "application/xml"},
        ),
    ]
    for path, body, headers in sent:
        with planned(client, False):
            general = client.post(path, headers=headers, **sent_as(body))
        with planned(client, True):
            fast = client.post(path, headers=headers, **sent_as(body))
        assert made(fast) == made(general), (path, body, headers)
        assert general.status_code in (200, 201, 400, 401, 403, 415, 422), general.text


def sent_as(body: dict) -> dict:
    return {k: v() if callable(v) else v for k, v in body.items()}


def orjson_body(data: dict) -> bytes:
    import orjson

    return orjson.dumps(data)


def test_a_good_intake_is_not_solved_by_fastapi(client, auth, world):
    social = auth.headers("integration", source="incident-management")
    body = incident(n="planned-intake", territory_id=world.krasnodar.id)
    with solved_by_fastapi() as seen:
        created = client.post("/api/v1/incidents", json=body, headers=social)
        keyed = client.post(
            "/api/v1/incidents",
            json={**body, "post_id": "planned-keyed"},
            headers={**social, "Idempotency-Key": "planned-1"},
        )
        bad = client.post("/api/v1/incidents", json={**body, "reach": "many"}, headers=social)
    assert created.status_code == keyed.status_code == 201 and bad.status_code == 422
    assert seen == ["/api/v1/incidents"]  # only the bad one


def test_a_batch_is_read_by_the_plan_and_answered_as_fastapi_does(client, auth, world):
    # Batch intake goes the way of single intake: solved by the plan, its body read by
    # orjson; what FastAPI answers to a bad body, it answers the same.
    social = {**auth.headers("integration", source="incident-management"), **SAME_ID}
    json_as = {**social, "Content-Type": "application/json"}

    def items(tag: str) -> dict:
        made_as = [incident(n=f"batch-{tag}-{n}", territory_id=world.krasnodar.id) for n in "ab"]
        return {"items": made_as}

    with solved_by_fastapi() as seen:
        good = client.post("/api/v1/incidents/batch", json=items("planned"), headers=social)
    assert good.status_code == 200, good.text
    assert seen == [] and good.json()["created"] == 2
    sent = [
        {"json": items("again")},  # created by the first, existing for the second
        {"content": b'{"items": [', "headers": json_as},
        {"content": b'{"items": [{"network": NaN}]}', "headers": json_as},
        {"content": b'{"items": []}', "headers": json_as},
        {"json": {"items": [{"network": "vk"}]}},
    ]
    for body in sent:
        headers = body.pop("headers", social)
        with planned(client, False):
            general = client.post("/api/v1/incidents/batch", headers=headers, **body)
        with planned(client, True):
            fast = client.post("/api/v1/incidents/batch", headers=headers, **body)
        assert general.status_code in (200, 400, 422), general.text
        assert fast.status_code == general.status_code, (body, fast.text, general.text)
        if general.status_code != 200:
            assert made(fast) == made(general), body
