"""OWASP API4 (unrestricted resource consumption) and API8 (security misconfiguration), what
tests/observability, tests/core and tests/cases do not already hold.

Already there: the body-size limit (413, streamed bodies too), rate limits on intake and the
token endpoint (429 with Retry-After), the batch cap (1,000 items, 413), webhook delivery
timeouts, production refusing default secrets and `*` CORS, security headers, the docs switch,
generic 500s without SQL or traces. Added here, derived from the OpenAPI schema so that a new
route is held to them: every list caps its page size; every free-text query parameter has a
maximum length; ids past the column range are 404/422 on every id route; the debug switch
is off in every environment; CORS admits only listed origins; and hostile input (deep JSON, NUL
characters, huge numbers, overlong search) never produces a 500, a trace, SQL or a file path."""

from __future__ import annotations

import pytest

from app.core.config import Settings
from app.main import create_app
from tests.conftest import ROOT, TEST_SECRET

MAX_PAGE = 1000  # the largest page any list may serve (Open311's fixed page is 1,000)
# Lists bounded by their range instead of a page (tested in test_a_range_over_the_cap_...).
RANGE_CAPPED = {"/api/v1/calendar/days"}
# Aggregates: as many rows as groups (bounded by the dimensions), not a page of records.
AGGREGATES = {"/api/v1/stats/summary", "/api/v1/stats/timeseries", "/api/v1/stats/league"}
# What an error answer must never show: traces, file paths, SQL, driver names.
LEAKS = ("Traceback", 'File "', ".py", str(ROOT), "sqlalchemy", "asyncpg", "SELECT ", "INSERT ")


def _openapi(settings) -> dict:
    return create_app(settings).openapi()


def _flat(schema: dict) -> list[dict]:
    if "anyOf" in schema:
        return [s for option in schema["anyOf"] for s in _flat(option)]
    return [schema]


def _operations(spec: dict):
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            yield method.upper(), path, op


def _lists(spec: dict):
    """GET operations answering a JSON object with an `items` array."""
    for method, path, op in _operations(spec):
        if method != "GET":
            continue
        content = op.get("responses", {}).get("200", {}).get("content", {})
        schema = content.get("application/json", {}).get("schema", {})
        ref = schema.get("$ref")
        if not ref:
            continue
        component = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
        if component.get("properties", {}).get("items", {}).get("type") == "array":
            yield path, op


def test_every_list_caps_its_page_size(settings):
    spec = _openapi(settings)
    lists = list(_lists(spec))
    assert len(lists) >= 10  # cases, incidents, appeals, users, clients, reference, webhooks, …
    for path, op in lists:
        if path in RANGE_CAPPED | AGGREGATES:
            continue
        limits = [p for p in op.get("parameters", []) if p["name"] == "limit"]
        assert limits, f"{path} lists without a limit parameter"
        maximum = _flat(limits[0]["schema"])[0].get("maximum")
        assert maximum is not None and maximum <= MAX_PAGE, (path, maximum)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/cases",
        "/api/v1/incidents",
        "/api/v1/appeals",
        "/api/v1/users",
        "/api/v1/clients",
        "/api/v1/categories",
        "/api/v1/webhooks",
        "/api/v1/audit/personal-data",
    ],
)
def test_a_page_over_the_cap_is_refused(client, auth, path):
    admin = auth.headers("admin")
    response = client.get(path, params={"limit": 100_000}, headers=admin)
    assert response.status_code == 422, response.text
    assert any(e["loc"][-1] == "limit" for e in response.json()["errors"])


def test_every_free_text_query_parameter_is_bounded(settings):
    """Search and filter strings have a maximum length (Open311's arguments follow the spec
    and are checked by its parser: ids at most 1,000, dates and statuses by format)."""
    spec = _openapi(settings)
    unbounded = []
    for method, path, op in _operations(spec):
        if path.startswith("/open311/"):
            continue
        for param in op.get("parameters", []):
            if param["in"] not in ("query", "path"):
                continue
            for schema in _flat(param.get("schema", {})):
                free = schema.get("type") == "string" and not (
                    {"enum", "format", "$ref"} & schema.keys()
                )
                if free and "maxLength" not in schema:
                    unbounded.append((method, path, param["name"]))
    assert unbounded == []


def test_a_range_over_the_cap_is_refused(client, auth):
    response = client.get(
        "/api/v1/calendar/days",
        params={"from": "2000-01-01", "to": "2099-12-31"},
        headers=auth.headers("admin"),
    )
    assert response.status_code == 422, response.text


def _id_routes(spec: dict):
    for method, path, op in _operations(spec):
        names = [
            p["name"]
            for p in op.get("parameters", [])
            if p["in"] == "path" and _flat(p.get("schema", {}))[0].get("type") == "integer"
        ]
        if names:
            yield method, path, names


