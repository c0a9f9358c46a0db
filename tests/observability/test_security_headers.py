"""Security headers on every answer: errors, 500s and the docs included; a strict CSP for the
API, one that lets the docs load their own files; HSTS in production only; no-store by default
without breaking ETag / If-Match on cases."""

from __future__ import annotations

import pytest
from fastapi import FastAPI, Response
from fastapi.testclient import TestClient

from app.core.security_headers import API_CSP, DOCS_CSP
from tests.cases.conftest import incident

COMMON = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


async def boom() -> dict:
    raise RuntimeError("no")


async def cacheable(response: Response) -> dict:
    response.headers["Cache-Control"] = "public, max-age=60"
    return {"ok": True}


def _routes(app: FastAPI) -> None:
    app.add_api_route("/boom", boom)
    app.add_api_route("/cacheable", cacheable)


@pytest.fixture
def http(bare_app):
    app = bare_app()
    _routes(app)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _assert_api_headers(response) -> None:
    for name, value in COMMON.items():
        assert response.headers[name] == value, name
    assert response.headers["content-security-policy"] == API_CSP
    assert "frame-ancestors 'none'" in API_CSP and "default-src 'none'" in API_CSP


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/health/live", 200),
        ("GET", "/openapi.json", 200),
        ("GET", "/no-such-route", 404),
        ("DELETE", "/health/live", 405),
        ("GET", "/api/v1/cases", 401),
        ("GET", "/boom", 500),
    ],
)
def test_every_answer_has_the_headers(http, method, path, status):
    response = http.request(method, path)
    assert response.status_code == status
    _assert_api_headers(response)
    assert response.headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in response.headers


def test_docs_pages_get_a_csp_that_allows_their_own_files(http):
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        response = http.get(path)
        assert response.status_code == 200
        assert response.headers["content-security-policy"] == DOCS_CSP
        assert response.headers["x-frame-options"] == "DENY"
    assert "script-src 'self';" in DOCS_CSP  # no inline script, no other origin
    assert "frame-ancestors 'none'" in DOCS_CSP


def test_docs_assets_may_be_cached(http):
    response = http.get("/docs/static/swagger-ui.css")
    assert response.status_code == 200
    assert "cache-control" not in response.headers
    assert response.headers["etag"]


def test_a_route_that_sets_cache_control_keeps_it(http):
    assert http.get("/cacheable").headers["cache-control"] == "public, max-age=60"


def test_the_token_endpoint_keeps_one_no_store(http):
    response = http.post("/api/v1/auth/token", data={"grant_type": "password"})
    assert response.headers.get_list("cache-control") == ["no-store"]


def test_hsts_in_production_only(bare_app):
    app = bare_app(env="production", secret_key="p" * 40)
    with TestClient(app) as client:
        response = client.get("/health/live")
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")
    _assert_api_headers(response)


def test_cases_keep_their_etag_and_if_match_under_no_store(client, auth):
    headers = auth.headers("integration")
    created = client.post("/api/v1/incidents", json=incident(), headers=headers)
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    etag = created.headers["etag"]
    operator = auth.headers("operator")
    read = client.get(f"/api/v1/cases/{created.json()['id']}", headers=operator)
    assert read.headers["etag"] == etag
    assert read.headers["cache-control"] == "no-store"
    stale = client.patch(
        f"/api/v1/cases/{created.json()['id']}",
        json={"priority": "high"},
        headers={**operator, "If-Match": '"999"'},
    )
    assert stale.status_code == 412
