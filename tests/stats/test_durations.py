"""The durations a case stores when it is answered and closed (working time on the production
calendar), and their reset on reopen."""

from __future__ import annotations

from sqlalchemy import select, update

from app.cases.models import Case
from app.deadlines.calendar import ProductionCalendar
from app.stats.durations import elapsed
from tests.cases.conftest import incident
from tests.stats.conftest import HOUR, MSK, msk

CLOSE = {"answer": "Сделано", "resolution": "solved", "responsible_official": "Петров П. П."}


def test_working_time_skips_the_new_year_holidays(db, settings):
    # 12-30 15:00 -> 01-12 10:00: 307 calendar hours, but only 3 + 1 working hours.
    seconds = db.run(lambda s: elapsed(s, settings, msk(12, 30, 15), msk(1, 12, 10)))
    assert seconds == (307 * HOUR, 4 * HOUR)
    assert db.run(lambda s: elapsed(s, settings, msk(1, 12, 10), msk(1, 12, 9))) == (0, 0)


def test_working_time_follows_the_calendar_exceptions(client, db, auth, settings):
    before = db.run(lambda s: elapsed(s, settings, msk(12, 30, 15), msk(1, 13, 10)))
    assert before == (307 * HOUR + 24 * HOUR, (3 + 9 + 1) * HOUR)
    response = client.put(
        "/api/v1/calendar/exceptions/2026-01-12",
        json={"kind": "holiday", "note": "Региональный выходной"},
        headers=auth.headers("admin"),
    )
    assert response.status_code in (200, 201), response.text
    after = db.run(lambda s: elapsed(s, settings, msk(12, 30, 15), msk(1, 13, 10)))
    assert after == (before[0], (3 + 1) * HOUR)


def _stored(db, case_id: int) -> Case:
    async def load(session):
        return (await session.execute(select(Case).where(Case.id == case_id))).scalar_one()

    return db.run(load)


def _expected(case_start, moment) -> tuple[int, int]:
    calendar = ProductionCalendar(tz=MSK)
    return int((moment - case_start).total_seconds()), calendar.working_seconds_between(
        case_start, moment
    )


def test_workflow_stores_durations_and_reopen_clears_the_close_figures(client, db, auth, world):
    operator = auth.headers("operator")
    agency = auth.headers("agency", agency_id=world.adm_krasnodar.id)
    case_id = client.post("/api/v1/incidents", json=incident(), headers=operator).json()["id"]
    assert (
        client.post(
            f"/api/v1/cases/{case_id}/assign",
            json={"agency_id": world.adm_krasnodar.id},
            headers=operator,
        ).status_code
        == 200
    )
    # Registered before the New Year holidays: working and calendar time differ a lot.
    registered = msk(12, 30, 15)
    db.run(
        lambda s: s.execute(update(Case).where(Case.id == case_id).values(created_at=registered))
    )
    assert client.post(f"/api/v1/cases/{case_id}/accept", headers=agency).status_code == 200
    fresh = _stored(db, case_id)  # accepting is not an answer
    assert fresh.first_response_seconds is None and fresh.close_seconds is None

    response = client.post(
        f"/api/v1/cases/{case_id}/interim-answer",
        json={"text": "Работы запланированы", "planned_date": "2026-12-15"},
        headers=agency,
    )
    assert response.status_code == 200, response.text
    answered = _stored(db, case_id)
    first = _expected(registered, answered.first_response_at)
    assert (answered.first_response_seconds, answered.first_response_working_seconds) == first
    assert first[0] > first[1] > 0

    assert (
        client.post(f"/api/v1/cases/{case_id}/close", json=CLOSE, headers=agency).status_code == 200
    )
    closed = _stored(db, case_id)
    assert (closed.close_seconds, closed.close_working_seconds) == _expected(
        registered, closed.closed_at
    )
    # The first response stays the interim answer's.
    assert closed.first_response_seconds == answered.first_response_seconds

    response = client.post(
        f"/api/v1/cases/{case_id}/reopen", json={"reason": "poor_answer"}, headers=operator
    )
    assert response.status_code == 200, response.text
    reopened = _stored(db, case_id)
    assert reopened.closed_at is None
    assert reopened.close_seconds is None and reopened.close_working_seconds is None
    assert reopened.first_response_seconds == answered.first_response_seconds

    assert (
        client.post(f"/api/v1/cases/{case_id}/close", json=CLOSE, headers=agency).status_code == 200
    )
    again = _stored(db, case_id)
    assert (again.close_seconds, again.close_working_seconds) == _expected(
        registered, again.closed_at
    )
    assert again.close_seconds >= closed.close_seconds


def test_a_direct_close_is_the_first_response_too(client, db, auth, world):
    operator = auth.headers("operator")
    agency = auth.headers("agency", agency_id=world.adm_krasnodar.id)
    case_id = client.post("/api/v1/incidents", json=incident(), headers=operator).json()["id"]
    client.post(
        f"/api/v1/cases/{case_id}/assign",
        json={"agency_id": world.adm_krasnodar.id},
        headers=operator,
    )
    assert (
        client.post(f"/api/v1/cases/{case_id}/close", json=CLOSE, headers=agency).status_code == 200
    )
    case = _stored(db, case_id)
    assert case.first_response_at == case.closed_at
    assert case.first_response_seconds == case.close_seconds
    assert case.first_response_working_seconds == case.close_working_seconds
