"""GET /api/v1/stats/summary against the hand-counted dataset (tests/stats/conftest.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from app.auth.deps import Principal
from app.auth.permissions import ROLE_SCOPES, Role
from app.deadlines.calendar import DeadlineUnit, ProductionCalendar
from app.stats.schemas import Dimension
from app.stats.service import StatsFilters, StatsService
from tests.stats.conftest import MSK, PERIOD, msk

# Every figure of the whole cohort (A..H), counted by hand; overdue_now is as of today (C and G
# are past due, D is due in 2027).
TOTALS = {
    "received": 8,
    "open": 3,
    "closed": 3,
    "rejected": 2,
    "returned": 1,
    "overdue_now": 2,
    "closed_on_time": 2,
    "on_time_share": 2 / 3,
    "responded": 5,
    # first response (A 309, B 313, D 9.5, E 2, G 71.5 calendar hours; 6, 10, 1, 2, 0.5 working)
    "first_response_median_hours": 71.5,
    "first_response_p90_hours": 311.4,  # rank 3.6: 309 + 0.6 * (313 - 309)
    "first_response_median_working_hours": 2.0,
    "first_response_p90_working_hours": 8.4,  # 6 + 0.6 * (10 - 6)
    # close (A 309, B 313, E 2; working 6, 10, 2)
    "close_median_hours": 309.0,
    "close_p90_hours": 312.2,  # rank 1.8: 309 + 0.8 * 4
    "close_median_working_hours": 6.0,
    "close_p90_working_hours": 9.2,
    "reopened": 2,  # E, H
    "reopen_rate": 2 / 5,  # of A, B, E (closed) and F, H (rejected)
}


def summary(client, headers, **params) -> list[dict]:
    response = client.get("/api/v1/stats/summary", params={**PERIOD, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def by_key(items: list[dict]) -> dict:
    """Rows by their keys' codes (None for rows without a key)."""
    return {
        tuple(k["code"] for k in row["keys"])
        if len(row["keys"]) > 1
        else row["keys"][0]["code"]: row
        for row in items
    }


def received(items: list[dict]) -> dict:
    return {key: row["received"] for key, row in by_key(items).items()}


@pytest.mark.parametrize("role", ["analyst", "operator", "admin"])
def test_totals_equal_the_hand_count(client, auth, region, role):
    [row] = summary(client, auth.headers(role))
    assert row["keys"] == []
    assert {k: row[k] for k in TOTALS} == TOTALS


def test_the_period_is_read_in_local_time(client, auth, region):
    headers = auth.headers("analyst")
    # D was registered 12-29 00:30 Moscow time (12-28 in UTC): inside; X1 (12-28 23:59) outside.
    assert summary(client, headers, date_to="2025-12-29")[0]["received"] == 1
    # Without a period: every case, X1 and X2 included.
    response = client.get("/api/v1/stats/summary", headers=headers)
    assert response.json()["items"][0]["received"] == 10
    assert response.json()["period"] == {
        "date_from": None,
        "date_to": None,
        "timezone": "Europe/Moscow",
    }
    # Instants: date_from inclusive, date_to exclusive; a naive one is local time.
    exact = summary(
        client, headers, date_from="2025-12-29T00:30:00+03:00", date_to="2026-01-13T10:00:00"
    )
    assert exact[0]["received"] == 7  # E (01-13 10:00) is excluded, D included


