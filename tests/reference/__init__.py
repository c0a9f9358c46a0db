"""Reference-data API tests. Also holds the small helpers the account tests share."""

from __future__ import annotations

from typing import Any

PROBLEM_JSON = "application/problem+json"


def assert_problem(response, status: int, *, field: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem with `status`; if `field` is given (dotted, e.g.
    "sector_ids.1"), the first error's loc names it and the detail mentions it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["type"], str) and body["type"].startswith("https://")
    if field is not None:
        assert body["errors"][0]["loc"] == ["body", *field.split(".")], body
        assert field in body["detail"], body
    return body


def codes(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["code"] for item in response.json()["items"]]


def cheap_argon2(monkeypatch) -> None:
    """Argon2 with minimal cost for the duration of a test: the code paths (hash, verify,
    rehash) are the real ones, only the work factor is small, so account tests stay fast.
    Hashes carry their own parameters, so hashes made either way still verify."""
    from argon2 import PasswordHasher

    from app.core import passwords

    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
