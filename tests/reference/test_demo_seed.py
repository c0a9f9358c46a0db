"""The demo region: loaded idempotently, consistent, and usable through the API."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.accounts.models import ApiClient, User
from app.reference import demo_data
from app.reference.demo import demo_credentials, seed_demo
from app.reference.models import Agency, AgencySector, Category, Territory
from tests.reference import cheap_argon2


@pytest.fixture(autouse=True)
def _fast_hashing(monkeypatch):
    cheap_argon2(monkeypatch)


def _counts(db) -> dict[str, int]:
    async def work(session):
        out = {}
        for name, model in (
            ("categories", Category),
            ("territories", Territory),
            ("agencies", Agency),
            ("agency_sectors", AgencySector),
            ("users", User),
            ("clients", ApiClient),
        ):
            out[name] = (await session.exec(select(func.count()).select_from(model))).scalar_one()
        return out

    return db.run(work)


def test_demo_data_is_consistent():
    demo_data.validate()
    assert len(demo_data.CATEGORIES) == 70
    assert len(demo_data.TERRITORIES) == 45
    assert len(demo_data.AGENCIES) == 52


def test_seed_twice_creates_the_demo_data_once(db):
    first = db.run(seed_demo)
    assert first.created == {
        "categories": 70,
        "territories": 45,
        "agencies": 52,
        "users": len(demo_data.DEMO_USERS),
        "clients": len(demo_data.DEMO_CLIENTS),
        "routing rules": 2 + demo_data.MUNICIPAL_FORMATION_COUNT,
    }
    counts = _counts(db)
    second = db.run(seed_demo)
    assert second.created == {}
    assert _counts(db) == counts
    assert counts["categories"] == 70
    assert counts["territories"] == 45
    assert counts["agencies"] == 52
    assert counts["agency_sectors"] == sum(len(a.sector_codes) for a in demo_data.AGENCIES)
    assert counts["users"] == len(demo_data.DEMO_USERS)
    assert counts["clients"] == len(demo_data.DEMO_CLIENTS)


def test_seed_leaves_existing_rows_alone_and_fills_the_gaps(db):
    db.add(Category(code="healthcare", name_ru="Своё", name_en="Own"))
    report = db.run(seed_demo)
    assert report.created["categories"] == 69

    async def healthcare(session):
        return (await session.exec(select(Category).where(Category.code == "healthcare"))).one()

    row = db.run(healthcare)
    assert row[0].name_en == "Own"
    assert _counts(db)["categories"] == 70


def test_demo_admin_logs_in_and_lists_agencies(client, db):
    db.run(seed_demo)
    response = client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": "admin", "password": "demo-admin-2026"},
    )
    assert response.status_code == 200, response.text
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}

    agencies = client.get("/api/v1/agencies", params={"limit": 200}, headers=headers)
    assert agencies.status_code == 200
    body = agencies.json()
    assert body["total"] == 52
    assert len(body["items"]) == 52
    codes = [a["code"] for a in body["items"]]
    assert codes == sorted(codes)
    assert "adm-krasnodar" in codes and "minzdrav" in codes
    minzdrav = next(a for a in body["items"] if a["code"] == "minzdrav")
    assert minzdrav["sector_ids"]  # competent in at least one sector

    # Every sector an agency is linked to is a top-level category.
    sectors = client.get(
        "/api/v1/categories", params={"sectors_only": "true", "limit": 200}, headers=headers
    ).json()
    sector_ids = {c["id"] for c in sectors["items"]}
    assert sectors["total"] == 10
    assert all(set(a["sector_ids"]) <= sector_ids for a in body["items"])

    # The agency demo user is bound to its agency.
    agency_login = client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": "krasnodar", "password": "demo-krasnodar-2026"},
    )
    assert agency_login.status_code == 200
    me = client.get(
        "/api/v1/auth/me",
        headers={"Authorization": f"Bearer {agency_login.json()['access_token']}"},
    ).json()
    krasnodar = next(a for a in body["items"] if a["code"] == "adm-krasnodar")
    assert me["agency_id"] == krasnodar["id"]

    # And a demo machine client logs in with client credentials.
    seed = demo_data.DEMO_CLIENTS[0]
    response = client.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": seed.client_id,
            "client_secret": seed.secret,
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["access_token"]


def test_demo_credentials_list_every_demo_login():
    text = "\n".join(demo_credentials())
    for user in demo_data.DEMO_USERS:
        assert user.username in text and user.password in text
    for seed in demo_data.DEMO_CLIENTS:
        assert seed.client_id in text and seed.secret in text


def test_demo_routing_sends_a_krasnodar_pothole_to_its_administration(client, db):
    db.run(seed_demo)
    token = client.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "incident-management",
            "client_secret": "demo-incident-secret-2026",
        },
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}

    def first_id(path, **params):
        return client.get(path, params=params, headers=headers).json()["items"][0]["id"]

    body = {
        "network": "vk",
        "post_url": "https://vk.com/wall-1_7",
        "post_id": "demo-7",
        "published_at": "2026-11-20T10:00:00+03:00",
        "text": "Огромные ямы на улице Красной",
        "category_id": first_id("/api/v1/categories", q="roads.", limit=1),
        "territory_id": first_id("/api/v1/territories", q="krasnodar", kind="city_district"),
    }
    case = client.post("/api/v1/incidents", json=body, headers=headers).json()
    assert case["status"] == "assigned", case
    agency = client.get(f"/api/v1/agencies/{case['agency_id']}", headers=headers).json()
    assert agency["code"] == "adm-krasnodar"
    assert case["due_at"] is not None
