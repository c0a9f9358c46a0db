"""Deadline policies, the production calendar with its exceptions, and due-date computation.

What the case workflow calls:

    calendar = await production_calendar(session, settings)
    policy = await select_policy(session, kind=..., legal_regime=..., priority=...,
                                 sector_id=..., policy_id=rule.deadline_policy_id)
    case.due_at = due_from(calendar, policy, registered_at=case.created_at, now=now)
    # on an interim answer:
    due = due_after_interim(calendar, policy, now=now)

The calendar exceptions and the active policies are cached per process (per engine). A write
through this module invalidates the cache at once and again when its transaction ends; writes
made elsewhere (another worker, a script) are noticed through a cheap fingerprint re-checked at
most every RECHECK_SECONDS.
"""

from __future__ import annotations

import functools
import time as _time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import holidays
from sqlalchemy import delete, event, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import Settings
from app.core.db import info_of
from app.core.errors import InvalidReference, NotFound, Unprocessable
from app.core.pagination import paged
from app.core.references import ensure_unique, ensure_unreferenced, get_or_404, resolve
from app.core.schemas import PageParams
from app.core.types import utcnow
from app.core.upsert import insert_for
from app.deadlines.calendar import DeadlineUnit, ProductionCalendar
from app.deadlines.models import CalendarDayKind, CalendarException, DeadlinePolicy, TermStart
from app.deadlines.schemas import (
    MAX_DAYS,
    CalendarDay,
    CalendarDays,
    CalendarExceptionPut,
    DeadlinePolicyCreate,
    DeadlinePolicyUpdate,
)
from app.reference.models import Category

RECHECK_SECONDS = 5.0
MAX_CALENDAR_RANGE_DAYS = 366


# --- per-process cache -----------------------------------------------------------------------


@dataclass
class _Entry:
    value: Any
    fingerprint: tuple
    checked_at: float


class _Cache:
    """One cached value per engine (so tests and multi-database processes never mix data).

    A value is served for up to RECHECK_SECONDS; then the fingerprint is compared and the value
    reloaded only if it changed. A generation counter keeps a load that raced with an
    invalidation from storing what it read before the write."""

    def __init__(
        self,
        fingerprint: Callable[[AsyncSession], Awaitable[tuple]],
        load: Callable[[AsyncSession], Awaitable[Any]],
    ) -> None:
        self._fingerprint = fingerprint
        self._load = load
        self._entries: weakref.WeakKeyDictionary[Any, _Entry] = weakref.WeakKeyDictionary()
        self._generations: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()

    @staticmethod
    def _key(session: AsyncSession) -> Any:
        return session.bind.sync_engine if session.bind is not None else None

    def invalidate(self, key: Any | None = None) -> None:
        if key is None:
            for k in list(self._generations):
                self._generations[k] += 1
            self._entries.clear()
            return
        self._generations[key] = self._generations.get(key, 0) + 1
        self._entries.pop(key, None)

    async def get(self, session: AsyncSession) -> Any:
        key = self._key(session)
        # A session that wrote through this module reads its own uncommitted state: never cache
        # that, other sessions must not see it.
        if key is None or info_of(session).get(_DIRTY):
            return await self._load(session)
        now = _time.monotonic()
        entry = self._entries.get(key)
        if entry is not None:
            if now - entry.checked_at < RECHECK_SECONDS:
                return entry.value
            if await self._fingerprint(session) == entry.fingerprint:
                entry.checked_at = now
                return entry.value
        generation = self._generations.get(key, 0)
        fingerprint = await self._fingerprint(session)
        value = await self._load(session)
        if self._generations.get(key, 0) == generation:
            self._entries[key] = _Entry(value, fingerprint, now)
        return value


_DIRTY = "deadlines.dirty"
_HOOKED = "deadlines.hooked"


def _written(session: AsyncSession) -> None:
    """Called by every write: drop the caches now and once more when the transaction ends."""
    key = _Cache._key(session)
    _invalidate(key)
    session.info[_DIRTY] = True
    if session.info.get(_HOOKED):
        return
    session.info[_HOOKED] = True

    def _ended(sync_session) -> None:
        sync_session.info.pop(_DIRTY, None)
        _invalidate(key)

    event.listen(session.sync_session, "after_commit", _ended)
    event.listen(session.sync_session, "after_rollback", _ended)


