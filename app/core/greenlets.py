"""SQLAlchemy's synchronous code run from asyncio on greenlets that are kept for the next call.

SQLAlchemy's asyncio layer runs its synchronous code (the pool's checkout and return, among
others) in a greenlet, which switches back to the event loop whenever that code has to await
the driver (`sqlalchemy.util.await_only`). Its `greenlet_spawn` makes a new greenlet for
every call. A new greenlet is dear in CPython 3.11: its first frame takes a fresh chunk of
the interpreter's frame stack, which is mapped from the system and unmapped when the greenlet
ends. Every read and single-statement write takes a pooled connection and returns it through
two such calls (app.core.db._fetch_pooled); those two cost about 27 µs of CPU more than the
same two calls on kept greenlets, about a sixteenth of a get's CPU (measured: a pooled
`SELECT 1`, 8 at a time, 84.8 against 56.8 µs a fetch).

`spawn` does what `greenlet_spawn` does, on a greenlet kept from an earlier call when one is
idle. A kept greenlet is parked in a loop that calls the next function handed to it; it
marks itself as SQLAlchemy's own (`__sqlalchemy_greenlet_provider__`, what `await_only`
checks), runs in its caller's context (contextvars), and switches back to its caller for
each await exactly as SQLAlchemy's do. Greenlets belong to a thread, so each thread keeps its
own (the test client serves the app from a thread of its own); at most `KEPT` are idle at
once per thread, more are made when more calls wait at the same time.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from greenlet import GreenletExit, getcurrent, greenlet

T = TypeVar("T")

KEPT = 64
"""Idle greenlets kept per thread: as many as calls that wait at once (a pool's checkouts
while every connection is taken), beyond which a finished greenlet is let go."""


class _Kept(greenlet):
    # What sqlalchemy.util.await_only checks before switching to the greenlet's parent.
    __sqlalchemy_greenlet_provider__ = True


class _Returned:
    """What a kept greenlet hands back when its function is done (anything else it hands back
    is an awaitable, from await_only)."""

    __slots__ = ("error", "value")

    def __init__(self, value: Any, error: BaseException | None) -> None:
        self.value, self.error = value, error


def _serve(fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """A kept greenlet's life: call the function handed over, hand back what came of it,
    wait for the next. GreenletExit (the greenlet collected while it waited) ends it."""
    me = getcurrent()
    while True:
        try:
            returned = _Returned(fn(*args), None)
        except GreenletExit:
            raise
        except BaseException as error:  # the caller raises it, as greenlet_spawn would
            returned = _Returned(None, error)
        del fn, args  # held by nothing while parked
        fn, args = me.parent.switch(returned)  # the parent is the latest caller


class _Idle(threading.local):
    def __init__(self) -> None:
        self.greenlets: list[_Kept] = []


_idle = _Idle()


async def spawn(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a greenlet, each await_only in it awaited here: what
    `sqlalchemy.util.greenlet_spawn(fn, *args)` does, on a kept greenlet."""
    caller = getcurrent()
    idle = _idle.greenlets
    if idle:
        worker = idle.pop()
        if worker.parent is not caller:  # only if called from a greenlet, not the event loop
            worker.parent = caller
    else:
        worker = _Kept(_serve, caller)
    worker.gr_context = caller.gr_context
    # A switch raises only if the greenlet itself ended (it hands back every error of `fn`),
    # and such a greenlet is not kept.
    result = worker.switch(fn, args)
    while result.__class__ is not _Returned:
        try:
            value = await result
        except BaseException:  # cancelled, or the awaitable failed: raised in there
            result = worker.throw(*sys.exc_info())
        else:
            result = worker.switch(value)
    worker.gr_context = None  # holds no request's context while parked
    if len(idle) < KEPT:
        idle.append(worker)
    value, error = result.value, result.error
    result.value = result.error = None  # the parked greenlet still holds `result`
    if error is not None:
        raise error
    return value
