"""api_key: a machine client's `<client_id>:<client_secret>`, verified with Argon2 once and then
remembered briefly — but never past a disabled client or a rotated secret."""

from __future__ import annotations

import pytest

from app.open311 import api_keys
from tests import factories
from tests.open311.conftest import BASE, errors_of, filing, json_doc

PROTECTED = [
    ("GET", f"{BASE}/requests.json"),
    ("GET", f"{BASE}/requests/1.json"),
    ("POST", f"{BASE}/requests.json"),
]


@pytest.fixture
def verifications(monkeypatch) -> list[str]:
    """Counts the Argon2 verifications of api_keys."""
    calls: list[str] = []
    real = api_keys.verify_secret

    def counting(secret_hash, secret):
        calls.append(secret)
        return real(secret_hash, secret)

    monkeypatch.setattr(api_keys, "verify_secret", counting)
    return calls


def _get(client, key, fmt="json"):
    return client.get(f"{BASE}/requests.{fmt}", params={"api_key": key} if key else None)


def test_requests_need_an_api_key_and_bearer_tokens_do_not_do(client, auth, keys, region):
    client_row = keys.client()
    for method, path in PROTECTED:
        [description] = errors_of(client.request(method, path), 403)
        assert "api_key" in description
        xml_path = path.replace(".json", ".xml")
        errors_of(client.request(method, xml_path), 403, "xml")
        # A bearer token of the same machine client is not an api_key.
        bearer = auth.headers("integration")
        errors_of(client.request(method, path, headers=bearer), 403)
    for bad in (
        "no-colon",
        f"{client_row.client_id}:",
        ":secret",
        f"{client_row.client_id}:wrong-secret",
        f"nobody:{factories.PASSWORD}",
    ):
        [description] = errors_of(_get(client, bad), 403)
        assert "api_key" in description


def test_a_verified_key_is_not_verified_again_for_a_while(client, keys, region, verifications):
    key = keys.key()
    for _ in range(3):
        json_doc(_get(client, key))
    json_doc(client.post(f"{BASE}/requests.json", data={"api_key": key, **filing(region)}), 201)
    assert len(verifications) == 1
    errors_of(_get(client, key.replace(factories.PASSWORD, "wrong-secret")), 403)
    assert len(verifications) == 2  # failures are never remembered


def test_a_disabled_client_is_refused_at_once(client, auth, keys, region, verifications):
    client_row = keys.client()
    key = f"{client_row.client_id}:{factories.PASSWORD}"
    json_doc(_get(client, key))
    admin = auth.headers("admin")
    response = client.patch(
        f"/api/v1/clients/{client_row.id}", json={"is_active": False}, headers=admin
    )
    assert response.status_code == 200, response.text
    [description] = errors_of(_get(client, key), 403)
    assert "disabled" in description


def test_a_rotated_secret_is_refused_at_once(client, auth, keys, region, verifications):
    client_row = keys.client()
    old_key = f"{client_row.client_id}:{factories.PASSWORD}"
    json_doc(_get(client, old_key))
    admin = auth.headers("admin")
    response = client.post(f"/api/v1/clients/{client_row.id}/rotate-secret", headers=admin)
    assert response.status_code == 200, response.text
    new_key = f"{client_row.client_id}:{response.json()['client_secret']}"
    errors_of(_get(client, old_key), 403)  # although it was remembered as verified
    json_doc(_get(client, new_key))
    assert len(verifications) == 3


def test_guessing_is_throttled_like_the_token_endpoint(client, keys, region):
    client_row = keys.client()
    wrong = f"{client_row.client_id}:wrong-secret"
    for _ in range(5):
        errors_of(_get(client, wrong), 403)
    response = _get(client, wrong, "xml")
    [description] = errors_of(response, 429, "xml")
    assert "try again" in description
    assert int(response.headers["retry-after"]) > 0
    # The lockout is the client's, whichever door is knocked on.
    token = client.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_row.client_id,
            "client_secret": factories.PASSWORD,
        },
    )
    assert token.status_code == 429


def test_the_remembered_keys_are_bounded():
    cache = api_keys.VerifiedKeys(seconds=60, size=2)
    rows = [factories.api_client(id=i, secret_hash=f"hash-{i}") for i in range(3)]
    for i, row in enumerate(rows):
        cache.remember(f"digest-{i}", row)
    assert not cache.matches("digest-0", rows[0])  # the oldest made room
    assert cache.matches("digest-1", rows[1]) and cache.matches("digest-2", rows[2])
    assert not cache.matches("digest-1", rows[2])  # a key is its own client's only
    expired = api_keys.VerifiedKeys(seconds=0, size=2)
    expired.remember("digest-0", rows[0])
    assert not expired.matches("digest-0", rows[0])
