"""The routing-rules API: admin CRUD, who may do what, references that must exist and be
active, and the dry run that explains a decision rule by rule."""

from __future__ import annotations

import itertools

import pytest

from app.cases.models import Case
from app.deadlines.models import DeadlinePolicy
from tests import factories
from tests.reference import assert_problem
from tests.routing import routing_rule

URL = "/api/v1/routing-rules"
DRY_RUN = f"{URL}/dry-run"
_policy_ids = itertools.count(900_001)


def deadline_policy(**kw) -> DeadlinePolicy:
    # Explicit ids: the migration seeds policies, and the harness puts them back after each
    # test's truncate, so on PostgreSQL the id sequence may lag behind the rows.
    return DeadlinePolicy(
        **{
            "id": next(_policy_ids),
            "name": "9 рабочих часов",
            "unit": "working_hours",
            "amount": 9,
            **kw,
        }
    )


@pytest.fixture
def admin(auth):
    return auth.headers("admin")


@pytest.fixture
def refs(db):
    """Roads (a sector) with a pits subcategory, a territory, two agencies, a policy."""
    roads = db.add(factories.category(code="roads", name_en="Roads"))
    pits = db.add(factories.category(code="roads.pits", parent_id=roads.id))
    health = db.add(factories.category(code="health"))
    krasnodar = db.add(factories.territory(code="krasnodar"))
    city = db.add(factories.agency(code="krd-admin", territory_id=krasnodar.id))
    liza = db.add(factories.agency(code="lizaalert", kind="partner"))
    policy = db.add(deadline_policy())
    return {
        "roads": roads.id,
        "pits": pits.id,
        "health": health.id,
        "krasnodar": krasnodar.id,
        "city": city.id,
        "liza": liza.id,
        "policy": policy.id,
    }


