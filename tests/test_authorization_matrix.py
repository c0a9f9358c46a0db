"""Every route × every role (plus no token and a bad token) gets exactly the answer it should.

The table below is the specification. A route the app has but the table lacks fails the suite,
so a new route cannot ship without deciding who may call it."""

from __future__ import annotations

import re

import pytest

from app.main import create_app

ALL = {"admin", "operator", "agency", "integration", "analyst"}
ADMIN = {"admin"}
ROUTING_READERS = {"admin", "operator"}
SUBMITTERS = {"operator", "integration"}
TRIAGE = {"operator"}
ANSWER = {"agency"}
PUBLIC = None  # no authentication

EXPECTED: dict[tuple[str, str], set[str] | None] = {
    ("GET", "/health/live"): PUBLIC,
    ("GET", "/health/ready"): PUBLIC,
    ("POST", "/api/v1/auth/token"): PUBLIC,
    ("POST", "/api/v1/auth/revoke"): ALL,
    ("GET", "/api/v1/auth/me"): ALL,
    # accounts
    ("GET", "/api/v1/users"): ADMIN,
    ("POST", "/api/v1/users"): ADMIN,
    ("GET", "/api/v1/users/{user_id}"): ADMIN,
    ("PATCH", "/api/v1/users/{user_id}"): ADMIN,
    ("POST", "/api/v1/users/{user_id}/reset-password"): ADMIN,
    ("GET", "/api/v1/clients"): ADMIN,
    ("POST", "/api/v1/clients"): ADMIN,
    ("GET", "/api/v1/clients/{client_pk}"): ADMIN,
    ("PATCH", "/api/v1/clients/{client_pk}"): ADMIN,
    ("POST", "/api/v1/clients/{client_pk}/rotate-secret"): ADMIN,
    # reference data
    **{
        (method, path): (ALL if method == "GET" else ADMIN)
        for kind, key in (
            ("categories", "category_id"),
            ("territories", "territory_id"),
            ("agencies", "agency_id"),
        )
        for method, path in (
            ("GET", f"/api/v1/{kind}"),
            ("POST", f"/api/v1/{kind}"),
            ("GET", f"/api/v1/{kind}/{{{key}}}"),
            ("PATCH", f"/api/v1/{kind}/{{{key}}}"),
            ("DELETE", f"/api/v1/{kind}/{{{key}}}"),
        )
    },
    # routing rules
    ("GET", "/api/v1/routing-rules"): ROUTING_READERS,
    ("POST", "/api/v1/routing-rules"): ADMIN,
    ("POST", "/api/v1/routing-rules/dry-run"): ROUTING_READERS,
    ("GET", "/api/v1/routing-rules/{rule_id}"): ROUTING_READERS,
    ("PATCH", "/api/v1/routing-rules/{rule_id}"): ADMIN,
    ("DELETE", "/api/v1/routing-rules/{rule_id}"): ADMIN,
    # deadlines and the calendar
    ("GET", "/api/v1/deadline-policies"): ROUTING_READERS,
    ("POST", "/api/v1/deadline-policies"): ADMIN,
    ("GET", "/api/v1/deadline-policies/{policy_id}"): ROUTING_READERS,
    ("PATCH", "/api/v1/deadline-policies/{policy_id}"): ADMIN,
    ("DELETE", "/api/v1/deadline-policies/{policy_id}"): ADMIN,
    ("GET", "/api/v1/calendar/exceptions"): ALL,
    ("PUT", "/api/v1/calendar/exceptions/{day}"): ADMIN,
    ("DELETE", "/api/v1/calendar/exceptions/{day}"): ADMIN,
    ("GET", "/api/v1/calendar/days"): ALL,
    ("POST", "/api/v1/calendar/due"): ROUTING_READERS,
    # cases
    ("POST", "/api/v1/incidents"): SUBMITTERS,
    ("POST", "/api/v1/incidents/batch"): SUBMITTERS,
    ("GET", "/api/v1/incidents"): ALL,
    ("GET", "/api/v1/incidents/{case_id}"): ALL,
    ("POST", "/api/v1/appeals"): SUBMITTERS,
    ("POST", "/api/v1/appeals/batch"): SUBMITTERS,
    ("GET", "/api/v1/appeals"): ALL,
    ("GET", "/api/v1/appeals/{case_id}"): ALL,
    ("GET", "/api/v1/cases"): ALL,
    ("GET", "/api/v1/cases/{case_id}"): ALL,
    ("PATCH", "/api/v1/cases/{case_id}"): TRIAGE,
    ("GET", "/api/v1/cases/{case_id}/events"): ALL,
    ("POST", "/api/v1/cases/{case_id}/assign"): TRIAGE,
    ("POST", "/api/v1/cases/{case_id}/reject"): TRIAGE,
    ("POST", "/api/v1/cases/{case_id}/reopen"): TRIAGE,
    ("POST", "/api/v1/cases/{case_id}/accept"): ANSWER,
    ("POST", "/api/v1/cases/{case_id}/interim-answer"): ANSWER,
    ("POST", "/api/v1/cases/{case_id}/close"): ANSWER,
    ("POST", "/api/v1/cases/{case_id}/return"): ANSWER,
}


def _routes(app) -> set[tuple[str, str]]:
    # FastAPI mounts included routers lazily; the OpenAPI document lists every operation.
    # (No route of ours is hidden from the schema: a hidden one would escape this check.)
    found = set()
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            found.add((method.upper(), path))
    return found


def test_every_route_has_a_rule_and_every_rule_a_route(settings):
    routes = _routes(create_app(settings))
    assert sorted(routes - EXPECTED.keys()) == [], "routes without an authorization rule"
    assert sorted(EXPECTED.keys() - routes) == [], "rules for routes that do not exist"


def _url(path: str) -> str:
    return re.sub(r"\{day\}", "2026-01-01", re.sub(r"\{[a-z_]+\}", "999999", path))


@pytest.mark.parametrize(("method", "path"), sorted(EXPECTED))
def test_matrix(client, auth, method, path):
    allowed = EXPECTED[(method, path)]
    url = _url(path)
    if allowed is PUBLIC:
        assert client.request(method, url).status_code not in (401, 403)
        return
    none = client.request(method, url)
    assert none.status_code == 401, none.text
    assert none.headers["www-authenticate"] == "Bearer"
    bad = client.request(method, url, headers={"Authorization": "Bearer not.a.token"})
    assert bad.status_code == 401
    for role in sorted(ALL):
        response = client.request(method, url, headers=auth.headers(role))
        if role in allowed:
            assert response.status_code not in (401, 403), (role, response.text)
        else:
            assert response.status_code == 403, (role, response.status_code, response.text)
            assert response.headers["content-type"] == "application/problem+json"
