"""The benchmark data generator: COPY-loaded cases whose statuses, events and agency links hold
together, on a small sample in the test PostgreSQL database."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise

import asyncpg

from bench.generate import (
    add_working_seconds,
    asyncpg_dsn,
    working_between,
)
from tests.bench.conftest import CASES

OPEN = {"new", "assigned", "in_progress", "returned"}


def test_working_time_skips_nights_and_weekends():
    # Friday 2026-11-27 17:00 Moscow = 14:00 UTC; two working hours later: Monday 10:00 Moscow.
    friday = datetime(2026, 11, 27, 14, 0, tzinfo=UTC).timestamp()
    due = add_working_seconds(friday, 2 * 3600)
    assert datetime.fromtimestamp(due, UTC) == datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    assert working_between(friday, due) == 2 * 3600


async def _fetch(url: str, sql: str) -> list:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


def test_generated_cases_are_consistent(generated, client, database_url):
    def fetch(sql: str) -> list:
        return client.portal.call(_fetch, database_url, sql)

    assert generated.cases == CASES
    cases = fetch("SELECT * FROM case_file ORDER BY id")
    assert len(cases) == CASES
    assert [c["id"] for c in cases] == list(range(generated.first_id, generated.last_id + 1))
    assert len({(c["source_system"], c["external_id"]) for c in cases}) == CASES
    assert len({c["number"] for c in cases}) == CASES
    assert {c["kind"] for c in cases} == {"incident", "appeal"}
    statuses = {c["status"] for c in cases}
    assert "closed" in statuses and "rejected" in statuses
    assert any(c["reopen_count"] > 0 for c in cases)

    # Each case's status is where its history leads, step by step.
    events = fetch("SELECT * FROM case_event ORDER BY case_id, id")
    history: dict[int, list] = {}
    for e in events:
        history.setdefault(e["case_id"], []).append(e)
    assert set(history) == {c["id"] for c in cases}
    for case in cases:
        steps = [e for e in history[case["id"]] if e["action"] != "notify"]
        assert steps[0]["action"] == "create" and steps[0]["to_status"] == "new"
        for before, after in pairwise(steps):
            assert after["from_status"] == before["to_status"], (case["id"], after["action"])
            assert after["created_at"] >= before["created_at"]
        assert steps[-1]["to_status"] == case["status"]
        assert case["updated_at"] == history[case["id"]][-1]["created_at"]
        assert (case["closed_at"] is not None) == (case["status"] == "closed")
        if case["status"] in OPEN - {"new"}:
            assert case["agency_id"] is not None and case["due_at"] is not None

    # Numbered as they arrived: a later id was created later, over three years up to now.
    created = [c["created_at"] for c in cases]
    assert created == sorted(created)
    span = created[-1] - created[0]
    assert span.days > 3 * 365 - 10
    assert (datetime.now(UTC) - created[-1]).days < 3
    # ...daytime-heavy still (Moscow time, UTC+3): more between 9 and 18 than the other 15 hours.
    daytime = sum(9 <= (c.hour + 3) % 24 < 18 for c in created)
    assert daytime > CASES / 2

    # Every agency a case was given is linked, so agency staff see it.
    links = {(r["case_id"], r["agency_id"]) for r in fetch("SELECT * FROM case_agency")}
    for case in cases:
        if case["agency_id"] is not None:
            assert (case["id"], case["agency_id"]) in links

    # The history's outbox events count as sent when they happened: a worker starts on new ones.
    outbox = fetch("SELECT occurred_at, dispatched_at FROM webhook_event")
    assert len(outbox) == len(events)
    assert all(e["dispatched_at"] == e["occurred_at"] for e in outbox)

    # The id sequence moved past the block, so the app's next case does not collide.
    seq = fetch("SELECT last_value FROM case_file_id_seq")[0]["last_value"]
    assert seq >= generated.last_id


def test_generated_tables_are_analyzed_including_the_search_walk(generated, client, database_url):
    # Search pages walk case_search (migration 0014), filled by its triggers: without its
    # statistics a freshly built dataset planned them blind (100k quick: search p99 257 ms).
    counted = client.portal.call(
        _fetch,
        database_url,
        "SELECT relname, reltuples FROM pg_class "
        "WHERE relname IN ('case_file', 'case_event', 'case_search')",
    )
    assert {r["relname"]: r["reltuples"] >= CASES for r in counted} == dict.fromkeys(
        ("case_file", "case_event", "case_search"), True
    )


def test_generated_tables_are_vacuumed_as_a_live_database_would_be(generated, client, database_url):
    # COPY leaves no visibility map: index-only scans of the queue and the search walk would
    # visit every heap page, and the first reads would write hint bits, unlike a database that
    # autovacuum keeps (the 1M dataset had relallvisible 0 on case_file and case_search).
    seen = client.portal.call(
        _fetch,
        database_url,
        "SELECT relname, relallvisible FROM pg_class "
        "WHERE relname IN ('case_file', 'case_event', 'case_search', 'webhook_event')",
    )
    assert {r["relname"]: r["relallvisible"] > 0 for r in seen} == dict.fromkeys(
        ("case_file", "case_event", "case_search", "webhook_event"), True
    )
