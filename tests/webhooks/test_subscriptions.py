"""Subscriptions and the allowlist through the API: who manages what, the secret shown once,
URL checks on save."""

from __future__ import annotations

import pytest

from app.core.config import Settings
from app.webhooks.service import UrlNotAllowed, check_subscription_url
from tests.conftest import TEST_SECRET
from tests.webhooks.conftest import subscribe

URL = "https://hooks.example.org/regiondesk"


def test_create_shows_the_secret_once(client, admin):
    created = subscribe(client, admin, URL, event_types=["case.created", "case.closed"])
    sub = created["subscription"]
    assert len(created["secret"]) >= 32
    assert sub["url"] == URL and sub["owner_role"] == "admin"
    assert sub["event_types"] == ["case.created", "case.closed"]
    again = client.get(f"/api/v1/webhooks/{sub['id']}", headers=admin).json()
    assert "secret" not in again and again["id"] == sub["id"]
    listed = client.get("/api/v1/webhooks", headers=admin).json()
    assert [s["id"] for s in listed["items"]] == [sub["id"]] and "secret" not in listed["items"][0]


def test_defaults_every_event_type_and_takes_a_given_secret(client, admin):
    secret = "s" * 40
    created = subscribe(client, admin, URL, secret=secret)
    assert created["secret"] == secret
    assert len(created["subscription"]["event_types"]) == 9


def test_unknown_event_type_and_short_secret_are_refused(client, admin):
    for body in (
        {"url": URL, "event_types": ["case.deleted"]},
        {"url": URL, "secret": "short"},
        {"url": URL, "event_types": []},
        {"url": URL, "colour": "red"},
    ):
        response = client.post("/api/v1/webhooks", json=body, headers=admin)
        assert response.status_code == 422, body


def test_agency_and_integration_own_their_subscriptions(client, auth, world):
    krasnodar = auth.headers("agency", agency_id=world.adm_krasnodar.id)
    colleague = auth.headers("agency", agency_id=world.adm_krasnodar.id)
    sochi = auth.headers("agency", agency_id=world.adm_sochi.id)
    monitoring = auth.headers("integration", source="monitoring")
    other_system = auth.headers("integration", source="platform")
    admin = auth.headers("admin")

    mine = subscribe(client, krasnodar, URL)["subscription"]
    assert mine["owner_role"] == "agency" and mine["owner_agency_id"] == world.adm_krasnodar.id
    theirs = subscribe(client, monitoring, URL)["subscription"]
    assert theirs["owner_role"] == "integration"
    assert theirs["owner_source_system"] == "monitoring"

    assert client.get(f"/api/v1/webhooks/{mine['id']}", headers=colleague).status_code == 200
    for headers in (sochi, monitoring, other_system):
        assert client.get(f"/api/v1/webhooks/{mine['id']}", headers=headers).status_code == 404
        assert (
            client.patch(
                f"/api/v1/webhooks/{mine['id']}", json={"is_active": False}, headers=headers
            ).status_code
            == 404
        )
        assert client.delete(f"/api/v1/webhooks/{mine['id']}", headers=headers).status_code == 404
    assert [s["id"] for s in client.get("/api/v1/webhooks", headers=sochi).json()["items"]] == []
    assert [
        s["id"] for s in client.get("/api/v1/webhooks", headers=monitoring).json()["items"]
    ] == [theirs["id"]]
    everything = client.get("/api/v1/webhooks", headers=admin).json()
    assert everything["total"] == 2


