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
# Open311 (app/open311) authenticates by a machine client's api_key, not a bearer token: without
# a key it is the spec's 403 (its own error format, not problem+json), whatever token is sent.
API_KEY: set[str] = {"api_key"}

EXPECTED: dict[tuple[str, str], set[str] | None] = {
    ("GET", "/health/live"): PUBLIC,
    ("GET", "/health/ready"): PUBLIC,
    # operations (app/observability): open unless REGIONDESK_METRICS_TOKEN is set, and then
    # it wants that token, not an API access token (tests/observability/test_metrics.py)
    ("GET", "/metrics"): PUBLIC,
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
    # privacy (app/privacy): the personal-data access record, for admins
    ("GET", "/api/v1/audit/personal-data"): ADMIN,
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
    # statistics and exports (app/stats): stats:read; agency staff get their own agency only
    ("GET", "/api/v1/stats/summary"): {"admin", "operator", "agency", "analyst"},
    ("GET", "/api/v1/stats/timeseries"): {"admin", "operator", "agency", "analyst"},
    ("GET", "/api/v1/stats/league"): {"admin", "operator", "agency", "analyst"},
    ("GET", "/api/v1/exports/cases"): {"admin", "operator", "agency", "analyst"},
    # Open311 (app/open311): discovery and services are public as in the spec; requests take an
    # api_key (reach as the key's client: tests/open311)
    ("GET", "/open311/v2/discovery.{format}"): PUBLIC,
    ("GET", "/open311/v2/services.{format}"): PUBLIC,
    ("GET", "/open311/v2/services/{service_code}.{format}"): PUBLIC,
    ("POST", "/open311/v2/requests.{format}"): API_KEY,
    ("GET", "/open311/v2/requests.{format}"): API_KEY,
    ("GET", "/open311/v2/requests/{service_request_id}.{format}"): API_KEY,
    # webhooks (app/webhooks): subscriptions for admins, agencies and integration clients
    # (each its own); the URL allowlist for admins only
    ("GET", "/api/v1/webhooks"): {"admin", "agency", "integration"},
    ("POST", "/api/v1/webhooks"): {"admin", "agency", "integration"},
    ("GET", "/api/v1/webhooks/{webhook_id}"): {"admin", "agency", "integration"},
    ("PATCH", "/api/v1/webhooks/{webhook_id}"): {"admin", "agency", "integration"},
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): {"admin", "agency", "integration"},
    ("POST", "/api/v1/webhooks/{webhook_id}/rotate-secret"): {"admin", "agency", "integration"},
    ("POST", "/api/v1/webhooks/{webhook_id}/ping"): {"admin", "agency", "integration"},
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): {"admin", "agency", "integration"},
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}"): {
        "admin",
        "agency",
        "integration",
    },
    ("POST", "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): {
        "admin",
        "agency",
        "integration",
    },
    ("GET", "/api/v1/webhooks/allowlist"): ADMIN,
    ("POST", "/api/v1/webhooks/allowlist"): ADMIN,
    ("DELETE", "/api/v1/webhooks/allowlist/{entry_id}"): ADMIN,
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
    if allowed is API_KEY:
        _api_key_only(client, auth, method, _url(path.replace("{format}", "json")))
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


def _api_key_only(client, auth, method: str, url: str) -> None:
    from tests import factories

    for headers in (None, {"Authorization": "Bearer not.a.token"}, *map(auth.headers, ALL)):
        response = client.request(method, url, headers=headers)
        assert response.status_code == 403, (headers, response.text)
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        assert response.json()[0]["code"] == 403
    machine = auth.db.add(factories.api_client())
    key = f"{machine.client_id}:{factories.PASSWORD}"
    response = client.request(method, url, params={"api_key": key})
    assert response.status_code not in (401, 403), response.text
