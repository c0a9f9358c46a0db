"""Schemathesis against the app's own OpenAPI document (issue 7, reliability): every operation
is called with generated valid input and a token of a role that may call it; no answer may be
a server error, and every answer must match the schema (status code, content type, body,
headers).

The requests go through the test's own TestClient (the app's event loop and engine, truncated
after the test), via a small requests adapter, so schemathesis serialises bodies as it does
against a live server."""

from __future__ import annotations

import io
import time

import httpx
import requests
import schemathesis
import urllib3
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests import factories
from tests.conftest import bearer

BASE_URL = "http://testserver"
MAX_EXAMPLES = 12
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

# Operations left out, each with its reason. Nothing else is skipped.
EXCLUDED: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/exports/cases"): (
        "streams CSV/XLSX bodies; covered by tests/stats (the schema declares only the media "
        "types, there is no body schema to check)"
    ),
    ("GET", "/metrics"): "Prometheus text exposition, not JSON; covered by tests/observability",
}

# Who calls each operation: admin, unless admin lacks the scope (tests/test_authorization_matrix).
ANSWER = {"accept", "interim-answer", "close", "return"}


def role_for(method: str, path: str) -> str:
    from tests.test_authorization_matrix import EXPECTED

    allowed = EXPECTED[(method, path)]
    if allowed is None or allowed == {"api_key"} or "admin" in allowed:
        return "admin"
    if path.rsplit("/", 1)[-1] in ANSWER:
        return "agency"
    if allowed == {"operator"} or "operator" in allowed:
        return "operator"
    return sorted(allowed)[0]


class _ViaTestClient(requests.adapters.HTTPAdapter):
    """Sends a prepared requests.Request through the TestClient, answers a requests.Response."""

    def __init__(self, client) -> None:
        super().__init__()
        self.client = client

    def send(self, request, **kwargs):
        body = request.body.encode() if isinstance(request.body, str) else request.body
        answer: httpx.Response = self.client.request(
            request.method,
            request.url,
            headers=dict(request.headers),
            content=body,
            follow_redirects=False,
        )
        # httpx has already decoded the body: the headers about its encoding no longer apply
        headers = [
            (name, value)
            for name, value in answer.headers.multi_items()
            if name.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(answer.content),
            headers=headers,
            status=answer.status_code,
            reason=answer.reason_phrase,
            version=11,
            preload_content=False,
        )
        return self.build_response(request, raw)

    def close(self) -> None:
        pass


def _session(client) -> requests.Session:
    session = requests.Session()
    session.mount("http://", _ViaTestClient(client))
    return session


def _world(client, db, auth) -> tuple[dict[str, object], dict[str, dict[str, str]], str]:
    """A small world, so that generated calls also reach objects that exist: the path
    parameters naming them, the callers' headers, and an Open311 api_key."""
    roads = db.add(factories.category(code="roads"))
    territory = db.add(factories.territory(code="krasnodar", kind="city_district"))
    agency = db.add(factories.agency(code="adm-krasnodar", territory_id=territory.id))
    # The callers get ids far from the small ones the fuzzer picks, so that no generated
    # PATCH /users/{id} disables or demotes the account whose token the run uses.
    headers = {}
    for n, role in enumerate(("admin", "operator", "agency", "analyst"), start=90_001):
        account = db.add(
            factories.user(id=n, role=role, agency_id=agency.id if role == "agency" else None)
        )
        headers[role] = bearer(auth.settings, f"user:{account.id}", role)
    machine = db.add(factories.api_client(id=90_001))
    headers["integration"] = bearer(auth.settings, f"client:{machine.id}", "integration")
    target = auth.user("operator")
    other = db.add(factories.api_client())
    case = client.post(
        "/api/v1/incidents",
        json={
            "network": "vk",
            "post_url": "https://vk.com/wall-1_2",
            "post_id": "post-1",
            "author_handle": "ivan",
            "published_at": "2026-01-05T10:00:00Z",
            "text": "Яма на дороге",
            "category_id": roads.id,
            "territory_id": territory.id,
        },
        headers=headers["operator"],
    )
    assert case.status_code == 201, case.text
    webhook = client.post(  # may be refused if the host does not resolve: then no id
        "/api/v1/webhooks",
        json={"url": "https://partner.example.org/hook"},
        headers=headers["admin"],
    )
    ids = {
        "user_id": target.id,
        "client_pk": other.id,
        "category_id": roads.id,
        "territory_id": territory.id,
        "agency_id": agency.id,
        "case_id": case.json()["id"],
        "service_request_id": str(case.json()["id"]),
        "service_code": "roads",
        "day": "2026-01-01",
    }
    if webhook.status_code == 201:
        ids["webhook_id"] = webhook.json()["id"]
    api_key = f"{machine.client_id}:{factories.PASSWORD}"
    return ids, headers, api_key


def _fuzzer(strategy, session, caller, params):
    @hypothesis_settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def call(case):
        case.call_and_validate(
            base_url=BASE_URL, session=session, headers=caller, params=params, checks=CHECKS
        )

    return call


def test_every_operation_answers_as_its_schema_says(client, db, auth):
    schema = schemathesis.openapi.from_dict(client.app.openapi())
    ids, headers, api_key = _world(client, db, auth)
    session = _session(client)
    operations = [result.ok() for result in schema.get_all_operations()]
    # Deleting runs last, so the objects the other operations reach still exist.
    operations.sort(key=lambda op: op.method.upper() == "DELETE")
    seen, failures, timings = set(), [], []
    for operation in operations:
        key = (operation.method.upper(), operation.path)
        seen.add(key)
        if key in EXCLUDED:
            continue
        names = {p.name for p in operation.path_parameters}
        fixed = {name: ids[name] for name in names if name in ids}
        strategy = operation.as_strategy()
        if fixed:
            strategy = st.one_of(strategy, operation.as_strategy(path_parameters=fixed))
        caller = headers[role_for(*key)]
        params = {"api_key": api_key} if operation.path.startswith("/open311/") else None

        call = _fuzzer(strategy, session, caller, params)
        started = time.perf_counter()
        try:
            call()
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{key[0]} {key[1]}: {type(exc).__name__}: {exc}")
        timings.append((time.perf_counter() - started, key))
    assert set(EXCLUDED) <= seen, "an excluded operation no longer exists"
    slowest = sorted(timings, reverse=True)[:5]
    print("slowest operations:", [(f"{t:.2f}s", k) for t, k in slowest])
    assert not failures, f"{len(failures)} operations failed:\n\n" + "\n\n".join(failures)
