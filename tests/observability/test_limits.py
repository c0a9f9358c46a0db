"""Resource limits: the body size (by Content-Length and while streaming, larger for /batch)
and per-client rates on intake and the token endpoint."""

from __future__ import annotations

import ipaddress

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel

from app.core.callers import TokenSubjects, client_ip
from app.core.config import Settings
from app.core.limits import BodyLimitMiddleware, TokenBuckets, limited_group
from tests.conftest import TEST_SECRET, bearer
from tests.observability.conftest import assert_problem

KIB = 1024


class Item(BaseModel):
    text: str


def _routes(app: FastAPI) -> None:
    calls = app.state.calls = []

    async def parsed(item: Item) -> dict:
        calls.append("parsed")
        return {"size": len(item.text)}

    async def raw(request: Request) -> dict:
        size = len(await request.body())
        calls.append("raw")
        return {"size": size}

    app.add_api_route("/things", parsed, methods=["POST"])
    app.add_api_route("/things/batch", parsed, methods=["POST"])
    app.add_api_route("/raw", raw, methods=["POST"])


@pytest.fixture
def http(bare_app):
    app = bare_app(max_body_bytes=4 * KIB, max_batch_body_bytes=16 * KIB)
    _routes(app)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _json(size: int) -> bytes:
    return b'{"text": "' + b"x" * (size - 12) + b'"}'


def _chunks(body: bytes, size: int = KIB):
    for start in range(0, len(body), size):
        yield body[start : start + size]


# --- body size ----------------------------------------------------------------------------


def test_a_body_of_exactly_the_limit_passes(http):
    body = _json(4 * KIB)
    assert len(body) == 4 * KIB
    response = http.post("/things", content=body, headers={"Content-Type": "application/json"})
    assert response.json() == {"size": 4 * KIB - 12}


