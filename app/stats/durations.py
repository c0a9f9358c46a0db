"""The durations a case stores for statistics, measured when they happen.

Working time needs the production calendar (Python), so SQL could not derive it from the
timestamps later; calendar time is stored alongside so both come from the same two instants.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import Settings
from app.deadlines.service import production_calendar


async def elapsed(
    session: AsyncSession, settings: Settings, start: datetime, end: datetime
) -> tuple[int, int]:
    """(calendar seconds, working seconds) from `start` to `end`, whole seconds, never negative.

    Working seconds follow the region's production calendar: working hours on working days,
    Russian public holidays and transfers, and the administrators' calendar exceptions."""
    calendar = await production_calendar(session, settings)
    return max(0, int((end - start).total_seconds())), calendar.working_seconds_between(start, end)
