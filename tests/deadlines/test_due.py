"""What the case workflow relies on: which policy applies, and when the answer is due, on the
region's production calendar (the settings fixture: Europe/Moscow, 9:00–18:00)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import holidays
import pytest
from sqlalchemy import delete

from app.core.db import RequestSession
from app.deadlines import service
from app.deadlines.calendar import DeadlineUnit
from app.deadlines.models import CalendarException, DeadlinePolicy
from app.deadlines.schemas import CalendarExceptionPut
from tests import factories

MSK = ZoneInfo("Europe/Moscow")


def msk(*args: int) -> datetime:
    return datetime(*args, tzinfo=MSK)


def policy(**kw) -> DeadlinePolicy:
    return DeadlinePolicy(**{"name": f"p-{id(kw)}", "unit": "working_hours", "amount": 9, **kw})


INCIDENT = {"kind": "incident", "unit": "working_hours", "starts_at": "assignment"}
INTERIM = {"after_interim_unit": "working_days", "after_interim_amount": 7}


@pytest.fixture(autouse=True)
def _clean(db):
    """The migration's defaults survive until the first truncate: start from none."""
    db.run(lambda s: s.exec(delete(DeadlinePolicy)))
    service.invalidate_caches()


@pytest.fixture
def policies(db) -> dict[str, DeadlinePolicy]:
    """The defaults of the data migration, made here (each test starts from empty tables)."""
    made = {
        "incident": policy(name="incident 9h", amount=9, **INCIDENT, **INTERIM),
        "high": policy(name="high 4h", priority="high", amount=4, **INCIDENT, **INTERIM),
        "urgent": policy(name="urgent 4h", priority="urgent", amount=4, **INCIDENT, **INTERIM),
        "pos": policy(
            name="pos 8d",
            kind="appeal",
            legal_regime="pos",
            unit="calendar_days",
            amount=8,
            starts_at="registration",
        ),
        "fz59": policy(
            name="fz59 30d",
            kind="appeal",
            legal_regime="fz59",
            unit="calendar_days",
            amount=30,
            starts_at="registration",
        ),
    }
    db.add(*made.values())
    return made


def add(db, *objs):
    """Rows written directly, not through the service: tell the cache, as a script would."""
    added = db.add(*objs)
    service.invalidate_caches()
    return added


def select(db, *, kind, legal_regime=None, priority="normal", sector_id=None, policy_id=None):
    async def work(session):
        return await service.select_policy(
            session,
            kind=kind,
            legal_regime=legal_regime,
            priority=priority,
            sector_id=sector_id,
            policy_id=policy_id,
        )

    found = db.run(work)
    return found.name if found is not None else None


def due(db, settings, *, registered_at=None, now, interim=False, **case) -> datetime | None:
    async def work(session):
        calendar = await service.production_calendar(session, settings)
        chosen = await service.select_policy(session, sector_id=case.pop("sector_id", None), **case)
        assert chosen is not None
        if interim:
            return service.due_after_interim(calendar, chosen, now=now)
        return service.due_from(calendar, chosen, registered_at=registered_at or now, now=now)

    case.setdefault("legal_regime", None)
    case.setdefault("priority", "normal")
    return db.run(work)


# --- which policy ----------------------------------------------------------------------------


def test_the_most_specific_policy_wins(db, policies):
    assert select(db, kind="incident", priority="high") == "high 4h"
    assert select(db, kind="incident", priority="urgent") == "urgent 4h"
    assert select(db, kind="incident", priority="normal") == "incident 9h"
    assert select(db, kind="incident", priority="low") == "incident 9h"
    assert select(db, kind="appeal", legal_regime="fz59") == "fz59 30d"
    assert select(db, kind="appeal", legal_regime="pos", priority="high") == "pos 8d"
    assert select(db, kind="appeal", legal_regime=None) is None  # no policy for any appeal


def test_a_generic_policy_catches_the_rest(db, policies):
    add(db, policy(name="anything", kind=None, unit="working_days", amount=10))
    assert select(db, kind="appeal", legal_regime=None) == "anything"
    assert select(db, kind="incident", priority="high") == "high 4h"


def test_explicit_policy_id_wins_if_active(db, policies):
    pos = policies["pos"]
    assert select(db, kind="incident", priority="high", policy_id=pos.id) == "pos 8d"
    off = add(db, policy(name="off", is_active=False, **INCIDENT))
    assert select(db, kind="incident", priority="high", policy_id=off.id) == "high 4h"
    assert select(db, kind="incident", priority="high", policy_id=999_999) == "high 4h"


def test_inactive_policy_is_ignored(db, client, auth, policies):
    admin = auth.headers("admin")
    assert select(db, kind="incident", priority="high") == "high 4h"
    high = policies["high"]
    response = client.patch(
        f"/api/v1/deadline-policies/{high.id}", json={"is_active": False}, headers=admin
    )
    assert response.status_code == 200, response.text
    assert select(db, kind="incident", priority="high") == "incident 9h"
    client.patch(f"/api/v1/deadline-policies/{high.id}", json={"is_active": True}, headers=admin)
    assert select(db, kind="incident", priority="high") == "high 4h"


