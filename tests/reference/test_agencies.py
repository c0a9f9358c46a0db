"""Agencies: where cases go, their territory and the sectors they are competent in."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.reference.models import AgencySector
from tests import factories
from tests.reference import assert_problem, codes

URL = "/api/v1/agencies"


@pytest.fixture
def admin(auth):
    return auth.headers("admin")


@pytest.fixture
def tree(db):
    """Two sectors with a subcategory each, and a territory."""
    health = db.add(factories.category(code="healthcare"))
    roads = db.add(factories.category(code="roads"))
    clinic = db.add(factories.category(code="healthcare.clinic", parent_id=health.id))
    pothole = db.add(factories.category(code="roads.pothole", parent_id=roads.id))
    sochi = db.add(factories.territory(code="sochi"))
    return {"health": health, "roads": roads, "clinic": clinic, "pothole": pothole, "sochi": sochi}


def _create(client, headers, **body):
    payload = {"code": "minzdrav", "name": "Министерство здравоохранения", **body}
    payload.setdefault("kind", "regional_ministry")
    response = client.post(URL, json=payload, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def _links(db, agency_id):
    async def count(session):
        stmt = select(func.count()).where(AgencySector.agency_id == agency_id)
        return (await session.exec(stmt)).scalar_one()

    return db.run(count)


def test_create_with_sectors_and_get(client, admin, tree):
    created = _create(
        client,
        admin,
        territory_id=tree["sochi"].id,
        sector_ids=[tree["roads"].id, tree["health"].id, tree["roads"].id],
        email="info@minzdrav.example",
        phone="+7 (861) 123-45-67",
        address="Краснодар, ул. Красная, 1",
        website="https://minzdrav.example/",
    )
    assert created["code"] == "minzdrav"
    assert created["kind"] == "regional_ministry"
    assert created["territory_id"] == tree["sochi"].id
    assert created["parent_id"] is None
    assert created["sector_ids"] == sorted([tree["roads"].id, tree["health"].id])  # deduplicated
    assert created["email"] == "info@minzdrav.example"
    assert created["phone"] == "+7 (861) 123-45-67"
    assert created["website"] == "https://minzdrav.example/"
    assert created["is_active"] is True

    got = client.get(f"{URL}/{created['id']}", headers=admin)
    assert got.status_code == 200
    assert got.json() == created
    assert_problem(client.get(f"{URL}/999999", headers=admin), 404)

    child = _create(
        client, admin, code="gbuz-1", name="Больница", kind="partner", parent_id=created["id"]
    )
    assert child["parent_id"] == created["id"]
    assert child["sector_ids"] == []


def test_list_sorted_paged_and_filtered(client, db, admin, tree):
    sochi, other = tree["sochi"], db.add(factories.territory(code="anapa"))
    a = db.add(factories.agency(code="adm-sochi", name="Администрация Сочи", territory_id=sochi.id))
    b = db.add(factories.agency(code="minzdrav", name="Минздрав", kind="regional_ministry"))
    db.add(factories.agency(code="adm-anapa", territory_id=other.id))
    db.add(factories.agency(code="closed", is_active=False, kind="contractor"))
    db.add(factories.agency_sector(a.id, tree["roads"].id))
    db.add(factories.agency_sector(b.id, tree["health"].id))
    db.add(factories.agency_sector(a.id, tree["health"].id))

    def listed(**params):
        return codes(client.get(URL, params=params, headers=admin))

    assert listed() == ["adm-anapa", "adm-sochi", "closed", "minzdrav"]
    page = client.get(URL, params={"limit": 2, "offset": 2}, headers=admin).json()
    assert [i["code"] for i in page["items"]] == ["closed", "minzdrav"]
    assert page["total"] == 4
    assert_problem(client.get(URL, params={"limit": 1000}, headers=admin), 422)

    assert listed(kind="regional_ministry") == ["minzdrav"]
    assert listed(kind="municipal_administration") == ["adm-anapa", "adm-sochi"]
    assert listed(territory_id=sochi.id) == ["adm-sochi"]
    assert listed(sector_id=tree["health"].id) == ["adm-sochi", "minzdrav"]
    assert listed(sector_id=tree["roads"].id) == ["adm-sochi"]
    assert listed(sector_id=tree["clinic"].id) == []
    assert listed(is_active="false") == ["closed"]
    assert listed(q="ADM-") == ["adm-anapa", "adm-sochi"]
    assert listed(q="минздрав") == ["minzdrav"]  # on the name, Cyrillic case ignored
    assert listed(q="СОЧИ") == ["adm-sochi"]
    assert listed(q="adm", territory_id=other.id) == ["adm-anapa"]

    items = client.get(URL, params={"q": "adm-sochi"}, headers=admin).json()["items"]
    assert items[0]["sector_ids"] == sorted([tree["roads"].id, tree["health"].id])
    assert_problem(client.get(URL, params={"kind": "bank"}, headers=admin), 422)


def test_sector_ids_must_be_existing_sectors(client, admin, tree):
    base = {"code": "x", "name": "X", "kind": "partner"}
    sub = {**base, "sector_ids": [tree["health"].id, tree["clinic"].id]}
    body = assert_problem(client.post(URL, json=sub, headers=admin), 422, field="sector_ids.1")
    assert "subcategory" in body["detail"]
    unknown = {**base, "sector_ids": [999999]}
    assert_problem(client.post(URL, json=unknown, headers=admin), 422, field="sector_ids.0")
    assert client.get(URL, headers=admin).json()["total"] == 0

    agency = _create(client, admin, sector_ids=[tree["health"].id])
    patch = {"sector_ids": [tree["roads"].id, tree["pothole"].id]}
    response = client.patch(f"{URL}/{agency['id']}", json=patch, headers=admin)
    assert_problem(response, 422, field="sector_ids.1")
    assert client.get(f"{URL}/{agency['id']}", headers=admin).json()["sector_ids"] == [
        tree["health"].id
    ]


def test_inactive_sector_is_refused(client, db, admin):
    old = db.add(factories.category(is_active=False))
    body = {"code": "x", "name": "X", "kind": "partner", "sector_ids": [old.id]}
    assert_problem(client.post(URL, json=body, headers=admin), 422, field="sector_ids.0")


def test_unknown_territory_or_parent_is_422(client, admin, tree):
    base = {"code": "x", "name": "X", "kind": "partner"}
    body = assert_problem(
        client.post(URL, json={**base, "territory_id": 999999}, headers=admin),
        422,
        field="territory_id",
    )
    assert "999999" in body["detail"]
    assert_problem(
        client.post(URL, json={**base, "parent_id": 999999}, headers=admin), 422, field="parent_id"
    )
    agency = _create(client, admin)
    response = client.patch(f"{URL}/{agency['id']}", json={"territory_id": 999999}, headers=admin)
    assert_problem(response, 422, field="territory_id")
    own = client.patch(f"{URL}/{agency['id']}", json={"parent_id": agency["id"]}, headers=admin)
    assert_problem(own, 422, field="parent_id")
    assert client.get(f"{URL}/{agency['id']}", headers=admin).json() == agency


def test_parent_cannot_make_a_cycle(client, admin):
    top = _create(client, admin, code="top")
    mid = _create(client, admin, code="mid", parent_id=top["id"])
    low = _create(client, admin, code="low", parent_id=mid["id"])
    for parent in (mid, low):
        response = client.patch(
            f"{URL}/{top['id']}", json={"parent_id": parent["id"]}, headers=admin
        )
        assert "cycle" in assert_problem(response, 422, field="parent_id")["detail"]
    assert client.get(f"{URL}/{top['id']}", headers=admin).json()["parent_id"] is None
    # Re-parenting without a cycle is fine.
    moved = client.patch(f"{URL}/{low['id']}", json={"parent_id": top["id"]}, headers=admin)
    assert moved.status_code == 200
    assert moved.json()["parent_id"] == top["id"]


def test_ids_beyond_the_column_range_are_404_or_422_not_500(client, admin, tree):
    huge = 2**31
    assert_problem(client.get(f"{URL}/{huge}", headers=admin), 404)
    assert_problem(client.patch(f"{URL}/{huge}", json={"name": "x"}, headers=admin), 404)
    assert_problem(client.delete(f"{URL}/{huge}", headers=admin), 404)
    assert_problem(client.get(f"/api/v1/categories/{huge}", headers=admin), 404)
    assert_problem(client.get(f"/api/v1/territories/{huge}", headers=admin), 404)
    base = {"code": "x", "name": "X", "kind": "partner"}
    for field, value in (("territory_id", huge), ("parent_id", huge), ("sector_ids", [huge])):
        response = client.post(URL, json={**base, field: value}, headers=admin)
        name = "sector_ids.0" if field == "sector_ids" else field
        assert_problem(response, 422, field=name)
    for param in ("territory_id", "sector_id"):
        response = client.get(URL, params={param: huge}, headers=admin)
        assert assert_problem(response, 422)["errors"][0]["loc"] == ["query", param]
    category = {"code": "x", "name_ru": "x", "name_en": "x", "parent_id": huge}
    assert_problem(
        client.post("/api/v1/categories", json=category, headers=admin), 422, field="parent_id"
    )


def test_field_validation(client, admin):
    base = {"code": "x", "name": "X", "kind": "partner"}
    for bad, field in [
        ({"kind": "bank"}, "kind"),
        ({"email": "not-an-email"}, "email"),
        ({"phone": "call me"}, "phone"),
        ({"website": "not a url"}, "website"),
        ({"code": "X Y"}, "code"),
        ({"name": ""}, "name"),
        ({"sectors": [1]}, "sectors"),
        ({"sector_ids": list(range(1, 52))}, "sector_ids"),
    ]:
        assert_problem(client.post(URL, json={**base, **bad}, headers=admin), 422, field=field)
    assert client.get(URL, headers=admin).json()["total"] == 0


def test_patch_is_partial(client, admin, tree):
    agency = _create(
        client,
        admin,
        sector_ids=[tree["health"].id],
        email="a@minzdrav.example",
        territory_id=tree["sochi"].id,
    )
    response = client.patch(f"{URL}/{agency['id']}", json={"name": "Минздрав"}, headers=admin)
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["name"] == "Минздрав"
    for kept in ("code", "kind", "email", "territory_id", "sector_ids", "is_active"):
        assert patched[kept] == agency[kept], kept

    sectors = {"sector_ids": [tree["roads"].id]}
    replaced = client.patch(f"{URL}/{agency['id']}", json=sectors, headers=admin).json()
    assert replaced["sector_ids"] == [tree["roads"].id]
    assert replaced["name"] == "Минздрав"
    emptied = client.patch(f"{URL}/{agency['id']}", json={"sector_ids": []}, headers=admin)
    assert emptied.json()["sector_ids"] == []

    cleared = client.patch(
        f"{URL}/{agency['id']}", json={"email": None, "territory_id": None}, headers=admin
    ).json()
    assert cleared["email"] is None and cleared["territory_id"] is None

    for field in ("code", "name", "kind", "is_active", "sector_ids"):
        response = client.patch(f"{URL}/{agency['id']}", json={field: None}, headers=admin)
        assert field in assert_problem(response, 422)["errors"][0]["msg"]
    assert client.get(f"{URL}/{agency['id']}", headers=admin).json() == cleared


def test_code_clash_is_409(client, admin):
    _create(client, admin, code="minzdrav")
    other = _create(client, admin, code="mintrans", name="Минтранс")
    body = {"code": "minzdrav", "name": "X", "kind": "partner"}
    assert "minzdrav" in assert_problem(client.post(URL, json=body, headers=admin), 409)["detail"]
    response = client.patch(f"{URL}/{other['id']}", json={"code": "minzdrav"}, headers=admin)
    assert_problem(response, 409)
    assert codes(client.get(URL, headers=admin)) == ["mintrans", "minzdrav"]


def test_delete_with_only_sector_links_is_204_and_removes_the_links(client, db, admin, tree):
    agency = _create(client, admin, sector_ids=[tree["health"].id, tree["roads"].id])
    assert _links(db, agency["id"]) == 2
    response = client.delete(f"{URL}/{agency['id']}", headers=admin)
    assert response.status_code == 204
    assert_problem(client.get(f"{URL}/{agency['id']}", headers=admin), 404)
    assert _links(db, agency["id"]) == 0
    # The sector is free again.
    assert (
        client.delete(f"/api/v1/categories/{tree['clinic'].id}", headers=admin).status_code == 204
    )
    assert (
        client.delete(f"/api/v1/categories/{tree['health'].id}", headers=admin).status_code == 204
    )


def test_delete_agency_referenced_by_a_user_is_409(client, auth, admin, tree):
    agency = _create(client, admin, sector_ids=[tree["health"].id])
    auth.user("agency", agency_id=agency["id"])
    body = assert_problem(client.delete(f"{URL}/{agency['id']}", headers=admin), 409)
    assert "user account" in body["detail"] and "agency_id" in body["detail"]
    assert body["referenced_by"] == ["1 user account row(s) via agency_id"]
    assert client.get(f"{URL}/{agency['id']}", headers=admin).json() == agency


def test_delete_agency_referenced_by_a_client_or_child_agency_is_409(client, db, admin):
    parent = _create(client, admin)
    child = _create(client, admin, code="gbuz", name="ГБУЗ", kind="partner", parent_id=parent["id"])
    body = assert_problem(client.delete(f"{URL}/{parent['id']}", headers=admin), 409)
    assert body["referenced_by"] == ["1 agency row(s) via parent_id"]
    db.add(factories.api_client(role="agency", source_system=None, agency_id=child["id"]))
    body = assert_problem(client.delete(f"{URL}/{child['id']}", headers=admin), 409)
    assert "api client" in body["detail"]
    assert codes(client.get(URL, headers=admin)) == ["gbuz", "minzdrav"]


def test_non_admin_writes_are_refused_and_change_nothing(client, db, auth, tree):
    agency = db.add(factories.agency(code="minzdrav"))
    admin = auth.headers("admin")
    before = client.get(URL, headers=admin).json()
    new = {"code": "x", "name": "X", "kind": "partner"}
    for role in ("operator", "agency"):
        headers = auth.headers(role)
        assert_problem(client.post(URL, json=new, headers=headers), 403)
        patch = {"sector_ids": [tree["roads"].id]}
        assert_problem(client.patch(f"{URL}/{agency.id}", json=patch, headers=headers), 403)
        assert_problem(client.delete(f"{URL}/{agency.id}", headers=headers), 403)
    # The agency role's own agency shows up in the list: compare the one that existed before.
    after = client.get(URL, params={"q": "minzdrav"}, headers=admin).json()
    assert after["items"] == before["items"]
    assert_problem(client.delete(f"{URL}/{agency.id}"), 401)
