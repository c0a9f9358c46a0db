"""OWASP API1 (object-level authorization): every route that takes an object id, called by
another agency's staff, another integration client and an analyst on an object that is not
theirs, is refused — 404 where the object is outside the caller's reach, 403 where the role
lacks the right — and changes nothing; where the role may read it (analysts), personal data is
masked (README "Who sees what").

The table below is derived-checked against the app's routes: a new route with an id in its
path and no row here fails `test_every_id_route_has_a_case`."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from app.main import create_app
from app.webhooks.models import WebhookSubscription
from tests import factories
from tests.cases.conftest import appeal

INTRUDERS = ("other_agency", "other_integration", "analyst")
PERSONAL = ("Иванова", "maria@example.org", "+79181234567")

NF, FB, MASKED = 404, 403, "masked"  # MASKED: 200 without personal data
CASE_READ = {"other_agency": NF, "other_integration": NF, "analyst": MASKED}
TRIAGE = {"other_agency": FB, "other_integration": FB, "analyst": FB}
ANSWER = {"other_agency": NF, "other_integration": FB, "analyst": FB}
ADMIN_ONLY = {"other_agency": FB, "other_integration": FB, "analyst": FB}
REFERENCE_READ = {"other_agency": 200, "other_integration": 200, "analyst": 200}
WEBHOOK = {"other_agency": NF, "other_integration": NF, "analyst": FB}
# Open311 takes an api_key, not a token: every bearer caller is the spec's 403; another
# client's key does not reach this client's request (tests/open311/test_api_key.py).
OPEN311 = {"other_agency": FB, "other_integration": FB, "analyst": FB}

CLOSE = {"answer": "x", "resolution": "solved", "responsible_official": "x"}

# (method, path) -> (object the id names, body, expected answer per intruder)
ROUTES: dict[tuple[str, str], tuple[str, dict | None, dict[str, int | str]]] = {
    # cases: the id names an appeal assigned to adm-krasnodar, sent by the "pos" system
    ("GET", "/api/v1/cases/{case_id}"): ("case", None, CASE_READ),
    ("GET", "/api/v1/appeals/{case_id}"): ("case", None, CASE_READ),
    ("GET", "/api/v1/incidents/{case_id}"): ("incident", None, CASE_READ),
    ("GET", "/api/v1/cases/{case_id}/events"): ("case", None, CASE_READ),
    ("PATCH", "/api/v1/cases/{case_id}"): ("case", {"priority": "high"}, TRIAGE),
    ("POST", "/api/v1/cases/{case_id}/assign"): ("case", {"agency_id": 0}, TRIAGE),
    ("POST", "/api/v1/cases/{case_id}/reject"): ("case", {"reason": "spam"}, TRIAGE),
    ("POST", "/api/v1/cases/{case_id}/reopen"): ("case", {"reason": "poor_answer"}, TRIAGE),
    ("POST", "/api/v1/cases/{case_id}/accept"): ("case", {}, ANSWER),
    ("POST", "/api/v1/cases/{case_id}/interim-answer"): (
        "case",
        {"text": "x", "planned_date": "2026-12-01"},
        ANSWER,
    ),
    ("POST", "/api/v1/cases/{case_id}/close"): ("case", CLOSE, ANSWER),
    ("POST", "/api/v1/cases/{case_id}/return"): (
        "case",
        {"reason": "wrong_territory", "comment": "x"},
        ANSWER,
    ),
    # webhooks: the id names adm-krasnodar's subscription (and its ping delivery)
    **{
        (method, f"/api/v1/webhooks/{{webhook_id}}{tail}"): ("webhook", body, WEBHOOK)
        for method, tail, body in (
            ("GET", "", None),
            ("PATCH", "", {"description": "mine now"}),
            ("DELETE", "", None),
            ("POST", "/rotate-secret", None),
            ("POST", "/ping", None),
            ("GET", "/deliveries", None),
            ("GET", "/deliveries/{delivery_id}", None),
            ("POST", "/deliveries/{delivery_id}/redeliver", None),
        )
    },
    ("DELETE", "/api/v1/webhooks/allowlist/{entry_id}"): ("allowlist", None, ADMIN_ONLY),
    # accounts: admins only
    ("GET", "/api/v1/users/{user_id}"): ("user", None, ADMIN_ONLY),
    ("PATCH", "/api/v1/users/{user_id}"): ("user", {"full_name": "x"}, ADMIN_ONLY),
    ("POST", "/api/v1/users/{user_id}/reset-password"): ("user", {}, ADMIN_ONLY),
    ("GET", "/api/v1/clients/{client_pk}"): ("client", None, ADMIN_ONLY),
    ("PATCH", "/api/v1/clients/{client_pk}"): ("client", {"name": "x"}, ADMIN_ONLY),
    ("POST", "/api/v1/clients/{client_pk}/rotate-secret"): ("client", None, ADMIN_ONLY),
    # reference data: everyone reads, admins change
    **{
        (method, f"/api/v1/{kind}/{{{key}}}"): (
            kind,
            body,
            REFERENCE_READ if method == "GET" else ADMIN_ONLY,
        )
        for kind, key in (
            ("categories", "category_id"),
            ("territories", "territory_id"),
            ("agencies", "agency_id"),
        )
        for method, body in (("GET", None), ("PATCH", {"is_active": False}), ("DELETE", None))
    },
    # routing and deadlines: admins and operators read, admins change
    ("GET", "/api/v1/routing-rules/{rule_id}"): ("rule", None, ADMIN_ONLY),
    ("PATCH", "/api/v1/routing-rules/{rule_id}"): ("rule", {"enabled": False}, ADMIN_ONLY),
    ("DELETE", "/api/v1/routing-rules/{rule_id}"): ("rule", None, ADMIN_ONLY),
    ("GET", "/api/v1/deadline-policies/{policy_id}"): ("policy", None, ADMIN_ONLY),
    ("PATCH", "/api/v1/deadline-policies/{policy_id}"): (
        "policy",
        {"is_active": False},
        ADMIN_ONLY,
    ),
    ("DELETE", "/api/v1/deadline-policies/{policy_id}"): ("policy", None, ADMIN_ONLY),
    ("PUT", "/api/v1/calendar/exceptions/{day}"): ("day", {"kind": "holiday"}, ADMIN_ONLY),
    ("DELETE", "/api/v1/calendar/exceptions/{day}"): ("day", None, ADMIN_ONLY),
    ("GET", "/open311/v2/requests/{service_request_id}.{format}"): ("case", None, OPEN311),
}
# Ids that name no object of anyone's (the public Open311 service list).
NOT_OBJECTS = {
    ("GET", "/open311/v2/services/{service_code}.{format}"),
    ("GET", "/open311/v2/discovery.{format}"),
    ("GET", "/open311/v2/services.{format}"),
    ("POST", "/open311/v2/requests.{format}"),
    ("GET", "/open311/v2/requests.{format}"),
}


def test_every_id_route_has_a_case(settings):
    found = {
        (method.upper(), path)
        for path, operations in create_app(settings).openapi()["paths"].items()
        for method in operations
        if "{" in path
    }
    assert sorted(found - ROUTES.keys() - NOT_OBJECTS) == [], "id routes without a case here"
    assert sorted(ROUTES.keys() - found) == [], "cases for routes that do not exist"


@dataclass
class Objects:
    ids: dict[str, object]
    snapshot: dict[str, tuple[str, dict]]  # object -> (url to read it as admin, body)


@pytest.fixture
def objects(client, auth, db, world) -> Objects:
    admin = auth.headers("admin")
    operator = auth.headers("operator")
    pos = auth.headers("integration", source="pos")
    case = client.post("/api/v1/appeals", json=appeal(), headers=pos).json()
    assigned = client.post(
        f"/api/v1/cases/{case['id']}/assign",
        headers=operator,
        json={"agency_id": world.adm_krasnodar.id},
    )
    assert assigned.status_code == 200, assigned.text
    incident = client.post(
        "/api/v1/incidents",
        headers=pos,
        json={
            "network": "vk",
            "post_url": "https://vk.com/wall-1_2",
            "post_id": "post-1",
            "author_handle": "ivan_petrov",
            "published_at": "2026-01-01T10:00:00+03:00",
            "text": "Яма",
        },
    ).json()
    sub = db.add(
        WebhookSubscription(
            url="https://hooks.example.org/in",
            secret="s" * 40,
            event_types=["ping"],
            owner_role="agency",
            owner_agency_id=world.adm_krasnodar.id,
            created_by="test",
        )
    )
    delivery = client.post(f"/api/v1/webhooks/{sub.id}/ping", headers=admin)
    assert delivery.status_code == 202, delivery.text
    entry = client.post(
        "/api/v1/webhooks/allowlist", headers=admin, json={"entry": "10.20.0.0/16"}
    ).json()
    user = auth.user("operator")
    machine = db.add(factories.api_client())
    rule = client.post(
        "/api/v1/routing-rules",
        headers=admin,
        json={"name": "roads", "agency_id": world.adm_krasnodar.id},
    ).json()
    policy = client.get("/api/v1/deadline-policies", headers=admin).json()["items"][0]
    day = "2026-12-30"
    put = client.put(f"/api/v1/calendar/exceptions/{day}", headers=admin, json={"kind": "workday"})
    assert put.status_code in (200, 201), put.text
    ids = {
        "case": case["id"],
        "incident": incident["id"],
        "webhook": sub.id,
        "delivery": delivery.json()["id"],
        "allowlist": entry["id"],
        "user": user.id,
        "client": machine.id,
        "categories": world.roads.id,
        "territories": world.krasnodar.id,
        "agencies": world.adm_krasnodar.id,
        "rule": rule["id"],
        "policy": policy["id"],
        "day": day,
    }
    urls = {
        "case": f"/api/v1/cases/{case['id']}",
        "incident": f"/api/v1/cases/{incident['id']}",
        "webhook": f"/api/v1/webhooks/{sub.id}",
        "delivery": f"/api/v1/webhooks/{sub.id}/deliveries/{ids['delivery']}",
        "allowlist": "/api/v1/webhooks/allowlist",
        "user": f"/api/v1/users/{user.id}",
        "client": f"/api/v1/clients/{machine.id}",
        "categories": f"/api/v1/categories/{world.roads.id}",
        "territories": f"/api/v1/territories/{world.krasnodar.id}",
        "agencies": f"/api/v1/agencies/{world.adm_krasnodar.id}",
        "rule": f"/api/v1/routing-rules/{rule['id']}",
        "policy": f"/api/v1/deadline-policies/{policy['id']}",
        "day": "/api/v1/calendar/exceptions",
    }
    return Objects(ids, {name: (url, _read(client, admin, url)) for name, url in urls.items()})


def _read(client, admin, url: str) -> dict:
    response = client.get(url, headers=admin)
    assert response.status_code == 200, (url, response.text)
    return response.json()


def _intruder(auth, world, who: str) -> dict[str, str]:
    if who == "other_agency":
        return auth.headers("agency", agency_id=world.adm_sochi.id)
    if who == "other_integration":
        return auth.headers("integration", source="someone-else")
    return auth.headers(who)


def _url(path: str, ids: dict[str, object], obj: str) -> str:
    url = path.replace("{delivery_id}", str(ids["delivery"])).replace("{format}", "json")
    return re.sub(r"\{[a-z_]+\}", str(ids[obj]), url)


@pytest.mark.parametrize(("method", "path"), sorted(ROUTES))
def test_someone_elses_object_is_refused_and_unchanged(
    client,
    auth,
    world,
    objects,
    method,
    path,
):
    obj, body, answers = ROUTES[(method, path)]
    url = _url(path, objects.ids, obj)
    for intruder in INTRUDERS:
        expected = answers[intruder]
        response = client.request(method, url, json=body, headers=_intruder(auth, world, intruder))
        status = 200 if expected == MASKED else expected
        assert response.status_code == status, (intruder, response.status_code, response.text)
        if expected in (NF, FB) and not path.startswith("/open311"):
            assert response.headers["content-type"] == "application/problem+json"
        for secret in PERSONAL:
            assert secret not in response.text, intruder
    admin = auth.headers("admin")
    for name, (read_url, before) in objects.snapshot.items():
        assert _read(client, admin, read_url) == before, f"{name} changed by {method} {url}"


def test_another_subscriptions_deliveries_are_not_reached_through_ones_own(
    client, auth, db, world, objects
):
    """A caller with a subscription of their own cannot read or redeliver another owner's
    delivery by pairing it with their own subscription's id."""
    own = db.add(
        WebhookSubscription(
            url="https://hooks.example.org/sochi",
            secret="t" * 40,
            event_types=["ping"],
            owner_role="agency",
            owner_agency_id=world.adm_sochi.id,
            created_by="test",
        )
    )
    sochi = auth.headers("agency", agency_id=world.adm_sochi.id)
    delivery = objects.ids["delivery"]
    base = f"/api/v1/webhooks/{own.id}/deliveries"
    assert client.get(f"{base}/{delivery}", headers=sochi).status_code == 404
    assert client.post(f"{base}/{delivery}/redeliver", headers=sochi).status_code == 404
    assert client.get(base, headers=sochi).json()["items"] == []
    admin = auth.headers("admin")
    url, before = objects.snapshot["delivery"]
    assert _read(client, admin, url) == before


