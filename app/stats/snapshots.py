"""Stats answers served from stored snapshots: exact figures, of a bounded and visible age.

An exact aggregate over every case takes seconds at a million cases (percentiles need every
value sorted), while a dashboard asks the same few questions all day. So an answer, once
computed, is kept — as the JSON bytes served — and served again while it is younger than
REGIONDESK_STATS_MAX_AGE_SECONDS:

- in this process, a bounded LRU of ready answers (REGIONDESK_STATS_CACHE_MB): a hit costs no
  query and no serialisation;
- in the table `stats_snapshot`, shared by every worker and instance: a miss here reads (and
  marks as requested) one row by its primary key, in one statement;
- otherwise computed: once per key per process however many identical requests wait
  (single-flight), then written to the table (INSERT … ON CONFLICT) and kept here.

The key is the resolved request's hash (app.stats.service.StatsRequest): the caller's reach is
applied before it is built, so agency staff can never be given another agency's answer. The
answer's `generated_at` is the snapshot's time (the `now` of `overdue_now`); responses carry
`Age` and `Cache-Control: private, max-age=<what remains>`, and a request's own
`Cache-Control: no-cache` (or `max-age=0`) forces a fresh computation, `max-age=N` accepts only
answers at most N seconds old. The worker (app.stats.refresh) recomputes the snapshots people
still ask for before they expire, so those are never computed while someone waits.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from pydantic_core import to_json
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import Settings
from app.core.errors import Unprocessable
from app.core.types import utcnow
from app.core.upsert import insert_for
from app.stats.models import StatsSnapshot
from app.stats.service import StatsRequest, StatsService

SNAPSHOTS = StatsSnapshot.__table__
CACHE_CONTROL = "Cache-Control"
# A request's max-age beyond this is "any age" (and never overflows anything).
MAX_ACCEPTED_AGE = 10 * 365 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One answer as served: its JSON bytes and when its figures were taken."""

    key: str
    body: bytes
    generated_at: datetime  # UTC; the answer's own `generated_at`
    took_ms: int

    def age(self, now: float) -> float:
        """Seconds since generated_at (never negative: clocks of instances differ a little)."""
        return max(0.0, now - self.generated_at.timestamp())


@dataclass(frozen=True, slots=True)
class Freshness:
    """What the request's Cache-Control accepts (RFC 9111 §5.2.1)."""

    no_cache: bool = False  # `no-cache` or `max-age=0`: computed now, not served from storage
    max_age: int | None = None  # `max-age=N`: nothing older than N seconds


def _bad_header(detail: str) -> Unprocessable:
    return Unprocessable(
        f"{CACHE_CONTROL}: {detail}",
        errors=[{"loc": ["header", CACHE_CONTROL], "msg": detail, "type": "value_error"}],
    )


def freshness(header: str | None) -> Freshness:
    """`no-cache` and `max-age=N` are understood; other directives are ignored, as HTTP caches
    must; a max-age that is not a whole number of seconds is a 422 naming the header."""
    if not header:
        return Freshness()
    no_cache, max_age = False, None
    for directive in header.split(","):
        name, _, value = directive.strip().partition("=")
        name, value = name.strip().lower(), value.strip().strip('"')
        if name == "no-cache":
            no_cache = True
        elif name == "max-age":
            if not value.isascii() or not value.isdigit():
                raise _bad_header(f"max-age must be a whole number of seconds, not {value!r}")
            seconds = min(int(value), MAX_ACCEPTED_AGE) if len(value) <= 12 else MAX_ACCEPTED_AGE
            max_age = seconds if max_age is None else min(max_age, seconds)
    if max_age == 0:
        no_cache = True
    return Freshness(no_cache=no_cache, max_age=max_age)


def cache_headers(snapshot: Snapshot, settings: Settings, now: float) -> dict[str, str]:
    """`Age` of the answer and how much longer it may be reused (`private`: per person)."""
    age = snapshot.age(now)
    remaining = max(0, int(settings.stats_max_age - age))
    return {
        "Age": str(int(age)),
        CACHE_CONTROL: f"private, max-age={remaining}",
        "Vary": "Authorization",
    }


# --- computing ------------------------------------------------------------------------------


async def compute(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    request: StatsRequest,
    *,
    save: bool,
    requested: bool = True,
    now: datetime | None = None,
) -> Snapshot:
    """The answer computed now, in a transaction of its own (on PostgreSQL with work_mem set
    for it alone when REGIONDESK_STATS_WORK_MEM_MB is), and with `save` stored in the same
    transaction: as requested now (an API request), or as a refresh (the worker), which only
    replaces an existing, older row."""
    started = time.perf_counter()
    async with sessionmaker() as session:
        if session.bind.dialect.name == "postgresql" and settings.stats_work_mem_mb:
            # Sorts that spill to disk under the server's work_mem can stay in memory; local to
            # this transaction (SET LOCAL), so no other statement on the pooled connection
            # gets it.
            await session.execute(
                text("SELECT set_config('work_mem', :value, true)"),
                {"value": f"{settings.stats_work_mem_mb}MB"},
            )
        now = now or utcnow()
        answer = await StatsService(session, settings, None, now=now).answer(request)
        body = to_json(answer)
        snapshot = Snapshot(request.key, body, now, int((time.perf_counter() - started) * 1000))
        if save:
            await _save(session, request, snapshot, requested=requested)
        await session.commit()
    return snapshot


