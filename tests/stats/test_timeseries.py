"""GET /api/v1/stats/timeseries: buckets in local time, empty buckets as zeros."""

from __future__ import annotations

from datetime import date, timedelta

from app.core.types import utcnow
from tests.stats.conftest import MSK, PERIOD


def series(client, headers, **params) -> dict:
    response = client.get("/api/v1/stats/timeseries", params={**PERIOD, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_days_in_local_time_with_zeros(client, auth, region):
    body = series(client, auth.headers("analyst"), interval="day")
    items = body["items"]
    assert [i["bucket"] for i in items] == [
        (date(2025, 12, 29) + timedelta(days=n)).isoformat() for n in range(16)
    ]
    counts = {i["bucket"]: i["received"] for i in items if i["received"]}
    # D is 12-29 in Moscow (12-28 in UTC); A, B, C 12-30; H 01-02; F 01-05; G 01-09; E 01-13.
    assert counts == {
        "2025-12-29": 1,
        "2025-12-30": 3,
        "2026-01-02": 1,
        "2026-01-05": 1,
        "2026-01-09": 1,
        "2026-01-13": 1,
    }
    empty = next(i for i in items if i["bucket"] == "2026-01-01")
    assert empty["received"] == 0 and empty["overdue_now"] == 0
    assert empty["on_time_share"] is None and empty["close_median_hours"] is None
    day = next(i for i in items if i["bucket"] == "2025-12-30")
    assert (day["closed"], day["closed_on_time"], day["open"]) == (2, 1, 1)
    assert day["close_median_working_hours"] == 8.0  # A 6, B 10
    assert sum(i["received"] for i in items) == 8


def test_weeks_start_on_monday_and_split_by_a_dimension(client, auth, region):
    body = series(client, auth.headers("analyst"), interval="week", group_by="kind")
    got = {(i["keys"][0]["code"], i["bucket"]): i["received"] for i in body["items"]}
    assert got == {
        ("appeal", "2025-12-29"): 2,  # D, H
        ("appeal", "2026-01-05"): 0,
        ("appeal", "2026-01-12"): 1,  # E
        ("incident", "2025-12-29"): 3,  # A, B, C
        ("incident", "2026-01-05"): 2,  # F, G
        ("incident", "2026-01-12"): 0,
    }
    # Groups by name (Инцидент, Обращение), then buckets in order.
    assert [i["keys"][0]["code"] for i in body["items"]] == ["incident"] * 3 + ["appeal"] * 3


def test_months(client, auth, region):
    body = series(client, auth.headers("analyst"), interval="month")
    assert [(i["bucket"], i["received"]) for i in body["items"]] == [
        ("2025-12-01", 4),
        ("2026-01-01", 4),
    ]
    december = body["items"][0]
    assert december["closed"] == 2 and december["first_response_median_hours"] == 309.0


def test_without_a_period_the_last_thirty_days(client, auth, region):
    response = client.get(
        "/api/v1/stats/timeseries", params={"interval": "day"}, headers=auth.headers("analyst")
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    today = utcnow().astimezone(MSK).date()
    assert len(items) == 30
    assert items[-1]["bucket"] == today.isoformat()
    assert items[0]["bucket"] == (today - timedelta(days=29)).isoformat()
    assert all(i["received"] == 0 and i["keys"] == [] for i in items)


def test_limits(client, auth, region):
    headers = auth.headers("analyst")
    too_long = client.get(
        "/api/v1/stats/timeseries",
        params={"interval": "day", "date_from": "2020-01-01", "date_to": "2026-01-01"},
        headers=headers,
    )
    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["loc"] == ["query", "date_from"]
    # The same span in months is fine.
    months = client.get(
        "/api/v1/stats/timeseries",
        params={"interval": "month", "date_from": "2020-01-01", "date_to": "2026-01-01"},
        headers=headers,
    )
    assert months.status_code == 200 and len(months.json()["items"]) == 73
    two = client.get(
        "/api/v1/stats/timeseries",
        params={**PERIOD, "group_by": ["kind", "status"]},
        headers=headers,
    )
    assert two.status_code == 422 and two.json()["errors"][0]["loc"] == ["query", "group_by"]
    bad = client.get(
        "/api/v1/stats/timeseries", params={**PERIOD, "interval": "hour"}, headers=headers
    )
    assert bad.status_code == 422
    for edge in ({"date_to": "9999-12-30"}, {"date_to": "0001-01-05"}):
        far = client.get(
            "/api/v1/stats/timeseries", params={"interval": "month", **edge}, headers=headers
        )
        assert far.status_code == 422, far.text


def test_agency_staff_series_are_their_own(client, auth, region):
    mine = auth.headers("agency", agency_id=region.minzdrav.id)
    body = series(client, mine, interval="month")
    assert [(i["bucket"], i["received"]) for i in body["items"]] == [
        ("2025-12-01", 1),  # D
        ("2026-01-01", 1),  # E
    ]
