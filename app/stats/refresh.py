"""The worker's share of the stats snapshots (app.stats.snapshots): keep warm what people look at.

Each pass (every REGIONDESK_STATS_REFRESH_SECONDS) recomputes the snapshots that were requested
within REGIONDESK_STATS_REFRESH_WINDOW_MINUTES and have less than two passes of life left, oldest
first, at most REGIONDESK_STATS_REFRESH_BATCH of them; a dashboard that is open keeps finding a
young answer and never waits for a computation. It never computes a view nobody asked for: a
snapshot is only ever created by a request. Snapshots nobody asked for within the window, once
expired, are deleted.

Several worker processes may run: on PostgreSQL a pass is taken under an advisory lock, so one
worker refreshes at a time and the others skip the pass instead of computing the same views.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import Settings
from app.core.errors import DomainError
from app.stats.service import StatsRequest
from app.stats.snapshots import SNAPSHOTS, compute

log = logging.getLogger("regiondesk.stats")

# pg_try_advisory_lock key of the refresh pass ("stats" in ASCII).
REFRESH_LOCK = 0x7374617473


async def refresh_snapshots(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, now: datetime
) -> int:
    """One pass: deletes the unrequested expired snapshots and recomputes the requested ones
    about to expire; returns how many it recomputed."""
    engine = sessionmaker.kw["bind"]
    if engine.dialect.name != "postgresql":
        return await _pass(sessionmaker, settings, now)
    async with engine.connect() as lock:
        lock = await lock.execution_options(isolation_level="AUTOCOMMIT")
        taken = await lock.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": REFRESH_LOCK})
        if not taken:
            return 0  # another worker is refreshing
        try:
            return await _pass(sessionmaker, settings, now)
        finally:
            await lock.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": REFRESH_LOCK})


async def _pass(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, now: datetime
) -> int:
    max_age = settings.stats_max_age
    since = now - timedelta(minutes=settings.stats_refresh_window_minutes)
    c = SNAPSHOTS.c
    async with sessionmaker() as session:
        await session.execute(
            delete(SNAPSHOTS).where(
                c.last_requested_at < since,
                c.generated_at <= now - timedelta(seconds=max_age),
            )
        )
        due: list = []
        if max_age > 0:
            # Less than two passes of life left: the next pass may come too late.
            life = max(0.0, max_age - 2 * settings.stats_refresh_seconds)
            due = list(
                await session.execute(
                    select(c.key, c.params)
                    .where(
                        c.last_requested_at >= since,
                        c.generated_at <= now - timedelta(seconds=life),
                    )
                    .order_by(c.generated_at)
                    .limit(settings.stats_refresh_batch)
                )
            )
        await session.commit()
    refreshed = 0
    for key, params in due:
        try:
            request = StatsRequest.of_params(params)
            if request.key != key:
                raise ValueError("the params no longer hash to the key")
            await compute(sessionmaker, settings, request, save=True, requested=False)
            refreshed += 1
        except (DomainError, ValueError) as exc:
            # Not answerable any more (a category deleted, an older release's params): people
            # asking again get the error, or a new snapshot, from the API.
            log.info("stats snapshot %s dropped: %s", key[:12], exc)
            async with sessionmaker() as session:
                await session.execute(delete(SNAPSHOTS).where(c.key == key))
                await session.commit()
    return refreshed
