"""The running worker's deliveries: a share per receiver, so a hung receiver holds up no one
else; a bounded number of requests to each receiver; deliveries handed back, not sent, when the
lease would run out during the attempt or the worker is stopping."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from app.webhooks.delivery import Worker
from tests.webhooks.conftest import deliveries, many_cases, subscribe

pytestmark = pytest.mark.usefixtures("local_allowed")


def eventually(check: Callable[[], bool], what: str, seconds: float = 60) -> None:
    """Waits for the running worker to get there (a guard against hanging, not a timing)."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


class Running:
    """worker.run(stop) on the app's event loop, in the background, until stop()."""

    def __init__(self, client, worker: Worker) -> None:
        self.client = client
        self.event = client.portal.call(asyncio.Event)
        self.future = client.portal.start_task_soon(worker.run, self.event)

    def stop(self, *, wait: bool = True) -> None:
        self.client.portal.call(self.event.set)
        if wait:
            self.future.result(timeout=60)


def test_a_hung_receiver_holds_up_no_other(client, admin, db, make_worker, make_receiver):
    hung, healthy = make_receiver(), make_receiver()
    hung.hold = threading.Event()  # answers nothing until released
    subscribe(client, admin, hung.url, event_types=["case.created"])
    subscribe(client, admin, healthy.url, event_types=["case.created"])
    many_cases(db, 40)  # each event: a delivery to the hung receiver, then one to the healthy
    worker = make_worker(
        webhook_batch_size=8,
        webhook_host_concurrency=2,
        webhook_timeout_seconds=60,  # the hung requests wait, rather than fail and be retried
        webhook_poll_seconds=0.05,
    ).worker
    running = Running(client, worker)
    try:
        # Batch by batch, the first batch (half of it the hung receiver's) would never end.
        eventually(lambda: healthy.count() == 40, "every event reached the healthy receiver")
        assert hung.count() == 2  # its two connections, waiting
        hung.hold.set()
        eventually(lambda: hung.count() == 40, "every event reached the released receiver")
    finally:
        hung.hold.set()
        running.stop()
    assert hung.most_in_flight == 2 and healthy.most_in_flight <= 2
    assert {(d.status, d.attempts, d.locked_by) for d in deliveries(db)} == {("delivered", 1, None)}
    assert len(deliveries(db)) == 80


def test_no_attempt_starts_that_could_outlast_the_lease(client, admin, db, make_worker, receiver):
    subscribe(client, admin, receiver.url, event_types=["case.created"])
    many_cases(db, 3)
    worker = make_worker()
    worker.dispatch_once()
    # Shorter than an attempt may take (the timeout) plus the margin: sending now could let
    # the lease run out mid-request, and another worker send the same delivery meanwhile.
    worker.worker.lease = timedelta(seconds=worker.worker.settings.webhook_timeout_seconds)
    assert worker.deliver_once() == 3
    assert receiver.received == []
    assert {(d.status, d.attempts, d.locked_by, d.locked_until) for d in deliveries(db)} == {
        ("pending", 0, None, None)  # handed back untried, due as before
    }
    worker.worker.lease = timedelta(minutes=5)
    assert worker.deliver_once() == 3
    assert receiver.count() == 3
    assert {(d.status, d.attempts) for d in deliveries(db)} == {("delivered", 1)}


def test_stopping_finishes_the_requests_in_flight_and_hands_back_the_rest(
    client, admin, db, make_worker, receiver
):
    receiver.hold = threading.Event()
    subscribe(client, admin, receiver.url, event_types=["case.created"])
    many_cases(db, 10)
    worker = make_worker(
        webhook_host_concurrency=2, webhook_timeout_seconds=60, webhook_poll_seconds=0.05
    ).worker
    running = Running(client, worker)
    try:
        eventually(lambda: receiver.count() == 2, "two requests in flight")
        running.stop(wait=False)
        eventually(lambda: worker.stopping, "the worker is stopping")
    finally:
        receiver.hold.set()
        running.stop()
    assert receiver.count() == 2
    done = deliveries(db)
    assert (
        sorted((d.status, d.attempts, d.locked_by) for d in done)
        == [("delivered", 1, None)] * 2 + [("pending", 0, None)] * 8
    )
