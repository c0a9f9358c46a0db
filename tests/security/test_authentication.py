"""OWASP API2 (broken authentication), what tests/auth does not already hold.

Already there: refresh-token reuse ends the family (tests/auth/test_token_endpoint.py), disabled
users and clients refused with their existing tokens (tests/auth/test_tokens.py,
tests/accounts), clock skew (iat in the future beyond the leeway), throttling, and the timing of
unknown against known names. Added here: no account enumeration through anything an answer
carries — status, headers and the whole problem body — for unknown, wrong, disabled and
throttled accounts, people and machines alike; and a spent refresh token, replayed after the
session moved on, still ends the whole session."""

from __future__ import annotations

import base64
import math
import re
import time

from tests import factories

TOKEN = "/api/v1/auth/token"
PASSWORD = factories.PASSWORD
# Parts of an answer that differ between any two requests, by design.
PER_REQUEST = {"instance", "request_id"}


def _shape(response) -> tuple:
    body = {k: v for k, v in response.json().items() if k not in PER_REQUEST}
    headers = {
        k: v
        for k, v in response.headers.items()
        if k in ("content-type", "www-authenticate", "cache-control", "retry-after")
    }
    return response.status_code, headers, body


def _password(client, username: str, password: str = PASSWORD):
    data = {"grant_type": "password", "username": username, "password": password}
    return client.post(TOKEN, data=data)


def _client_credentials(client, client_id: str, secret: str = PASSWORD):
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return client.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )


def test_unknown_wrong_and_disabled_people_get_the_very_same_answer(client, auth):
    active = auth.user()
    disabled = auth.user(is_active=False)
    wrong = _shape(_password(client, active.username, "not-the-password"))
    unknown = _shape(_password(client, "nobody-here"))
    off = _shape(_password(client, disabled.username))  # the right password, too
    assert wrong[0] == 401
    assert wrong == unknown == off


def test_unknown_wrong_and_disabled_machines_get_the_very_same_answer(client, db):
    active = db.add(factories.api_client())
    disabled = db.add(factories.api_client(is_active=False))
    wrong = _shape(_client_credentials(client, active.client_id, "not-the-secret"))
    unknown = _shape(_client_credentials(client, "no-such-client"))
    off = _shape(_client_credentials(client, disabled.client_id))
    assert wrong[0] == 401
    assert wrong == unknown == off


def test_a_locked_account_and_a_locked_unknown_name_look_alike(client, auth, settings):
    user = auth.user()
    # Interleaved, so the two lock within a request of each other; the time that takes (long on a
    # loaded machine) is measured and allowed for below.
    for attempt in range(settings.login_max_failures):
        if attempt == settings.login_max_failures - 1:
            started = time.monotonic()
        for name in (user.username, "ghost"):
            _password(client, name, "wrong")
    locking = time.monotonic() - started
    real = _password(client, user.username)  # even the right password
    ghost = _password(client, "ghost")
    assert real.status_code == ghost.status_code == 429
    real_shape, ghost_shape = _shape(real), _shape(ghost)
    # Retry-After counts down by the second: allow the two to straddle a tick, plus the seconds
    # between the two locking attempts.
    for shape in (real_shape, ghost_shape):
        shape[1].pop("retry-after")
        shape[2].pop("retry_after", None)
        shape[2]["detail"] = re.sub(r"\d+", "N", shape[2]["detail"])
    assert real_shape == ghost_shape
    gap = abs(int(real.headers["retry-after"]) - int(ghost.headers["retry-after"]))
    assert gap <= 1 + math.ceil(locking)


def test_reuse_of_an_old_refresh_token_ends_the_session_even_after_it_moved_on(client, auth):
    user = auth.user()
    first = _password(client, user.username).json()
    tokens = [first["refresh_token"]]
    for _ in range(3):  # the legitimate client rotates a few times
        answer = client.post(
            TOKEN, data={"grant_type": "refresh_token", "refresh_token": tokens[-1]}
        )
        assert answer.status_code == 200, answer.text
        tokens.append(answer.json()["refresh_token"])
    # The thief replays the first token: refused, and the newest one dies with the family.
    replay = client.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": tokens[0]})
    assert replay.status_code == 401
    for token in tokens:
        again = client.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": token})
        assert again.status_code == 401, again.text
        assert "access_token" not in again.text
    # Another login still works: the account itself is not locked by a replay.
    assert _password(client, user.username).status_code == 200
