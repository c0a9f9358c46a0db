"""OWASP API3 (property-level authorization): a client can never set a server-owned field
(id, status, version, number, timestamps, the assigned agency, ...) through a create or an
edit. Each such field, added to an otherwise valid body, is refused with 422 naming it, and
nothing is created or changed; the same body without it is accepted (so the 422 is the field's).

The routes come from the app: every route with a JSON body needs a row in BODIES, and the
server-owned fields of a route are those its answer carries that its body does not take, plus
the usual suspects below."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from app.main import create_app
from app.webhooks.models import WebhookSubscription
from tests import factories
from tests.cases.conftest import appeal, incident

# Server-owned wherever a body does not take them on purpose (reopen and assign name an agency,
# an appeal carries its sender's number: those stay, as the body's own fields).
USUAL = (
    "id",
    "status",
    "version",
    "agency_id",
    "number",
    "kind",
    "source",
    "source_system",
    "created_at",
    "updated_at",
    "registered_at",
    "assigned_at",
    "due_at",
    "closed_at",
    "reopen_count",
    "created_by",
    "password_hash",
    "secret_hash",
    "client_id",
    "owner_role",
)
VALUES = {"version": 7, "id": 999, "agency_id": 1, "status": "closed", "reopen_count": 3}


@dataclass
class Call:
    headers: dict[str, str]
    method: str
    url: str
    body: dict[str, Any]
    check: str  # the URL whose answer (as admin or operator) must not change
    batch: bool = False


Setup = Callable[["Ctx"], Call]


class Ctx:
    def __init__(self, client, auth, db, world):
        self.client, self.auth, self.db, self.world = client, auth, db, world
        self.admin = auth.headers("admin")
        self.operator = auth.headers("operator")
        self.pos = auth.headers("integration", source="pos")
        self.krasnodar = auth.headers("agency", agency_id=world.adm_krasnodar.id)

    def ok(self, method: str, url: str, headers, body=None) -> dict:
        response = self.client.request(method, url, headers=headers, json=body)
        assert response.status_code in (200, 201, 202), (url, response.text)
        return response.json()

    def case(self, status: str = "new") -> int:
        case = self.ok("POST", "/api/v1/appeals", self.pos, appeal())
        if status == "new":
            return case["id"]
        url = f"/api/v1/cases/{case['id']}"
        self.ok("POST", f"{url}/assign", self.operator, {"agency_id": self.world.adm_krasnodar.id})
        if status in ("in_progress", "closed"):
            self.ok("POST", f"{url}/accept", self.krasnodar, {})
        if status == "closed":
            close = {"answer": "x", "resolution": "solved", "responsible_official": "x"}
            self.ok("POST", f"{url}/close", self.krasnodar, close)
        return case["id"]

    def action(self, name: str, status: str, body: dict, who: str = "operator") -> Call:
        case_id = self.case(status)
        url = f"/api/v1/cases/{case_id}"
        headers = self.krasnodar if who == "agency" else self.operator
        return Call(headers, "POST", f"{url}/{name}", body, url)


def _create(url: str, body: dict, list_url: str | None = None) -> Setup:
    return lambda c: Call(c.admin, "POST", url, body, list_url or url)


def _edit(kind: str, make: Callable[[Ctx], int], body: dict, tail: str = "") -> Setup:
    def setup(c: Ctx) -> Call:
        url = f"/api/v1/{kind}/{make(c)}"
        return Call(c.admin, "PATCH" if not tail else "POST", url + tail, body, url)

    return setup


def _webhook(c: Ctx) -> int:
    sub = WebhookSubscription(
        url="https://hooks.example.org/in",
        secret="s" * 40,
        event_types=["ping"],
        owner_role="admin",
        created_by="test",
    )
    return c.db.add(sub).id


def _webhook_create(c: Ctx) -> Call:
    c.ok("POST", "/api/v1/webhooks/allowlist", c.admin, {"entry": "10.20.0.0/16"})
    return Call(
        c.admin, "POST", "/api/v1/webhooks", {"url": "http://10.20.0.5/hook"}, "/api/v1/webhooks"
    )


def _rule(c: Ctx) -> int:
    return c.ok(
        "POST",
        "/api/v1/routing-rules",
        c.admin,
        {"name": "r", "enabled": False, "priority": "high"},
    )["id"]


def _policy(c: Ctx) -> int:
    body = {"name": "p", "unit": "working_days", "amount": 3}
    return c.ok("POST", "/api/v1/deadline-policies", c.admin, body)["id"]


BODIES: dict[tuple[str, str], Setup] = {
    ("POST", "/api/v1/users"): _create(
        "/api/v1/users",
        {"username": "newcomer", "password": "correct-horse-battery", "role": "operator"},
    ),
    ("PATCH", "/api/v1/users/{user_id}"): _edit(
        "users", lambda c: c.auth.user("operator").id, {"full_name": "Новое имя"}
    ),
    ("POST", "/api/v1/users/{user_id}/reset-password"): _edit(
        "users",
        lambda c: c.auth.user("operator").id,
        {"password": "another-long-password"},
        "/reset-password",
    ),
    ("POST", "/api/v1/clients"): _create(
        "/api/v1/clients", {"name": "S", "source_system": "newsys"}
    ),
    ("PATCH", "/api/v1/clients/{client_pk}"): _edit(
        "clients", lambda c: c.db.add(factories.api_client()).id, {"name": "Y"}
    ),
    ("POST", "/api/v1/categories"): _create(
        "/api/v1/categories", {"code": "water", "name_ru": "Вода", "name_en": "Water"}
    ),
    ("PATCH", "/api/v1/categories/{category_id}"): _edit(
        "categories", lambda c: c.world.roads.id, {"name_en": "Roads!"}
    ),
    ("POST", "/api/v1/territories"): _create(
        "/api/v1/territories", {"code": "anapa", "name": "Анапа", "kind": "city_district"}
    ),
    ("PATCH", "/api/v1/territories/{territory_id}"): _edit(
        "territories", lambda c: c.world.sochi.id, {"name": "Сочи!"}
    ),
    ("POST", "/api/v1/agencies"): _create(
        "/api/v1/agencies",
        {"code": "adm-anapa", "name": "Администрация", "kind": "municipal_administration"},
    ),
    ("PATCH", "/api/v1/agencies/{agency_id}"): _edit(
        "agencies", lambda c: c.world.adm_sochi.id, {"name": "Другое"}
    ),
    ("POST", "/api/v1/routing-rules"): _create(
        "/api/v1/routing-rules", {"name": "r", "priority": "high"}
    ),
    ("PATCH", "/api/v1/routing-rules/{rule_id}"): _edit("routing-rules", _rule, {"name": "r2"}),
    ("POST", "/api/v1/routing-rules/dry-run"): _create(
        "/api/v1/routing-rules/dry-run",
        {"kind": "incident", "text": "яма"},
        "/api/v1/routing-rules",
    ),
    ("POST", "/api/v1/deadline-policies"): _create(
        "/api/v1/deadline-policies", {"name": "p", "unit": "working_days", "amount": 3}
    ),
    ("PATCH", "/api/v1/deadline-policies/{policy_id}"): _edit(
        "deadline-policies", _policy, {"name": "p2"}
    ),
    ("PUT", "/api/v1/calendar/exceptions/{day}"): lambda c: Call(
        c.admin,
        "PUT",
        "/api/v1/calendar/exceptions/2026-12-30",
        {"kind": "holiday"},
        "/api/v1/calendar/exceptions",
    ),
    ("POST", "/api/v1/calendar/due"): _create(
        "/api/v1/calendar/due",
        {"start": "2026-06-11T16:00:00+03:00", "amount": 3, "unit": "working_days"},
        "/api/v1/calendar/exceptions",
    ),
    ("PATCH", "/api/v1/cases/{case_id}"): lambda c: (
        lambda url: Call(c.operator, "PATCH", url, {"priority": "high"}, url)
    )(f"/api/v1/cases/{c.case()}"),
    ("POST", "/api/v1/cases/{case_id}/assign"): lambda c: c.action(
        "assign", "new", {"agency_id": c.world.adm_krasnodar.id}
    ),
    ("POST", "/api/v1/cases/{case_id}/reject"): lambda c: c.action(
        "reject", "new", {"reason": "spam"}
    ),
    ("POST", "/api/v1/cases/{case_id}/reopen"): lambda c: c.action(
        "reopen", "closed", {"reason": "poor_answer"}
    ),
    ("POST", "/api/v1/cases/{case_id}/accept"): lambda c: c.action(
        "accept", "assigned", {}, "agency"
    ),
    ("POST", "/api/v1/cases/{case_id}/interim-answer"): lambda c: c.action(
        "interim-answer", "in_progress", {"text": "x", "planned_date": "2099-12-01"}, "agency"
    ),
    ("POST", "/api/v1/cases/{case_id}/close"): lambda c: c.action(
        "close",
        "in_progress",
        {"answer": "x", "resolution": "solved", "responsible_official": "x"},
        "agency",
    ),
    ("POST", "/api/v1/cases/{case_id}/return"): lambda c: c.action(
        "return", "assigned", {"reason": "wrong_territory", "comment": "x"}, "agency"
    ),
    ("POST", "/api/v1/incidents"): lambda c: Call(
        c.pos, "POST", "/api/v1/incidents", incident(n=1), "/api/v1/cases"
    ),
    ("POST", "/api/v1/appeals"): lambda c: Call(
        c.pos, "POST", "/api/v1/appeals", appeal(n=1), "/api/v1/cases"
    ),
    ("POST", "/api/v1/incidents/batch"): lambda c: Call(
        c.pos, "POST", "/api/v1/incidents/batch", incident(n=2), "/api/v1/cases", batch=True
    ),
    ("POST", "/api/v1/appeals/batch"): lambda c: Call(
        c.pos, "POST", "/api/v1/appeals/batch", appeal(n=2), "/api/v1/cases", batch=True
    ),
    ("POST", "/api/v1/webhooks/allowlist"): _create(
        "/api/v1/webhooks/allowlist", {"entry": "10.30.0.0/16"}
    ),
    ("POST", "/api/v1/webhooks"): _webhook_create,
    ("PATCH", "/api/v1/webhooks/{webhook_id}"): _edit("webhooks", _webhook, {"description": "d"}),
}


def _schema():
    from app.core.config import Settings

    return create_app(Settings(_env_file=None, env="test")).openapi()


def _properties(schema: dict, ref: str | None) -> set[str]:
    if not ref:
        return set()
    return set(schema["components"]["schemas"][ref.rsplit("/", 1)[1]].get("properties", {}))


def _json_ref(content: dict) -> str | None:
    found = content.get("application/json", {}).get("schema", {})
    if "$ref" in found:
        return found["$ref"]
    for option in found.get("anyOf", []):
        if "$ref" in option:
            return option["$ref"]
    return None


def _server_owned() -> dict[tuple[str, str], list[str]]:
    schema = _schema()
    owned = {}
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            taken = _properties(schema, _json_ref(content))
            if path.endswith("/batch"):  # items are the item schemas
                taken = _properties(
                    schema,
                    "#/components/schemas/"
                    + ("IncidentCreate" if "incidents" in path else "AppealCreate"),
                )
            answered: set[str] = set()
            for code, response in op.get("responses", {}).items():
                if code.startswith("2"):
                    answered |= _properties(schema, _json_ref(response.get("content", {})))
            if path.endswith("/batch"):
                answered |= _properties(schema, "#/components/schemas/CaseRead")
            owned[(method.upper(), path)] = sorted((answered | set(USUAL)) - taken)
    return owned


SERVER_OWNED = _server_owned()


def test_every_json_body_route_has_a_row():
    assert sorted(SERVER_OWNED.keys() - BODIES.keys()) == [], "JSON-body routes without a row"
    assert sorted(BODIES.keys() - SERVER_OWNED.keys()) == [], "rows for routes that do not exist"


def test_the_usual_server_owned_fields_are_covered_where_they_apply():
    owned = SERVER_OWNED[("POST", "/api/v1/appeals")]
    for field in ("id", "status", "version", "agency_id", "created_at", "due_at", "closed_at"):
        assert field in owned
    assert "number" not in owned  # the sender's own appeal number is the body's field
    assert "agency_id" not in SERVER_OWNED[("POST", "/api/v1/cases/{case_id}/assign")]


def _value(field: str) -> Any:
    if field in VALUES:
        return VALUES[field]
    if field.endswith("_at"):
        return "2020-01-01T00:00:00+00:00"
    if field.endswith("_id"):
        return 1
    return "x"


@pytest.mark.parametrize(("method", "path"), sorted(BODIES))
def test_server_owned_fields_are_refused_and_change_nothing(client, auth, db, world, method, path):
    c = Ctx(client, auth, db, world)
    call = BODIES[(method, path)](c)
    reader = c.admin
    before = client.get(call.check, headers=reader)
    assert before.status_code == 200, before.text

    def send(body: dict):
        payload = {"items": [body]} if call.batch else body
        return client.request(call.method, call.url, headers=call.headers, json=payload)

    for field in SERVER_OWNED[(method, path)]:
        response = send({**call.body, field: _value(field)})
        if call.batch:  # batches answer item by item: the item fails with its own problem
            assert response.status_code == 200, response.text
            item = response.json()["items"][0]
            assert item["outcome"] == "failed", (field, item)
            problem = item["problem"]
        else:
            assert response.status_code == 422, (field, response.status_code, response.text)
            problem = response.json()
        locs = [error["loc"] for error in problem["errors"]]
        assert any(loc[-1] == field for loc in locs), (field, locs)
        assert all(error["type"] == "extra_forbidden" for error in problem["errors"]), problem
    after = client.get(call.check, headers=reader)
    assert after.json() == before.json(), f"{method} {path} changed {call.check}"
    accepted = send(call.body)
    assert accepted.status_code in (200, 201, 202), accepted.text
    if call.batch:
        assert accepted.json()["items"][0]["outcome"] == "created"