def _create(client, headers, **body):
    response = client.post(
        URL, json={"name": "Правило", "priority": "normal", **body}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


# --- CRUD ------------------------------------------------------------------------------------


def test_create_returns_201_with_every_field_and_get_returns_it(client, admin, refs):
    body = {
        "name": "Ямы в Краснодаре",
        "description": "Дороги города",
        "position": 7,
        "kinds": ["incident", "appeal"],
        "category_ids": [refs["roads"]],
        "territory_ids": [refs["krasnodar"]],
        "sources": ["vk", "web"],
        "keywords": ["яма", "выбоина"],
        "missing_person": False,
        "important": None,
        "agency_id": refs["city"],
        "priority": "high",
        "deadline_policy_id": refs["policy"],
        "notify_agency_ids": [refs["liza"]],
        "stop": False,
    }
    created = _create(client, admin, **body)
    assert {k: created[k] for k in body} == body
    assert created["enabled"] is True
    assert isinstance(created["id"], int) and created["created_at"] and created["updated_at"]

    got = client.get(f"{URL}/{created['id']}", headers=admin)
    assert got.status_code == 200
    assert got.json() == created


def test_position_defaults_to_after_the_last_rule(client, admin):
    assert _create(client, admin)["position"] == 0
    assert _create(client, admin)["position"] == 1
    assert _create(client, admin, position=10)["position"] == 10
    assert _create(client, admin)["position"] == 11


def test_duplicates_in_lists_are_stored_once(client, admin, refs):
    created = _create(
        client, admin, category_ids=[refs["roads"], refs["roads"]], kinds=["appeal", "appeal"]
    )
    assert created["category_ids"] == [refs["roads"]]
    assert created["kinds"] == ["appeal"]


def test_list_is_sorted_by_position_then_id_paginated_and_filtered(client, admin, db, refs):
    c = db.add(routing_rule(name="c", position=5, agency_id=refs["city"]))
    a = db.add(routing_rule(name="a", position=1, enabled=False))
    b = db.add(routing_rule(name="b", position=5, agency_id=refs["liza"]))

    body = client.get(URL, headers=admin).json()
    assert [i["name"] for i in body["items"]] == ["a", "c", "b"]
    assert body["total"] == 3 and body["limit"] == 50 and body["offset"] == 0

    page = client.get(URL, params={"limit": 1, "offset": 1}, headers=admin).json()
    assert [i["id"] for i in page["items"]] == [c.id] and page["total"] == 3

    enabled = client.get(URL, params={"enabled": "true"}, headers=admin).json()
    assert [i["id"] for i in enabled["items"]] == [c.id, b.id] and enabled["total"] == 2
    disabled = client.get(URL, params={"enabled": "false"}, headers=admin).json()
    assert [i["id"] for i in disabled["items"]] == [a.id]
    by_agency = client.get(URL, params={"agency_id": refs["liza"]}, headers=admin).json()
    assert [i["id"] for i in by_agency["items"]] == [b.id]


def test_patch_changes_only_the_fields_sent(client, admin, refs):
    created = _create(client, admin, keywords=["яма"], agency_id=refs["city"])
    response = client.patch(
        f"{URL}/{created['id']}",
        json={"name": "Новое имя", "enabled": False, "priority": None, "keywords": ["мусор"]},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["name"] == "Новое имя"
    assert patched["enabled"] is False
    assert patched["priority"] is None
    assert patched["keywords"] == ["мусор"]
    assert patched["agency_id"] == refs["city"]
    assert patched["updated_at"] >= created["updated_at"]
    assert client.get(f"{URL}/{created['id']}", headers=admin).json() == patched


def test_patch_null_for_a_required_field_is_422(client, admin):
    created = _create(client, admin)
    for field in ("name", "position", "keywords", "stop"):
        assert_problem(
            client.patch(f"{URL}/{created['id']}", json={field: None}, headers=admin), 422
        )


def test_delete_is_204_then_404(client, admin):
    created = _create(client, admin)
    assert client.delete(f"{URL}/{created['id']}", headers=admin).status_code == 204
    assert_problem(client.get(f"{URL}/{created['id']}", headers=admin), 404)
    assert_problem(client.delete(f"{URL}/{created['id']}", headers=admin), 404)
    assert_problem(client.patch(f"{URL}/{created['id']}", json={"name": "x"}, headers=admin), 404)


def test_delete_of_a_rule_cases_record_is_409(client, admin, db):
    created = _create(client, admin)
    db.add(
        Case(
            kind="incident",
            status="new",
            source_system="test",
            submitted_by="test",
            text="яма",
            routing_rule_id=created["id"],
        )
    )
    body = assert_problem(client.delete(f"{URL}/{created['id']}", headers=admin), 409)
    assert "case file" in body["detail"]


def test_huge_ids_are_refused_not_crashing(client, admin):
    assert_problem(client.get(f"{URL}/99999999999", headers=admin), 422)
    assert_problem(
        client.post(URL, json={"name": "x", "agency_id": 99999999999}, headers=admin), 422
    )


# --- who may do what -------------------------------------------------------------------------


def test_operator_reads_and_dry_runs_but_may_not_write(client, auth, db, refs):
    operator = auth.headers("operator")
    rule = db.add(routing_rule(agency_id=refs["city"]))
    assert client.get(URL, headers=operator).status_code == 200
    assert client.get(f"{URL}/{rule.id}", headers=operator).status_code == 200
    assert client.post(DRY_RUN, json={"kind": "incident"}, headers=operator).status_code == 200
    assert_problem(client.post(URL, json={"name": "x", "priority": "low"}, headers=operator), 403)
    assert_problem(client.patch(f"{URL}/{rule.id}", json={"name": "x"}, headers=operator), 403)
    assert_problem(client.delete(f"{URL}/{rule.id}", headers=operator), 403)


@pytest.mark.parametrize("role", ["agency", "integration", "analyst"])
def test_other_roles_get_403_everywhere(client, auth, db, role):
    headers = auth.headers(role)
    rule = db.add(routing_rule())
    calls = [
        client.get(URL, headers=headers),
        client.get(f"{URL}/{rule.id}", headers=headers),
        client.post(URL, json={"name": "x", "priority": "low"}, headers=headers),
        client.patch(f"{URL}/{rule.id}", json={"name": "x"}, headers=headers),
        client.delete(f"{URL}/{rule.id}", headers=headers),
        client.post(DRY_RUN, json={"kind": "incident"}, headers=headers),
    ]
    for response in calls:
        assert_problem(response, 403)


def test_no_token_is_401(client, db):
    rule = db.add(routing_rule())
    for response in [
        client.get(URL),
        client.get(f"{URL}/{rule.id}"),
        client.post(URL, json={"name": "x", "priority": "low"}),
        client.patch(f"{URL}/{rule.id}", json={"name": "x"}),
        client.delete(f"{URL}/{rule.id}"),
        client.post(DRY_RUN, json={"kind": "incident"}),
    ]:
        assert_problem(response, 401)


# --- references and validation ---------------------------------------------------------------


def test_unknown_or_inactive_references_are_422_naming_the_field(client, admin, db, refs):
    gone = db.add(factories.agency(is_active=False))
    old_category = db.add(factories.category(is_active=False))
    old_territory = db.add(factories.territory(is_active=False))
    old_policy = db.add(deadline_policy(name="old", is_active=False))
    cases = [
        ({"agency_id": 999999}, "agency_id"),
        ({"agency_id": gone.id}, "agency_id"),
        ({"deadline_policy_id": 999999}, "deadline_policy_id"),
        ({"deadline_policy_id": old_policy.id}, "deadline_policy_id"),
        ({"category_ids": [refs["roads"], refs["pits"], old_category.id]}, "category_ids.2"),
        ({"category_ids": [999999]}, "category_ids.0"),
        ({"territory_ids": [refs["krasnodar"], old_territory.id]}, "territory_ids.1"),
        ({"territory_ids": [999999]}, "territory_ids.0"),
        ({"notify_agency_ids": [refs["liza"], gone.id]}, "notify_agency_ids.1"),
    ]
    for body, field in cases:
        problem = assert_problem(
            client.post(URL, json={"name": "x", "priority": "low", **body}, headers=admin),
            422,
            field=field,
        )
        assert ("inactive" in problem["detail"]) or ("no " in problem["detail"])

    created = _create(client, admin, agency_id=refs["city"])
    assert_problem(
        client.patch(f"{URL}/{created['id']}", json={"agency_id": gone.id}, headers=admin),
        422,
        field="agency_id",
    )
    assert client.get(URL, headers=admin).json()["total"] == 1


def test_a_rule_without_any_action_is_422(client, admin, refs):
    body = {"name": "Ничего не делает", "keywords": ["яма"]}
    problem = assert_problem(client.post(URL, json=body, headers=admin), 422)
    assert "action" in problem["detail"]

    created = _create(client, admin, priority="high")
    assert_problem(
        client.patch(f"{URL}/{created['id']}", json={"priority": None}, headers=admin), 422
    )
    # Replacing the only action with another is fine.
    response = client.patch(
        f"{URL}/{created['id']}",
        json={"priority": None, "notify_agency_ids": [refs["liza"]]},
        headers=admin,
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "body",
    [
        {"unknown": 1},
        {"name": ""},
        {"kinds": ["complaint"]},
        {"sources": ["facebook"]},
        {"priority": "asap"},
        {"position": -1},
        {"keywords": ["x" * 101]},
        {"keywords": [""]},
        {"keywords": ["!!!"]},
        {"keywords": [f"слово{i}" for i in range(101)]},
        {"category_ids": [0]},
        {"stop": "maybe"},
    ],
)
def test_invalid_bodies_are_422(client, admin, body):
    assert_problem(
        client.post(URL, json={"name": "x", "priority": "low", **body}, headers=admin), 422
    )


def test_sources_accept_networks_and_channels(client, admin):
    created = _create(client, admin, sources=["telegram", "other", "mobile_app", "paper"])
    assert created["sources"] == ["telegram", "other", "mobile_app", "paper"]


# --- dry run ---------------------------------------------------------------------------------


@pytest.fixture
def rules(db, refs):
    missing = db.add(
        routing_rule(
            name="Пропавшие люди",
            position=1,
            missing_person=True,
            priority="urgent",
            notify_agency_ids=[refs["liza"]],
            stop=False,
        )
    )
    pits = db.add(
        routing_rule(
            name="Ямы в Краснодаре",
            position=2,
            kinds=["incident"],
            category_ids=[refs["roads"]],
            territory_ids=[refs["krasnodar"]],
            keywords=["яма", "выбоина"],
            agency_id=refs["city"],
            priority=None,
            deadline_policy_id=refs["policy"],
        )
    )
    off = db.add(routing_rule(name="Выключено", position=3, enabled=False, agency_id=refs["liza"]))
    return {"missing": missing.id, "pits": pits.id, "off": off.id}


def test_dry_run_matches_word_forms_and_explains_every_rule(client, admin, refs, rules):
    response = client.post(
        DRY_RUN,
        json={
            "kind": "incident",
            "category_id": refs["pits"],
            "territory_id": refs["krasnodar"],
            "network": "vk",
            "text": "На дороге огромные ямы",
        },
        headers=admin,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["decision"] == {
        "rule_id": rules["pits"],
        "rule_name": "Ямы в Краснодаре",
        "agency_id": refs["city"],
        "priority": None,
        "deadline_policy_id": refs["policy"],
        "notify_agency_ids": [],
        "reason": f"Rule {rules['pits']} «Ямы в Краснодаре»: kind incident; "
        f"category {refs['pits']} in sector roads; territory krasnodar; keyword «яма» "
        f"→ deadline policy {refs['policy']}",
    }
    assert body["checks"] == [
        {
            "rule_id": rules["missing"],
            "name": "Пропавшие люди",
            "position": 1,
            "matched": False,
            "reasons": ["missing_person is false; rule needs true"],
        },
        {
            "rule_id": rules["pits"],
            "name": "Ямы в Краснодаре",
            "position": 2,
            "matched": True,
            "reasons": [
                "kind incident",
                f"category {refs['pits']} in sector roads",
                "territory krasnodar",
                "keyword «яма»",
            ],
        },
        {
            "rule_id": rules["off"],
            "name": "Выключено",
            "position": 3,
            "matched": False,
            "reasons": [f"not evaluated: rule {rules['pits']} matched and stops evaluation"],
        },
    ]


def test_dry_run_accumulates_a_non_stop_rule(client, admin, refs, rules):
    body = client.post(
        DRY_RUN,
        json={
            "kind": "incident",
            "category_id": refs["roads"],
            "territory_id": refs["krasnodar"],
            "text": "Выбоину не видно, пропал человек",
            "missing_person": True,
        },
        headers=admin,
    ).json()
    decision = body["decision"]
    assert decision["agency_id"] == refs["city"]
    assert decision["priority"] == "urgent"
    assert decision["notify_agency_ids"] == [refs["liza"]]
    assert "keyword «выбоина»" in decision["reason"]
    assert "also rule" in decision["reason"] and "Пропавшие люди" in decision["reason"]


def test_dry_run_with_no_match_leaves_agency_none(client, admin, refs, rules):
    body = client.post(
        DRY_RUN,
        json={
            "kind": "appeal",
            "category_id": refs["health"],
            "channel": "web",
            "text": "Нет врача",
        },
        headers=admin,
    ).json()
    assert body["decision"]["agency_id"] is None
    assert body["decision"]["rule_id"] is None and body["decision"]["rule_name"] is None
    assert body["decision"]["reason"] == "No rule matched"
    pits = next(c for c in body["checks"] if c["rule_id"] == rules["pits"])
    assert pits["matched"] is False
    assert "kind appeal is not one of incident" in pits["reasons"]
    assert "no territory; rule needs krasnodar" in pits["reasons"]
    off = next(c for c in body["checks"] if c["rule_id"] == rules["off"])
    assert off["reasons"] == ["disabled"]


def test_dry_run_sees_a_rule_written_just_before(client, admin, refs):
    _create(client, admin, name="Всё в город", agency_id=refs["city"])
    body = client.post(DRY_RUN, json={"kind": "appeal"}, headers=admin).json()
    assert body["decision"]["agency_id"] == refs["city"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "incident", "category_id": 999999}, "category_id"),
        ({"kind": "incident", "territory_id": 999999}, "territory_id"),
    ],
)
def test_dry_run_unknown_category_or_territory_is_422_naming_it(client, admin, body, field):
    assert_problem(client.post(DRY_RUN, json=body, headers=admin), 422, field=field)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "appeal", "network": "vk"}, "network"),
        ({"kind": "incident", "channel": "web"}, "channel"),
        ({"kind": "incident", "network": "myspace"}, "network"),
        ({"kind": "incident", "text": "я" * 10_001}, "text"),
        ({"category_id": 1}, "kind"),
        ({"kind": "incident", "extra": 1}, "extra"),
    ],
)
def test_dry_run_invalid_bodies_are_422(client, admin, body, field):
    problem = assert_problem(client.post(DRY_RUN, json=body, headers=admin), 422)
    assert problem["errors"][0]["loc"] == ["body", field]