def _invalidate(key: Any | None) -> None:
    _exceptions_cache.invalidate(key)
    _policies_cache.invalidate(key)


def invalidate_caches() -> None:
    """Forget every cached calendar and policy list (for scripts and tests that write rows
    directly instead of through this module)."""
    _invalidate(None)


async def _exceptions_fingerprint(session: AsyncSession) -> tuple:
    row = (
        await session.exec(
            select(func.count(), func.max(CalendarException.created_at)).select_from(
                CalendarException
            )
        )
    ).one()
    return tuple(row)


async def _load_exceptions(session: AsyncSession) -> dict[date, tuple[str, str]]:
    rows = await session.exec(
        select(CalendarException.day, CalendarException.kind, CalendarException.note)
    )
    return {day: (kind, note) for day, kind, note in rows}


async def _policies_fingerprint(session: AsyncSession) -> tuple:
    row = (
        await session.exec(
            select(func.count(), func.max(DeadlinePolicy.updated_at)).select_from(DeadlinePolicy)
        )
    ).one()
    return tuple(row)


@dataclass(frozen=True, slots=True)
class ActivePolicy:
    """An active deadline policy as the cache keeps it (all of DeadlinePolicy's columns): built
    once per load and shared by every request of the process, so it cannot be changed. A new
    DeadlinePolicy for each case filed (an ORM object: instrumented state, validation of
    every field) was 11 % of a create's CPU (py-spy, in process)."""

    id: int
    name: str
    kind: str | None
    legal_regime: str | None
    priority: str | None
    category_id: int | None
    unit: str
    amount: int
    starts_at: str
    after_interim_unit: str | None
    after_interim_amount: int | None
    is_active: bool
    created_at: datetime
    updated_at: datetime

    @property
    def criteria(self) -> tuple[str | None, str | None, str | None, int | None]:
        """What it matches: kind, legal regime, priority, sector (None: anything)."""
        return (self.kind, self.legal_regime, self.priority, self.category_id)


async def _load_active_policies(session: AsyncSession) -> tuple[ActivePolicy, ...]:
    table = DeadlinePolicy.__table__
    rows = await session.exec(select(table).where(table.c.is_active.is_(True)).order_by(table.c.id))
    return tuple(ActivePolicy(**row._mapping) for row in rows)


_exceptions_cache = _Cache(_exceptions_fingerprint, _load_exceptions)
_policies_cache = _Cache(_policies_fingerprint, _load_active_policies)


# --- the calendar and due dates --------------------------------------------------------------


def _calendar(settings: Settings, exceptions: dict[date, tuple[str, str]]) -> ProductionCalendar:
    return ProductionCalendar(
        tz=settings.tz,
        day_start=settings.working_day_start,
        day_end=settings.working_day_end,
        extra_holidays=frozenset(
            d for d, (kind, _) in exceptions.items() if kind == CalendarDayKind.holiday
        ),
        extra_workdays=frozenset(
            d for d, (kind, _) in exceptions.items() if kind == CalendarDayKind.workday
        ),
    )


# The last calendar built, with the settings and the cached exceptions it was built from: the
# same two objects (until the exceptions change) give the same calendar, immutable, so each case
# filed need not build it again (its two sets of days).
_last_calendar: tuple[Settings, dict, ProductionCalendar] | None = None


async def production_calendar(session: AsyncSession, settings: Settings) -> ProductionCalendar:
    """The region's production calendar: its time zone and working hours from the settings,
    the Russian holidays and transfers, and the administrators' exceptions."""
    global _last_calendar
    exceptions = await _exceptions_cache.get(session)
    last = _last_calendar
    if last is not None and last[0] is settings and last[1] is exceptions:
        return last[2]
    calendar = _calendar(settings, exceptions)
    _last_calendar = (settings, exceptions, calendar)
    return calendar


def due_from(
    calendar: ProductionCalendar,
    policy: ActivePolicy | DeadlinePolicy,
    *,
    registered_at: datetime,
    now: datetime,
) -> datetime:
    """Due moment under `policy`: counted from registration or from now (the assignment)."""
    start = registered_at if policy.starts_at == TermStart.registration else now
    return calendar.add(start, policy.amount, DeadlineUnit(policy.unit))