def test_only_admins_choose_the_owner(client, auth, world):
    admin = auth.headers("admin")
    staff = auth.headers("agency", agency_id=world.adm_krasnodar.id)
    for_agency = subscribe(client, admin, URL, owner_agency_id=world.adm_sochi.id)
    assert for_agency["subscription"]["owner_role"] == "agency"
    assert for_agency["subscription"]["owner_agency_id"] == world.adm_sochi.id
    for_system = subscribe(client, admin, URL, owner_source_system="platform")
    assert for_system["subscription"]["owner_role"] == "integration"

    response = client.post(
        "/api/v1/webhooks", json={"url": URL, "owner_agency_id": world.adm_sochi.id}, headers=staff
    )
    assert response.status_code == 403
    both = client.post(
        "/api/v1/webhooks",
        json={"url": URL, "owner_agency_id": world.adm_sochi.id, "owner_source_system": "x1"},
        headers=admin,
    )
    assert both.status_code == 422
    unknown = client.post(
        "/api/v1/webhooks", json={"url": URL, "owner_agency_id": 99999}, headers=admin
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["loc"] == ["body", "owner_agency_id"]


def test_filters_must_name_real_agencies_and_categories(client, admin, world):
    sub = subscribe(
        client,
        admin,
        URL,
        agency_ids=[world.adm_krasnodar.id],
        category_ids=[world.roads.id],
        kinds=["incident"],
    )["subscription"]
    assert sub["agency_ids"] == [world.adm_krasnodar.id] and sub["kinds"] == ["incident"]
    bad = client.post(
        "/api/v1/webhooks", json={"url": URL, "category_ids": [987654]}, headers=admin
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["body", "category_ids"]


def test_update_pause_and_delete(client, admin):
    sub = subscribe(client, admin, URL)["subscription"]
    response = client.patch(
        f"/api/v1/webhooks/{sub['id']}",
        json={"is_active": False, "event_types": ["case.overdue"], "description": "ДДХ"},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["is_active"] is False and body["event_types"] == ["case.overdue"]
    assert body["description"] == "ДДХ"
    nulled = client.patch(f"/api/v1/webhooks/{sub['id']}", json={"url": None}, headers=admin)
    assert nulled.status_code == 422
    assert client.delete(f"/api/v1/webhooks/{sub['id']}", headers=admin).status_code == 204
    assert client.get(f"/api/v1/webhooks/{sub['id']}", headers=admin).status_code == 404


def test_rotating_the_secret_shows_the_new_one_once(client, admin):
    created = subscribe(client, admin, URL)
    sub_id = created["subscription"]["id"]
    rotated = client.post(f"/api/v1/webhooks/{sub_id}/rotate-secret", headers=admin)
    assert rotated.status_code == 200
    body = rotated.json()
    assert body["secret"] != created["secret"]
    assert body["subscription"]["previous_secret_expires_at"] is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://intranet.example.org/hook",
    ],
)
def test_internal_urls_are_refused_on_save(client, admin, dns, url):
    dns.names["intranet.example.org"] = ["192.168.10.20"]
    response = client.post("/api/v1/webhooks", json={"url": url}, headers=admin)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"].endswith("/url-not-allowed")
    assert problem["errors"][0]["loc"] == ["body", "url"]
    assert "internal address" in problem["detail"]


def test_urls_are_checked_on_update_too(client, admin):
    sub = subscribe(client, admin, URL)["subscription"]
    response = client.patch(
        f"/api/v1/webhooks/{sub['id']}", json={"url": "http://10.0.0.1/"}, headers=admin
    )
    assert response.status_code == 422
    assert client.get(f"/api/v1/webhooks/{sub['id']}", headers=admin).json()["url"] == URL


def test_allowlist_admits_internal_ministry_systems(client, admin, dns):
    dns.names["mintrans.krasnodar.local"] = ["10.50.0.7"]
    url = "http://mintrans.krasnodar.local/events"
    assert client.post("/api/v1/webhooks", json={"url": url}, headers=admin).status_code == 422

    added = client.post(
        "/api/v1/webhooks/allowlist",
        json={"entry": "MinTrans.Krasnodar.local", "note": "Минтранс, ЕДО"},
        headers=admin,
    )
    assert added.status_code == 201, added.text
    assert added.json()["entry"] == "mintrans.krasnodar.local"
    assert subscribe(client, admin, url)["subscription"]["url"] == url

    network = {"entry": "10.60.0.0/16"}
    assert client.post("/api/v1/webhooks/allowlist", json=network, headers=admin).status_code == 201
    subscribe(client, admin, "http://10.60.1.2:8080/in")
    dup = client.post("/api/v1/webhooks/allowlist", json=network, headers=admin)
    assert dup.status_code == 409
    bad = client.post("/api/v1/webhooks/allowlist", json={"entry": "not a host"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["body", "entry"]

    listed = client.get("/api/v1/webhooks/allowlist", headers=admin).json()
    assert [e["entry"] for e in listed["items"]] == ["10.60.0.0/16", "mintrans.krasnodar.local"]
    entry_id = added.json()["id"]
    assert client.delete(f"/api/v1/webhooks/allowlist/{entry_id}", headers=admin).status_code == 204
    assert client.post("/api/v1/webhooks", json={"url": url}, headers=admin).status_code == 422
    assert client.delete(f"/api/v1/webhooks/allowlist/{entry_id}", headers=admin).status_code == 404


def test_https_is_required_in_production_unless_allowlisted(db, settings):
    production = Settings(
        _env_file=None,
        env="production",
        database_url=settings.database_url,
        secret_key=TEST_SECRET,
    )

    async def check(session, url):
        await check_subscription_url(session, production, url)

    with pytest.raises(UrlNotAllowed, match="https"):
        db.run(lambda s: check(s, "http://hooks.example.org/in"))
    db.run(lambda s: check(s, "https://hooks.example.org/in"))
    db.run(lambda s: check_subscription_url(s, settings, "http://hooks.example.org/in"))