def test_sector_specific_policy_beats_a_generic_one(db, policies):
    water = db.add(factories.category())
    roads = db.add(factories.category())
    add(db, policy(name="water incidents 2h", category_id=water.id, amount=2, **INCIDENT))
    assert select(db, kind="incident", sector_id=water.id) == "water incidents 2h"
    assert select(db, kind="incident", sector_id=roads.id) == "incident 9h"
    assert select(db, kind="incident", sector_id=None) == "incident 9h"
    # Same specificity (kind + priority vs kind + sector): the lower id wins.
    assert select(db, kind="incident", priority="high", sector_id=water.id) == "high 4h"
    add(
        db,
        policy(name="water high 1h", category_id=water.id, priority="high", amount=1, **INCIDENT),
    )
    assert select(db, kind="incident", priority="high", sector_id=water.id) == "water high 1h"


def test_ties_go_to_the_lowest_id(db):
    first = add(db, policy(name="first", kind="incident"))
    add(db, policy(name="second", kind="incident"))
    assert select(db, kind="incident") == "first"
    add(db, policy(name="third", priority="normal"))
    assert select(db, kind="incident") == "first"
    assert first.id is not None


def test_policies_created_through_the_api_are_seen_at_once(db, client, auth):
    admin = auth.headers("admin")
    assert select(db, kind="incident") is None  # caches the empty list
    body = {"name": "api", "kind": "incident", "unit": "working_hours", "amount": 3}
    response = client.post("/api/v1/deadline-policies", json=body, headers=admin)
    assert response.status_code == 201
    assert select(db, kind="incident") == "api"
    client.delete(f"/api/v1/deadline-policies/{response.json()['id']}", headers=admin)
    assert select(db, kind="incident") is None


# --- when it is due --------------------------------------------------------------------------


def test_the_production_calendar_follows_the_settings(db, settings):
    calendar = db.run(lambda s: service.production_calendar(s, settings))
    assert calendar.tz == MSK
    assert (calendar.day_start, calendar.day_end) == (time(9), time(18))
    assert calendar.extra_holidays == frozenset() == calendar.extra_workdays


def test_incident_due_after_the_russia_day_weekend(db, settings, policies):
    # 2026-06-11 is a Thursday; Friday 06-12 is Russia Day.
    assert date(2026, 6, 11).weekday() == 3
    now = msk(2026, 6, 11, 16, 0)
    got = due(db, settings, kind="incident", now=now, registered_at=msk(2026, 6, 1, 9))
    # 2 hours on Thursday, then 7 from Monday 09:00; counted from the assignment.
    assert got == msk(2026, 6, 15, 16, 0)
    assert got.utcoffset() == msk(2026, 6, 15).utcoffset()
    high = due(db, settings, kind="incident", priority="high", now=now)
    assert high == msk(2026, 6, 15, 11, 0)
    # The same instant given in UTC gives the same answer.
    assert due(db, settings, kind="incident", now=now.astimezone(UTC)) == got


def test_high_incident_across_the_transferred_day_and_new_year(db, settings, policies):
    # 2026-12-31 is a transferred day off, 2027-01-01..08 are the New Year holidays.
    got = due(db, settings, kind="incident", priority="urgent", now=msk(2026, 12, 30, 16, 0))
    assert got == msk(2027, 1, 11, 11, 0)


def test_pos_appeal_lands_on_the_first_working_day_after_the_new_year(db, settings, policies):
    # holidays.RU knows 2027: 1–8 January off, 9–10 a weekend, so Monday 11 January.
    ru = holidays.RU(years=2027)
    assert all(date(2027, 1, d) in ru for d in range(1, 9))
    assert date(2027, 1, 11) not in ru and date(2027, 1, 11).weekday() == 0
    registered = msk(2026, 12, 28, 10, 0)
    got = due(
        db,
        settings,
        kind="appeal",
        legal_regime="pos",
        registered_at=registered,
        now=msk(2026, 12, 29, 12, 0),  # assigned later: the term still runs from registration
    )
    assert got == msk(2027, 1, 11, 18, 0)


def test_fz59_appeal_ending_on_a_holiday_moves_to_the_next_working_day(db, settings, policies):
    # 30 days from 2026-10-05 is 2026-11-04, Unity Day.
    got = due(
        db,
        settings,
        kind="appeal",
        legal_regime="fz59",
        registered_at=msk(2026, 10, 5, 12, 0),
        now=msk(2026, 10, 6, 9, 0),
    )
    assert got == msk(2026, 11, 5, 18, 0)


def test_after_an_interim_answer(db, settings, policies):
    # 7 working days from Wednesday 2026-12-30: 31 Dec and 1–10 Jan are off.
    got = due(db, settings, kind="incident", interim=True, now=msk(2026, 12, 30, 10, 0))
    assert got == msk(2027, 1, 19, 18, 0)
    appeal = due(
        db, settings, kind="appeal", legal_regime="fz59", interim=True, now=msk(2026, 12, 30, 10)
    )
    assert appeal is None


