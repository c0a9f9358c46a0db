"""Managing machine clients: registration with a one-time secret, rotation and disabling."""

from __future__ import annotations

import time

import pytest

from tests import factories
from tests.reference import assert_problem, cheap_argon2

URL = "/api/v1/clients"
TOKEN_URL = "/api/v1/auth/token"


@pytest.fixture(autouse=True)
def _fast_hashing(monkeypatch):
    cheap_argon2(monkeypatch)


@pytest.fixture
def admin(auth):
    return auth.headers("admin")


def client_login(client, client_id: str, secret: str):
    return client.post(
        TOKEN_URL,
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )


def bearer_of(response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _create(client, headers, **body):
    payload = {"name": "Мониторинг соцсетей", "source_system": "incident-management", **body}
    response = client.post(URL, json=payload, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_create_shows_the_secret_once_and_it_works(client, admin):
    created = _create(client, admin)
    secret = created["client_secret"]
    assert isinstance(secret, str) and len(secret) >= 32
    registered = created["client"]
    assert registered["client_id"] == "incident-management"  # derived from the source system
    assert registered["source_system"] == "incident-management"
    assert registered["role"] == "integration"
    assert registered["agency_id"] is None
    assert registered["is_active"] is True
    assert "secret_hash" not in registered

    got = client.get(f"{URL}/{registered['id']}", headers=admin)
    assert got.status_code == 200
    assert got.json() == registered
    assert secret not in got.text
    assert secret not in client.get(URL, headers=admin).text

    token = client_login(client, "incident-management", secret)
    me = client.get("/api/v1/auth/me", headers=bearer_of(token)).json()
    assert (me["kind"], me["id"], me["role"]) == ("client", registered["id"], "integration")
    assert me["source_system"] == "incident-management"
    assert token.json().get("refresh_token") is None
    assert_problem(client_login(client, "incident-management", "wrong-secret"), 401)
    assert_problem(client.get(f"{URL}/999999", headers=admin), 404)
    assert_problem(client.get(f"{URL}/{2**31}", headers=admin), 404)


def test_explicit_client_id_and_other_machine_roles(client, db, admin):
    named = _create(client, admin, client_id="pos-platform", source_system="pos")
    assert named["client"]["client_id"] == "pos-platform"
    agency = db.add(factories.agency())
    bound = client.post(
        URL,
        json={"name": "Ведомственная система", "role": "agency", "agency_id": agency.id},
        headers=admin,
    )
    assert bound.status_code == 201, bound.text
    assert bound.json()["client"]["agency_id"] == agency.id
    assert bound.json()["client"]["client_id"].startswith("client-")
    me = client.get(
        "/api/v1/auth/me",
        headers=bearer_of(
            client_login(client, bound.json()["client"]["client_id"], bound.json()["client_secret"])
        ),
    ).json()
    assert (me["role"], me["agency_id"]) == ("agency", agency.id)
    analyst = client.post(URL, json={"name": "BI", "role": "analyst"}, headers=admin)
    assert analyst.status_code == 201, analyst.text


def test_binding_and_validation_rules(client, db, admin):
    closed = db.add(factories.agency(is_active=False))
    cases = [
        ({"name": "X"}, "source_system"),  # integration without a source system
        ({"name": "X", "source_system": "abc", "role": "agency"}, "agency_id"),
        ({"name": "X", "role": "analyst", "source_system": "abc"}, "source_system"),
        ({"name": "X", "role": "admin"}, "role"),
        ({"name": "X", "role": "operator"}, "role"),
    ]
    for body, mentioned in cases:
        problem = assert_problem(client.post(URL, json=body, headers=admin), 422)
        assert mentioned in problem["errors"][0]["msg"], body
    for body, field in [
        ({"name": "X", "source_system": "Bad System"}, "source_system"),
        ({"name": "", "source_system": "abc"}, "name"),
        ({"name": "X", "source_system": "abc", "secret": "mine"}, "secret"),
    ]:
        assert_problem(client.post(URL, json=body, headers=admin), 422, field=field)
    for agency_id in (closed.id, 999999, 2**31):
        body = {"name": "X", "role": "agency", "agency_id": agency_id}
        problem = assert_problem(client.post(URL, json=body, headers=admin), 422, field="agency_id")
        assert str(agency_id) in problem["detail"]
    assert client.get(URL, headers=admin).json()["total"] == 0


def test_duplicate_source_system_or_client_id_is_409(client, admin):
    _create(client, admin, source_system="pos")
    again = client.post(
        URL, json={"name": "Другая", "source_system": "pos", "client_id": "pos-2"}, headers=admin
    )
    assert "pos" in assert_problem(again, 409)["detail"]
    same_id = client.post(
        URL, json={"name": "Другая", "source_system": "pos-new", "client_id": "pos"}, headers=admin
    )
    assert_problem(same_id, 409)
    listed = client.get(URL, headers=admin).json()
    assert [c["client_id"] for c in listed["items"]] == ["pos"]


def test_list_is_sorted_and_filtered(client, db, admin):
    db.add(factories.api_client(client_id="zeta"))
    db.add(factories.api_client(client_id="alpha", is_active=False))
    db.add(factories.api_client(client_id="mid", role="analyst", source_system=None))

    def ids(**params):
        response = client.get(URL, params=params, headers=admin)
        assert response.status_code == 200, response.text
        return [c["client_id"] for c in response.json()["items"]]

    assert ids() == ["alpha", "mid", "zeta"]
    assert ids(role="analyst") == ["mid"]
    assert ids(is_active="false") == ["alpha"]
    assert ids(role="integration", is_active="true") == ["zeta"]
    page = client.get(URL, params={"limit": 1, "offset": 1}, headers=admin).json()
    assert ([c["client_id"] for c in page["items"]], page["total"]) == (["mid"], 3)
    assert_problem(client.get(URL, params={"limit": 1000}, headers=admin), 422)


def test_rotate_secret_replaces_the_old_one(client, admin):
    created = _create(client, admin)
    pk, old_secret = created["client"]["id"], created["client_secret"]
    old_token = bearer_of(client_login(client, "incident-management", old_secret))
    time.sleep(1.1)  # tokens carry whole seconds; the rotation must be in a later second

    response = client.post(f"{URL}/{pk}/rotate-secret", headers=admin)
    assert response.status_code == 200, response.text
    new_secret = response.json()["client_secret"]
    assert new_secret and new_secret != old_secret
    assert response.json()["client"]["secret_rotated_at"] > created["client"]["secret_rotated_at"]

    assert_problem(client_login(client, "incident-management", old_secret), 401)
    assert_problem(client.get("/api/v1/categories", headers=old_token), 401)
    fresh = bearer_of(client_login(client, "incident-management", new_secret))
    assert client.get("/api/v1/categories", headers=fresh).status_code == 200
    assert_problem(client.post(f"{URL}/999999/rotate-secret", headers=admin), 404)


def test_disable_refuses_tokens_and_logins(client, admin):
    created = _create(client, admin)
    pk, secret = created["client"]["id"], created["client_secret"]
    token = bearer_of(client_login(client, "incident-management", secret))

    response = client.patch(f"{URL}/{pk}", json={"is_active": False}, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False
    refused = client.get("/api/v1/categories", headers=token)
    assert_problem(refused, 401)
    assert refused.headers["www-authenticate"] == "Bearer"
    assert_problem(client_login(client, "incident-management", secret), 401)

    renamed = client.patch(
        f"{URL}/{pk}", json={"name": "Новое имя", "is_active": True}, headers=admin
    )
    assert renamed.json()["name"] == "Новое имя"
    assert renamed.json()["source_system"] == "incident-management"
    assert client_login(client, "incident-management", secret).status_code == 200

    for field in ("name", "is_active"):
        problem = assert_problem(
            client.patch(f"{URL}/{pk}", json={field: None}, headers=admin), 422
        )
        assert field in problem["errors"][0]["msg"]
    patch = {"source_system": "other"}
    assert_problem(
        client.patch(f"{URL}/{pk}", json=patch, headers=admin), 422, field="source_system"
    )
    assert_problem(client.patch(f"{URL}/999999", json={"name": "x"}, headers=admin), 404)


def test_non_admins_get_403_on_every_client_endpoint(client, db, auth):
    target = db.add(factories.api_client(client_id="target"))
    admin = auth.headers("admin")
    before = client.get(f"{URL}/{target.id}", headers=admin).json()
    for role in ("operator", "agency", "integration", "analyst"):
        headers = auth.headers(role)
        calls = [
            client.get(URL, headers=headers),
            client.get(f"{URL}/{target.id}", headers=headers),
            client.post(URL, json={"name": "X", "source_system": "intruder"}, headers=headers),
            client.patch(f"{URL}/{target.id}", json={"is_active": False}, headers=headers),
            client.post(f"{URL}/{target.id}/rotate-secret", headers=headers),
        ]
        for response in calls:
            body = assert_problem(response, 403)
            assert body["required_scopes"] == ["accounts:manage"], role
    assert client.get(f"{URL}/{target.id}", headers=admin).json() == before
    listed = client.get(URL, params={"limit": 200}, headers=admin).json()["items"]
    assert "intruder" not in [c["client_id"] for c in listed]
    assert client_login(client, "target", factories.PASSWORD).status_code == 200
    assert_problem(client.post(f"{URL}/{target.id}/rotate-secret"), 401)
