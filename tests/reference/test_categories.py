"""Categories: the two-level tree (sector → subcategory), admin CRUD and who may do what."""

from __future__ import annotations

import pytest

from tests import factories
from tests.reference import assert_problem, codes

URL = "/api/v1/categories"


@pytest.fixture
def admin(auth):
    return auth.headers("admin")


def _create(client, headers, **body):
    payload = {"code": "water", "name_ru": "Водоснабжение", "name_en": "Water supply", **body}
    response = client.post(URL, json=payload, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


# --- create / get ----------------------------------------------------------------------------


def test_create_returns_201_and_the_category_then_get_returns_it(client, admin):
    sector = _create(client, admin)
    assert sector["code"] == "water"
    assert sector["name_ru"] == "Водоснабжение"
    assert sector["name_en"] == "Water supply"
    assert sector["parent_id"] is None
    assert sector["is_active"] is True
    assert isinstance(sector["id"], int)
    assert sector["created_at"] and sector["updated_at"]

    sub = _create(client, admin, code="water.outage", name_en="Outage", parent_id=sector["id"])
    assert sub["parent_id"] == sector["id"]

    got = client.get(f"{URL}/{sub['id']}", headers=admin)
    assert got.status_code == 200
    assert got.json() == sub


def test_get_unknown_category_is_404_problem(client, admin):
    assert_problem(client.get(f"{URL}/999999", headers=admin), 404)


def test_created_category_is_stored(client, admin, db):
    from app.reference.models import Category

    created = _create(client, admin, code="roads", name_en="Roads")
    stored = db.run(lambda s: s.get(Category, created["id"]))
    assert stored is not None
    assert (stored.code, stored.name_en) == ("roads", "Roads")


# --- list ------------------------------------------------------------------------------------


def test_list_is_sorted_by_code_and_paginated(client, db, admin):
    for code in ["delta", "alpha", "echo", "charlie", "bravo"]:
        db.add(factories.category(code=code))

    page = client.get(URL, params={"limit": 2, "offset": 1}, headers=admin)
    assert page.status_code == 200
    body = page.json()
    assert body["total"] == 5
    assert body["limit"] == 2
    assert body["offset"] == 1
    assert [i["code"] for i in body["items"]] == ["bravo", "charlie"]

    assert codes(client.get(URL, headers=admin)) == ["alpha", "bravo", "charlie", "delta", "echo"]
    last = client.get(URL, params={"limit": 2, "offset": 4}, headers=admin).json()
    assert [i["code"] for i in last["items"]] == ["echo"]
    assert last["total"] == 5
    beyond = client.get(URL, params={"offset": 10}, headers=admin).json()
    assert beyond["items"] == [] and beyond["total"] == 5


def test_list_defaults_to_50_per_page(client, admin):
    body = client.get(URL, headers=admin).json()
    assert (body["limit"], body["offset"], body["total"], body["items"]) == (50, 0, 0, [])


def test_page_parameters_out_of_range_are_422(client, admin):
    cases = [{"limit": 1000}, {"limit": 201}, {"limit": 0}, {"offset": -1}, {"limit": "many"}]
    for params in cases:
        body = assert_problem(client.get(URL, params=params, headers=admin), 422)
        assert body["errors"][0]["loc"] == ["query", next(iter(params))], params


def test_max_page_size_is_accepted(client, admin):
    assert client.get(URL, params={"limit": 200}, headers=admin).json()["limit"] == 200


def test_list_filters(client, db, admin):
    roads = db.add(factories.category(code="roads", name_en="Roads and bridges"))
    water = db.add(factories.category(code="water", name_en="Water", name_ru="Вода"))
    db.add(factories.category(code="roads.pothole", name_en="Potholes", parent_id=roads.id))
    db.add(factories.category(code="roads.lights", name_en="Street lights", parent_id=roads.id))
    db.add(factories.category(code="water.leak", name_en="Leak", parent_id=water.id))
    db.add(factories.category(code="old", name_en="Retired", is_active=False))

    def listed(**params):
        return codes(client.get(URL, params=params, headers=admin))

    assert listed(parent_id=roads.id) == ["roads.lights", "roads.pothole"]
    assert listed(sectors_only="true") == ["old", "roads", "water"]
    assert listed(is_active="false") == ["old"]
    assert "old" not in listed(is_active="true")
    assert len(listed(is_active="true")) == 5
    assert listed(q="LIGHT") == ["roads.lights"]  # case-insensitive, on the English name
    assert listed(q="bridges") == ["roads"]
    assert listed(q="water.") == ["water.leak"]  # on the code
    # On the Russian name, ignoring case in Cyrillic too (SQLite's lower() is ASCII-only).
    assert listed(q="вода") == ["water"]
    assert listed(q="ВОДА") == ["water"]
    assert listed(q="roads", sectors_only="true") == ["roads"]
    assert listed(q="nothing-like-this") == []
    assert client.get(URL, params={"q": "roads"}, headers=admin).json()["total"] == 3


# --- update ----------------------------------------------------------------------------------


def test_patch_changes_only_the_fields_sent(client, admin):
    sector = _create(client, admin)
    response = client.patch(f"{URL}/{sector['id']}", json={"name_en": "Water"}, headers=admin)
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["name_en"] == "Water"
    for unchanged in ("code", "name_ru", "parent_id", "is_active", "created_at"):
        assert patched[unchanged] == sector[unchanged]
    assert patched["updated_at"] >= sector["updated_at"]
    assert client.get(f"{URL}/{sector['id']}", headers=admin).json()["name_en"] == "Water"

    off = client.patch(f"{URL}/{sector['id']}", json={"is_active": False}, headers=admin)
    assert off.json()["is_active"] is False
    assert off.json()["name_en"] == "Water"


def test_patch_explicit_null_for_required_field_is_422(client, admin):
    sector = _create(client, admin)
    for field in ("code", "name_ru", "name_en", "is_active"):
        response = client.patch(f"{URL}/{sector['id']}", json={field: None}, headers=admin)
        body = assert_problem(response, 422)
        assert field in body["errors"][0]["msg"]
    assert client.get(f"{URL}/{sector['id']}", headers=admin).json() == sector


def test_patch_parent_null_turns_a_subcategory_into_a_sector(client, admin):
    sector = _create(client, admin)
    sub = _create(client, admin, code="water.leak", parent_id=sector["id"])
    response = client.patch(f"{URL}/{sub['id']}", json={"parent_id": None}, headers=admin)
    assert response.status_code == 200
    assert response.json()["parent_id"] is None


def test_patch_unknown_category_is_404(client, admin):
    assert_problem(client.patch(f"{URL}/999999", json={"name_en": "x"}, headers=admin), 404)


# --- uniqueness and references ---------------------------------------------------------------


def test_code_clash_on_create_and_on_patch_is_409(client, admin):
    _create(client, admin, code="water")
    other = _create(client, admin, code="roads")
    body = assert_problem(
        client.post(URL, json={"code": "water", "name_ru": "В", "name_en": "W"}, headers=admin), 409
    )
    assert "water" in body["detail"]
    body = assert_problem(
        client.patch(f"{URL}/{other['id']}", json={"code": "water"}, headers=admin), 409
    )
    assert "code" in body["detail"]
    # Setting a category's own code again is not a clash.
    same = client.patch(f"{URL}/{other['id']}", json={"code": "roads"}, headers=admin)
    assert same.status_code == 200
    assert codes(client.get(URL, headers=admin)) == ["roads", "water"]


def test_unknown_parent_is_422_naming_parent_id(client, admin):
    response = client.post(
        URL, json={"code": "x", "name_ru": "x", "name_en": "x", "parent_id": 999999}, headers=admin
    )
    body = assert_problem(response, 422, field="parent_id")
    assert "999999" in body["detail"]
    assert client.get(URL, headers=admin).json()["total"] == 0


def test_inactive_parent_is_422(client, db, admin):
    old = db.add(factories.category(is_active=False))
    response = client.post(
        URL, json={"code": "x", "name_ru": "x", "name_en": "x", "parent_id": old.id}, headers=admin
    )
    assert_problem(response, 422, field="parent_id")


def test_subcategory_cannot_be_a_parent(client, admin):
    sector = _create(client, admin, code="water")
    sub = _create(client, admin, code="water.leak", parent_id=sector["id"])
    response = client.post(
        URL,
        json={"code": "water.leak.big", "name_ru": "x", "name_en": "x", "parent_id": sub["id"]},
        headers=admin,
    )
    body = assert_problem(response, 422, field="parent_id")
    assert "subcategory" in body["detail"]
    other = _create(client, admin, code="roads")
    response = client.patch(f"{URL}/{other['id']}", json={"parent_id": sub["id"]}, headers=admin)
    assert_problem(response, 422, field="parent_id")
    assert client.get(f"{URL}/{other['id']}", headers=admin).json()["parent_id"] is None


def test_category_with_children_cannot_get_a_parent(client, admin):
    water = _create(client, admin, code="water")
    _create(client, admin, code="water.leak", parent_id=water["id"])
    roads = _create(client, admin, code="roads")
    response = client.patch(f"{URL}/{water['id']}", json={"parent_id": roads["id"]}, headers=admin)
    body = assert_problem(response, 422, field="parent_id")
    assert "subcategories" in body["detail"]
    assert client.get(f"{URL}/{water['id']}", headers=admin).json()["parent_id"] is None


def test_category_cannot_be_its_own_parent(client, admin):
    water = _create(client, admin, code="water")
    response = client.patch(f"{URL}/{water['id']}", json={"parent_id": water["id"]}, headers=admin)
    assert_problem(response, 422, field="parent_id")


# --- body validation -------------------------------------------------------------------------


def test_unknown_field_in_body_is_422(client, admin):
    response = client.post(
        URL, json={"code": "x", "name_ru": "x", "name_en": "x", "colour": "red"}, headers=admin
    )
    body = assert_problem(response, 422, field="colour")
    assert body["errors"][0]["type"] == "extra_forbidden"
    water = _create(client, admin)
    response = client.patch(f"{URL}/{water['id']}", json={"id": 5}, headers=admin)
    assert_problem(response, 422, field="id")


def test_invalid_code_is_422(client, admin):
    for code in ["Water", "-water", "water supply", "", "x" * 65, "вода", "a/b", 5]:
        body = {"code": code, "name_ru": "x", "name_en": "x"}
        assert_problem(client.post(URL, json=body, headers=admin), 422, field="code")
    assert client.get(URL, headers=admin).json()["total"] == 0
    assert _create(client, admin, code="a")["code"] == "a"  # the shortest valid code
    assert _create(client, admin, code="a" + "b" * 63)["code"] == "a" + "b" * 63


def test_missing_and_empty_names_are_422(client, admin):
    assert_problem(
        client.post(URL, json={"code": "x", "name_ru": "x"}, headers=admin), 422, field="name_en"
    )
    response = client.post(URL, json={"code": "x", "name_ru": "  ", "name_en": "x"}, headers=admin)
    assert_problem(response, 422, field="name_ru")


# --- delete ----------------------------------------------------------------------------------


def test_delete_unreferenced_category_is_204(client, admin):
    water = _create(client, admin)
    response = client.delete(f"{URL}/{water['id']}", headers=admin)
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(client.get(f"{URL}/{water['id']}", headers=admin), 404)
    assert_problem(client.delete(f"{URL}/{water['id']}", headers=admin), 404)


def test_delete_category_with_subcategories_is_409(client, admin):
    water = _create(client, admin, code="water")
    leak = _create(client, admin, code="water.leak", parent_id=water["id"])
    body = assert_problem(client.delete(f"{URL}/{water['id']}", headers=admin), 409)
    assert "category" in body["detail"] and "parent_id" in body["detail"]
    assert body["referenced_by"] == ["1 category row(s) via parent_id"]
    assert client.get(f"{URL}/{water['id']}", headers=admin).status_code == 200
    # Once the subcategory is gone the sector can go too.
    assert client.delete(f"{URL}/{leak['id']}", headers=admin).status_code == 204
    assert client.delete(f"{URL}/{water['id']}", headers=admin).status_code == 204


def test_delete_sector_an_agency_works_in_is_409(client, db, admin):
    water = db.add(factories.category(code="water"))
    agency = db.add(factories.agency())
    db.add(factories.agency_sector(agency.id, water.id))
    body = assert_problem(client.delete(f"{URL}/{water.id}", headers=admin), 409)
    assert "agency sector" in body["detail"]
    assert client.get(f"{URL}/{water.id}", headers=admin).status_code == 200


# --- who may do what -------------------------------------------------------------------------


def test_every_role_reads_reference_data(client, db, auth):
    water = db.add(factories.category(code="water"))
    territory = db.add(factories.territory(code="sochi"))
    agency = db.add(factories.agency(code="adm-sochi"))
    for role in ["admin", "operator", "agency", "integration", "analyst"]:
        headers = auth.headers(role)
        assert codes(client.get(URL, headers=headers)) == ["water"], role
        assert codes(client.get("/api/v1/territories", headers=headers)) == ["sochi"], role
        assert "adm-sochi" in codes(client.get("/api/v1/agencies", headers=headers)), role
        for url in (
            f"{URL}/{water.id}",
            f"/api/v1/territories/{territory.id}",
            f"/api/v1/agencies/{agency.id}",
        ):
            response = client.get(url, headers=headers)
            assert response.status_code == 200, (role, url, response.text)


def test_without_a_token_reads_are_401_with_bearer_challenge(client):
    for url in (URL, f"{URL}/1", "/api/v1/territories", "/api/v1/agencies"):
        response = client.get(url)
        body = assert_problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
        assert "Bearer" in body["detail"]


def test_garbage_token_is_401(client):
    response = client.get(URL, headers={"Authorization": "Bearer not-a-jwt"})
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


def test_only_admin_writes_and_refused_writes_change_nothing(client, db, auth):
    water = db.add(factories.category(code="water", name_en="Water"))
    admin = auth.headers("admin")
    before = client.get(URL, headers=admin).json()
    new = {"code": "roads", "name_ru": "Д", "name_en": "R"}
    for role in ["operator", "agency", "integration", "analyst"]:
        headers = auth.headers(role)
        body = assert_problem(client.post(URL, json=new, headers=headers), 403)
        assert body["required_scopes"] == ["reference:write"]
        assert role in body["detail"]
        patch = client.patch(f"{URL}/{water.id}", json={"name_en": "X"}, headers=headers)
        assert_problem(patch, 403)
        assert_problem(client.delete(f"{URL}/{water.id}", headers=headers), 403)
    assert client.get(URL, headers=admin).json() == before
    assert client.post(URL, json=new, headers=admin).status_code == 201  # the body was fine


def test_writes_without_token_are_401(client, db):
    water = db.add(factories.category(code="water"))
    response = client.post(URL, json={"code": "roads", "name_ru": "Д", "name_en": "R"})
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert_problem(client.delete(f"{URL}/{water.id}"), 401)