def test_due_functions_use_the_policy_start(db, settings):
    calendar = db.run(lambda s: service.production_calendar(s, settings))
    registered, now = msk(2026, 6, 1, 10, 0), msk(2026, 6, 3, 10, 0)
    by_registration = policy(unit="working_days", amount=1, starts_at="registration")
    by_assignment = policy(unit="working_days", amount=1, starts_at="assignment")
    assert service.due_from(calendar, by_registration, registered_at=registered, now=now) == msk(
        2026, 6, 2, 18, 0
    )
    assert service.due_from(calendar, by_assignment, registered_at=registered, now=now) == msk(
        2026, 6, 4, 18, 0
    )
    assert calendar.add(now, 1, DeadlineUnit.working_days) == msk(2026, 6, 4, 18, 0)
    assert service.due_after_interim(calendar, by_assignment, now=now) is None


def test_a_holiday_put_through_the_api_changes_the_next_computation(
    db, client, auth, settings, policies
):
    now = msk(2026, 6, 10, 16, 0)  # Wednesday
    assert due(db, settings, kind="incident", now=now) == msk(2026, 6, 11, 16, 0)
    response = client.put(
        "/api/v1/calendar/exceptions/2026-06-11",
        json={"kind": "holiday", "note": "региональный выходной"},
        headers=auth.headers("admin"),
    )
    assert response.status_code == 200, response.text
    # Thursday off too: Wednesday 2 h, then Monday 15 June from 09:00.
    assert due(db, settings, kind="incident", now=now) == msk(2026, 6, 15, 16, 0)


def test_service_writes_invalidate_within_and_after_the_transaction(db, settings):
    before = db.run(lambda s: service.production_calendar(s, settings))
    assert before.is_working_day(date(2026, 6, 11))

    async def put_and_read(session):
        await service.put_exception(
            session, date(2026, 6, 11), CalendarExceptionPut(kind="holiday")
        )
        return await service.production_calendar(session, settings)

    inside = db.run(put_and_read)
    assert not inside.is_working_day(date(2026, 6, 11))
    after = db.run(lambda s: service.production_calendar(s, settings))
    assert not after.is_working_day(date(2026, 6, 11))

    async def delete_then_fail(session):
        await service.delete_exception(session, date(2026, 6, 11))
        assert (await service.production_calendar(session, settings)).is_working_day(
            date(2026, 6, 11)
        )
        raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        db.run(delete_then_fail)
    # The rolled-back delete is not what the cache remembers.
    again = db.run(lambda s: service.production_calendar(s, settings))
    assert not again.is_working_day(date(2026, 6, 11))
    assert db.run(lambda s: s.get(CalendarException, date(2026, 6, 11))) is not None


# --- what each case filed reads ---------------------------------------------------------------
# Every case routed to an agency asks for its policy and the calendar: they come from the
# process's cache as they are, not built again, and without making the request's session.


def test_a_chosen_policy_is_the_caches_own_read_only_copy(db, policies):
    wanted = {"kind": "incident", "legal_regime": None, "priority": "high", "sector_id": None}

    async def twice(session):
        first = await service.select_policy(session, **wanted)
        return first, await service.select_policy(session, **wanted)

    first, second = db.run(twice)
    assert first is second  # the same object for every case, not a new one each time
    assert isinstance(first, service.ActivePolicy)
    assert (first.name, first.amount, first.unit) == ("high 4h", 4, "working_hours")
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.amount = 1  # type: ignore[misc]
    by_id = db.run(lambda s: service.select_policy(s, **wanted, policy_id=policies["pos"].id))
    assert by_id.name == "pos 8d" and by_id is not first


def test_the_calendar_is_built_again_only_when_its_exceptions_change(db, settings):
    first = db.run(lambda s: service.production_calendar(s, settings))
    assert db.run(lambda s: service.production_calendar(s, settings)) is first
    add(db, CalendarException(day=date(2026, 6, 10), kind="holiday"))
    changed = db.run(lambda s: service.production_calendar(s, settings))
    assert changed is not first
    assert first.is_working_day(date(2026, 6, 10))
    assert not changed.is_working_day(date(2026, 6, 10))


def test_reading_the_cached_policies_and_calendar_does_not_make_the_requests_session(
    client, db, settings, policies
):
    maker = client.app.state.sessionmaker
    wanted = {"kind": "incident", "legal_regime": None, "priority": "high", "sector_id": None}

    async def warm_then_fresh():
        warm = RequestSession(maker)
        await service.production_calendar(warm, settings)  # loads: makes it
        await service.select_policy(warm, **wanted)
        await warm.end(None, None, None)
        fresh = RequestSession(maker)
        calendar = await service.production_calendar(fresh, settings)
        policy = await service.select_policy(fresh, **wanted)
        return fresh.started, calendar, policy

    started, calendar, policy = client.portal.call(warm_then_fresh)
    assert started is None  # answered from the cache: no AsyncSession made for the request
    assert policy.name == "high 4h" and calendar.is_working_day(date(2026, 6, 11))