def test_open311_another_clients_key_does_not_reach_the_request(client, db, objects):
    other = db.add(factories.api_client(source_system="someone-else"))
    url = f"/open311/v2/requests/{objects.ids['case']}.json"
    response = client.get(url, params={"api_key": f"{other.client_id}:{factories.PASSWORD}"})
    assert response.status_code == 404, response.text
    for secret in PERSONAL:
        assert secret not in response.text


def test_analyst_sees_no_personal_data_in_lists_or_exports_either(client, auth, objects):
    analyst = auth.headers("analyst")
    for url in ("/api/v1/cases", "/api/v1/appeals", "/api/v1/incidents"):
        response = client.get(url, headers=analyst)
        assert response.status_code == 200
        assert response.json()["items"], url
        for secret in (*PERSONAL, "ivan_petrov"):
            assert secret not in response.text, url
    export = client.get("/api/v1/exports/cases", params={"format": "csv"}, headers=analyst)
    assert export.status_code == 200, export.text
    assert str(objects.ids["case"]) in export.text
    for secret in (*PERSONAL, "ivan_petrov"):
        assert secret not in export.text


def test_the_personal_data_audit_is_for_admins_only(client, auth, world, objects):
    """No id in its path, but it names who read whose data: every intruder is refused."""
    read = client.get(f"/api/v1/cases/{objects.ids['case']}", headers=auth.headers("operator"))
    assert read.status_code == 200
    for intruder in INTRUDERS:
        response = client.get(
            "/api/v1/audit/personal-data", headers=_intruder(auth, world, intruder)
        )
        assert response.status_code == 403, (intruder, response.text)
        assert "user:" not in response.text
    admin = client.get("/api/v1/audit/personal-data", headers=auth.headers("admin"))
    assert admin.status_code == 200
    assert admin.json()["items"]  # the operator's read above is on record


def test_analyst_sees_no_author_handle_on_an_incident(client, auth, objects):
    analyst = auth.headers("analyst")
    response = client.get(f"/api/v1/incidents/{objects.ids['incident']}", headers=analyst)
    assert response.status_code == 200
    assert "ivan_petrov" not in response.text
