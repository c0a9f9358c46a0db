"""Deadline policies: the defaults the migrations install, admin CRUD, validation, permissions."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import delete, select
from sqlalchemy.engine import make_url

from app.cases.models import Case
from app.core import config as config_module
from app.core.config import Settings
from app.deadlines import service
from app.deadlines.models import DeadlinePolicy
from app.main import create_app
from app.routing.models import RoutingRule
from tests import factories
from tests.conftest import (
    DB,
    ROOT,
    TEST_SECRET,
    Auth,
    _admin_pg_url,
    _pg_exec,
    run_migrations,
)

URL = "/api/v1/deadline-policies"
PROBLEM_JSON = "application/problem+json"

DEFAULTS = {
    "Инцидент: 9 рабочих часов": ("incident", None, None, "working_hours", 9, "assignment"),
    "Инцидент высокой важности: 4 рабочих часа": (
        "incident",
        None,
        "high",
        "working_hours",
        4,
        "assignment",
    ),
    "Срочный инцидент: 4 рабочих часа": (
        "incident",
        None,
        "urgent",
        "working_hours",
        4,
        "assignment",
    ),
    "Сообщение ПОС: 8 дней": ("appeal", "pos", None, "calendar_days", 8, "registration"),
    "Обращение 59-ФЗ: 30 дней": ("appeal", "fz59", None, "calendar_days", 30, "registration"),
}


def assert_problem(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == status
    if field is not None:
        assert body["errors"][0]["loc"] == ["body", field], body
        assert field in body["detail"], body
    return body


@pytest.fixture(autouse=True)
def _no_policies(db):
    """The migration's defaults survive until the first truncate: start from none."""
    db.run(lambda s: s.exec(delete(DeadlinePolicy)))
    service.invalidate_caches()


@pytest.fixture
def admin(auth):
    return auth.headers("admin")


