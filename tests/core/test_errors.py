"""Every error leaves the service as RFC 9457 application/problem+json."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from app.core.config import Settings
from app.core.errors import Conflict, TooManyRequests
from app.main import create_app

PROBLEM = "application/problem+json"


class Widget(BaseModel):
    name: str = Field(min_length=1)
    size: int


async def boom() -> dict:
    raise RuntimeError("secret internals: password=hunter2 at /srv/app/db.py")


async def make_widget(widget: Widget) -> Widget:
    return widget


async def conflict() -> dict:
    raise Conflict("The code 'roads' is already used", field="code")


async def slow_down() -> dict:
    raise TooManyRequests("Too many", 42)


@pytest.fixture
def app(tmp_path) -> FastAPI:
    settings = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/e.db")
    app = create_app(settings)
    app.add_api_route("/boom", boom)
    app.add_api_route("/widgets", make_widget, methods=["POST"])
    app.add_api_route("/conflict", conflict)
    app.add_api_route("/slow", slow_down)
    return app


@pytest.fixture
def http(app) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert body["title"]
    return body


def test_unknown_path_is_404_problem(http):
    body = _problem(http.get("/api/v1/no-such-thing"), 404)
    assert body["title"] == "Not Found"
    assert body["instance"] == "/api/v1/no-such-thing"


def test_wrong_method_is_405_problem(http):
    response = http.delete("/health/live")
    body = _problem(response, 405)
    assert body["title"] == "Method Not Allowed"
    assert "GET" in response.headers["allow"]


def test_validation_error_names_the_field(http):
    response = http.post("/widgets", json={"name": "", "size": "big"})
    body = _problem(response, 422)
    locs = {tuple(e["loc"]) for e in body["errors"]}
    assert ("body", "name") in locs
    assert ("body", "size") in locs
    assert "body.name" in body["detail"]
    assert all(e["msg"] and e["type"] for e in body["errors"])


def test_validation_error_does_not_echo_the_input(http):
    response = http.post("/widgets", json={"name": "", "size": "top-secret-value"})
    _problem(response, 422)
    assert "top-secret-value" not in response.text


def test_missing_body_is_422_problem(http):
    body = _problem(http.post("/widgets"), 422)
    assert body["errors"][0]["loc"][0] == "body"


def test_domain_error_carries_its_extras(http):
    body = _problem(http.get("/conflict"), 409)
    assert body["type"].endswith("/conflict")
    assert body["detail"] == "The code 'roads' is already used"
    assert body["field"] == "code"


def test_too_many_requests_sets_retry_after(http):
    response = http.get("/slow")
    body = _problem(response, 429)
    assert response.headers["retry-after"] == "42"
    assert body["retry_after"] == 42


def test_unexpected_exception_is_a_generic_500(http, caplog):
    with caplog.at_level(logging.ERROR, logger="regiondesk.errors"):
        response = http.get("/boom")
    body = _problem(response, 500)
    assert body["title"] == "Internal Server Error"
    assert body["detail"] == "An unexpected error occurred; it has been logged."
    for leak in ("secret internals", "hunter2", "RuntimeError", "Traceback", "/srv/app", ".py"):
        assert leak not in response.text
    # Operators get the cause in the log.
    logged = [r for r in caplog.records if r.name == "regiondesk.errors"]
    assert logged and logged[0].exc_info is not None
    assert "secret internals" in str(logged[0].exc_info[1])
