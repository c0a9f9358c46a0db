from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from app.routing.models import RoutingRule
from tests import factories


@dataclass
class World:
    roads: object
    potholes: object
    health: object
    krasnodar: object
    sochi: object
    adm_krasnodar: object
    adm_sochi: object
    lizaalert: object


@pytest.fixture
def world(db) -> World:
    roads = db.add(factories.category(code="roads", name_ru="Дороги"))
    potholes = db.add(factories.category(code="roads.potholes", parent_id=roads.id))
    health = db.add(factories.category(code="healthcare"))
    krasnodar = db.add(factories.territory(code="krasnodar", kind="city_district"))
    sochi = db.add(factories.territory(code="sochi", kind="city_district"))
    adm_krasnodar = db.add(factories.agency(code="adm-krasnodar", territory_id=krasnodar.id))
    adm_sochi = db.add(factories.agency(code="adm-sochi", territory_id=sochi.id))
    lizaalert = db.add(factories.agency(code="lizaalert", kind="partner"))
    return World(roads, potholes, health, krasnodar, sochi, adm_krasnodar, adm_sochi, lizaalert)


def rule(db, **kw) -> RoutingRule:
    defaults = {"name": "rule", "position": 10}
    return db.add(RoutingRule(**{**defaults, **kw}))


def incident(**kw) -> dict:
    n = kw.pop("n", None) or datetime.now(UTC).timestamp()
    return {
        "network": "vk",
        "post_url": "https://vk.com/wall-1_2",
        "post_id": f"post-{n}",
        "author_handle": "ivan_petrov",
        "published_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "text": "На улице Красной огромные ямы, машины бьются",
        **kw,
    }


def appeal(**kw) -> dict:
    n = kw.pop("n", None) or datetime.now(UTC).timestamp()
    return {
        "channel": "web",
        "legal_regime": "pos",
        "number": f"POS-{n}",
        "applicant_name": "Иванова Мария Петровна",
        "applicant_email": "maria@example.org",
        "applicant_phone": "+79181234567",
        "text": "Нет горячей воды третью неделю",
        **kw,
    }


@pytest.fixture
def cases(client, auth, db, world):
    """A case of Sochi's administration (an appeal, with personal data), one of Krasnodar's (an
    incident) and the accounts that read them."""
    rule(db, name="Сочи", territory_ids=[world.sochi.id], agency_id=world.adm_sochi.id)
    rule(
        db,
        name="Краснодар",
        territory_ids=[world.krasnodar.id],
        agency_id=world.adm_krasnodar.id,
        position=20,
    )
    pos = auth.headers("integration", source="pos")
    sochi = client.post("/api/v1/appeals", json=appeal(territory_id=world.sochi.id), headers=pos)
    social = auth.headers("integration", source="incident-management")
    krasnodar = client.post(
        "/api/v1/incidents", json=incident(territory_id=world.krasnodar.id), headers=social
    )
    assert sochi.status_code == krasnodar.status_code == 201
    return {
        "sochi": sochi.json()["id"],
        "krasnodar": krasnodar.json()["id"],
        "operator": auth.headers("operator"),
        "analyst": auth.headers("analyst"),
        "sochi_agency": auth.headers("agency", agency_id=world.adm_sochi.id),
        "pos": pos,
        "social": social,
    }
