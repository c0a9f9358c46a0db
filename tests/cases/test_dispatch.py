"""The busiest routes are dispatched straight to their handler (app/core/dispatch.py): the same
answers as through FastAPI's exception middleware, exit stack and router, without them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import fastapi.routing
import pytest
from fastapi import FastAPI
from fastapi.middleware.asyncexitstack import AsyncExitStackMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware

from app.core.dispatch import HotRoutes
from tests.cases.conftest import incident
from tests.cases.test_planned_routes import SAME_ID, answer, planned


@contextmanager
def routed_by_fastapi(monkeypatch) -> Iterator[list[str]]:
    """The paths of the requests FastAPI's included router matched."""
    seen: list[str] = []
    original = fastapi.routing._IncludedRouter._match

    def counting(self, scope):
        seen.append(scope["path"])
        return original(self, scope)

    with monkeypatch.context() as patch:
        patch.setattr(fastapi.routing._IncludedRouter, "_match", counting)
        yield seen


def hot_routes(app: FastAPI) -> HotRoutes:
    layer = app.middleware_stack or app.build_middleware_stack()
    while not isinstance(layer, HotRoutes):
        layer = layer.app
    return layer


def test_the_busiest_routes_are_dispatched_in_fastapis_order(client):
    plan = hot_routes(client.app).plan()
    assert [(h.path, sorted(h.context.methods)) for h in plan] == [
        ("/api/v1/cases", ["GET"]),
        ("/api/v1/cases/{case_id}", ["GET"]),
        ("/api/v1/incidents", ["POST"]),
        ("/api/v1/appeals", ["POST"]),
    ]


def test_the_busiest_routes_skip_fastapis_routing(client, cases, auth, world, monkeypatch):
    sochi = cases["sochi"]
    body = incident(territory_id=world.krasnodar.id)

    def busiest() -> None:
        assert client.get(f"/api/v1/cases/{sochi}", headers=cases["operator"]).status_code == 200
        assert client.get("/api/v1/cases", headers=cases["operator"]).status_code == 200
        posted = client.post("/api/v1/incidents", json=body, headers=cases["social"])
        assert posted.status_code in (200, 201)

    with routed_by_fastapi(monkeypatch) as seen:
        busiest()
        # the others still go through FastAPI's router
        events = client.get(f"/api/v1/cases/{sochi}/events", headers=cases["operator"])
        assert events.status_code == 200
    assert seen == [f"/api/v1/cases/{sochi}/events"] * 2  # matched twice, as FastAPI does
    with planned(client, False), routed_by_fastapi(monkeypatch) as seen:
        busiest()
    assert len(seen) == 6


def test_dispatched_requests_are_answered_as_fastapi_does(client, cases, world):
    sochi, krasnodar = cases["sochi"], cases["krasnodar"]
    operator, agency, social = cases["operator"], cases["sochi_agency"], cases["social"]
    body = incident(territory_id=world.krasnodar.id)
    requests = [
        ("GET", f"/api/v1/cases/{sochi}", operator, None),
        ("GET", f"/api/v1/cases/{sochi}", agency, None),
        ("GET", f"/api/v1/cases/{krasnodar}", agency, None),  # another agency's: 404
        ("GET", "/api/v1/cases/999999", operator, None),
        ("GET", "/api/v1/cases/abc", operator, None),
        ("GET", f"/api/v1/cases/{sochi}", {}, None),
        ("GET", f"/api/v1/cases/{sochi}/", operator, None),  # not the route: FastAPI's answer
        ("HEAD", f"/api/v1/cases/{sochi}", operator, None),
        ("DELETE", f"/api/v1/cases/{sochi}", operator, None),  # another method: 405
        ("GET", "/api/v1/cases?limit=2&sort=due_at", operator, None),
        ("GET", "/api/v1/cases?limit=0", operator, None),
        ("GET", "/api/v1/cases", agency, None),
        ("PUT", "/api/v1/incidents", social, None),
        ("POST", "/api/v1/incidents", social, {}),
        ("POST", "/api/v1/incidents", cases["analyst"], body),  # no intake scope: 403
        ("POST", "/api/v1/incidents", {}, body),
        ("POST", "/api/v1/appeals", cases["pos"], {"channel": "web"}),
    ]
    client.post("/api/v1/incidents", json=body, headers=social)  # then the same again: 200
    requests.append(("POST", "/api/v1/incidents", social, body))
    for method, path, headers, json in requests:
        headers = {**headers, **SAME_ID}
        with planned(client, False):
            general = client.request(method, path, headers=headers, json=json)
        fast = client.request(method, path, headers=headers, json=json)
        assert answer(fast) == answer(general), (method, path)
        assert general.status_code != 500


def test_an_error_raised_while_the_body_streams_is_answered_by_its_handler(client, cases):
    """A chunked body over the limit is refused from within the handler's reading of it
    (app/core/limits.py): the exception handlers the dispatch puts in the scope answer it."""
    limit = client.app.state.settings.max_body_bytes

    def chunks():
        yield b'{"text": "'
        yield b"x" * limit
        yield b'"}'

    answers = []
    for on in (False, True):
        with planned(client, on):
            answers.append(
                client.post(
                    "/api/v1/incidents",
                    content=chunks(),
                    headers={**cases["social"], **SAME_ID, "Content-Type": "application/json"},
                )
            )
    assert answers[0].status_code == 413
    assert answer(answers[1]) == answer(answers[0])


async def _plain(scope, receive, send) -> None:  # pragma: no cover - never called
    raise AssertionError


@pytest.mark.parametrize("below", ["other", "no included router"])
def test_nothing_is_dispatched_when_fastapis_layers_are_other(below):
    app = FastAPI()

    @app.get("/x")
    async def x() -> int:
        return 1

    below_app = ExceptionMiddleware(AsyncExitStackMiddleware(app.router))
    inner = _plain if below == "other" else below_app
    assert HotRoutes(inner, fastapi_app=app, count=4).plan() == ()
