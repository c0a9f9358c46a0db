"""The production calendar over HTTP: exceptions, the day list and the due-date calculator."""

from __future__ import annotations

from datetime import date

import pytest

from app.deadlines import service
from app.deadlines.models import CalendarException

EXCEPTIONS = "/api/v1/calendar/exceptions"
DAYS = "/api/v1/calendar/days"
DUE = "/api/v1/calendar/due"
PROBLEM_JSON = "application/problem+json"


def assert_problem(response, status: int, field: str | None = None, where: str = "body") -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == status
    if field is not None:
        assert body["errors"][0]["loc"] == [where, field], body
        assert field in body["detail"], body
    return body


@pytest.fixture
def admin(auth):
    return auth.headers("admin")


def _days(client, headers, start: str, end: str) -> dict[str, dict]:
    response = client.get(DAYS, params={"from": start, "to": end}, headers=headers)
    assert response.status_code == 200, response.text
    return {item["day"]: item for item in response.json()["items"]}


def _due(client, headers, start: str, amount: int, unit: str) -> str:
    response = client.post(
        DUE, json={"start": start, "amount": amount, "unit": unit}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()["due_at"]


# --- exceptions ------------------------------------------------------------------------------


def test_put_creates_then_replaces_and_delete_removes(client, admin, db):
    created = client.put(
        f"{EXCEPTIONS}/2026-06-10", json={"kind": "holiday", "note": "День города"}, headers=admin
    )
    assert created.status_code == 200, created.text
    body = created.json()
    assert (body["day"], body["kind"], body["note"]) == ("2026-06-10", "holiday", "День города")
    assert body["created_at"]

    replaced = client.put(f"{EXCEPTIONS}/2026-06-10", json={"kind": "workday"}, headers=admin)
    assert replaced.status_code == 200, replaced.text
    assert (replaced.json()["kind"], replaced.json()["note"]) == ("workday", "")
    stored = db.run(lambda s: s.get(CalendarException, date(2026, 6, 10)))
    assert (stored.kind, stored.note) == ("workday", "")
    listed = client.get(EXCEPTIONS, headers=admin).json()
    assert listed["total"] == 1

    deleted = client.delete(f"{EXCEPTIONS}/2026-06-10", headers=admin)
    assert deleted.status_code == 204 and deleted.content == b""
    assert client.get(EXCEPTIONS, headers=admin).json()["total"] == 0
    assert_problem(client.delete(f"{EXCEPTIONS}/2026-06-10", headers=admin), 404)


def test_list_is_sorted_by_day_and_filtered(client, admin):
    for day in ["2026-12-30", "2026-03-02", "2026-07-01", "2027-01-11"]:
        response = client.put(f"{EXCEPTIONS}/{day}", json={"kind": "holiday"}, headers=admin)
        assert response.status_code == 200

    def days(**params):
        response = client.get(EXCEPTIONS, params=params, headers=admin)
        assert response.status_code == 200, response.text
        return [item["day"] for item in response.json()["items"]]

    assert days() == ["2026-03-02", "2026-07-01", "2026-12-30", "2027-01-11"]
    assert days(**{"from": "2026-07-01"}) == ["2026-07-01", "2026-12-30", "2027-01-11"]
    assert days(to="2026-07-01") == ["2026-03-02", "2026-07-01"]
    assert days(**{"from": "2026-04-01", "to": "2026-12-31"}) == ["2026-07-01", "2026-12-30"]
    assert days(limit=2, offset=1) == ["2026-07-01", "2026-12-30"]
    assert client.get(EXCEPTIONS, params={"from": "someday"}, headers=admin).status_code == 422


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "siesta"}, "kind"),
        ({}, "kind"),
        ({"kind": "holiday", "note": "x" * 301}, "note"),
        ({"kind": "holiday", "colour": "red"}, "colour"),
    ],
)
def test_invalid_exception_is_422_naming_the_field(client, admin, body, field):
    assert_problem(client.put(f"{EXCEPTIONS}/2026-06-10", json=body, headers=admin), 422, field)
    assert client.get(EXCEPTIONS, headers=admin).json()["total"] == 0


def test_invalid_day_in_path_is_422(client, admin):
    response = client.put(f"{EXCEPTIONS}/2026-02-30", json={"kind": "holiday"}, headers=admin)
    assert_problem(response, 422, "day", where="path")