def due_after_interim(
    calendar: ProductionCalendar, policy: ActivePolicy | DeadlinePolicy, *, now: datetime
) -> datetime | None:
    """Due moment of the final answer after an interim one, or None if the policy has none."""
    if policy.after_interim_unit is None or policy.after_interim_amount is None:
        return None
    return calendar.add(now, policy.after_interim_amount, DeadlineUnit(policy.after_interim_unit))


# --- policy selection ------------------------------------------------------------------------


async def select_policy(
    session: AsyncSession,
    *,
    kind: str | None,
    legal_regime: str | None,
    priority: str | None,
    sector_id: int | None,
    policy_id: int | None = None,
) -> ActivePolicy | None:
    """The policy for a case: `policy_id` (a routing rule's choice) if that policy is active;
    otherwise the active policy with the most matching non-empty criteria (kind, legal regime,
    priority, sector), the lowest id on a tie; None if nothing matches.

    Returns the cache's read-only copy (ActivePolicy), not a row of any session."""
    policies = await _policies_cache.get(session)
    if policy_id is not None:
        for policy in policies:
            if policy.id == policy_id:
                return policy
    case = (kind, legal_regime, priority, sector_id)
    best: ActivePolicy | None = None
    best_score = -1
    for policy in policies:  # sorted by id, so `>` keeps the lowest id on a tie
        criteria = policy.criteria
        if any(c is not None and c != wanted for c, wanted in zip(criteria, case, strict=True)):
            continue
        score = sum(c is not None for c in criteria)
        if score > best_score:
            best, best_score = policy, score
    return best


# --- policy CRUD -----------------------------------------------------------------------------


def _invalid(field: str, message: str) -> Unprocessable:
    detail = f"{field}: {message}"
    return Unprocessable(
        detail, errors=[{"loc": ["body", field], "msg": detail, "type": "value_error"}]
    )


async def _check_policy(session: AsyncSession, values: dict, changed: set[str]) -> None:
    """Rules across fields, checked on the policy as it will be (after a PATCH too)."""
    for unit_field, amount_field in (
        ("unit", "amount"),
        ("after_interim_unit", "after_interim_amount"),
    ):
        unit, amount = values.get(unit_field), values.get(amount_field)
        day_based = unit is not None and unit != DeadlineUnit.working_hours
        if day_based and amount is not None and amount > MAX_DAYS:
            raise _invalid(amount_field, f"at most {MAX_DAYS} for {unit}")
    interim_unit, interim_amount = (
        values.get("after_interim_unit"),
        values.get("after_interim_amount"),
    )
    if (interim_unit is None) != (interim_amount is None):
        missing = "after_interim_amount" if interim_amount is None else "after_interim_unit"
        raise _invalid(missing, "after_interim_unit and after_interim_amount go together")
    if values.get("legal_regime") is not None and values.get("kind") not in (None, "appeal"):
        raise _invalid("legal_regime", "a legal regime applies to appeals only")
    if "category_id" in changed and values.get("category_id") is not None:
        category = await resolve(session, Category, values["category_id"], "category_id")
        if category.parent_id is not None:
            raise InvalidReference(
                "category_id",
                f"category_id: category {category.id} is a subcategory; "
                "a policy applies to a sector",
            )


async def list_policies(
    session: AsyncSession, page: PageParams, *, kind: str | None, is_active: bool | None
):
    stmt = select(DeadlinePolicy).order_by(DeadlinePolicy.id)
    if kind is not None:
        stmt = stmt.where(DeadlinePolicy.kind == kind)
    if is_active is not None:
        stmt = stmt.where(DeadlinePolicy.is_active == is_active)
    return await paged(session, stmt, page)


async def create_policy(session: AsyncSession, data: DeadlinePolicyCreate) -> DeadlinePolicy:
    values = data.model_dump(mode="json")
    await ensure_unique(session, DeadlinePolicy, "name", data.name)
    await _check_policy(session, values, set(values))
    policy = DeadlinePolicy(**values)
    session.add(policy)
    await session.flush()
    _written(session)
    return policy


async def update_policy(
    session: AsyncSession, policy_id: int, data: DeadlinePolicyUpdate
) -> DeadlinePolicy:
    policy = await get_or_404(session, DeadlinePolicy, policy_id)
    changes = data.model_dump(mode="json", exclude_unset=True)
    if "name" in changes:
        await ensure_unique(session, DeadlinePolicy, "name", changes["name"], policy_id)
    merged = {**policy.model_dump(), **changes}
    await _check_policy(session, merged, set(changes))
    for key, value in changes.items():
        setattr(policy, key, value)
    policy.updated_at = utcnow()
    await session.flush()
    _written(session)
    return policy


