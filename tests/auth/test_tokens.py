"""Access tokens on a protected route: every way a token can be wrong is refused the same way."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import rsa  # python-jose's own RSA dependency (pure Python): the attacker's keys below
from jose import jwt

from app.auth.permissions import ROLE_SCOPES, Role
from app.core.tokens import LEEWAY_SECONDS, VerifiedTokens, issue_access_token
from tests import factories

ME = "/api/v1/auth/me"
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def _b64(data: dict) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(settings, subject: str, **overrides) -> dict:
    now = int(datetime.now(UTC).timestamp())
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": subject,
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "role": "operator",
        "scope": " ".join(sorted(ROLE_SCOPES[Role.operator])),
        "typ": "access",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(settings, claims: dict, algorithm: str = "HS256", key: str | None = None) -> str:
    return jwt.encode(claims, key or settings.secret_key, algorithm=algorithm)


def _old_user(auth, **kw):
    """An operator whose credentials last changed long ago, so back-dated tokens are judged on
    their own claims, not refused for predating a password change."""
    return auth.user("operator", password_changed_at=LONG_AGO, **kw)


def _assert_refused(response, *, detail_contains: str | None = None) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 401
    assert body["type"].endswith("/unauthorized")
    assert body["instance"] == ME
    if detail_contains is not None:
        assert detail_contains.lower() in body["detail"].lower(), body["detail"]


def _get_me(client, token: str):
    return client.get(ME, headers={"Authorization": f"Bearer {token}"})


# --- a valid token ------------------------------------------------------------------------


def test_valid_user_token_returns_me(client, auth, settings):
    user = auth.user("operator")
    token = _sign(settings, _claims(settings, f"user:{user.id}"))
    response = _get_me(client, token)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "kind": "user",
        "id": user.id,
        "name": user.username,
        "role": "operator",
        "scopes": sorted(ROLE_SCOPES[Role.operator]),
        "agency_id": None,
        "source_system": None,
    }


def test_valid_client_token_returns_me(client, db, settings):
    api_client = db.add(factories.api_client(source_system="ministry-x"))
    token = issue_access_token(
        settings,
        subject=f"client:{api_client.id}",
        role="integration",
        scopes=sorted(ROLE_SCOPES[Role.integration]),
        lifetime=timedelta(minutes=5),
    )
    response = _get_me(client, token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kind"] == "client"
    assert body["id"] == api_client.id
    assert body["name"] == api_client.client_id
    assert body["role"] == "integration"
    assert body["source_system"] == "ministry-x"
    assert body["scopes"] == sorted(ROLE_SCOPES[Role.integration])


# --- the Authorization header ---------------------------------------------------------------


def test_no_header(client):
    _assert_refused(client.get(ME), detail_contains="Authentication required")


@pytest.mark.parametrize(
    "header", ["Basic dXNlcjpwYXNz", "Token abc.def.ghi", "Bearer", "Bearer    ", "bearer"]
)
def test_not_a_bearer_header(client, header):
    _assert_refused(client.get(ME, headers={"Authorization": header}))


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9..", "x" * 300])
def test_garbage_token(client, token):
    _assert_refused(_get_me(client, token), detail_contains="Invalid access token")


# --- signature and algorithm -------------------------------------------------------------


def test_signed_with_another_key(client, auth, settings):
    user = auth.user()
    token = _sign(settings, _claims(settings, f"user:{user.id}"), key="another-" + "k" * 40)
    _assert_refused(_get_me(client, token))


def test_alg_none_is_refused(client, auth, settings):
    user = auth.user()
    header = _b64({"alg": "none", "typ": "JWT"})
    token = f"{header}.{_b64(_claims(settings, f'user:{user.id}'))}."
    _assert_refused(_get_me(client, token))


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_other_hmac_algorithms_with_the_right_key_are_refused(client, auth, settings, algorithm):
    user = auth.user()
    token = _sign(settings, _claims(settings, f"user:{user.id}"), algorithm=algorithm)
    assert jwt.get_unverified_header(token)["alg"] == algorithm
    _assert_refused(_get_me(client, token))


def test_rs256_token_is_refused(client, auth, settings):
    user = auth.user()
    _, private = rsa.newkeys(1024)
    pem = private.save_pkcs1().decode()
    token = _sign(settings, _claims(settings, f"user:{user.id}"), algorithm="RS256", key=pem)
    _assert_refused(_get_me(client, token))


def test_hs256_signed_with_a_public_key_as_secret_is_refused(client, auth, settings):
    # Key confusion: an attacker who knows a public key signs HMAC with it.
    user = auth.user()
    public_pem = rsa.newkeys(1024)[0].save_pkcs1()
    header = _b64({"alg": "HS256", "typ": "JWT"})
    payload = _b64(_claims(settings, f"user:{user.id}"))
    sig = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    token = f"{header}.{payload}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"
    _assert_refused(_get_me(client, token))


# --- time -----------------------------------------------------------------------------------


def test_expired_beyond_leeway(client, auth, settings):
    user = _old_user(auth)
    lifetime = timedelta(minutes=5)
    issued = datetime.now(UTC) - lifetime - timedelta(seconds=LEEWAY_SECONDS + 30)
    token = issue_access_token(
        settings,
        subject=f"user:{user.id}",
        role="operator",
        scopes=["cases:read"],
        lifetime=lifetime,
        now=issued,
    )
    _assert_refused(_get_me(client, token), detail_contains="expired")


def test_a_token_verified_before_still_expires(client, auth, settings):
    """Verified tokens are remembered (app.core.tokens.VerifiedTokens), until they expire."""
    now = datetime.now(UTC)
    clock = {"now": now.timestamp()}
    client.app.state.verified_tokens = VerifiedTokens(settings, clock=lambda: clock["now"])
    user = _old_user(auth)
    token = issue_access_token(
        settings,
        subject=f"user:{user.id}",
        role="operator",
        scopes=["cases:read"],
        lifetime=timedelta(minutes=5),
        now=now,
    )
    assert _get_me(client, token).status_code == 200
    clock["now"] += 5 * 60 + LEEWAY_SECONDS - 1
    assert _get_me(client, token).status_code == 200
    clock["now"] += 1
    _assert_refused(_get_me(client, token), detail_contains="expired")


def test_expired_within_leeway_still_passes(client, auth, settings):
    user = _old_user(auth)
    lifetime = timedelta(minutes=5)
    issued = datetime.now(UTC) - lifetime - timedelta(seconds=LEEWAY_SECONDS - 20)
    token = issue_access_token(
        settings,
        subject=f"user:{user.id}",
        role="operator",
        scopes=["cases:read"],
        lifetime=lifetime,
        now=issued,
    )
    response = _get_me(client, token)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == user.id


def test_iat_in_the_future_beyond_leeway(client, auth, settings):
    user = auth.user()
    future = int(datetime.now(UTC).timestamp()) + LEEWAY_SECONDS + 120
    token = _sign(settings, _claims(settings, f"user:{user.id}", iat=future, exp=future + 300))
    _assert_refused(_get_me(client, token), detail_contains="future")


def test_iat_in_the_future_within_leeway_passes(client, auth, settings):
    user = auth.user()
    soon = int(datetime.now(UTC).timestamp()) + 5
    token = _sign(settings, _claims(settings, f"user:{user.id}", iat=soon))
    assert _get_me(client, token).status_code == 200


def test_token_older_than_password_change_is_refused(client, auth, settings):
    user = auth.user(password_changed_at=datetime.now(UTC))
    issued = datetime.now(UTC) - timedelta(minutes=2)
    token = issue_access_token(
        settings,
        subject=f"user:{user.id}",
        role="operator",
        scopes=["cases:read"],
        lifetime=timedelta(minutes=5),
        now=issued,
    )
    _assert_refused(_get_me(client, token), detail_contains="credentials changed")


# --- audience, issuer, claims ------------------------------------------------------------


def test_wrong_audience(client, auth, settings):
    user = auth.user()
    token = _sign(settings, _claims(settings, f"user:{user.id}", aud="some-other-api"))
    _assert_refused(_get_me(client, token))


def test_wrong_issuer(client, auth, settings):
    user = auth.user()
    token = _sign(settings, _claims(settings, f"user:{user.id}", iss="someone-else"))
    _assert_refused(_get_me(client, token))


@pytest.mark.parametrize("claim", ["exp", "iat", "iss", "aud", "sub", "jti"])
def test_missing_required_claim(client, auth, settings, claim):
    user = auth.user()
    claims = _claims(settings, f"user:{user.id}")
    # Control: the same claims, complete, are accepted.
    assert _get_me(client, _sign(settings, claims)).status_code == 200
    del claims[claim]
    _assert_refused(_get_me(client, _sign(settings, claims)))


@pytest.mark.parametrize("typ", ["refresh", "id", "", None])
def test_typ_other_than_access(client, auth, settings, typ):
    user = auth.user()
    claims = _claims(settings, f"user:{user.id}")
    if typ is None:
        del claims["typ"]
    else:
        claims["typ"] = typ
    _assert_refused(_get_me(client, _sign(settings, claims)), detail_contains="access token")


# --- the account behind the token --------------------------------------------------------


@pytest.mark.parametrize(
    "subject", ["user:999999", "client:999999", "robot:1", "user:abc", "user:", "42"]
)
def test_subject_without_an_account(client, auth, settings, subject):
    auth.user()  # some account exists, just not this one
    _assert_refused(_get_me(client, _sign(settings, _claims(settings, subject))))


def test_deleted_user(client, auth, db, settings):
    user = auth.user()
    token = _sign(settings, _claims(settings, f"user:{user.id}"))
    assert _get_me(client, token).status_code == 200

    async def delete(session):
        await session.delete(await session.get(type(user), user.id))

    db.run(delete)
    _assert_refused(_get_me(client, token), detail_contains="does not exist or is disabled")


def test_disabled_user(client, auth, settings):
    user = auth.user(is_active=False)
    token = _sign(settings, _claims(settings, f"user:{user.id}"))
    _assert_refused(_get_me(client, token), detail_contains="disabled")


def test_disabled_client(client, db, settings):
    api_client = db.add(factories.api_client(is_active=False))
    claims = _claims(
        settings,
        f"client:{api_client.id}",
        role="integration",
        scope=" ".join(sorted(ROLE_SCOPES[Role.integration])),
    )
    _assert_refused(_get_me(client, _sign(settings, claims)), detail_contains="disabled")


# --- scopes ---------------------------------------------------------------------------------

CATEGORY = {"code": "roads", "name_ru": "Дороги", "name_en": "Roads"}


def _admin_token(auth, settings, scopes: list[str]) -> dict[str, str]:
    admin = auth.user("admin")
    token = issue_access_token(
        settings,
        subject=f"user:{admin.id}",
        role="admin",
        scopes=scopes,
        lifetime=timedelta(minutes=5),
    )
    return {"Authorization": f"Bearer {token}"}


def test_token_without_the_routes_scope_is_forbidden(client, auth, settings):
    headers = _admin_token(auth, settings, ["reference:read"])
    response = client.post("/api/v1/categories", json=CATEGORY, headers=headers)
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 403
    assert "reference:write" in body["detail"]
    assert body["required_scopes"] == ["reference:write"]
    # /me reports the narrowed rights, not the role's.
    assert client.get(ME, headers=headers).json()["scopes"] == ["reference:read"]


def test_token_with_the_routes_scope_is_allowed(client, auth, settings):
    # Past authorization the request reaches body validation (an empty body: 422, not 403).
    headers = _admin_token(auth, settings, ["reference:read", "reference:write"])
    response = client.post("/api/v1/categories", json={}, headers=headers)
    assert response.status_code == 422, response.text
    narrow = _admin_token(auth, settings, ["reference:read"])
    assert client.post("/api/v1/categories", json={}, headers=narrow).status_code == 403


def test_token_scope_beyond_the_role_is_not_honoured(client, auth, settings):
    # An operator's token that claims reference:write gets only what the role grants today.
    user = auth.user("operator")
    claims = _claims(settings, f"user:{user.id}", scope="reference:read reference:write")
    headers = {"Authorization": f"Bearer {_sign(settings, claims)}"}
    response = client.post("/api/v1/categories", json=CATEGORY, headers=headers)
    assert response.status_code == 403, response.text
    assert "reference:write" in response.json()["detail"]


def test_token_without_scope_claim_has_no_rights(client, auth, settings):
    user = auth.user("admin")
    claims = _claims(settings, f"user:{user.id}", role="admin", scope=None)
    headers = {"Authorization": f"Bearer {_sign(settings, claims)}"}
    assert client.get(ME, headers=headers).json()["scopes"] == []
    response = client.post("/api/v1/categories", json=CATEGORY, headers=headers)
    assert response.status_code == 403
    assert "reference:write" in response.json()["detail"]