async def _save(
    session: AsyncSession, request: StatsRequest, snapshot: Snapshot, *, requested: bool
) -> None:
    values: dict[str, Any] = {
        "report": request.report,
        "params": request.params(),
        "body": snapshot.body.decode(),
        "generated_at": snapshot.generated_at,
        "took_ms": snapshot.took_ms,
    }
    newer = SNAPSHOTS.c.generated_at <= snapshot.generated_at  # never replace a newer answer
    if not requested:  # a refresh: the row stays as requested as it was (or is gone)
        await session.execute(
            update(SNAPSHOTS).where(SNAPSHOTS.c.key == snapshot.key, newer).values(**values)
        )
        return
    stmt = insert_for(session, SNAPSHOTS).values(
        key=snapshot.key, last_requested_at=snapshot.generated_at, **values
    )
    changed = {name: stmt.excluded[name] for name in (*values, "last_requested_at")}
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[SNAPSHOTS.c.key],
            set_=changed,
            where=SNAPSHOTS.c.generated_at <= stmt.excluded.generated_at,
        )
    )


# --- the store --------------------------------------------------------------------------------


class SnapshotStore:
    """One per app (process): the LRU of ready answers, the flights in progress, the table."""

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        read_sessionmaker: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.read_sessionmaker = read_sessionmaker or sessionmaker  # autocommit on PostgreSQL
        self.budget = settings.stats_cache_mb * 1024 * 1024
        self._ready: OrderedDict[str, Snapshot] = OrderedDict()
        self._bytes = 0
        self._flights: dict[str, asyncio.Task[tuple[Snapshot, bool]]] = {}
        self.clock: Callable[[], float] = time.time  # tests move it

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def headers(self, snapshot: Snapshot) -> dict[str, str]:
        return cache_headers(snapshot, self.settings, self.clock())

    async def get(self, request: StatsRequest, wanted: Freshness) -> Snapshot:
        """The answer to a resolved request, as young as the settings and `wanted` demand."""
        max_age = self.settings.stats_max_age
        if max_age == 0:  # snapshots off: every answer computed, nothing stored
            return await compute(
                self.sessionmaker, self.settings, request, save=False, now=self._now()
            )
        key = request.key
        if not wanted.no_cache:
            ready = self._ready.get(key)
            if ready is not None and self._acceptable(ready, wanted):
                self._ready.move_to_end(key)
                return ready
        while True:
            flight = self._flights.get(key)
            if flight is None or flight.done():  # none, or one whose answer did not do
                flight = asyncio.ensure_future(self._fly(request, wanted))
                self._flights[key] = flight
                flight.add_done_callback(lambda done: self._landed(key, done))
                snapshot, _ = await asyncio.shield(flight)
                return snapshot
            # An identical request is being answered: wait for it instead of computing twice.
            snapshot, computed = await asyncio.shield(flight)
            if computed or (not wanted.no_cache and self._acceptable(snapshot, wanted)):
                return snapshot
            # It brought a stored answer older than this request accepts: go again.

    def _acceptable(self, snapshot: Snapshot, wanted: Freshness) -> bool:
        age = snapshot.age(self.clock())
        if age >= self.settings.stats_max_age:
            return False
        return wanted.max_age is None or int(age) <= wanted.max_age

    def _landed(self, key: str, flight: asyncio.Task) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.cancelled():
            flight.exception()  # retrieved: every waiter may have gone (client disconnects)

    async def _fly(self, request: StatsRequest, wanted: Freshness) -> tuple[Snapshot, bool]:
        """The stored answer if it will do, else a new one; (snapshot, computed now?)."""
        if not wanted.no_cache:
            stored = await self._touch(request.key)
            if stored is not None and self._acceptable(stored, wanted):
                self._remember(stored)
                return stored, False
        snapshot = await compute(
            self.sessionmaker, self.settings, request, save=True, now=self._now()
        )
        self._remember(snapshot)
        return snapshot, True

    async def _touch(self, key: str) -> Snapshot | None:
        """The stored row, marked as requested now: one UPDATE … RETURNING by primary key."""
        stmt = (
            update(SNAPSHOTS)
            .where(SNAPSHOTS.c.key == key)
            .values(last_requested_at=self._now())
            .returning(SNAPSHOTS.c.body, SNAPSHOTS.c.generated_at, SNAPSHOTS.c.took_ms)
        )
        async with self.read_sessionmaker() as session:
            row = (await session.execute(stmt)).first()
            await session.commit()
        if row is None:
            return None
        return Snapshot(key, row.body.encode(), row.generated_at, row.took_ms)

    def _remember(self, snapshot: Snapshot) -> None:
        size = len(snapshot.body)
        if size > self.budget:
            return  # larger than the whole budget: served from the table instead
        previous = self._ready.pop(snapshot.key, None)
        if previous is not None:
            self._bytes -= len(previous.body)
            if previous.generated_at > snapshot.generated_at:
                snapshot = previous  # keep the newer one
                size = len(snapshot.body)
        self._ready[snapshot.key] = snapshot
        self._bytes += size
        while self._bytes > self.budget:
            _, evicted = self._ready.popitem(last=False)
            self._bytes -= len(evicted.body)

    def forget(self) -> None:
        """Drops every ready answer of this process (tests; the table keeps its rows)."""
        self._ready.clear()
        self._bytes = 0


def snapshot_store(request: Request) -> SnapshotStore:
    return store_of(request.app)


def store_of(app: FastAPI) -> SnapshotStore:
    """The app's store, made on first use with the app's settings and sessionmakers."""
    state = app.state
    store = getattr(state, "stats_snapshots", None)
    if store is None or store.sessionmaker is not state.sessionmaker:
        store = state.stats_snapshots = SnapshotStore(
            state.settings, state.sessionmaker, getattr(state, "read_sessionmaker", None)
        )
    return store