def test_grouped_by_each_dimension(client, auth, region):
    h = auth.headers("analyst")
    assert received(summary(client, h, group_by="territory")) == {
        "krasnodar": 3,
        "abinsk": 2,
        "abinsk-town": 1,
        None: 2,
    }
    # A settlement counts for its municipal district.
    assert received(summary(client, h, group_by="municipality")) == {
        "krasnodar": 3,
        "abinsk": 3,
        None: 2,
    }
    # A subcategory counts for its sector.
    assert received(summary(client, h, group_by="sector")) == {"roads": 5, "health": 2, None: 1}
    assert received(summary(client, h, group_by="category")) == {
        "potholes": 3,
        "roads": 2,
        "health": 2,
        None: 1,
    }
    assert received(summary(client, h, group_by="agency")) == {
        "adm-krasnodar": 2,
        "adm-abinsk": 2,
        "minzdrav": 2,
        None: 2,
    }
    assert received(summary(client, h, group_by="kind")) == {"incident": 5, "appeal": 3}
    assert received(summary(client, h, group_by="source")) == {
        "vk": 3,
        "telegram": 1,
        "ok": 1,
        "web": 1,
        "mobile_app": 1,
        "widget": 1,
    }
    assert received(summary(client, h, group_by="status")) == {
        "closed": 3,
        "in_progress": 2,
        "returned": 1,
        "rejected": 2,
    }


def test_group_rows_carry_ids_names_and_every_measure(client, auth, region):
    rows = by_key(summary(client, auth.headers("analyst"), group_by="territory"))
    krasnodar = rows["krasnodar"]
    assert krasnodar["keys"] == [
        {
            "dimension": "territory",
            "id": region.krasnodar.id,
            "code": "krasnodar",
            "name": "Краснодар",
        }
    ]
    # A, B, E: all closed, A and E on time, E reopened once.
    assert {k: krasnodar[k] for k in TOTALS} == {
        "received": 3,
        "open": 0,
        "closed": 3,
        "rejected": 0,
        "returned": 0,
        "overdue_now": 0,
        "closed_on_time": 2,
        "on_time_share": 2 / 3,
        "responded": 3,
        "first_response_median_hours": 309.0,
        "first_response_p90_hours": 312.2,
        "first_response_median_working_hours": 6.0,
        "first_response_p90_working_hours": 9.2,
        "close_median_hours": 309.0,
        "close_p90_hours": 312.2,
        "close_median_working_hours": 6.0,
        "close_p90_working_hours": 9.2,
        "reopened": 1,
        "reopen_rate": 1 / 3,
    }
    # D (9.5 h, 1 working) and G (71.5 h, 0.5 working) answered; nothing closed; G overdue.
    abinsk = rows["abinsk"]
    assert abinsk["first_response_median_hours"] == 40.5
    assert abinsk["first_response_p90_hours"] == 65.3  # 9.5 + 0.9 * 62
    assert abinsk["first_response_median_working_hours"] == 0.75
    assert abinsk["close_median_hours"] is None and abinsk["on_time_share"] is None
    assert abinsk["overdue_now"] == 1 and abinsk["reopen_rate"] is None
    nothing = rows[None]
    assert nothing["keys"][0] == {"dimension": "territory", "id": None, "code": None, "name": None}
    assert nothing["rejected"] == 2 and nothing["reopen_rate"] == 0.5


def test_grouped_by_two_dimensions(client, auth, region):
    rows = summary(client, auth.headers("analyst"), group_by=["kind", "status"])
    assert received(rows) == {
        ("incident", "closed"): 2,
        ("incident", "in_progress"): 1,
        ("incident", "rejected"): 1,
        ("incident", "returned"): 1,
        ("appeal", "closed"): 1,
        ("appeal", "in_progress"): 1,
        ("appeal", "rejected"): 1,
    }
    first = rows[0]["keys"]
    assert [k["dimension"] for k in first] == ["kind", "status"]
    assert by_key(rows)[("appeal", "closed")]["keys"][0]["name"] == "Обращение"


def test_filters_as_in_the_case_list(client, auth, region):
    h = auth.headers("analyst")

    def count(**params) -> int:
        return summary(client, h, **params)[0]["received"]

    assert count(category_id=region.roads.id) == 5  # the sector with its potholes
    assert count(category_id=region.potholes.id) == 3
    assert count(territory_id=region.krasnodar.id) == 3
    assert count(agency_id=region.adm_krasnodar.id) == 2
    assert count(source="vk") == 3
    assert count(source="web") == 1
    assert count(kind="appeal") == 3
    assert count(priority="high") == 2
    assert (
        count(kind="incident", category_id=region.potholes.id, territory_id=region.krasnodar.id)
        == 1
    )


