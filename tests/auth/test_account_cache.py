"""The per-process account cache behind token checks (app.auth.account_cache): a change this
process makes is seen at once; one it cannot see (another worker, plain SQL) within the bound."""

from __future__ import annotations

from sqlalchemy import text

from app.auth.account_cache import ACCOUNT_CACHE_SECONDS, AccountCache
from tests import factories
from tests.conftest import bearer

ME = "/api/v1/auth/me"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _cache_with_clock(client) -> Clock:
    clock = Clock()
    client.app.state.account_cache = AccountCache(clock=clock)
    return clock


def _plain_sql(db, sql: str, **params) -> None:
    """A write that bypasses the ORM, as another worker process's would look to this one."""

    async def work(session):
        await session.connection()
        await session.execute(text(sql), params)

    db.run(work)


def test_an_account_disabled_elsewhere_is_refused_within_the_bound(client, auth, db, settings):
    clock = _cache_with_clock(client)
    user = auth.user("operator")
    headers = bearer(settings, f"user:{user.id}", "operator")
    assert client.get(ME, headers=headers).status_code == 200  # the account is now remembered

    _plain_sql(db, "UPDATE user_account SET is_active = false WHERE id = :id", id=user.id)
    clock.now += ACCOUNT_CACHE_SECONDS - 0.5
    assert client.get(ME, headers=headers).status_code == 200  # still within the bound

    clock.now += 0.5
    refused = client.get(ME, headers=headers)
    assert refused.status_code == 401
    assert "disabled" in refused.json()["detail"]


def test_a_client_disabled_elsewhere_is_refused_within_the_bound(client, db, settings):
    clock = _cache_with_clock(client)
    api_client = db.add(factories.api_client())
    headers = bearer(settings, f"client:{api_client.id}", "integration")
    assert client.get(ME, headers=headers).status_code == 200

    _plain_sql(db, "UPDATE api_client SET is_active = false WHERE id = :id", id=api_client.id)
    clock.now += ACCOUNT_CACHE_SECONDS
    assert client.get(ME, headers=headers).status_code == 401


def test_an_account_changed_through_the_orm_is_refused_at_once(client, auth, db, settings):
    """No clock moves: the write itself makes every cache of the process forget."""
    _cache_with_clock(client)
    user = auth.user("operator")
    headers = bearer(settings, f"user:{user.id}", "operator")
    assert client.get(ME, headers=headers).status_code == 200

    async def disable(session):
        row = await session.get(type(user), user.id)
        row.is_active = False

    db.run(disable)
    assert client.get(ME, headers=headers).status_code == 401