def test_exception_permissions(client, auth, admin):
    response = client.put(f"{EXCEPTIONS}/2026-06-10", json={"kind": "holiday"}, headers=admin)
    assert response.status_code == 200
    for role in ["operator", "agency", "integration", "analyst"]:
        headers = auth.headers(role)
        assert client.get(EXCEPTIONS, headers=headers).status_code == 200, role
        response = client.put(f"{EXCEPTIONS}/2026-06-11", json={"kind": "holiday"}, headers=headers)
        assert_problem(response, 403)
        assert_problem(client.delete(f"{EXCEPTIONS}/2026-06-10", headers=headers), 403)
    assert_problem(client.get(EXCEPTIONS), 401)
    assert_problem(client.put(f"{EXCEPTIONS}/2026-06-11", json={"kind": "holiday"}), 401)
    assert_problem(client.delete(f"{EXCEPTIONS}/2026-06-10"), 401)
    assert [i["day"] for i in client.get(EXCEPTIONS, headers=admin).json()["items"]] == [
        "2026-06-10"
    ]


# --- days ------------------------------------------------------------------------------------


def test_days_say_whether_working_and_why(client, admin):
    june = _days(client, admin, "2026-06-10", "2026-06-15")
    assert [(d, i["working"], i["source"]) for d, i in june.items()] == [
        ("2026-06-10", True, "weekday"),
        ("2026-06-11", True, "weekday"),
        ("2026-06-12", False, "holiday"),  # Russia Day
        ("2026-06-13", False, "weekend"),
        ("2026-06-14", False, "weekend"),
        ("2026-06-15", True, "weekday"),
    ]
    days = _days(client, admin, "2025-11-01", "2025-11-01")
    assert days["2025-11-01"]["working"] is True  # a Saturday made working
    assert days["2025-11-01"]["source"] == "weekend_workday"
    new_year = _days(client, admin, "2026-12-30", "2027-01-11")
    assert (new_year["2026-12-30"]["working"], new_year["2026-12-30"]["source"]) == (
        True,
        "weekday",
    )
    assert (new_year["2026-12-31"]["working"], new_year["2026-12-31"]["source"]) == (
        False,
        "transferred",
    )
    for day in range(1, 9):
        assert new_year[f"2027-01-0{day}"]["working"] is False
        assert new_year[f"2027-01-0{day}"]["source"] == "holiday"
    assert new_year["2027-01-09"]["source"] == "weekend"
    assert (new_year["2027-01-11"]["working"], new_year["2027-01-11"]["source"]) == (
        True,
        "weekday",
    )
    may = _days(client, admin, "2026-05-11", "2026-05-11")  # Victory Day fell on a Saturday
    assert (may["2026-05-11"]["working"], may["2026-05-11"]["source"]) == (False, "transferred")


def test_days_follow_exceptions(client, admin):
    client.put(
        f"{EXCEPTIONS}/2026-06-11", json={"kind": "holiday", "note": "Паводок"}, headers=admin
    )
    client.put(f"{EXCEPTIONS}/2026-06-13", json={"kind": "workday"}, headers=admin)
    response = client.get(DAYS, params={"from": "2026-06-10", "to": "2026-06-14"}, headers=admin)
    body = response.json()
    assert body["working_days"] == 2
    items = {i["day"]: i for i in body["items"]}
    assert (items["2026-06-11"]["working"], items["2026-06-11"]["source"]) == (False, "exception")
    assert items["2026-06-11"]["note"] == "Паводок"
    assert (items["2026-06-13"]["working"], items["2026-06-13"]["source"]) == (True, "exception")
    assert items["2026-06-10"]["note"] is None


def test_days_range_limits(client, admin):
    full_year = client.get(DAYS, params={"from": "2026-01-01", "to": "2027-01-01"}, headers=admin)
    assert full_year.status_code == 200
    assert len(full_year.json()["items"]) == 366
    one = client.get(DAYS, params={"from": "2026-01-01", "to": "2026-01-01"}, headers=admin)
    assert len(one.json()["items"]) == 1

    too_long = client.get(DAYS, params={"from": "2026-01-01", "to": "2027-01-02"}, headers=admin)
    assert_problem(too_long, 422, "to", where="query")
    backwards = client.get(DAYS, params={"from": "2026-01-02", "to": "2026-01-01"}, headers=admin)
    assert_problem(backwards, 422, "to", where="query")
    missing = client.get(DAYS, params={"to": "2026-01-01"}, headers=admin)
    assert_problem(missing, 422, "from", where="query")
    bad = client.get(DAYS, params={"from": "2026-13-01", "to": "2026-12-01"}, headers=admin)
    assert_problem(bad, 422, "from", where="query")


