"""GET /api/v1/stats/league: agencies and municipalities ranked by on-time share, then median
close time, with a minimum volume."""

from __future__ import annotations

from tests import factories
from tests.stats.conftest import HOUR, PERIOD, make_case, msk


def league(client, headers, **params) -> dict:
    response = client.get("/api/v1/stats/league", params={**PERIOD, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def table(body: dict) -> list[tuple]:
    return [(r["code"], r["rank"], r["comparable"]) for r in body["items"]]


def test_agencies_ranked_with_a_minimum_volume(client, auth, region):
    h = auth.headers("analyst")
    body = league(client, h, by="agency", min_volume=1)
    # minzdrav: 1 of 1 closed on time; krasnodar: 1 of 2; abinsk closed nothing.
    assert table(body) == [
        ("minzdrav", 1, True),
        ("adm-krasnodar", 2, True),
        ("adm-abinsk", None, False),
    ]
    krasnodar = body["items"][1]
    assert krasnodar["id"] == region.adm_krasnodar.id
    assert krasnodar["name"] == "Администрация Краснодара"
    assert (krasnodar["closed"], krasnodar["closed_on_time"], krasnodar["on_time_share"]) == (
        2,
        1,
        0.5,
    )
    assert krasnodar["close_median_working_hours"] == 8.0
    assert body["min_volume"] == 1 and "on_time_share" in body["ranking"]

    # With two closed cases needed, only Krasnodar's administration is comparable.
    assert table(league(client, h, by="agency", min_volume=2)) == [
        ("adm-krasnodar", 1, True),
        ("adm-abinsk", None, False),
        ("minzdrav", None, False),
    ]
    # The default minimum is 20: nobody here is comparable.
    assert {r["comparable"] for r in league(client, h)["items"]} == {False}


def test_municipalities_include_their_settlements(client, auth, region):
    body = league(client, auth.headers("analyst"), by="territory", min_volume=1)
    # Krasnodar: A, B, E (2 of 3 on time). Abinsk district: C (in a settlement), D, G, none
    # closed. Cases without a territory are not in the table, nor is the settlement itself.
    assert table(body) == [("krasnodar", 1, True), ("abinsk", None, False)]
    assert body["items"][0]["on_time_share"] == 2 / 3
    assert body["items"][1]["received"] == 3


def test_equal_figures_share_a_rank(client, db, auth, region):
    extra = [db.add(factories.agency(code=f"adm-{n}", name=f"Администрация {n}")) for n in "xyz"]
    # x and y: one case each, on time, closed after 4 working hours; z: on time after 5.
    for agency, working in zip(extra, (4, 4, 5), strict=True):
        db.add(
            make_case(
                created=msk(1, 13, 9),
                status="closed",
                agency_id=agency.id,
                due_at=msk(1, 20, 18),
                closed_at=msk(1, 13, 9 + working),
                close_seconds=working * HOUR,
                close_working_seconds=working * HOUR,
            )
        )
    body = league(client, auth.headers("analyst"), by="agency", min_volume=1)
    ranks = {r["code"]: r["rank"] for r in body["items"]}
    # minzdrav (2 h), x and y (4 h, tied), z (5 h), all on time; then krasnodar (50 %).
    assert ranks == {
        "minzdrav": 1,
        "adm-x": 2,
        "adm-y": 2,
        "adm-z": 4,
        "adm-krasnodar": 5,
        "adm-abinsk": None,
    }


def test_agency_staff_see_their_own_row(client, auth, region):
    mine = auth.headers("agency", agency_id=region.minzdrav.id)
    body = league(client, mine, by="agency", min_volume=1)
    assert table(body) == [("minzdrav", 1, True)]
    other = client.get(
        "/api/v1/stats/league", params={"agency_id": region.adm_krasnodar.id}, headers=mine
    )
    assert other.status_code == 403


def test_bad_parameters(client, auth, region):
    h = auth.headers("analyst")
    for params, loc in (({"by": "region"}, "by"), ({"min_volume": 0}, "min_volume")):
        response = client.get("/api/v1/stats/league", params=params, headers=h)
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == ["query", loc]
