"""X-Request-ID: accepted when sane, made up otherwise, returned on every answer (errors and
500s included), named in problem bodies and in every log line of the request."""

from __future__ import annotations

import logging
import uuid

import pytest
from fastapi.testclient import TestClient

from app.observability.request_id import current_request_id
from tests.observability.conftest import assert_problem

log = logging.getLogger("regiondesk.test")


async def chatty() -> dict:
    log.info("working on it")
    log.warning("still working")
    return {"request_id_seen": current_request_id()}


async def boom() -> dict:
    raise RuntimeError("internals at /srv/app/secret.py")


@pytest.fixture
def http(bare_app):
    app = bare_app()
    app.add_api_route("/chatty", chatty)
    app.add_api_route("/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_a_request_without_an_id_gets_a_new_uuid4(http):
    first = http.get("/health/live").headers["x-request-id"]
    second = http.get("/health/live").headers["x-request-id"]
    assert uuid.UUID(first).version == 4
    assert first != second


@pytest.mark.parametrize("given", ["abc-123", "req_42.retry:1", "x" * 128, "Z"])
def test_a_sane_request_id_is_accepted_and_returned(http, given):
    response = http.get("/chatty", headers={"X-Request-ID": given})
    assert response.headers["x-request-id"] == given
    assert response.json() == {"request_id_seen": given}


@pytest.mark.parametrize(
    "given",
    [
        pytest.param("x" * 129, id="too-long"),
        pytest.param("two words", id="space"),
        pytest.param("caf\u00e9", id="not-ascii"),
        pytest.param("", id="empty"),
    ],
)
def test_an_unusable_request_id_is_replaced(http, given):
    response = http.get("/health/live", headers={"X-Request-ID": given.encode("latin-1")})
    returned = response.headers["x-request-id"]
    assert returned != given
    assert uuid.UUID(returned).version == 4


def test_problems_name_the_request(http):
    response = http.get("/no-such-route", headers={"X-Request-ID": "trace-me"})
    body = assert_problem(response, 404)
    assert body["request_id"] == "trace-me"
    assert response.headers["x-request-id"] == "trace-me"


def test_a_500_carries_the_id_headers_and_a_generic_body(http, log_lines):
    response = http.get("/boom", headers={"X-Request-ID": "crash-1"})
    body = assert_problem(response, 500)
    assert body["request_id"] == "crash-1"
    assert body["detail"] == "An unexpected error occurred; it has been logged."
    assert response.headers["x-request-id"] == "crash-1"
    assert response.headers["x-content-type-options"] == "nosniff"
    for leak in ("internals", "/srv/app", "RuntimeError", "Traceback"):
        assert leak not in response.text
    # The error is logged once by the service, with the traceback and the request id.
    errors = log_lines.of("regiondesk.errors")
    assert len(errors) == 1
    assert errors[0]["request_id"] == "crash-1"
    assert "RuntimeError: internals" in errors[0]["exc"]
    access = log_lines.of("regiondesk.access")
    assert [(a["status"], a["request_id"]) for a in access] == [(500, "crash-1")]


def test_every_log_line_of_a_request_carries_its_id(http, log_lines):
    http.get("/chatty", headers={"X-Request-ID": "req-A"})
    http.get("/chatty")
    lines = [line for line in log_lines.all() if line["logger"].startswith("regiondesk")]
    first = [line for line in lines if line.get("request_id") == "req-A"]
    assert [line["message"] for line in first][:2] == ["working on it", "still working"]
    assert first[-1]["logger"] == "regiondesk.access"
    others = [line for line in lines if line.get("request_id") != "req-A"]
    assert len(others) == 3 and len({line["request_id"] for line in others}) == 1


def test_the_id_does_not_leak_out_of_the_request(http):
    http.get("/chatty", headers={"X-Request-ID": "req-B"})
    assert current_request_id() is None
