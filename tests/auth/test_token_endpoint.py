"""POST /api/v1/auth/token and /revoke: the three grants, throttling, rotation, revocation."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from app.accounts.models import User
from app.auth.models import RefreshToken
from app.auth.permissions import ROLE_SCOPES, Role
from tests import factories

TOKEN = "/api/v1/auth/token"
REVOKE = "/api/v1/auth/revoke"
ME = "/api/v1/auth/me"
PASSWORD = factories.PASSWORD


def _password(client, username: str, password: str = PASSWORD, **extra):
    return client.post(
        TOKEN, data={"grant_type": "password", "username": username, "password": password, **extra}
    )


def _refresh(client, refresh_token: str, **extra):
    return client.post(
        TOKEN, data={"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    )


def _me(client, access_token: str):
    return client.get(ME, headers={"Authorization": f"Bearer {access_token}"})


def _assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    return body


def _assert_invalid_grant(response) -> dict:
    body = _assert_problem(response, 401)
    assert body["error"] == "invalid_grant"
    assert response.headers["www-authenticate"] == "Bearer"
    return body


def _login(client, auth, role: str = "operator", **kw) -> tuple[User, dict]:
    user = auth.user(role, **kw)
    response = _password(client, user.username)
    assert response.status_code == 200, response.text
    return user, response.json()


# --- password grant -------------------------------------------------------------------------


def test_password_grant(client, auth, settings):
    user = auth.user("operator")
    response = _password(client, user.username)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_minutes * 60
    assert body["refresh_token"]
    assert body["scope"].split() == sorted(ROLE_SCOPES[Role.operator])
    assert response.headers["cache-control"] == "no-store"  # RFC 6749 §5.1
    me = _me(client, body["access_token"])
    assert me.status_code == 200, me.text
    assert me.json()["id"] == user.id
    assert me.json()["kind"] == "user"
    assert me.json()["name"] == user.username


def test_wrong_password_and_unknown_user_look_the_same(client, auth):
    user = auth.user()
    wrong = _assert_invalid_grant(_password(client, user.username, "not-the-password"))
    unknown = _assert_invalid_grant(_password(client, "nobody-here", PASSWORD))
    assert wrong["detail"] == unknown["detail"]
    assert wrong["type"] == unknown["type"]


def test_disabled_user_cannot_log_in(client, auth):
    user = auth.user(is_active=False)
    _assert_invalid_grant(_password(client, user.username))


def test_unknown_user_costs_as_much_as_a_known_one(client, auth):
    user = auth.user()

    def timed(username: str) -> float:
        start = time.perf_counter()
        response = _password(client, username, "wrong-password")
        elapsed = time.perf_counter() - start
        assert response.status_code == 401
        return elapsed

    timed(user.username)  # warm up
    known, unknown = [], []
    for i in range(3):  # below the throttling limit for each name
        known.append(timed(user.username))
        unknown.append(timed(f"ghost-{i}"))
    ratio = sorted(unknown)[1] / sorted(known)[1]
    assert 0.5 <= ratio <= 2.0, (known, unknown)


# --- throttling -----------------------------------------------------------------------------


def test_throttled_after_max_failures_even_with_the_right_password(client, auth, settings):
    user = auth.user()
    for _ in range(settings.login_max_failures):
        _assert_invalid_grant(_password(client, user.username, "wrong"))
    response = _password(client, user.username)
    body = _assert_problem(response, 429)
    retry_after = int(response.headers["retry-after"])
    assert 0 < retry_after <= settings.login_lockout_seconds + 1
    assert body["retry_after"] == retry_after
    assert "access_token" not in body


def test_throttling_applies_to_unknown_usernames(client, settings):
    for _ in range(settings.login_max_failures):
        _assert_invalid_grant(_password(client, "nobody", "wrong"))
    response = _password(client, "nobody", "wrong")
    _assert_problem(response, 429)
    assert int(response.headers["retry-after"]) > 0


def test_throttling_is_per_account(client, auth, settings):
    victim, other = auth.user(), auth.user()
    for _ in range(settings.login_max_failures):
        _password(client, victim.username, "wrong")
    assert _password(client, victim.username).status_code == 429
    assert _password(client, other.username).status_code == 200


def test_success_before_the_limit_resets_the_count(client, auth, settings):
    user = auth.user()
    for _ in range(settings.login_max_failures - 1):
        _assert_invalid_grant(_password(client, user.username, "wrong"))
    assert _password(client, user.username).status_code == 200
    for _ in range(settings.login_max_failures - 1):
        _assert_invalid_grant(_password(client, user.username, "wrong"))
    assert _password(client, user.username).status_code == 200


# --- client credentials ---------------------------------------------------------------------


def test_client_credentials_in_the_form(client, db):
    api_client = db.add(factories.api_client())
    response = client.post(
        TOKEN,
        data={
            "grant_type": "client_credentials",
            "client_id": api_client.client_id,
            "client_secret": PASSWORD,
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["refresh_token"] is None
    assert body["token_type"] == "bearer"
    assert body["scope"].split() == sorted(ROLE_SCOPES[Role.integration])
    me = _me(client, body["access_token"]).json()
    assert (me["kind"], me["id"], me["source_system"]) == (
        "client",
        api_client.id,
        api_client.source_system,
    )


def test_client_credentials_with_http_basic(client, db, settings):
    api_client = db.add(factories.api_client())
    basic = base64.b64encode(f"{api_client.client_id}:{PASSWORD}".encode()).decode()
    response = client.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["refresh_token"] is None
    assert body["expires_in"] == settings.client_token_minutes * 60
    assert _me(client, body["access_token"]).json()["id"] == api_client.id


def test_client_credentials_wrong_secret(client, db):
    api_client = db.add(factories.api_client())
    basic = base64.b64encode(f"{api_client.client_id}:nope".encode()).decode()
    response = client.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    _assert_invalid_grant(response)


def test_disabled_client_gets_no_token(client, db):
    api_client = db.add(factories.api_client(is_active=False))
    response = client.post(
        TOKEN,
        data={
            "grant_type": "client_credentials",
            "client_id": api_client.client_id,
            "client_secret": PASSWORD,
        },
    )
    _assert_invalid_grant(response)


# --- refresh tokens -------------------------------------------------------------------------


def test_refresh_rotates_and_reuse_revokes_the_family(client, auth):
    user, first = _login(client, auth)
    r1 = first["refresh_token"]

    rotated = _refresh(client, r1)
    assert rotated.status_code == 200, rotated.text
    r2 = rotated.json()["refresh_token"]
    assert r2 and r2 != r1
    assert _me(client, rotated.json()["access_token"]).json()["id"] == user.id

    # The spent token presented again: refused, and the session it belongs to ends.
    _assert_invalid_grant(_refresh(client, r1))
    _assert_invalid_grant(_refresh(client, r2))


def test_reuse_does_not_touch_other_sessions(client, auth):
    user, first = _login(client, auth)
    second = _password(client, user.username).json()
    assert _refresh(client, first["refresh_token"]).status_code == 200
    _assert_invalid_grant(_refresh(client, first["refresh_token"]))
    assert _refresh(client, second["refresh_token"]).status_code == 200


def test_unknown_refresh_token(client):
    _assert_invalid_grant(_refresh(client, "not-a-token-we-issued"))


def test_expired_refresh_token(client, auth, db):
    user, tokens = _login(client, auth)

    async def expire(session):
        await session.exec(
            update(RefreshToken)
            .where(RefreshToken.subject == f"user:{user.id}")
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )

    db.run(expire)
    body = _assert_invalid_grant(_refresh(client, tokens["refresh_token"]))
    assert "expired" in body["detail"]


def test_refresh_for_a_disabled_user(client, auth, db):
    user, tokens = _login(client, auth)

    async def disable(session):
        await session.exec(update(User).where(User.id == user.id).values(is_active=False))

    db.run(disable)
    _assert_invalid_grant(_refresh(client, tokens["refresh_token"]))


# --- form validation ------------------------------------------------------------------------


def _locs(body: dict) -> set[tuple]:
    return {tuple(e["loc"]) for e in body["errors"]}


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        ({"grant_type": "password"}, {"username", "password"}),
        ({"grant_type": "password", "username": "someone"}, {"password"}),
        ({"grant_type": "client_credentials"}, {"client_id", "client_secret"}),
        ({"grant_type": "refresh_token"}, {"refresh_token"}),
        ({"username": "someone", "password": "x"}, {"grant_type"}),
    ],
)
def test_missing_form_fields(client, data, fields):
    body = _assert_problem(client.post(TOKEN, data=data), 422)
    assert {("body", f) for f in fields} <= _locs(body)
    for field in fields:
        assert field in body["detail"]


def test_unknown_grant_type(client):
    body = _assert_problem(client.post(TOKEN, data={"grant_type": "implicit"}), 422)
    assert ("body", "grant_type") in _locs(body)


def test_json_body_is_not_a_form(client, auth):
    user = auth.user()
    response = client.post(
        TOKEN, json={"grant_type": "password", "username": user.username, "password": PASSWORD}
    )
    body = _assert_problem(response, 422)
    assert ("body", "grant_type") in _locs(body)


# --- scopes ---------------------------------------------------------------------------------


def test_narrower_scope_than_the_role(client, auth):
    user = auth.user("operator")
    response = _password(client, user.username, scope="cases:read reference:read")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "cases:read reference:read"
    assert _me(client, body["access_token"]).json()["scopes"] == ["cases:read", "reference:read"]


def test_scope_the_role_lacks(client, auth):
    user = auth.user("operator")
    response = _password(client, user.username, scope="cases:read accounts:manage")
    body = _assert_problem(response, 400)
    assert body["error"] == "invalid_scope"
    assert "accounts:manage" in body["detail"]


def test_unknown_scope(client, auth):
    user = auth.user("operator")
    body = _assert_problem(_password(client, user.username, scope="root"), 400)
    assert body["error"] == "invalid_scope"


# --- revocation -----------------------------------------------------------------------------


def test_revoke_own_refresh_token(client, auth):
    _, tokens = _login(client, auth)
    response = client.post(
        REVOKE,
        data={"token": tokens["refresh_token"]},
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert response.status_code == 200, response.text
    _assert_invalid_grant(_refresh(client, tokens["refresh_token"]))


def test_revoking_someone_elses_token_does_nothing(client, auth):
    _, victim = _login(client, auth)
    _, attacker = _login(client, auth)
    response = client.post(
        REVOKE,
        data={"token": victim["refresh_token"]},
        headers={"Authorization": f"Bearer {attacker['access_token']}"},
    )
    assert response.status_code == 200
    assert _refresh(client, victim["refresh_token"]).status_code == 200


def test_revoke_needs_authentication(client, auth):
    _, tokens = _login(client, auth)
    response = client.post(REVOKE, data={"token": tokens["refresh_token"]})
    assert response.status_code == 401
    assert _refresh(client, tokens["refresh_token"]).status_code == 200
