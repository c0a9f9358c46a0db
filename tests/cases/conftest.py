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