@pytest.mark.parametrize("role", ["operator", "agency", "integration", "analyst"])
def test_every_role_reads_days(client, auth, role):
    june = _days(client, auth.headers(role), "2026-06-12", "2026-06-12")
    assert june["2026-06-12"]["working"] is False


def test_days_need_a_token(client):
    assert_problem(client.get(DAYS, params={"from": "2026-06-12", "to": "2026-06-12"}), 401)


# --- the due-date calculator -----------------------------------------------------------------


def test_due_in_the_region_time_zone(client, admin):
    # Thursday 16:00: two hours that day, Friday is Russia Day, then seven hours on Monday.
    assert _due(client, admin, "2026-06-11T16:00:00+03:00", 9, "working_hours") == (
        "2026-06-15T16:00:00+03:00"
    )
    assert _due(client, admin, "2026-06-11T13:00:00Z", 9, "working_hours") == (
        "2026-06-15T16:00:00+03:00"
    )
    assert _due(client, admin, "2026-12-28T10:00:00+03:00", 8, "calendar_days") == (
        "2027-01-11T18:00:00+03:00"
    )
    assert _due(client, admin, "2026-12-30T10:00:00+03:00", 7, "working_days") == (
        "2027-01-19T18:00:00+03:00"
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"start": "2026-06-11T16:00:00", "amount": 9, "unit": "working_hours"}, "start"),
        ({"start": "yesterday", "amount": 9, "unit": "working_hours"}, "start"),
        ({"start": "2026-06-11T16:00:00Z", "amount": 0, "unit": "working_hours"}, "amount"),
        ({"start": "2026-06-11T16:00:00Z", "amount": 10_001, "unit": "working_hours"}, "amount"),
        ({"start": "2026-06-11T16:00:00Z", "amount": 366, "unit": "calendar_days"}, "amount"),
        ({"start": "2026-06-11T16:00:00Z", "amount": 9, "unit": "moons"}, "unit"),
        ({"start": "2026-06-11T16:00:00Z", "amount": 9, "unit": "working_hours", "x": 1}, "x"),
    ],
)
def test_invalid_due_request_is_422_naming_the_field(client, admin, body, field):
    assert_problem(client.post(DUE, json=body, headers=admin), 422, field)


def test_due_permissions(client, auth):
    body = {"start": "2026-06-11T16:00:00+03:00", "amount": 1, "unit": "working_days"}
    assert client.post(DUE, json=body, headers=auth.headers("operator")).status_code == 200
    for role in ["agency", "integration", "analyst"]:
        assert_problem(client.post(DUE, json=body, headers=auth.headers(role)), 403)
    assert_problem(client.post(DUE, json=body), 401)


def test_an_exception_changes_the_next_computation(client, admin):
    start = "2026-06-10T10:00:00+03:00"  # Wednesday
    assert _due(client, admin, start, 1, "working_days") == "2026-06-11T18:00:00+03:00"
    client.put(f"{EXCEPTIONS}/2026-06-11", json={"kind": "holiday"}, headers=admin)
    assert _due(client, admin, start, 1, "working_days") == "2026-06-15T18:00:00+03:00"
    client.put(f"{EXCEPTIONS}/2026-06-13", json={"kind": "workday"}, headers=admin)
    assert _due(client, admin, start, 1, "working_days") == "2026-06-13T18:00:00+03:00"
    client.put(f"{EXCEPTIONS}/2026-06-13", json={"kind": "holiday"}, headers=admin)
    client.delete(f"{EXCEPTIONS}/2026-06-11", headers=admin)
    assert _due(client, admin, start, 1, "working_days") == "2026-06-11T18:00:00+03:00"


def test_rows_written_elsewhere_are_seen_after_the_recheck(client, admin, db, monkeypatch):
    """Another worker's write does not invalidate this process's cache; the fingerprint
    re-check does."""
    start = "2026-06-10T10:00:00+03:00"
    monkeypatch.setattr(service, "RECHECK_SECONDS", 3600)
    assert _due(client, admin, start, 1, "working_days") == "2026-06-11T18:00:00+03:00"
    db.add(CalendarException(day=date(2026, 6, 11), kind="holiday"))
    # Still cached: the write did not go through this module.
    assert _due(client, admin, start, 1, "working_days") == "2026-06-11T18:00:00+03:00"
    monkeypatch.setattr(service, "RECHECK_SECONDS", 0)
    assert _due(client, admin, start, 1, "working_days") == "2026-06-15T18:00:00+03:00"
