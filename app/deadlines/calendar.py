"""Deadline arithmetic on the Russian production calendar.

Pure functions only: no database, no web framework. Everything is computed in the region's
local wall-clock time, because that is what working hours and legal terms refer to.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

_ONE_DAY = timedelta(days=1)


class DeadlineUnit(enum.StrEnum):
    working_hours = "working_hours"
    working_days = "working_days"
    calendar_days = "calendar_days"


@functools.lru_cache(maxsize=64)
def _ru_year(year: int) -> tuple[frozenset[date], frozenset[date]]:
    """Days off and weekend workdays of one year.

    Building the `holidays` table is comparatively slow, and deadline loops ask about the same
    year thousands of times, hence the cache.
    """
    ru = holidays.RU(years=year)
    # The table already includes transferred days off ("Day off (substituted from ...)").
    days_off = frozenset(d for d in ru if d.year == year)
    weekend_workdays = frozenset(d for d in ru.weekend_workdays if d.year == year)
    return days_off, weekend_workdays


def preload(today: date) -> None:
    """Builds the tables of `today`'s year and the next (a term may run into the new year)
    ahead of the first deadline counted. The first `holidays.RU` loads every country's module
    of the library (about 9,000 objects and 8 MB): called at start-up, before the collector
    is told to leave start-up's objects alone (app.main), that happens once there, not in the
    first routed intake's answer (94-96 ms without this, 39-42 with it, over HTTP on a 1M
    dataset; the next answers take 6 ms)."""
    for year in (today.year, today.year + 1):
        _ru_year(year)


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


@dataclass(frozen=True)
class ProductionCalendar:
    tz: ZoneInfo
    day_start: time = time(9, 0)
    day_end: time = time(18, 0)
    # Admin-entered exceptions; extra_workdays wins over everything else.
    extra_holidays: frozenset[date] = field(default_factory=frozenset)
    extra_workdays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.day_start.tzinfo is not None or self.day_end.tzinfo is not None:
            raise ValueError("day_start/day_end are local wall-clock times and must be naive")
        if self.day_start >= self.day_end:
            raise ValueError("day_start must be earlier than day_end")

    # ------------------------------------------------------------------ public API

    def is_working_day(self, d: date) -> bool:
        if d in self.extra_workdays:
            return True
        if d in self.extra_holidays:
            return False
        days_off, weekend_workdays = _ru_year(d.year)
        if d.weekday() >= 5:
            return d in weekend_workdays
        return d not in days_off

    def add(self, start: datetime, amount: int, unit: DeadlineUnit) -> datetime:
        """Due moment of a term of `amount` units starting at `start`, in the calendar's tz."""
        _require_aware(start, "start")
        if amount < 0:
            raise ValueError("amount must be >= 0")
        unit = DeadlineUnit(unit)
        local = self._to_local(start)

        if unit is DeadlineUnit.working_hours:
            return self._aware(self._add_working_time(local, timedelta(hours=amount)))
        if amount == 0:
            # A zero-length day term is "right now"; only the representation changes.
            return start.astimezone(self.tz)
        if unit is DeadlineUnit.working_days:
            due = local.date()
            for _ in range(amount):
                due = self._next_working_day(due + _ONE_DAY)
            return self._aware(datetime.combine(due, self.day_end))
        # calendar_days: if the last day is a day off, the term moves to the next working
        # day (Civil Code of the Russian Federation, art. 193).
        due = self._next_working_day(local.date() + timedelta(days=amount))
        return self._aware(datetime.combine(due, self.day_end))

    def working_seconds_between(self, start: datetime, end: datetime) -> int:
        """Whole seconds of working time in [start, end); 0 if end <= start."""
        _require_aware(start, "start")
        _require_aware(end, "end")
        if end <= start:
            return 0
        lo, hi = self._to_local(start), self._to_local(end)
        total = timedelta()
        # One step per calendar day: a few thousand iterations even for multi-year spans.
        d = lo.date()
        while d <= hi.date():
            if self.is_working_day(d):
                open_ = max(lo, datetime.combine(d, self.day_start))
                close = min(hi, datetime.combine(d, self.day_end))
                if close > open_:
                    total += close - open_
            d += _ONE_DAY
        return int(total.total_seconds())

    # ------------------------------------------------------------------ helpers
    # Internally we work with naive local wall-clock datetimes: working hours are defined on the
    # wall clock, so a DST shift at night must not move 09:00 to 08:00 or 10:00.

    def _to_local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz).replace(tzinfo=None)

    def _aware(self, local: datetime) -> datetime:
        return local.replace(tzinfo=self.tz)

    def _next_working_day(self, d: date) -> date:
        """`d` itself if it is a working day, otherwise the first working day after it."""
        while not self.is_working_day(d):
            d += _ONE_DAY
        return d

    def _next_working_moment(self, local: datetime) -> datetime:
        d = local.date()
        if self.is_working_day(d):
            if local.time() < self.day_start:
                return datetime.combine(d, self.day_start)
            if local.time() < self.day_end:
                return local
        return datetime.combine(self._next_working_day(d + _ONE_DAY), self.day_start)

    def _add_working_time(self, local: datetime, amount: timedelta) -> datetime:
        cursor = self._next_working_moment(local)
        remaining = amount
        # One step per working day, so 2000 working hours is ~300 iterations.
        while True:
            left_today = datetime.combine(cursor.date(), self.day_end) - cursor
            # `<=` keeps a term that ends exactly at closing time on that day, rather than
            # rolling it to the next morning.
            if remaining <= left_today:
                return cursor + remaining
            remaining -= left_today
            next_day = self._next_working_day(cursor.date() + _ONE_DAY)
            cursor = datetime.combine(next_day, self.day_start)
