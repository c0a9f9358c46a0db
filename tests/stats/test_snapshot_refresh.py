"""The worker's refresh of stats snapshots (app/stats/refresh.py): the views people asked for
within the window are recomputed before they expire, nothing else is; the unrequested expired
ones are deleted; the work per pass is bounded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from app.core.config import Settings
from app.core.types import utcnow
from app.stats.refresh import refresh_snapshots
from app.stats.snapshots import store_of
from app.webhooks.delivery import Worker
from tests.stats.conftest import make_case, msk
from tests.stats.test_snapshots import SNAPSHOTS, aggregates, get, statements, stored

HOURS_2 = timedelta(hours=2)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"stats_max_age_seconds": 60})


@pytest.fixture
def worker(client, settings):
    made = client.portal.call(
        lambda: _worker(settings, client.app.state.sessionmaker)  # in the app's loop
    )
    yield made
    client.portal.call(made.aclose)


async def _worker(settings, sessionmaker) -> Worker:
    return Worker(settings, sessionmaker)


def _age(db, key: str | None = None, **ages: timedelta) -> None:
    """Moves stored snapshots' times back (generated_at=…, last_requested_at=…)."""
    now = utcnow()
    stmt = update(SNAPSHOTS).values({name: now - ago for name, ago in ages.items()})
    if key is not None:
        stmt = stmt.where(SNAPSHOTS.c.key == key)

    async def run(session):
        await session.execute(stmt)

    db.run(run)


def test_the_worker_refreshes_requested_snapshots_about_to_expire(client, db, auth, region, worker):
    analyst = auth.headers("analyst")
    get(client, analyst, group_by="kind")  # asked for, and about to expire
    get(client, analyst, group_by="status")  # asked for, young
    get(client, analyst, group_by="source")  # asked for two hours ago only
    keys = {row.params["group_by"][0]: row.key for row in stored(db)}
    _age(db, keys["kind"], generated_at=timedelta(seconds=50))
    _age(db, keys["source"], generated_at=timedelta(seconds=50), last_requested_at=HOURS_2)
    before = {row.key: row for row in stored(db)}
    db.add(make_case(created=msk(1, 5, 10), network="ok"))

    done = client.portal.call(worker.run_once)
    assert done["stats_refreshed"] == 1
    after = {row.key: row for row in stored(db)}
    kind = after[keys["kind"]]
    assert kind.generated_at > before[keys["kind"]].generated_at
    assert '"received":6' in kind.body  # the new incident counted
    # A refresh is not a request: the row is as requested as it was.
    assert kind.last_requested_at == before[keys["kind"]].last_requested_at
    assert after[keys["status"]] == before[keys["status"]]
    assert after[keys["source"]] == before[keys["source"]]  # nobody looks: left to expire

    # The people's next request (another process: nothing ready) gets the refreshed answer.
    store_of(client.app).forget()
    with statements(client) as seen:
        served = get(client, analyst, group_by="kind")
    assert aggregates(seen) == [] and served.text == kind.body


def test_the_worker_deletes_expired_unrequested_snapshots(client, db, auth, region, settings):
    analyst = auth.headers("analyst")
    get(client, analyst, group_by="kind")
    get(client, analyst, group_by="status")
    keys = {row.params["group_by"][0]: row.key for row in stored(db)}
    _age(db, keys["kind"], generated_at=timedelta(hours=2), last_requested_at=timedelta(hours=2))
    sessionmaker = client.app.state.sessionmaker
    refreshed = client.portal.call(refresh_snapshots, sessionmaker, settings, utcnow())
    assert refreshed == 0  # "status" is young; "kind" nobody asked for within the hour
    assert [row.key for row in stored(db)] == [keys["status"]]


def test_refresh_work_per_pass_is_bounded(client, db, auth, region, settings):
    analyst = auth.headers("analyst")
    for group_by in ("kind", "status", "source", "agency"):
        get(client, analyst, group_by=group_by)
    _age(db, generated_at=timedelta(seconds=55))
    bounded = settings.model_copy(update={"stats_refresh_batch": 3})
    sessionmaker = client.app.state.sessionmaker
    assert client.portal.call(refresh_snapshots, sessionmaker, bounded, utcnow()) == 3
    assert client.portal.call(refresh_snapshots, sessionmaker, bounded, utcnow()) == 1
    assert client.portal.call(refresh_snapshots, sessionmaker, bounded, utcnow()) == 0


def test_a_snapshot_that_cannot_be_answered_any_more_is_dropped(client, db, auth, region, settings):
    get(client, auth.headers("analyst"), territory_id=region.district.id)
    _age(db, generated_at=timedelta(seconds=55))

    async def gone(session):  # as stored by an older release
        await session.execute(update(SNAPSHOTS).values(params={"version": 0, "report": "summary"}))

    db.run(gone)
    sessionmaker = client.app.state.sessionmaker
    assert client.portal.call(refresh_snapshots, sessionmaker, settings, utcnow()) == 0
    assert stored(db) == []


def test_nothing_is_refreshed_with_snapshots_off(client, db, auth, region, settings):
    get(client, auth.headers("analyst"))
    _age(db, generated_at=timedelta(seconds=55))
    off = settings.model_copy(update={"stats_max_age_seconds": 0})
    sessionmaker = client.app.state.sessionmaker
    assert client.portal.call(refresh_snapshots, sessionmaker, off, utcnow()) == 0
    assert len(stored(db)) == 1  # requested within the hour: left alone