@pytest.mark.parametrize("huge", [2**31, 2**63, 10**30])
def test_ids_past_the_column_range_are_not_found_on_every_route(client, auth, settings, huge):
    """Ids beyond INTEGER/BIGINT are a 404 (or 422), never a database overflow (500). Each
    route is called by a role allowed on it (tests/test_authorization_matrix.py), so the id is
    really looked up."""
    from tests.test_authorization_matrix import EXPECTED

    spec = _openapi(settings)
    routes = list(_id_routes(spec))
    assert len(routes) >= 40
    headers = {role: auth.headers(role) for role in ("admin", "operator", "agency", "integration")}
    for method, path, names in routes:
        allowed = EXPECTED[(method, path)]
        role = next(r for r in ("admin", "operator", "agency", "integration") if r in allowed)
        url = path
        for name in names:
            url = url.replace("{" + name + "}", str(huge))
        url = url.replace("{format}", "json")
        response = client.request(method, url, headers=headers[role], json={})
        assert response.status_code in (404, 422), (method, url, role, response.text[:300])
        for leak in LEAKS:
            assert leak not in response.text, (url, leak)


LONG_DRY_RUN = '{"kind": "incident", "text": "' + "а" * 20_000 + '"}'
HOSTILE = [
    ("GET", "/api/v1/cases", {"q": "я" * 5_000}, None),
    ("GET", "/api/v1/cases", {"q": "a\x00b"}, None),
    ("GET", "/api/v1/cases", {"q": "(a|a)*$ .* [[[ \\"}, None),
    ("GET", "/api/v1/cases", {"status": ["new"] * 500}, None),
    ("GET", "/api/v1/cases", {"cursor": "x" * 5_000}, None),
    ("GET", "/api/v1/cases", {"cursor": "'; DROP TABLE case_file; --"}, None),
    ("GET", "/api/v1/cases", {"created_from": "9999-99-99"}, None),
    ("GET", f"/api/v1/cases/{2**63}", None, None),
    ("GET", f"/api/v1/cases/{10**30}", None, None),
    ("GET", "/api/v1/cases/-1", None, None),
    ("POST", "/api/v1/incidents", None, "[" * 20_000 + "]" * 20_000),
    ("POST", "/api/v1/incidents", None, '{"text": "\\u0000"}'),
    ("POST", "/api/v1/incidents", None, '{"text": "x", "reach": 1e309}'),
    ("POST", "/api/v1/incidents", None, "\xff\xfe not json"),
    ("POST", "/api/v1/incidents/batch", None, '{"items": [' + "[],".join([""] * 2000) + "1]}"),
    ("POST", "/api/v1/routing-rules/dry-run", None, LONG_DRY_RUN),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "params", "body"), HOSTILE)
def test_hostile_input_is_never_a_server_error(client, auth, method, path, params, body):
    headers = {**auth.headers("operator"), "Content-Type": "application/json"}
    response = client.request(
        method, path, params=params, content=body.encode() if body else None, headers=headers
    )
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"
    for leak in LEAKS:
        assert leak not in response.text, leak


def _text_query_routes(spec: dict):
    for method, path, op in _operations(spec):
        if method != "GET" or path.startswith("/open311/"):
            continue
        for param in op.get("parameters", []):
            schema = _flat(param.get("schema", {}))[0]
            if param["in"] == "query" and schema.get("type") == "string" and "enum" not in schema:
                yield path, param["name"]


def test_a_nul_character_in_any_text_query_parameter_is_a_422_naming_it(client, auth, settings):
    """PostgreSQL text cannot hold U+0000: refused as bad input, as in bodies, on every route
    (found by this test: `GET /api/v1/cases?q=a%00b` was a 500 on PostgreSQL)."""
    from tests.test_authorization_matrix import EXPECTED

    headers = {role: auth.headers(role) for role in ("admin", "operator", "agency", "analyst")}
    found = list(_text_query_routes(_openapi(settings)))
    assert len(found) >= 10
    for path, name in found:
        allowed = EXPECTED[("GET", path)] or {"admin"}
        role = next(r for r in ("admin", "operator", "agency", "analyst") if r in allowed)
        url = path.replace("{webhook_id}", "1").replace("{case_id}", "1")
        response = client.get(url, params={name: "a\x00b"}, headers=headers[role])
        assert response.status_code == 422, (path, name, response.status_code, response.text)
        assert ["query", name] in [e["loc"] for e in response.json()["errors"]], (path, name)


@pytest.mark.parametrize("env", ["dev", "test", "production"])
def test_debug_is_off_in_every_environment(env, database_url):
    settings = Settings(
        _env_file=None,
        env=env,
        database_url=database_url,
        secret_key=TEST_SECRET,
        metrics_token="m" * 40,
    )
    assert create_app(settings).debug is False


def test_cors_admits_only_the_listed_origins(database_url):
    from fastapi.testclient import TestClient

    settings = Settings(
        _env_file=None,
        env="test",
        database_url=database_url,
        secret_key=TEST_SECRET,
        cors_origins=["https://desk.krasnodar.ru"],
    )
    with TestClient(create_app(settings)) as http:
        preflight = {"Access-Control-Request-Method": "POST"}
        good = http.options(
            "/api/v1/cases", headers={"Origin": "https://desk.krasnodar.ru", **preflight}
        )
        assert good.headers["access-control-allow-origin"] == "https://desk.krasnodar.ru"
        for origin in ("https://evil.example", "null", "https://desk.krasnodar.ru.evil.example"):
            bad = http.options("/api/v1/cases", headers={"Origin": origin, **preflight})
            assert "access-control-allow-origin" not in bad.headers, origin
            simple = http.get("/health/live", headers={"Origin": origin, "Cookie": "a=b"})
            assert "access-control-allow-origin" not in simple.headers, origin