def test_overdue_and_on_time_across_the_new_year_holidays(db, settings, region):
    """A, B and C were registered 12-30 15:00 with 9 working hours: due 01-12 15:00, not on
    12-31 as 9 calendar hours would make it."""
    calendar = ProductionCalendar(tz=MSK)
    due = calendar.add(msk(12, 30, 15), 9, DeadlineUnit.working_hours)
    assert due == msk(1, 12, 15)
    assert {region.cases[n].due_at for n in "ABC"} == {due}

    analyst = Principal("user", 1, "analyst", Role.analyst, ROLE_SCOPES[Role.analyst])

    def figures(now):
        async def run(session):
            service = StatsService(session, settings, analyst, now=now)
            f = StatsFilters(date_from=msk(12, 29).date(), date_to=msk(1, 13).date())
            return (await service.summary(f, [])).items[0]

        return db.run(run)

    # During the holidays nothing is overdue yet: C's term runs on 01-12.
    during = figures(msk(1, 10, 12))
    assert during.overdue_now == 0
    # 01-12 16:00: C (due 15:00) is overdue, G (due 18:00) not yet, D (2027) not.
    after = figures(msk(1, 12, 16))
    assert after.overdue_now == 1
    # A closed 01-12 12:00 is on time, B at 16:00 is late, E well within its month.
    assert (after.closed, after.closed_on_time, after.on_time_share) == (3, 2, 2 / 3)


def test_agency_staff_get_their_own_agency_only(client, auth, region):
    mine = auth.headers("agency", agency_id=region.adm_krasnodar.id)
    [row] = summary(client, mine)
    assert row["received"] == 2 and row["closed"] == 2 and row["closed_on_time"] == 1
    assert received(summary(client, mine, group_by="agency")) == {"adm-krasnodar": 2}
    assert summary(client, mine, agency_id=region.adm_krasnodar.id)[0]["received"] == 2
    other = client.get(
        "/api/v1/stats/summary",
        params={"agency_id": region.minzdrav.id},
        headers=mine,
    )
    assert other.status_code == 403
    assert other.headers["content-type"] == "application/problem+json"
    csv = client.get(
        "/api/v1/stats/summary",
        params={"agency_id": region.minzdrav.id, "format": "csv"},
        headers=mine,
    )
    assert csv.status_code == 403


def test_one_statement_computes_a_grouped_summary(client, db, settings, region):
    statements: list[str] = []
    engine = client.app.state.engine.sync_engine

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    analyst = Principal("user", 1, "analyst", Role.analyst, ROLE_SCOPES[Role.analyst])
    event.listen(engine, "before_cursor_execute", record)
    try:
        result = db.run(
            lambda s: StatsService(s, settings, analyst).summary(
                StatsFilters(), [Dimension.territory]
            )
        )
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(result.items) == 4
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1, selects


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"group_by": "colour"}, "group_by"),
        ({"group_by": ["kind", "status", "agency"]}, "group_by"),
        ({"group_by": ["kind", "kind"]}, "group_by"),
        ({"date_from": "2026-02-01", "date_to": "2026-01-01"}, "date_to"),
        ({"date_from": "yesterday"}, "date_from"),
        ({"date_to": "9999-12-31"}, "date_to"),
        ({"category_id": 999_999}, "category_id"),
        ({"territory_id": 999_999}, "territory_id"),
        ({"agency_id": 999_999}, "agency_id"),
        ({"source": "fax"}, "source"),
        ({"format": "pdf"}, "format"),
        ({"format": "csv", "delimiter": "|"}, "delimiter"),
    ],
)
def test_bad_parameters_are_named(client, auth, region, params, loc):
    response = client.get("/api/v1/stats/summary", params=params, headers=auth.headers("analyst"))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert any(e["loc"][:2] == ["query", loc] for e in response.json()["errors"]), response.text