async def delete_policy(session: AsyncSession, policy_id: int) -> None:
    policy = await get_or_404(session, DeadlinePolicy, policy_id)
    await ensure_unreferenced(session, DeadlinePolicy, policy_id)
    await session.delete(policy)
    await session.flush()
    _written(session)


# --- calendar exceptions ---------------------------------------------------------------------


async def list_exceptions(
    session: AsyncSession, page: PageParams, *, start: date | None, end: date | None
):
    stmt = select(CalendarException).order_by(CalendarException.day)
    if start is not None:
        stmt = stmt.where(CalendarException.day >= start)
    if end is not None:
        stmt = stmt.where(CalendarException.day <= end)
    return await paged(session, stmt, page)


async def put_exception(
    session: AsyncSession, day: date, data: CalendarExceptionPut
) -> CalendarException:
    """Creates or replaces the exception for `day` (one statement, so concurrent PUTs of the
    same day do not collide). created_at becomes now: it is part of the cache fingerprint."""
    values = {"day": day, "kind": data.kind.value, "note": data.note, "created_at": utcnow()}
    stmt = insert_for(session, CalendarException.__table__).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["day"],
        set_={"kind": values["kind"], "note": values["note"], "created_at": values["created_at"]},
    )
    await session.exec(stmt)
    _written(session)
    return (
        await session.exec(
            select(CalendarException)
            .where(CalendarException.day == day)
            .execution_options(populate_existing=True)
        )
    ).scalar_one()


async def delete_exception(session: AsyncSession, day: date) -> None:
    result = await session.exec(delete(CalendarException).where(CalendarException.day == day))
    if result.rowcount == 0:
        raise NotFound(f"No calendar exception on {day.isoformat()}")
    _written(session)


# --- calendar days ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _ru_sources(year: int) -> dict[date, str]:
    """Days of `year` that differ from the plain weekday/weekend rule, and why."""
    ru = holidays.RU(years=year, language="en_US")
    sources: dict[date, str] = {}
    for day, name in ru.items():
        if day.year != year:
            continue
        moved = "(observed)" in name or "substituted" in name.lower()
        sources[day] = "transferred" if moved else "holiday"
    for day in ru.weekend_workdays:
        if day.year == year:
            sources[day] = "weekend_workday"
    return sources


def _query_error(param: str, message: str) -> Unprocessable:
    detail = f"{param}: {message}"
    return Unprocessable(
        detail, errors=[{"loc": ["query", param], "msg": detail, "type": "value_error"}]
    )


async def calendar_days(
    session: AsyncSession, settings: Settings, start: date, end: date
) -> CalendarDays:
    if end < start:
        raise _query_error("to", "must not be earlier than from")
    if (end - start).days + 1 > MAX_CALENDAR_RANGE_DAYS:
        raise _query_error("to", f"the range may span at most {MAX_CALENDAR_RANGE_DAYS} days")
    exceptions = await _exceptions_cache.get(session)
    calendar = _calendar(settings, exceptions)
    items: list[CalendarDay] = []
    day = start
    while day <= end:
        working = calendar.is_working_day(day)
        note = None
        if day in exceptions:
            source, note = "exception", exceptions[day][1]
        else:
            source = _ru_sources(day.year).get(day) or (
                "weekend" if day.weekday() >= 5 else "weekday"
            )
        items.append(CalendarDay(day=day, working=working, source=source, note=note))
        day += timedelta(days=1)
    return CalendarDays(items=items, working_days=sum(i.working for i in items))


def check_due_amount(amount: int, unit: DeadlineUnit) -> None:
    if unit != DeadlineUnit.working_hours and amount > MAX_DAYS:
        raise _invalid("amount", f"at most {MAX_DAYS} for {unit}")


async def calculate_due(
    session: AsyncSession, settings: Settings, start: datetime, amount: int, unit: DeadlineUnit
) -> datetime:
    check_due_amount(amount, unit)
    calendar = await production_calendar(session, settings)
    return calendar.add(start, amount, unit)
