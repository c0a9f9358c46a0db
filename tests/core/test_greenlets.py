"""app.core.greenlets.spawn: SQLAlchemy's greenlet_spawn on greenlets kept for the next call."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import weakref

import pytest
from greenlet import getcurrent, greenlet
from sqlalchemy.util import await_only

from app.core import greenlets
from app.core.greenlets import spawn

REQUEST = contextvars.ContextVar("request", default=None)


async def _value(value):
    await asyncio.sleep(0)
    return value


async def _fail():
    await asyncio.sleep(0)
    raise LookupError("from the driver")


def test_a_function_that_awaits_runs_and_the_next_call_reuses_its_greenlet():
    ran_on = []

    def work(value):
        ran_on.append(getcurrent())
        return await_only(_value(value)) * 2  # await_only accepts the kept greenlet

    async def calls():
        return [await spawn(work, 21), await spawn(work, 1), await spawn(lambda: 7)]

    assert asyncio.run(calls()) == [42, 2, 7]
    assert ran_on[0] is ran_on[1]  # SQLAlchemy's greenlet_spawn makes a new one each time
    assert ran_on[0] is not getcurrent()


def test_errors_reach_the_caller_and_the_greenlet_serves_again():
    caught = []

    def raises():
        raise ValueError("from the function")

    def awaits_a_failure():
        try:
            await_only(_fail())
        except LookupError as error:  # raised inside the function, where it awaited
            caught.append(error)
            raise

    async def calls():
        with pytest.raises(ValueError, match="from the function"):
            await spawn(raises)
        with pytest.raises(LookupError, match="from the driver"):
            await spawn(awaits_a_failure)
        return await spawn(await_only, _value("again"))

    assert asyncio.run(calls()) == "again"
    assert len(caught) == 1


def test_the_function_runs_in_its_callers_context():
    def read():
        await_only(asyncio.sleep(0))
        return REQUEST.get()

    async def request(name):
        REQUEST.set(name)
        return await spawn(read)

    async def requests():
        # each task its own context; then this one, which set nothing: none left behind
        return await asyncio.gather(request("a"), request("b")), await spawn(read)

    assert asyncio.run(requests()) == (["a", "b"], None)


def test_a_cancelled_caller_cancels_the_function_which_cleans_up():
    cleaned = []

    def waits():
        try:
            await_only(asyncio.sleep(3600))
        finally:
            cleaned.append(True)

    async def calls():
        task = asyncio.ensure_future(spawn(waits))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await spawn(await_only, _value("after"))

    assert asyncio.run(calls()) == "after"
    assert cleaned == [True]


def test_calls_that_wait_at_once_get_greenlets_of_their_own_and_few_are_kept(monkeypatch):
    monkeypatch.setattr(greenlets, "KEPT", 2)
    ran_on = []

    def work(value):
        ran_on.append(getcurrent())
        return await_only(_value(value))

    async def calls():
        together = await asyncio.gather(*(spawn(work, n) for n in range(5)))
        return together, len(greenlets._idle.greenlets)

    together, kept = asyncio.run(calls())
    assert together == [0, 1, 2, 3, 4]
    assert len({id(g) for g in ran_on}) == 5
    assert kept == 2


def test_each_thread_keeps_its_own_greenlets():
    """Greenlets cannot switch across threads: an event loop in another thread (the test
    client's) must never be handed this thread's."""
    ran_on = {}

    def work(where):
        ran_on.setdefault(where, []).append(getcurrent())
        return await_only(_value(threading.get_ident()))

    async def twice(where):
        return [await spawn(work, where), await spawn(work, where)]

    here = asyncio.run(twice("here"))
    there = []
    thread = threading.Thread(target=lambda: there.extend(asyncio.run(twice("there"))))
    thread.start()
    thread.join()
    assert here == [threading.get_ident()] * 2
    assert there == [thread.ident] * 2
    assert ran_on["here"][0] is ran_on["here"][1]
    assert ran_on["there"][0] is ran_on["there"][1]
    assert ran_on["there"][0] is not ran_on["here"][0]


def test_a_caller_that_is_itself_a_greenlet_gets_the_answer():
    """The function's greenlet switches back to whoever called, as with greenlet_spawn, even
    a kept greenlet made under the event loop and now called from another greenlet."""
    asyncio.run(spawn(getcurrent))  # one greenlet kept, the event loop's its parent

    def drive():
        call = spawn(getcurrent)
        try:
            call.send(None)
        except StopIteration as done:
            return done.value
        raise AssertionError("the function did not await")

    caller = greenlet(drive)
    ran_on = caller.switch()
    assert ran_on is not caller and ran_on.parent is caller


def test_a_parked_greenlet_holds_nothing_of_its_last_call():
    class Thing:
        pass

    def make(argument):
        return Thing()

    async def call():
        argument = Thing()
        return weakref.ref(await spawn(make, argument)), weakref.ref(argument)

    made, given = asyncio.run(call())
    assert greenlets._idle.greenlets  # kept, parked
    assert made() is None and given() is None  # its result and arguments let go
