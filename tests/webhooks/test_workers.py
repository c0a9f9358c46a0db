"""Several workers on one database: no event delivered twice in normal operation, nothing lost
when a worker dies mid-delivery."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest

from app.core.db import make_engine, make_sessionmaker
from app.core.types import utcnow
from app.webhooks.delivery import Outcome
from tests.cases.conftest import incident
from tests.webhooks.conftest import deliveries, many_cases, outbox, subscribe

pytestmark = pytest.mark.usefixtures("local_allowed")


@pytest.fixture
def other_sessionmaker(client, settings):
    """A second engine: another worker process's own connections."""
    engine = make_engine(settings)
    yield make_sessionmaker(engine)
    client.portal.call(engine.dispose)


def both(client, first, second):
    """Runs two coroutines at once on the app's loop; returns both results."""

    async def go():
        return await asyncio.gather(first(), second())

    return client.portal.call(go)


async def drain(step) -> int:
    total = 0
    while n := await step():
        total += n
    return total


def test_two_workers_at_once_deliver_every_event_exactly_once(
    client, admin, db, make_worker, other_sessionmaker, receiver
):
    if db.dialect != "postgresql":
        pytest.skip("several workers share one database on PostgreSQL; SQLite runs one worker")
    subscribe(client, admin, receiver.url, event_types=["case.created"])
    ids = many_cases(db, 60)
    options = {"webhook_batch_size": 7, "webhook_concurrency": 4}
    a = make_worker(name="a", **options).worker
    b = make_worker(other_sessionmaker, name="b", **options).worker

    dispatched = both(client, lambda: drain(a.dispatch_once), lambda: drain(b.dispatch_once))
    assert sum(dispatched) == 60 and all(dispatched)  # both took a share, none twice
    assert all(row.dispatched_at is not None for row in outbox(db))
    assert len(deliveries(db)) == 60

    delivered = both(client, lambda: drain(a.deliver_once), lambda: drain(b.deliver_once))
    assert sum(delivered) == 60 and all(delivered)
    per_event = Counter(r.json["id"] for r in receiver.received)
    assert len(per_event) == 60 and set(per_event.values()) == {1}
    assert {r.json["case"]["id"] for r in receiver.received} == set(ids)
    assert {(d.status, d.attempts) for d in deliveries(db)} == {("delivered", 1)}


def test_two_running_workers_deliver_every_event_exactly_once(
    client, admin, db, make_worker, other_sessionmaker, make_receiver
):
    """The running workers' pipelines, each claiming per subscription while sending."""
    if db.dialect != "postgresql":
        pytest.skip("several workers share one database on PostgreSQL; SQLite runs one worker")
    receivers = [make_receiver() for _ in range(3)]
    for receiver in receivers:
        subscribe(client, admin, receiver.url, event_types=["case.created"])
    many_cases(db, 150)
    options = {
        "webhook_batch_size": 20,
        "webhook_host_concurrency": 2,
        "webhook_poll_seconds": 0.02,
    }
    a = make_worker(name="a", **options).worker
    b = make_worker(other_sessionmaker, name="b", **options).worker

    async def run_both():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def all_in():
            if sum(r.count() for r in receivers) >= 450:
                stop.set()

        for receiver in receivers:
            receiver.on_request = lambda: loop.call_soon_threadsafe(all_in)
        async with asyncio.timeout(120):
            await asyncio.gather(a.run(stop), b.run(stop))

    client.portal.call(run_both)
    for receiver in receivers:
        per_event = Counter(r.json["id"] for r in receiver.received)
        assert len(per_event) == 150 and set(per_event.values()) == {1}
        assert receiver.most_in_flight <= 4  # two per worker
    done = deliveries(db)
    assert len(done) == 450
    assert {(d.status, d.attempts, d.locked_by) for d in done} == {("delivered", 1, None)}


def test_two_workers_at_once_mark_each_overdue_deadline_once(
    client, db, make_worker, other_sessionmaker
):
    if db.dialect != "postgresql":
        pytest.skip("several workers share one database on PostgreSQL; SQLite runs one worker")
    ids = many_cases(db, 40, due_at=utcnow() - timedelta(hours=1))
    a = make_worker(name="a", webhook_overdue_batch=15).worker
    b = make_worker(other_sessionmaker, name="b", webhook_overdue_batch=15).worker
    marked = both(client, lambda: drain(a.periodic_once), lambda: drain(b.periodic_once))
    assert sum(marked) == 40
    overdue = [r for r in outbox(db) if r.event_type == "case.overdue"]
    assert sorted(r.case_id for r in overdue) == sorted(ids)


def test_a_worker_killed_mid_delivery_loses_nothing(
    client, auth, admin, db, make_worker, other_sessionmaker, receiver
):
    subscribe(client, admin, receiver.url)
    client.post("/api/v1/incidents", json=incident(), headers=auth.headers("operator"))
    dying = make_worker(name="dying")
    survivor = make_worker(other_sessionmaker, name="survivor")
    now = utcnow()
    dying.dispatch_once(now)
    [claimed] = dying.claim(now)  # …and the process is killed before it sends or records

    assert survivor.deliver_once(now) == 0  # leased: normal operation never doubles up
    lease_over = now + dying.worker.lease + timedelta(seconds=1)
    assert survivor.deliver_once(lease_over) == 1
    assert len(receiver.received) == 1
    [d] = deliveries(db)
    assert (d.status, d.attempts, d.locked_by) == ("delivered", 1, None)

    # Were the first worker only slow, its late result cannot overwrite the outcome.
    dying.record([Outcome(claimed, 500, "late")], lease_over)
    [d] = deliveries(db)
    assert (d.status, d.attempts, d.last_status_code) == ("delivered", 1, 200)
