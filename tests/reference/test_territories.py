"""Territories: the region, its municipal formations and their settlements."""

from __future__ import annotations

import pytest

from tests import factories
from tests.reference import assert_problem, codes

URL = "/api/v1/territories"


@pytest.fixture
def admin(auth):
    return auth.headers("admin")


def _create(client, headers, **body):
    payload = {"code": "sochi", "name": "Город-курорт Сочи", "kind": "city_district", **body}
    response = client.post(URL, json=payload, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_create_returns_201_and_get_returns_it(client, admin):
    region = _create(client, admin, code="23", name="Краснодарский край", kind="region")
    sochi = _create(client, admin, oktmo="03726000", parent_id=region["id"])
    assert sochi["code"] == "sochi"
    assert sochi["oktmo"] == "03726000"
    assert sochi["name"] == "Город-курорт Сочи"
    assert sochi["kind"] == "city_district"
    assert sochi["parent_id"] == region["id"]
    assert sochi["is_active"] is True
    assert region["oktmo"] is None and region["parent_id"] is None
    got = client.get(f"{URL}/{sochi['id']}", headers=admin)
    assert got.status_code == 200
    assert got.json() == sochi
    assert_problem(client.get(f"{URL}/999999", headers=admin), 404)


def test_list_sorted_by_code_with_pagination(client, db, admin):
    for code in ["tuapse", "anapa", "sochi", "gelendzhik"]:
        db.add(factories.territory(code=code))
    body = client.get(URL, params={"limit": 3}, headers=admin).json()
    assert [i["code"] for i in body["items"]] == ["anapa", "gelendzhik", "sochi"]
    assert (body["total"], body["limit"], body["offset"]) == (4, 3, 0)
    rest = client.get(URL, params={"limit": 3, "offset": 3}, headers=admin).json()
    assert [i["code"] for i in rest["items"]] == ["tuapse"]
    assert_problem(client.get(URL, params={"limit": 1000}, headers=admin), 422)


def test_list_filters(client, db, admin):
    region = db.add(factories.territory(code="23", kind="region", name="Краснодарский край"))
    sochi = db.add(
        factories.territory(
            code="sochi", kind="city_district", parent_id=region.id, oktmo="03726000"
        )
    )
    db.add(factories.territory(code="anapa", kind="municipal_okrug", parent_id=region.id))
    db.add(factories.territory(code="adler", kind="settlement", parent_id=sochi.id))
    db.add(factories.territory(code="gone", kind="settlement", is_active=False))
    db.add(factories.territory(code="seleznev", kind="settlement", name="Хутор Селёзнев"))

    def listed(**params):
        return codes(client.get(URL, params=params, headers=admin))

    assert listed(kind="settlement") == ["adler", "gone", "seleznev"]
    assert listed(kind="region") == ["23"]
    assert listed(parent_id=region.id) == ["anapa", "sochi"]
    assert listed(parent_id=sochi.id) == ["adler"]
    assert listed(kind="settlement", is_active="true") == ["adler", "seleznev"]
    assert listed(is_active="false") == ["gone"]
    assert listed(q="селёзнев") == listed(q="СЕЛЕЗНЕВ") == ["seleznev"]  # ё and е alike
    assert listed(q="SOCHI") == ["sochi"]
    assert listed(q="0372") == ["sochi"]  # OKTMO
    assert listed(q="краснодарский") == ["23"]  # name, Cyrillic case ignored
    assert listed(parent_id=region.id, kind="city_district") == ["sochi"]
    body = assert_problem(client.get(URL, params={"kind": "galaxy"}, headers=admin), 422)
    assert body["errors"][0]["loc"] == ["query", "kind"]


def test_patch_is_partial_and_refuses_null_for_required_fields(client, admin):
    sochi = _create(client, admin, oktmo="03726000")
    patched = client.patch(f"{URL}/{sochi['id']}", json={"name": "Сочи"}, headers=admin)
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "Сочи"
    assert patched.json()["oktmo"] == "03726000"
    assert patched.json()["kind"] == "city_district"

    for field in ("code", "name", "kind", "is_active"):
        response = client.patch(f"{URL}/{sochi['id']}", json={field: None}, headers=admin)
        assert field in assert_problem(response, 422)["errors"][0]["msg"]
    # oktmo is optional: null erases it.
    cleared = client.patch(f"{URL}/{sochi['id']}", json={"oktmo": None}, headers=admin)
    assert cleared.status_code == 200
    assert cleared.json()["oktmo"] is None
    assert cleared.json()["name"] == "Сочи"


def test_validation_of_fields(client, admin):
    base = {"code": "x", "name": "X", "kind": "settlement"}
    for bad, field in [
        ({"kind": "galaxy"}, "kind"),
        ({"oktmo": "123"}, "oktmo"),
        ({"oktmo": "0372600A"}, "oktmo"),
        ({"code": "Sochi"}, "code"),
        ({"population": 5}, "population"),
    ]:
        response = client.post(URL, json={**base, **bad}, headers=admin)
        assert_problem(response, 422, field=field)
    assert client.get(URL, headers=admin).json()["total"] == 0
    # Both OKTMO lengths are accepted.
    assert _create(client, admin, code="a", oktmo="03726000")["oktmo"] == "03726000"
    assert _create(client, admin, code="b", oktmo="03726000001")["oktmo"] == "03726000001"


def test_code_clash_is_409(client, admin):
    _create(client, admin, code="sochi")
    anapa = _create(client, admin, code="anapa", name="Анапа")
    response = client.post(
        URL, json={"code": "sochi", "name": "X", "kind": "region"}, headers=admin
    )
    assert "sochi" in assert_problem(response, 409)["detail"]
    response = client.patch(f"{URL}/{anapa['id']}", json={"code": "sochi"}, headers=admin)
    assert_problem(response, 409)
    assert codes(client.get(URL, headers=admin)) == ["anapa", "sochi"]


def test_unknown_or_inactive_parent_is_422_naming_parent_id(client, db, admin):
    body = {"code": "x", "name": "X", "kind": "settlement", "parent_id": 999999}
    problem = assert_problem(client.post(URL, json=body, headers=admin), 422, field="parent_id")
    assert "999999" in problem["detail"]
    old = db.add(factories.territory(is_active=False))
    body["parent_id"] = old.id
    assert_problem(client.post(URL, json=body, headers=admin), 422, field="parent_id")
    assert codes(client.get(URL, params={"is_active": "true"}, headers=admin)) == []


def test_parent_cannot_make_a_cycle(client, admin):
    region = _create(client, admin, code="23", kind="region", name="Край")
    sochi = _create(client, admin, code="sochi", parent_id=region["id"])
    adler = _create(
        client, admin, code="adler", kind="settlement", name="Адлер", parent_id=sochi["id"]
    )
    own = client.patch(f"{URL}/{region['id']}", json={"parent_id": region["id"]}, headers=admin)
    assert_problem(own, 422, field="parent_id")
    child = client.patch(f"{URL}/{region['id']}", json={"parent_id": sochi["id"]}, headers=admin)
    assert_problem(child, 422, field="parent_id")
    grandchild = client.patch(
        f"{URL}/{region['id']}", json={"parent_id": adler["id"]}, headers=admin
    )
    assert "cycle" in assert_problem(grandchild, 422, field="parent_id")["detail"]
    assert client.get(f"{URL}/{region['id']}", headers=admin).json()["parent_id"] is None
    # Moving a settlement to another formation is fine.
    anapa = _create(client, admin, code="anapa", name="Анапа", parent_id=region["id"])
    moved = client.patch(f"{URL}/{adler['id']}", json={"parent_id": anapa["id"]}, headers=admin)
    assert moved.status_code == 200
    assert moved.json()["parent_id"] == anapa["id"]


def test_delete(client, db, admin):
    region = _create(client, admin, code="23", kind="region", name="Край")
    sochi = _create(client, admin, code="sochi", parent_id=region["id"])

    body = assert_problem(client.delete(f"{URL}/{region['id']}", headers=admin), 409)
    assert "territory" in body["detail"] and "parent_id" in body["detail"]

    db.add(factories.agency(code="adm-sochi", territory_id=sochi["id"]))
    body = assert_problem(client.delete(f"{URL}/{sochi['id']}", headers=admin), 409)
    assert body["referenced_by"] == ["1 agency row(s) via territory_id"]
    assert "agency" in body["detail"] and "territory_id" in body["detail"]
    assert codes(client.get(URL, headers=admin)) == ["23", "sochi"]

    free = _create(client, admin, code="anapa", name="Анапа", parent_id=region["id"])
    response = client.delete(f"{URL}/{free['id']}", headers=admin)
    assert response.status_code == 204
    assert_problem(client.get(f"{URL}/{free['id']}", headers=admin), 404)


def test_non_admin_cannot_write(client, db, auth):
    sochi = db.add(factories.territory(code="sochi"))
    admin = auth.headers("admin")
    before = client.get(URL, headers=admin).json()
    headers = auth.headers("operator")
    new = {"code": "anapa", "name": "Анапа", "kind": "municipal_okrug"}
    assert_problem(client.post(URL, json=new, headers=headers), 403)
    assert_problem(client.patch(f"{URL}/{sochi.id}", json={"name": "X"}, headers=headers), 403)
    assert_problem(client.delete(f"{URL}/{sochi.id}", headers=headers), 403)
    assert client.get(URL, headers=admin).json() == before
    assert_problem(client.post(URL, json=new), 401)
