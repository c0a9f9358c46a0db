"""Managing people: accounts, role and agency binding, disabling and password resets."""

from __future__ import annotations

import time

import pytest

from tests import factories
from tests.reference import assert_problem, cheap_argon2

URL = "/api/v1/users"
TOKEN_URL = "/api/v1/auth/token"
PASSWORD = "a-long-enough-password"


@pytest.fixture(autouse=True)
def _fast_hashing(monkeypatch):
    cheap_argon2(monkeypatch)


@pytest.fixture
def admin(auth):
    return auth.headers("admin")


def login(client, username: str, password: str):
    return client.post(
        TOKEN_URL, data={"grant_type": "password", "username": username, "password": password}
    )


def token_headers(client, username: str, password: str) -> dict[str, str]:
    response = login(client, username, password)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _create(client, headers, **body):
    payload = {"username": "ivanov", "password": PASSWORD, "role": "operator", **body}
    response = client.post(URL, json=payload, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_create_user_never_returns_the_password_and_the_user_can_log_in(client, admin):
    created = _create(client, admin, full_name="Иванов Иван", email="ivanov@krasnodar.example")
    assert created["username"] == "ivanov"
    assert created["full_name"] == "Иванов Иван"
    assert created["email"] == "ivanov@krasnodar.example"
    assert created["role"] == "operator"
    assert created["agency_id"] is None
    assert created["is_active"] is True
    assert not {"password", "password_hash"} & created.keys()
    assert PASSWORD not in str(created)

    got = client.get(f"{URL}/{created['id']}", headers=admin)
    assert got.status_code == 200
    assert got.json() == created
    assert not {"password", "password_hash"} & got.json().keys()
    listed = client.get(URL, params={"q": "ivanov"}, headers=admin).json()["items"]
    assert listed == [created]

    me = client.get("/api/v1/auth/me", headers=token_headers(client, "ivanov", PASSWORD))
    assert me.json()["id"] == created["id"]
    assert me.json()["role"] == "operator"
    assert_problem(client.get(f"{URL}/999999", headers=admin), 404)


def test_agency_role_binding_rules(client, db, admin):
    agency = db.add(factories.agency())
    closed = db.add(factories.agency(is_active=False))
    base = {"username": "petrov", "password": PASSWORD}

    no_agency = client.post(URL, json={**base, "role": "agency"}, headers=admin)
    assert "agency_id" in assert_problem(no_agency, 422)["errors"][0]["msg"]
    for role in ("operator", "admin", "analyst"):
        response = client.post(
            URL, json={**base, "role": role, "agency_id": agency.id}, headers=admin
        )
        assert "agency_id" in assert_problem(response, 422)["errors"][0]["msg"], role
    for missing in (999999, 2**31):
        body = {**base, "role": "agency", "agency_id": missing}
        unknown = client.post(URL, json=body, headers=admin)
        assert str(missing) in assert_problem(unknown, 422, field="agency_id")["detail"]
    inactive = client.post(
        URL, json={**base, "role": "agency", "agency_id": closed.id}, headers=admin
    )
    assert "inactive" in assert_problem(inactive, 422, field="agency_id")["detail"]
    assert client.get(URL, params={"q": "petrov"}, headers=admin).json()["total"] == 0

    bound = _create(client, admin, username="petrov", role="agency", agency_id=agency.id)
    assert (bound["role"], bound["agency_id"]) == ("agency", agency.id)


def test_body_validation(client, admin):
    base = {"username": "ivanov", "password": PASSWORD, "role": "operator"}
    for bad, field in [
        ({"password": "short"}, "password"),
        ({"username": "ab"}, "username"),
        ({"username": "иванов"}, "username"),
        ({"role": "superuser"}, "role"),
        ({"email": "nope"}, "email"),
        ({"is_admin": True}, "is_admin"),
    ]:
        response = client.post(URL, json={**base, **bad}, headers=admin)
        assert_problem(response, 422, field=field)
    missing = {"username": "ivanov", "role": "operator"}
    assert_problem(client.post(URL, json=missing, headers=admin), 422, field="password")
    assert client.get(URL, params={"q": "ivanov"}, headers=admin).json()["total"] == 0


def test_duplicate_username_is_409(client, admin):
    _create(client, admin)
    body = assert_problem(
        client.post(
            URL, json={"username": "ivanov", "password": PASSWORD, "role": "analyst"}, headers=admin
        ),
        409,
    )
    assert "ivanov" in body["detail"]
    assert client.get(URL, params={"q": "ivanov"}, headers=admin).json()["total"] == 1


def test_list_is_sorted_paged_and_filtered(client, auth, db, admin):
    agency = db.add(factories.agency())
    auth.user("operator", username="olga", full_name="Ольга Операторова")
    auth.user("operator", username="boris", is_active=False)
    auth.user("agency", username="kate", agency_id=agency.id)
    auth.user("analyst", username="andrew", full_name="Andrew Analyst")

    def names(**params):
        response = client.get(URL, params=params, headers=admin)
        assert response.status_code == 200, response.text
        return [u["username"] for u in response.json()["items"]]

    every = names(limit=200)
    assert every == sorted(every)
    assert {"olga", "boris", "kate", "andrew"} <= set(every)
    assert names(role="operator") == ["boris", "olga"]
    assert names(role="operator", is_active="true") == ["olga"]
    assert names(is_active="false") == ["boris"]
    assert names(agency_id=agency.id) == ["kate"]
    assert names(q="ANALYST") == ["andrew"]  # full name, case-insensitive
    assert names(q="olg") == ["olga"]
    assert names(q="операторова") == ["olga"]  # Cyrillic, case ignored
    page = client.get(
        URL, params={"role": "operator", "limit": 1, "offset": 1}, headers=admin
    ).json()
    assert ([u["username"] for u in page["items"]], page["total"]) == (["olga"], 2)
    assert_problem(client.get(URL, params={"limit": 1000}, headers=admin), 422)
    assert_problem(client.get(URL, params={"role": "root"}, headers=admin), 422)
    assert_problem(client.get(URL, params={"agency_id": 2**31}, headers=admin), 422)


def test_patch_is_partial_and_keeps_the_binding_consistent(client, db, admin):
    agency = db.add(factories.agency())
    other = db.add(factories.agency())
    user = _create(client, admin, role="agency", agency_id=agency.id, full_name="Old")

    renamed = client.patch(f"{URL}/{user['id']}", json={"full_name": "New"}, headers=admin)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["full_name"] == "New"
    assert (renamed.json()["role"], renamed.json()["agency_id"]) == ("agency", agency.id)

    moved = client.patch(f"{URL}/{user['id']}", json={"agency_id": other.id}, headers=admin)
    assert moved.json()["agency_id"] == other.id
    unknown = client.patch(f"{URL}/{user['id']}", json={"agency_id": 999999}, headers=admin)
    assert_problem(unknown, 422, field="agency_id")
    unbound = client.patch(f"{URL}/{user['id']}", json={"agency_id": None}, headers=admin)
    assert "agency_id" in assert_problem(unbound, 422)["detail"]

    # Leaving the agency role unbinds the agency.
    operator = client.patch(f"{URL}/{user['id']}", json={"role": "operator"}, headers=admin)
    assert operator.status_code == 200
    assert (operator.json()["role"], operator.json()["agency_id"]) == ("operator", None)
    # Becoming an agency account needs an agency.
    assert_problem(client.patch(f"{URL}/{user['id']}", json={"role": "agency"}, headers=admin), 422)
    with_agency = {"role": "agency", "agency_id": agency.id}
    back = client.patch(f"{URL}/{user['id']}", json=with_agency, headers=admin)
    assert (back.json()["role"], back.json()["agency_id"]) == ("agency", agency.id)

    for field in ("role", "full_name", "is_active"):
        response = client.patch(f"{URL}/{user['id']}", json={field: None}, headers=admin)
        assert field in assert_problem(response, 422)["errors"][0]["msg"]
    assert_problem(
        client.patch(f"{URL}/{user['id']}", json={"username": "x"}, headers=admin),
        422,
        field="username",
    )
    assert_problem(client.patch(f"{URL}/999999", json={"full_name": "x"}, headers=admin), 404)
    assert client.get(f"{URL}/{user['id']}", headers=admin).json()["full_name"] == "New"


def test_disabled_user_cannot_log_in_and_their_tokens_are_refused(client, admin):
    user = _create(client, admin)
    headers = token_headers(client, "ivanov", PASSWORD)
    refresh = login(client, "ivanov", PASSWORD).json()["refresh_token"]
    assert client.get("/api/v1/categories", headers=headers).status_code == 200

    response = client.patch(f"{URL}/{user['id']}", json={"is_active": False}, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False

    refused = client.get("/api/v1/categories", headers=headers)
    assert_problem(refused, 401)
    assert refused.headers["www-authenticate"] == "Bearer"
    assert_problem(login(client, "ivanov", PASSWORD), 401)
    again = client.post(TOKEN_URL, data={"grant_type": "refresh_token", "refresh_token": refresh})
    assert_problem(again, 401)

    enabled = client.patch(f"{URL}/{user['id']}", json={"is_active": True}, headers=admin)
    assert enabled.json()["is_active"] is True
    assert login(client, "ivanov", PASSWORD).status_code == 200


def test_admin_cannot_disable_or_demote_themselves(client, auth):
    admin = auth.headers("admin")
    me = client.get("/api/v1/auth/me", headers=admin).json()
    assert me["kind"] == "user"
    for change in ({"is_active": False}, {"role": "operator"}, {"role": "analyst"}):
        body = assert_problem(client.patch(f"{URL}/{me['id']}", json=change, headers=admin), 409)
        assert "themselves" in body["detail"]
    mine = client.get(f"{URL}/{me['id']}", headers=admin).json()
    assert (mine["role"], mine["is_active"]) == ("admin", True)
    # Harmless changes to oneself are fine.
    ok = client.patch(f"{URL}/{me['id']}", json={"full_name": "Me", "role": "admin"}, headers=admin)
    assert ok.status_code == 200
    # Another admin can be demoted.
    other = _create(client, admin, username="second-admin", role="admin")
    demoted = client.patch(f"{URL}/{other['id']}", json={"role": "operator"}, headers=admin)
    assert demoted.json()["role"] == "operator"


def test_reset_password_to_a_given_one_and_old_tokens_stop_working(client, admin):
    user = _create(client, admin)
    old_token = token_headers(client, "ivanov", PASSWORD)
    time.sleep(1.1)  # tokens carry whole seconds; the reset must be in a later second
    new_password = "another-long-password"
    response = client.post(
        f"{URL}/{user['id']}/reset-password", json={"password": new_password}, headers=admin
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["password"] is None  # not generated, so not echoed
    assert body["user"]["id"] == user["id"]
    assert new_password not in response.text

    assert_problem(client.get("/api/v1/categories", headers=old_token), 401)
    assert_problem(login(client, "ivanov", PASSWORD), 401)
    fresh = token_headers(client, "ivanov", new_password)
    assert client.get("/api/v1/categories", headers=fresh).status_code == 200


def test_reset_password_without_one_generates_it_once(client, admin):
    user = _create(client, admin)
    response = client.post(f"{URL}/{user['id']}/reset-password", json={}, headers=admin)
    assert response.status_code == 200, response.text
    generated = response.json()["password"]
    assert isinstance(generated, str) and len(generated) >= 12
    assert_problem(login(client, "ivanov", PASSWORD), 401)
    assert login(client, "ivanov", generated).status_code == 200
    # Shown once: reading the user back does not reveal it.
    got = client.get(f"{URL}/{user['id']}", headers=admin)
    assert generated not in got.text
    # A second reset generates a different one.
    second = client.post(f"{URL}/{user['id']}/reset-password", json={}, headers=admin).json()
    assert second["password"] != generated


def test_reset_password_validation(client, admin):
    user = _create(client, admin)
    short = client.post(
        f"{URL}/{user['id']}/reset-password", json={"password": "short"}, headers=admin
    )
    assert_problem(short, 422, field="password")
    assert login(client, "ivanov", PASSWORD).status_code == 200
    assert_problem(client.post(f"{URL}/999999/reset-password", json={}, headers=admin), 404)
    assert_problem(client.get(f"{URL}/{2**31}", headers=admin), 404)


def test_non_admins_get_403_on_every_user_endpoint(client, auth):
    target = auth.user("operator", username="target")
    admin = auth.headers("admin")
    before = client.get(URL, headers=admin).json()
    for role in ("operator", "agency", "integration", "analyst"):
        headers = auth.headers(role)
        calls = [
            client.get(URL, headers=headers),
            client.get(f"{URL}/{target.id}", headers=headers),
            client.post(
                URL,
                json={"username": "intruder", "password": PASSWORD, "role": "admin"},
                headers=headers,
            ),
            client.patch(f"{URL}/{target.id}", json={"role": "admin"}, headers=headers),
            client.post(
                f"{URL}/{target.id}/reset-password", json={"password": PASSWORD}, headers=headers
            ),
        ]
        for response in calls:
            body = assert_problem(response, 403)
            assert body["required_scopes"] == ["accounts:manage"], role
    after = client.get(URL, headers=admin).json()
    # Only the accounts the test itself made for each role were added; nothing else changed.
    assert [u for u in after["items"] if u["id"] == target.id] == [
        u for u in before["items"] if u["id"] == target.id
    ]
    assert not [u for u in after["items"] if u["username"] == "intruder"]
    assert login(client, "target", factories.PASSWORD).status_code == 200
    assert_problem(client.get(URL), 401)
