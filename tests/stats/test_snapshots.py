"""Stats answers from stored snapshots (app/stats/snapshots.py, app/stats/refresh.py): served
without the aggregate while young, recomputed on request or when expired, one per reach, kept
warm by the worker for the views people ask for, and off with a max age of 0."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from sqlalchemy import event, select, text

from app.auth.deps import Principal
from app.auth.permissions import ROLE_SCOPES, Role
from app.core.config import Settings
from app.core.types import utcnow
from app.stats.models import StatsSnapshot
from app.stats.schemas import Dimension, Interval, LeagueBy
from app.stats.service import StatsFilters, StatsRequest, StatsService
from app.stats.snapshots import Freshness, Snapshot, SnapshotStore, compute, store_of
from tests.sql import statements
from tests.stats.conftest import PERIOD, make_case, msk

SUMMARY = "/api/v1/stats/summary"
SNAPSHOTS = StatsSnapshot.__table__
ANALYST = Principal("user", 1, "analyst", Role.analyst, ROLE_SCOPES[Role.analyst])


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The test settings turn snapshots off (REGIONDESK_ENV=test); these tests are about them.
    return settings.model_copy(update={"stats_max_age_seconds": 60})


@pytest.fixture(autouse=True)
def clock(request) -> list[float]:
    """The store's clock, stopped (a test moves it with `later`), so ages are exact however
    long a computation takes on a busy machine."""
    now = [float(int(time.time()))]
    if "client" in request.fixturenames:
        store_of(request.getfixturevalue("client").app).clock = lambda: now[0]
    return now


def aggregates(seen: list[str]) -> list[str]:
    """The statements that read the cases (the stats aggregate; nothing else here does)."""
    return [s for s in seen if "case_file" in s]


def touching_snapshots(seen: list[str]) -> list[str]:
    return [s for s in seen if "stats_snapshot" in s]


def get(client, headers, path=SUMMARY, **params):
    response = client.get(path, params={**PERIOD, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return response


def stored(db) -> list:
    return db.run(lambda s: _rows(s))


async def _rows(session):
    return list(await session.execute(select(SNAPSHOTS).order_by(SNAPSHOTS.c.generated_at)))


def test_the_second_request_is_served_from_the_snapshot(client, auth, region):
    analyst = auth.headers("analyst")
    with statements(client) as seen:
        first = get(client, analyst, group_by="territory")
    assert len(aggregates(seen)) == 1
    with statements(client) as seen:
        second = get(client, analyst, group_by="territory")
    # From this process's ready answers: no aggregate, not even the snapshot table.
    assert aggregates(seen) == [] and touching_snapshots(seen) == []
    assert second.content == first.content
    assert len(second.json()["items"]) == 4


def test_another_process_reads_the_table_in_one_statement(client, auth, region):
    analyst = auth.headers("analyst")
    first = get(client, analyst)
    store_of(client.app).forget()  # as another worker process would start: nothing ready
    with statements(client) as seen:
        second = get(client, analyst)
    assert aggregates(seen) == []
    [statement] = touching_snapshots(seen)  # one UPDATE … RETURNING by primary key
    assert statement.lstrip().upper().startswith("UPDATE")
    assert second.content == first.content


def test_a_snapshot_answers_until_it_expires(client, db, auth, region, clock):
    analyst = auth.headers("analyst")
    before = get(client, analyst).json()
    db.add(make_case(created=msk(1, 5, 10)))  # one more case in the period
    clock[0] += 59
    stale = get(client, analyst)
    assert stale.json() == before  # the stored figures, as of generated_at
    assert stale.headers["age"] == "59"
    clock[0] += 60
    with statements(client) as seen:
        fresh = get(client, analyst).json()
    assert len(aggregates(seen)) == 1
    assert fresh["items"][0]["received"] == before["items"][0]["received"] + 1
    assert fresh["generated_at"] > before["generated_at"]


def test_age_and_cache_control_headers(client, auth, region, clock):
    analyst = auth.headers("analyst")
    response = get(client, analyst)
    assert response.headers["age"] == "0"
    assert response.headers["cache-control"] in ("private, max-age=60", "private, max-age=59")
    assert "Authorization" in response.headers["vary"]
    clock[0] += 25.5
    response = get(client, analyst)
    assert response.headers["age"] == "25"
    assert response.headers["cache-control"] == "private, max-age=34"
    # The figures' time is the snapshot's: the body's generated_at does not move.
    assert response.json()["generated_at"] == get(client, analyst).json()["generated_at"]


@pytest.mark.parametrize("directive", ["no-cache", "max-age=0", "private, no-cache"])
def test_no_cache_recomputes_and_stores_the_new_answer(client, db, auth, region, directive):
    analyst = auth.headers("analyst")
    before = get(client, analyst).json()
    db.add(make_case(created=msk(1, 5, 10)))
    with statements(client) as seen:
        forced = client.get(SUMMARY, params=PERIOD, headers={**analyst, "Cache-Control": directive})
    assert forced.status_code == 200 and len(aggregates(seen)) == 1
    assert forced.headers["age"] == "0"
    assert forced.json()["items"][0]["received"] == before["items"][0]["received"] + 1
    # The new answer replaced the old one, here and in the table.
    assert get(client, analyst).content == forced.content
    store_of(client.app).forget()
    assert get(client, analyst).content == forced.content


def test_max_age_accepts_only_younger_answers(client, auth, region, clock):
    analyst = auth.headers("analyst")
    get(client, analyst)
    clock[0] += 30

    def ask(max_age: int):
        headers = {**analyst, "Cache-Control": f"max-age={max_age}"}
        with statements(client) as seen:
            response = client.get(SUMMARY, params=PERIOD, headers=headers)
        assert response.status_code == 200
        return response.headers["age"], len(aggregates(seen))

    assert ask(45) == ("30", 0)  # 30 s old will do
    assert ask(30) == ("30", 0)
    assert ask(10) == ("0", 1)  # too old: computed now
    assert ask(10) == ("0", 0)  # and now young enough for the next one


@pytest.mark.parametrize("value", ["max-age=soon", "max-age=-5", "max-age=1.5", "max-age="])
def test_a_bad_max_age_is_named(client, auth, region, value):
    response = client.get(
        SUMMARY, params=PERIOD, headers={**auth.headers("analyst"), "Cache-Control": value}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["loc"] == ["header", "Cache-Control"]


def test_unknown_directives_are_ignored(client, auth, region):
    analyst = auth.headers("analyst")
    first = get(client, analyst)
    with statements(client) as seen:
        again = client.get(
            SUMMARY, params=PERIOD, headers={**analyst, "Cache-Control": "no-transform, x=1"}
        )
    assert again.content == first.content and aggregates(seen) == []


def test_agency_staff_never_get_another_agencys_snapshot(client, auth, region):
    analyst = auth.headers("analyst")
    everything = get(client, analyst).json()["items"][0]
    minzdrav = get(client, analyst, agency_id=region.minzdrav.id).json()["items"][0]
    assert (everything["received"], minzdrav["received"]) == (8, 2)

    krasnodar_staff = auth.headers("agency", agency_id=region.adm_krasnodar.id)
    with statements(client) as seen:
        own = get(client, krasnodar_staff).json()["items"][0]
    # Not the analyst's whole-region answer: their agency is in the key, so computed for it.
    assert len(aggregates(seen)) == 1
    assert own["received"] == 2 and own["closed_on_time"] == 1
    # Naming their own agency is the same question; naming another is still refused, even
    # though that agency's answer is stored.
    with statements(client) as seen:
        named = get(client, krasnodar_staff, agency_id=region.adm_krasnodar.id).json()
    assert aggregates(seen) == [] and named["items"][0] == own
    other = client.get(
        SUMMARY, params={**PERIOD, "agency_id": region.minzdrav.id}, headers=krasnodar_staff
    )
    assert other.status_code == 403
    # Minzdrav's own staff get the figures the analyst's filtered answer holds.
    minzdrav_staff = auth.headers("agency", agency_id=region.minzdrav.id)
    with statements(client) as seen:
        theirs = get(client, minzdrav_staff).json()["items"][0]
    assert aggregates(seen) == [] and theirs == minzdrav


def test_the_key_holds_the_forced_agency_and_the_resolved_period(settings):
    def resolve(principal, **filters):
        return StatsService(None, settings, principal).resolve_summary(StatsFilters(**filters), [])

    staff = Principal("user", 2, "staff", Role.agency, ROLE_SCOPES[Role.agency], agency_id=7)
    mine = resolve(staff)
    assert mine.params()["filters"]["agency_id"] == 7
    assert mine.key == resolve(staff, agency_id=7).key == resolve(ANALYST, agency_id=7).key
    assert mine.key != resolve(ANALYST).key
    # A local date and the instant it stands for are one question.
    by_date = resolve(ANALYST, date_from=msk(1, 1).date())
    assert by_date.key == resolve(ANALYST, date_from=msk(1, 1)).key
    assert by_date.params()["date_from"] == "2025-12-31T21:00:00+00:00"


@pytest.mark.parametrize(
    "resolve",
    [
        lambda s: s.resolve_summary(StatsFilters(kind="appeal"), [Dimension.kind]),
        lambda s: s.resolve_timeseries(StatsFilters(), Interval.week, [Dimension.source]),
        lambda s: s.resolve_league(StatsFilters(source="vk"), LeagueBy.territory, 5),
    ],
)
def test_stored_params_give_back_the_same_request(settings, resolve):
    request = resolve(StatsService(None, settings, ANALYST))
    again = StatsRequest.of_params(request.params())
    assert again == request and again.key == request.key


def test_downloads_are_rendered_from_the_same_snapshot(client, auth, region):
    analyst = auth.headers("analyst")
    answer = get(client, analyst, group_by="territory").json()
    with statements(client) as seen:
        csv = get(client, analyst, group_by="territory", format="csv")
        xlsx = get(client, analyst, group_by="territory", format="xlsx")
    assert aggregates(seen) == []
    assert csv.headers["age"] and csv.headers["cache-control"].startswith("private, max-age=")
    assert xlsx.headers["age"]
    text = csv.content.decode("utf-8-sig")
    assert len(text.strip().splitlines()) == 1 + len(answer["items"])
    assert ";3;0;3;" in text  # Krasnodar: received 3, open 0, closed 3


def test_concurrent_identical_requests_compute_once(client, settings, region):
    store = store_of(client.app)
    request = StatsService(None, settings, ANALYST).resolve_summary(StatsFilters(), [])

    async def together():
        return await asyncio.gather(*(store.get(request, Freshness()) for _ in range(8)))

    with statements(client) as seen:
        answers = client.portal.call(together)
    assert len(aggregates(seen)) == 1
    assert len(touching_snapshots(seen)) == 2  # one look in the table, one upsert
    assert len({a.body for a in answers}) == 1


def test_the_ready_answers_stay_within_their_budget(settings):
    store = SnapshotStore(settings, sessionmaker=None)
    store.budget = 100  # bytes
    now = utcnow()

    def answer(key: str, size: int) -> Snapshot:
        return Snapshot(key, b"x" * size, now, 1)

    for key in "abc":
        store._remember(answer(key, 40))
    assert list(store._ready) == ["b", "c"] and store._bytes == 80  # the oldest went
    assert store._acceptable(store._ready["b"], Freshness())
    store._ready.move_to_end("b")  # what a hit does
    store._remember(answer("d", 40))
    assert list(store._ready) == ["b", "d"]
    store._remember(answer("e", 101))  # larger than the whole budget: never kept
    assert list(store._ready) == ["b", "d"] and store._bytes == 80


def test_an_evicted_answer_is_read_back_from_the_table(client, auth, region):
    analyst = auth.headers("analyst")
    first = get(client, analyst, group_by="territory")
    store_of(client.app).budget = len(first.content) + 10  # this one, but not one more
    get(client, analyst, group_by="kind")
    with statements(client) as seen:
        again = get(client, analyst, group_by="territory")
    assert aggregates(seen) == [] and len(touching_snapshots(seen)) == 1
    assert again.content == first.content


def test_max_age_zero_turns_snapshots_off(client, db, auth, region, settings, clock):
    off = settings.model_copy(update={"stats_max_age_seconds": 0})
    client.app.state.settings = off
    client.app.state.stats_snapshots = None
    store_of(client.app).clock = lambda: clock[0]
    analyst = auth.headers("analyst")
    for _ in range(2):
        with statements(client) as seen:
            response = get(client, analyst)
        assert len(aggregates(seen)) == 1 and touching_snapshots(seen) == []
        assert response.headers["age"] == "0"
        assert response.headers["cache-control"] == "private, max-age=0"
    assert stored(db) == []


def test_the_default_max_age(settings):
    assert Settings(_env_file=None, env="dev").stats_max_age == 60
    assert Settings(_env_file=None, env="test").stats_max_age == 0
    assert Settings(_env_file=None, env="test", stats_max_age_seconds=30).stats_max_age == 30


def test_an_older_answer_never_replaces_a_newer_one(client, db, settings, region):
    request = StatsService(None, settings, ANALYST).resolve_summary(StatsFilters(), [])
    sessionmaker, now = client.app.state.sessionmaker, utcnow()

    def save(at, requested=True):
        client.portal.call(
            lambda: compute(sessionmaker, settings, request, save=True, requested=requested, now=at)
        )
        return [row.generated_at for row in stored(db)]

    assert save(now) == [now]
    assert save(now - timedelta(seconds=5)) == [now]  # a slow computation finishing late
    assert save(now - timedelta(seconds=5), requested=False) == [now]  # a slow refresh
    assert save(now + timedelta(seconds=5), requested=False) == [now + timedelta(seconds=5)]


def test_work_mem_is_raised_for_the_stats_statement_only(client, db, settings, region):
    if db.dialect != "postgresql":
        pytest.skip("work_mem is PostgreSQL's")
    raised = settings.model_copy(update={"stats_work_mem_mb": 96})
    request = StatsService(None, raised, ANALYST).resolve_summary(StatsFilters(), [])
    sessionmaker = client.app.state.sessionmaker
    seen: list[tuple[int, str]] = []
    engine = client.app.state.engine.sync_engine

    def record(conn, cursor, statement, *args):
        seen.append((id(conn.connection.dbapi_connection), statement))

    async def work_mem():
        async with sessionmaker() as session:
            return (await session.execute(text("SHOW work_mem"))).scalar()

    event.listen(engine, "before_cursor_execute", record)
    try:
        client.portal.call(lambda: compute(sessionmaker, raised, request, save=True))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    [setting] = [conn for conn, s in seen if "set_config('work_mem'" in s]
    [aggregate] = [conn for conn, s in seen if "case_file" in s]
    assert setting == aggregate  # on the statement's own connection, before it
    assert client.portal.call(work_mem) == "4MB"  # and gone with its transaction


def test_concurrent_forced_requests_share_one_computation(client, settings, region, clock):
    store = store_of(client.app)
    request = StatsService(None, settings, ANALYST).resolve_summary(StatsFilters(), [])
    first = client.portal.call(store.get, request, Freshness())
    clock[0] += 1

    async def together():
        plain = [store.get(request, Freshness()) for _ in range(4)]
        forced = [store.get(request, Freshness(no_cache=True)) for _ in range(4)]
        return await asyncio.gather(*plain, *forced)

    with statements(client) as seen:
        answers = client.portal.call(together)
    assert len(aggregates(seen)) == 1
    assert all(a is first for a in answers[:4])  # the ready one will do for them
    assert {a.generated_at for a in answers[4:]} == {first.generated_at + timedelta(seconds=1)}
