"""A small known dataset around the 2026 New Year holidays, every figure counted by hand.

Times are Moscow time (the region's zone). The Russian production calendar: 2025-12-29 and
-30 are working days; 2025-12-31 to 2026-01-11 are days off (holidays, a transferred day off
and weekends); 2026-01-12 is the first working day. Working hours 09:00-18:00.

| case | kind, source     | category  | territory  | agency     | registered       | status      |
|------|------------------|-----------|------------|------------|------------------|-------------|
| A    | incident vk      | potholes  | krasnodar  | krasnodar  | 12-30 15:00      | closed      |
| B    | incident telegram| roads     | krasnodar  | krasnodar  | 12-30 15:00      | closed      |
| C    | incident vk      | potholes  | settlement | district   | 12-30 15:00      | in_progress |
| D    | appeal web       | health    | district   | minzdrav   | 12-29 00:30      | in_progress |
| E    | appeal mobile_app| health    | krasnodar  | minzdrav   | 01-13 10:00      | closed      |
| F    | incident vk      | roads     | -          | -          | 01-05 12:00      | rejected    |
| G    | incident ok      | potholes  | district   | district   | 01-09 10:00      | returned    |
| H    | appeal widget    | -         | -          | -          | 01-02 12:00      | rejected    |
| X1   | incident vk      | roads     | krasnodar  | krasnodar  | 12-28 23:59      | new         |
| X2   | incident vk      | roads     | krasnodar  | krasnodar  | 01-14 00:00      | new         |

A, B, C are due 2026-01-12 15:00: 9 working hours from 12-30 15:00 jump over the holidays
(3 hours on 12-30, 6 on 01-12). A is closed at 12:00 (on time), B at 16:00 (late); C is open.
The period used is 2025-12-29 .. 2026-01-13: X1 and X2 fall just outside, D just inside (its
UTC date is 12-28).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from app.cases.models import Case
from tests import factories
from tests.cases.conftest import world  # noqa: F401  (the cases' reference-data fixture)

MSK = ZoneInfo("Europe/Moscow")
PERIOD = {"date_from": "2025-12-29", "date_to": "2026-01-13"}
HOUR = 3600


def msk(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    year = 2025 if month == 12 else 2026
    return datetime(year, month, day, hour, minute, tzinfo=MSK)


@dataclass
class Region:
    roads: object
    potholes: object
    health: object
    region: object
    krasnodar: object
    district: object
    settlement: object
    adm_krasnodar: object
    adm_district: object
    minzdrav: object
    cases: dict[str, Case]


def make_case(**kw) -> Case:
    created = kw.pop("created")
    defaults = {
        "kind": "incident",
        "status": "new",
        "priority": "normal",
        "source_system": "test",
        "submitted_by": "test",
        "text": "Текст обращения",
        "network": "vk" if kw.get("kind", "incident") == "incident" else None,
        "created_at": created,
        "updated_at": created,
    }
    return Case(**{**defaults, **kw})


def _durations(created: datetime, at: datetime, working_hours: float) -> tuple[int, int]:
    return int((at - created).total_seconds()), int(working_hours * HOUR)


def dataset(db) -> Region:
    roads = db.add(factories.category(code="roads", name_ru="Дороги"))
    potholes = db.add(factories.category(code="potholes", name_ru="Ямы", parent_id=roads.id))
    health = db.add(factories.category(code="health", name_ru="Здравоохранение"))
    region = db.add(factories.territory(code="kuban", name="Краснодарский край", kind="region"))
    krasnodar = db.add(
        factories.territory(
            code="krasnodar", name="Краснодар", kind="city_district", parent_id=region.id
        )
    )
    district = db.add(
        factories.territory(
            code="abinsk", name="Абинский район", kind="municipal_district", parent_id=region.id
        )
    )
    settlement = db.add(
        factories.territory(
            code="abinsk-town", name="Абинское поселение", kind="settlement", parent_id=district.id
        )
    )
    adm_krasnodar = db.add(factories.agency(code="adm-krasnodar", name="Администрация Краснодара"))
    adm_district = db.add(
        factories.agency(code="adm-abinsk", name="Администрация Абинского района")
    )
    minzdrav = db.add(
        factories.agency(code="minzdrav", name="Минздрав края", kind="regional_ministry")
    )

    due_jan12 = msk(1, 12, 15)
    cases: dict[str, Case] = {}

    def add(name: str, **kw) -> None:
        cases[name] = db.add(make_case(**kw))

    created = msk(12, 30, 15)
    fr, frw = _durations(created, msk(1, 12, 12), 6)
    add(
        "A",
        created=created,
        status="closed",
        priority="high",
        category_id=potholes.id,
        territory_id=krasnodar.id,
        agency_id=adm_krasnodar.id,
        due_at=due_jan12,
        first_response_at=msk(1, 12, 12),
        closed_at=msk(1, 12, 12),
        first_response_seconds=fr,
        first_response_working_seconds=frw,
        close_seconds=fr,
        close_working_seconds=frw,
    )
    fr, frw = _durations(created, msk(1, 12, 16), 10)
    add(
        "B",
        created=created,
        status="closed",
        network="telegram",
        category_id=roads.id,
        territory_id=krasnodar.id,
        agency_id=adm_krasnodar.id,
        due_at=due_jan12,
        first_response_at=msk(1, 12, 16),
        closed_at=msk(1, 12, 16),
        first_response_seconds=fr,
        first_response_working_seconds=frw,
        close_seconds=fr,
        close_working_seconds=frw,
    )
    add(
        "C",
        created=created,
        status="in_progress",
        category_id=potholes.id,
        territory_id=settlement.id,
        agency_id=adm_district.id,
        due_at=due_jan12,
    )
    created = msk(12, 29, 0, 30)
    fr, frw = _durations(created, msk(12, 29, 10), 1)
    add(
        "D",
        created=created,
        kind="appeal",
        channel="web",
        legal_regime="fz59",
        status="in_progress",
        priority="high",
        category_id=health.id,
        territory_id=district.id,
        agency_id=minzdrav.id,
        due_at=datetime(2027, 1, 29, 18, tzinfo=MSK),
        first_response_at=msk(12, 29, 10),
        first_response_seconds=fr,
        first_response_working_seconds=frw,
        applicant_name="Иванова Мария Петровна",
    )
    created = msk(1, 13, 10)
    fr, frw = _durations(created, msk(1, 13, 12), 2)
    add(
        "E",
        created=created,
        kind="appeal",
        channel="mobile_app",
        status="closed",
        reopen_count=1,
        category_id=health.id,
        territory_id=krasnodar.id,
        agency_id=minzdrav.id,
        due_at=datetime(2026, 2, 13, 18, tzinfo=MSK),
        first_response_at=msk(1, 13, 12),
        closed_at=msk(1, 13, 12),
        first_response_seconds=fr,
        first_response_working_seconds=frw,
        close_seconds=fr,
        close_working_seconds=frw,
        applicant_name="Петров Пётр",
    )
    add("F", created=msk(1, 5, 12), status="rejected", category_id=roads.id)
    created = msk(1, 9, 10)
    fr, frw = _durations(created, msk(1, 12, 9, 30), 0.5)
    add(
        "G",
        created=created,
        network="ok",
        status="returned",
        category_id=potholes.id,
        territory_id=district.id,
        agency_id=adm_district.id,
        due_at=msk(1, 12, 18),
        first_response_at=msk(1, 12, 9, 30),
        first_response_seconds=fr,
        first_response_working_seconds=frw,
    )
    add(
        "H",
        created=msk(1, 2, 12),
        kind="appeal",
        channel="widget",
        status="rejected",
        reopen_count=1,
    )
    for name, at in (("X1", msk(12, 28, 23, 59)), ("X2", msk(1, 14))):
        add(
            name,
            created=at,
            category_id=roads.id,
            territory_id=krasnodar.id,
            agency_id=adm_krasnodar.id,
        )
    return Region(
        roads,
        potholes,
        health,
        region,
        krasnodar,
        district,
        settlement,
        adm_krasnodar,
        adm_district,
        minzdrav,
        cases,
    )


@pytest.fixture
def region(db) -> Region:
    return dataset(db)