def test_content_length_over_the_limit_is_refused_before_the_route(http):
    response = http.post(
        "/things", content=_json(4 * KIB + 1), headers={"Content-Type": "application/json"}
    )
    body = assert_problem(response, 413)
    assert body["limit_bytes"] == 4 * KIB
    assert "4096 bytes" in body["detail"]
    assert body["type"].endswith("/payload-too-large")
    assert response.headers["x-request-id"] == body["request_id"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert http.app.state.calls == []


@pytest.mark.parametrize("path", ["/things", "/raw"])
def test_a_streamed_body_without_length_is_cut_off_at_the_limit(http, path):
    body = _json(6 * KIB)
    response = http.post(path, content=_chunks(body), headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers  # sent chunked
    problem = assert_problem(response, 413)
    assert problem["limit_bytes"] == 4 * KIB
    assert http.app.state.calls == []


def test_a_streamed_body_within_the_limit_arrives_whole(http):
    body = _json(3 * KIB)
    response = http.post("/raw", content=_chunks(body, 500))
    assert response.json() == {"size": len(body)}


def test_a_body_read_outside_fastapi_is_cut_off_too():
    async def echo(scope, receive, send):  # a plain ASGI app, no FastAPI parsing
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    http = TestClient(BodyLimitMiddleware(echo, default_limit=KIB, batch_limit=2 * KIB))
    assert http.post("/x", content=_chunks(b"a" * KIB, 100)).content == b"a" * KIB
    response = http.post("/x", content=_chunks(b"a" * (KIB + 1), 100))
    assert assert_problem(response, 413)["limit_bytes"] == KIB
    assert http.post("/x/batch", content=_chunks(b"a" * (KIB + 1), 100)).status_code == 200


def test_batch_paths_get_the_larger_limit(http):
    body = _json(10 * KIB)
    headers = {"Content-Type": "application/json"}
    assert http.post("/things/batch", content=body, headers=headers).status_code == 200
    assert http.post("/things/batch", content=_chunks(body), headers=headers).status_code == 200
    assert http.post("/things", content=body, headers=headers).status_code == 413
    too_big = assert_problem(http.post("/things/batch", content=_json(16 * KIB + 1)), 413)
    assert too_big["limit_bytes"] == 16 * KIB


def test_the_default_limits():
    settings = Settings(_env_file=None)
    assert settings.max_body_bytes == 1024 * KIB
    assert settings.max_batch_body_bytes == 16 * 1024 * KIB


# --- rates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "group"),
    [
        ("POST", "/api/v1/incidents", "intake"),
        ("POST", "/api/v1/appeals/", "intake"),
        ("POST", "/api/v1/incidents/batch", "intake"),
        ("POST", "/api/v1/appeals/batch", "intake"),
        ("POST", "/open311/v2/requests.json", "intake"),
        ("POST", "/api/v1/auth/token", "auth"),
        ("GET", "/api/v1/incidents", None),
        ("POST", "/api/v1/cases/1/assign", None),
        ("GET", "/open311/v2/requests.json", None),
    ],
)
def test_which_requests_are_rate_limited(method, path, group):
    assert limited_group(method, path) == group


def test_token_buckets_refill_evenly():
    now = [1000.0]
    buckets = TokenBuckets(3, clock=lambda: now[0])  # 3 a minute: one every 20 s
    assert [buckets.take("a")[:2] for _ in range(3)] == [(True, 2), (True, 1), (True, 0)]
    allowed, remaining, reset, retry_after = buckets.take("a")
    assert (allowed, remaining, reset, retry_after) == (False, 0, 60, 20)
    assert buckets.take("b")[0] is True  # another client has its own bucket
    now[0] += 20
    assert buckets.take("a")[:2] == (True, 0)
    now[0] += 61
    assert buckets.take("c")[0] is True  # a pass that prunes the full buckets
    assert set(buckets._buckets) == {"c"}


def test_rates_are_off_in_tests_and_on_elsewhere():
    assert Settings(_env_file=None, env="test").rate_limits_on is False
    assert Settings(_env_file=None, env="test", rate_limit_enabled=True).rate_limits_on is True
    assert Settings(_env_file=None, env="dev").rate_limits_on is True
    assert Settings(_env_file=None, env="dev", rate_limit_enabled=False).rate_limits_on is False


def test_the_suite_runs_without_rate_limits(client):
    for _ in range(40):
        response = client.post("/api/v1/auth/token", data={"grant_type": "password"})
        assert response.status_code == 422
        assert "ratelimit-limit" not in response.headers


def _token_post(http, **kw):
    return http.post("/api/v1/auth/token", data={"grant_type": "password"}, **kw)


def test_the_token_endpoint_is_limited_per_client_address(make_client):
    http = make_client(rate_limit_enabled=True, rate_limit_auth_per_minute=2)
    first, second, third = (_token_post(http) for _ in range(3))
    assert [r.status_code for r in (first, second)] == [422, 422]
    assert first.headers["ratelimit-limit"] == "2"
    assert [first.headers["ratelimit-remaining"], second.headers["ratelimit-remaining"]] == [
        "1",
        "0",
    ]
    assert int(second.headers["ratelimit-reset"]) > 0
    body = assert_problem(third, 429)
    assert body["type"].endswith("/too-many-requests")
    assert third.headers["retry-after"] == str(body["retry_after"])
    # 30 s for the next token, less the time the three requests took: the exact figure is the
    # bucket's (tested above with a clock of its own); on a loaded machine they took over 1 s.
    assert 25 <= body["retry_after"] <= 30
    assert third.headers["ratelimit-remaining"] == "0"
    assert third.headers["x-request-id"] == body["request_id"]
    # Another address has its own allowance; other routes are not limited.
    other = make_client(
        rate_limit_enabled=True, rate_limit_auth_per_minute=2, client=("203.0.113.9", 4000)
    )
    assert _token_post(other).status_code == 422
    assert "ratelimit-limit" not in http.get("/health/live").headers


def test_intake_is_limited_per_token_subject(make_client):
    http = make_client(rate_limit_enabled=True, rate_limit_intake_per_minute=2)
    settings = http.app.state.settings
    first = bearer(settings, "client:1", "integration")
    again = bearer(settings, "client:1", "integration")  # another token, same client
    other = bearer(settings, "client:2", "integration")
    statuses = [
        http.post("/api/v1/incidents", json={}, headers=h).status_code
        for h in (
            first,
            again,
            first,
            other,
        )
    ]
    assert statuses[:2] != [429, 429] and statuses[2] == 429
    assert statuses[3] != 429
    # Without a valid token the client's address is the key, shared by every such request.
    anonymous = [http.post("/api/v1/appeals/batch", json=[]).status_code for _ in range(3)]
    assert anonymous[2] == 429 and 429 not in anonymous[:2]


def test_x_forwarded_for_counts_only_from_trusted_proxies(make_client):
    spoofer = make_client(rate_limit_enabled=True, rate_limit_auth_per_minute=1)
    assert _token_post(spoofer, headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 422
    assert _token_post(spoofer, headers={"X-Forwarded-For": "198.51.100.2"}).status_code == 429
    proxied = make_client(
        rate_limit_enabled=True,
        rate_limit_auth_per_minute=1,
        trusted_proxies=["10.0.0.0/8"],
        client=("10.1.2.3", 5000),
    )
    assert _token_post(proxied, headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 422
    assert _token_post(proxied, headers={"X-Forwarded-For": "198.51.100.2"}).status_code == 422
    assert _token_post(proxied, headers={"X-Forwarded-For": "198.51.100.2"}).status_code == 429


def _scope(peer: str, forwarded: str | None = None) -> dict:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded is not None else []
    return {"client": (peer, 1), "headers": headers}


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("192.0.2.1", "198.51.100.7", "192.0.2.1"),  # not a proxy: its header is ignored
        ("10.0.0.2", "198.51.100.7", "198.51.100.7"),
        ("10.0.0.2", "6.6.6.6, 198.51.100.7", "198.51.100.7"),  # the client wrote 6.6.6.6
        ("10.0.0.2", "198.51.100.7, 10.0.0.9", "198.51.100.7"),  # through two proxies
        ("10.0.0.2", "not-an-ip", "10.0.0.2"),
        ("10.0.0.2", None, "10.0.0.2"),
        ("10.0.0.2", "10.0.0.3", "10.0.0.3"),
    ],
)
def test_client_ip_behind_trusted_proxies(peer, forwarded, expected):
    trusted = (ipaddress.ip_network("10.0.0.0/8"),)
    assert client_ip(_scope(peer, forwarded), trusted) == expected
    assert client_ip(_scope(peer, forwarded), ()) == peer


def test_trusted_proxies_must_be_addresses():
    with pytest.raises(ValueError, match="not an IP address"):
        Settings(_env_file=None, trusted_proxies=["proxy.local"])


def test_token_subjects_are_remembered_and_checked():
    settings = Settings(_env_file=None, secret_key=TEST_SECRET)
    subjects = TokenSubjects(settings, capacity=2)
    header = bearer(settings, "user:7", "operator")["Authorization"].encode()
    assert subjects.subject(header) == "user:7"
    assert subjects.subject(header) == "user:7"
    assert subjects.subject(b"Bearer not.a.token") is None
    assert subjects.subject(b"Basic dXNlcjpwYXNz") is None
    assert subjects.subject(None) is None
    forged = bearer(Settings(_env_file=None, secret_key="y" * 40), "user:1", "admin")
    assert subjects.subject(forged["Authorization"].encode()) is None
    assert len(subjects._seen) <= 2