def _create(client, headers, **body) -> dict:
    payload = {"name": "Инцидент: 9 рабочих часов", "kind": "incident", "unit": "working_hours"}
    payload |= {"amount": 9, **body}
    response = client.post(URL, json=payload, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


# --- the defaults ----------------------------------------------------------------------------


@pytest.fixture
def fresh_database(database_url, tmp_path):
    """A database of the same kind, migrated to head and never truncated."""
    if database_url.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        run_migrations(url)
        yield url
        return
    admin_url = _admin_pg_url()
    name = f"regiondesk_fresh_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_exec(admin_url, f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        run_migrations(url)
        yield url
    finally:
        asyncio.run(_pg_exec(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _fresh_client(url: str) -> tuple[TestClient, Settings]:
    settings = Settings(_env_file=None, env="test", database_url=url, secret_key=TEST_SECRET)
    return TestClient(create_app(settings), raise_server_exceptions=False), settings


def _names(client, headers) -> dict[str, dict]:
    response = client.get(URL, headers=headers)
    assert response.status_code == 200, response.text
    return {item["name"]: item for item in response.json()["items"]}


def test_default_policies_exist_after_migrations_and_are_selected(fresh_database):
    client, settings = _fresh_client(fresh_database)
    with client:
        db = DB(client)
        admin = Auth(db, settings).headers("admin")
        found = _names(client, admin)
        assert set(found) == set(DEFAULTS)
        for name, (kind, regime, priority, unit, amount, starts_at) in DEFAULTS.items():
            item = found[name]
            assert (item["kind"], item["legal_regime"], item["priority"]) == (
                kind,
                regime,
                priority,
            )
            assert (item["unit"], item["amount"], item["starts_at"]) == (unit, amount, starts_at)
            assert item["is_active"] is True and item["category_id"] is None
            if kind == "incident":
                assert (item["after_interim_unit"], item["after_interim_amount"]) == (
                    "working_days",
                    7,
                )
            else:
                assert item["after_interim_unit"] is item["after_interim_amount"] is None

        def pick(**case):
            async def work(session):
                policy = await service.select_policy(session, sector_id=None, **case)
                return policy.name if policy else None

            return db.run(work)

        assert pick(kind="incident", legal_regime=None, priority="high") == (
            "Инцидент высокой важности: 4 рабочих часа"
        )
        assert pick(kind="incident", legal_regime=None, priority="urgent") == (
            "Срочный инцидент: 4 рабочих часа"
        )
        assert pick(kind="incident", legal_regime=None, priority="normal") == (
            "Инцидент: 9 рабочих часов"
        )
        assert pick(kind="appeal", legal_regime="fz59", priority="normal") == (
            "Обращение 59-ФЗ: 30 дней"
        )
        assert pick(kind="appeal", legal_regime="pos", priority="high") == "Сообщение ПОС: 8 дней"


def _downgrade(database_url: str, revision: str) -> None:
    previous = os.environ.get("REGIONDESK_DATABASE_URL")
    os.environ["REGIONDESK_DATABASE_URL"] = database_url
    config_module.get_settings.cache_clear()
    try:
        cfg = Config(str(ROOT / "alembic.ini"))
        cfg.attributes["configure_logging"] = False
        command.downgrade(cfg, revision)
    finally:
        if previous is None:
            os.environ.pop("REGIONDESK_DATABASE_URL", None)
        else:
            os.environ["REGIONDESK_DATABASE_URL"] = previous
        config_module.get_settings.cache_clear()


async def _policy_names(session) -> list[str]:
    return sorted((await session.exec(select(DeadlinePolicy.name))).scalars())


def _stored_names(url: str) -> list[str]:
    client, _ = _fresh_client(url)
    with client:
        return DB(client).run(_policy_names)


def test_default_policies_migration_goes_down_and_up(fresh_database):
    assert _stored_names(fresh_database) == sorted(DEFAULTS)
    _downgrade(fresh_database, "0002")
    assert _stored_names(fresh_database) == []
    run_migrations(fresh_database)
    assert _stored_names(fresh_database) == sorted(DEFAULTS)


# --- CRUD ------------------------------------------------------------------------------------


def test_create_returns_201_then_get_returns_it(client, admin, db):
    sector = db.add(factories.category())
    created = _create(
        client,
        admin,
        name="Инцидент ЖКХ",
        priority="high",
        category_id=sector.id,
        amount=4,
        after_interim_unit="working_days",
        after_interim_amount=7,
    )
    assert isinstance(created["id"], int)
    assert created["name"] == "Инцидент ЖКХ"
    assert (created["kind"], created["legal_regime"], created["priority"]) == (
        "incident",
        None,
        "high",
    )
    assert created["category_id"] == sector.id
    assert (created["unit"], created["amount"]) == ("working_hours", 4)
    assert created["starts_at"] == "assignment"  # the default
    assert (created["after_interim_unit"], created["after_interim_amount"]) == ("working_days", 7)
    assert created["is_active"] is True
    assert created["created_at"] and created["updated_at"]

    got = client.get(f"{URL}/{created['id']}", headers=admin)
    assert got.status_code == 200
    assert got.json() == created
    stored = db.run(lambda s: s.get(DeadlinePolicy, created["id"]))
    assert (stored.unit, stored.amount, stored.category_id) == ("working_hours", 4, sector.id)


def test_get_unknown_policy_is_404(client, admin):
    assert_problem(client.get(f"{URL}/999999", headers=admin), 404)


def test_list_sorted_by_id_filtered_and_paginated(client, admin):
    a = _create(client, admin, name="a")
    b = _create(
        client,
        admin,
        name="b",
        kind="appeal",
        legal_regime="fz59",
        unit="calendar_days",
        amount=30,
        starts_at="registration",
    )
    c = _create(client, admin, name="c", is_active=False)
    d = _create(client, admin, name="d", kind=None, unit="working_days", amount=10)

    body = client.get(URL, headers=admin).json()
    assert [i["id"] for i in body["items"]] == [a["id"], b["id"], c["id"], d["id"]]
    assert body["total"] == 4

    page = client.get(URL, params={"limit": 2, "offset": 1}, headers=admin).json()
    assert [i["name"] for i in page["items"]] == ["b", "c"]
    assert (page["total"], page["limit"], page["offset"]) == (4, 2, 1)

    incidents = client.get(URL, params={"kind": "incident"}, headers=admin).json()
    assert [i["name"] for i in incidents["items"]] == ["a", "c"]
    active = client.get(URL, params={"is_active": "true"}, headers=admin).json()
    assert [i["name"] for i in active["items"]] == ["a", "b", "d"]
    both = client.get(URL, params={"kind": "incident", "is_active": False}, headers=admin).json()
    assert [i["name"] for i in both["items"]] == ["c"] and both["total"] == 1
    assert client.get(URL, params={"kind": "parcel"}, headers=admin).status_code == 422


def test_patch_changes_only_what_is_sent(client, admin):
    created = _create(client, admin)
    response = client.patch(
        f"{URL}/{created['id']}", json={"amount": 6, "priority": "urgent"}, headers=admin
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["amount"], body["priority"]) == (6, "urgent")
    assert body["name"] == created["name"] and body["unit"] == "working_hours"
    assert body["updated_at"] >= created["updated_at"]

    cleared = client.patch(f"{URL}/{created['id']}", json={"priority": None}, headers=admin)
    assert cleared.status_code == 200 and cleared.json()["priority"] is None
    assert client.get(f"{URL}/{created['id']}", headers=admin).json()["amount"] == 6
    assert_problem(client.patch(f"{URL}/999999", json={"amount": 1}, headers=admin), 404)


def test_delete_returns_204_then_404(client, admin):
    created = _create(client, admin)
    response = client.delete(f"{URL}/{created['id']}", headers=admin)
    assert response.status_code == 204 and response.content == b""
    assert_problem(client.get(f"{URL}/{created['id']}", headers=admin), 404)
    assert_problem(client.delete(f"{URL}/{created['id']}", headers=admin), 404)


def test_delete_refused_while_a_routing_rule_or_case_refers_to_it(client, admin, db):
    by_rule = _create(client, admin, name="rule")
    by_case = _create(client, admin, name="case")
    rule = db.add(RoutingRule(name="r", position=1, deadline_policy_id=by_rule["id"]))
    db.add(
        Case(
            kind="incident",
            status="new",
            source_system="test",
            submitted_by="user:1",
            text="яма",
            deadline_policy_id=by_case["id"],
        )
    )
    body = assert_problem(client.delete(f"{URL}/{by_rule['id']}", headers=admin), 409)
    assert "routing rule" in body["detail"]
    body = assert_problem(client.delete(f"{URL}/{by_case['id']}", headers=admin), 409)
    assert "case file" in body["detail"]
    assert client.get(f"{URL}/{by_rule['id']}", headers=admin).status_code == 200

    async def unlink(session):
        stored = await session.get(RoutingRule, rule.id)
        stored.deadline_policy_id = None

    db.run(unlink)
    assert client.delete(f"{URL}/{by_rule['id']}", headers=admin).status_code == 204


def test_duplicate_name_is_409(client, admin):
    first = _create(client, admin, name="one")
    second = _create(client, admin, name="two")
    assert_problem(client.post(URL, json={**_body(), "name": "one"}, headers=admin), 409)
    response = client.patch(f"{URL}/{second['id']}", json={"name": "one"}, headers=admin)
    assert_problem(response, 409)
    same = client.patch(f"{URL}/{first['id']}", json={"name": "one"}, headers=admin)
    assert same.status_code == 200


# --- validation ------------------------------------------------------------------------------


def _body(**changes) -> dict:
    return {"name": "p", "kind": "incident", "unit": "working_hours", "amount": 9, **changes}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"unit": "fortnights"}, "unit"),
        ({"amount": 0}, "amount"),
        ({"amount": 10_001}, "amount"),
        ({"amount": "many"}, "amount"),
        ({"unit": "calendar_days", "amount": 366}, "amount"),
        ({"unit": "working_days", "amount": 366}, "amount"),
        ({"after_interim_unit": "working_days"}, "after_interim_amount"),
        ({"after_interim_amount": 7}, "after_interim_unit"),
        (
            {"after_interim_unit": "working_days", "after_interim_amount": 400},
            "after_interim_amount",
        ),
        ({"after_interim_unit": "weeks", "after_interim_amount": 1}, "after_interim_unit"),
        ({"kind": "parcel"}, "kind"),
        ({"legal_regime": "fz59"}, "legal_regime"),  # kind is incident
        ({"kind": "appeal", "legal_regime": "gdpr"}, "legal_regime"),
        ({"priority": "whenever"}, "priority"),
        ({"starts_at": "tomorrow"}, "starts_at"),
        ({"category_id": 999_999}, "category_id"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_policy_is_422_naming_the_field(client, admin, changes, field):
    assert_problem(client.post(URL, json=_body(**changes), headers=admin), 422, field)
    assert client.get(URL, headers=admin).json()["total"] == 0


def test_limits_themselves_are_accepted(client, admin):
    _create(client, admin, name="hours", amount=10_000)
    _create(client, admin, name="days", unit="calendar_days", amount=365)
    _create(client, admin, name="any", kind=None, legal_regime="pos", unit="working_days")
    _create(
        client,
        admin,
        name="interim",
        after_interim_unit="working_hours",
        after_interim_amount=10_000,
    )


def test_missing_required_fields_are_named(client, admin):
    body = assert_problem(client.post(URL, json={"name": "p"}, headers=admin), 422)
    named = {tuple(e["loc"]) for e in body["errors"]}
    assert {("body", "unit"), ("body", "amount")} <= named


def test_category_must_be_an_active_sector(client, admin, db):
    sector = db.add(factories.category())
    sub = db.add(factories.category(parent_id=sector.id))
    inactive = db.add(factories.category(is_active=False))
    body = assert_problem(
        client.post(URL, json=_body(category_id=sub.id), headers=admin), 422, "category_id"
    )
    assert "subcategory" in body["detail"]
    body = assert_problem(
        client.post(URL, json=_body(category_id=inactive.id), headers=admin), 422, "category_id"
    )
    assert "inactive" in body["detail"]
    created = _create(client, admin, category_id=sector.id)
    response = client.patch(f"{URL}/{created['id']}", json={"category_id": sub.id}, headers=admin)
    assert_problem(response, 422, "category_id")


def test_patch_is_checked_against_the_whole_policy(client, admin):
    hours = _create(client, admin, name="hours", amount=400)
    response = client.patch(f"{URL}/{hours['id']}", json={"unit": "calendar_days"}, headers=admin)
    assert_problem(response, 422, "amount")

    response = client.patch(f"{URL}/{hours['id']}", json={"after_interim_amount": 7}, headers=admin)
    assert_problem(response, 422, "after_interim_unit")

    appeal = _create(
        client,
        admin,
        name="appeal",
        kind="appeal",
        legal_regime="pos",
        unit="calendar_days",
        amount=8,
    )
    response = client.patch(f"{URL}/{appeal['id']}", json={"kind": "incident"}, headers=admin)
    assert_problem(response, 422, "legal_regime")
    ok = client.patch(
        f"{URL}/{appeal['id']}", json={"kind": "incident", "legal_regime": None}, headers=admin
    )
    assert ok.status_code == 200, ok.text

    with_interim = _create(
        client, admin, name="interim", after_interim_unit="working_days", after_interim_amount=7
    )
    response = client.patch(
        f"{URL}/{with_interim['id']}", json={"after_interim_unit": None}, headers=admin
    )
    assert_problem(response, 422, "after_interim_unit")
    both = client.patch(
        f"{URL}/{with_interim['id']}",
        json={"after_interim_unit": None, "after_interim_amount": None},
        headers=admin,
    )
    assert both.status_code == 200 and both.json()["after_interim_unit"] is None

    for field in ("name", "unit", "amount", "starts_at", "is_active"):
        response = client.patch(f"{URL}/{hours['id']}", json={field: None}, headers=admin)
        assert_problem(response, 422)
    assert_problem(
        client.patch(f"{URL}/{hours['id']}", json={"colour": "red"}, headers=admin), 422, "colour"
    )


# --- who may do what -------------------------------------------------------------------------


def test_operator_reads_but_cannot_write(client, auth, admin):
    created = _create(client, admin)
    operator = auth.headers("operator")
    assert client.get(URL, headers=operator).status_code == 200
    assert client.get(f"{URL}/{created['id']}", headers=operator).status_code == 200
    assert_problem(client.post(URL, json=_body(name="x"), headers=operator), 403)
    assert_problem(
        client.patch(f"{URL}/{created['id']}", json={"amount": 1}, headers=operator), 403
    )
    assert_problem(client.delete(f"{URL}/{created['id']}", headers=operator), 403)
    assert client.get(f"{URL}/{created['id']}", headers=admin).json()["amount"] == 9


@pytest.mark.parametrize("role", ["agency", "integration", "analyst"])
def test_other_roles_get_403_on_policies(client, auth, admin, role):
    created = _create(client, admin)
    headers = auth.headers(role)
    assert_problem(client.get(URL, headers=headers), 403)
    assert_problem(client.get(f"{URL}/{created['id']}", headers=headers), 403)
    assert_problem(client.post(URL, json=_body(name="x"), headers=headers), 403)
    assert_problem(client.patch(f"{URL}/{created['id']}", json={"amount": 1}, headers=headers), 403)
    assert_problem(client.delete(f"{URL}/{created['id']}", headers=headers), 403)


def test_no_token_is_401(client, admin):
    created = _create(client, admin)
    assert_problem(client.get(URL), 401)
    assert_problem(client.get(f"{URL}/{created['id']}"), 401)
    assert_problem(client.post(URL, json=_body(name="x")), 401)
    assert_problem(client.patch(f"{URL}/{created['id']}", json={"amount": 1}), 401)
    assert_problem(client.delete(f"{URL}/{created['id']}"), 401)
