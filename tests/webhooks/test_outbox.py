"""The outbox: every committed case event that subscribers may hear about has its outbox row,
written in the same transaction; a change that fails leaves none."""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select

from app.cases.models import Case, CaseEvent
from app.cases.service import CaseService
from app.core.types import utcnow
from app.webhooks.models import ACTION_EVENT_TYPES, EventType, WebhookEvent
from tests.cases.conftest import incident, rule
from tests.webhooks.conftest import outbox


def a_case(db, **kw) -> Case:
    fields = {
        "kind": "incident",
        "status": "new",
        "source_system": "monitoring",
        "submitted_by": "client:1",
        "text": "Яма на дороге",
        **kw,
    }
    return db.add(Case(**fields))


def an_event(case_id: int, action: str) -> CaseEvent:
    return CaseEvent(
        case_id=case_id, action=action, actor="user:1", actor_name="Оператор", actor_role="operator"
    )


def test_intake_and_actions_write_their_events_to_the_outbox(client, auth, db, world):
    rule(db, agency_id=world.adm_krasnodar.id)
    operator = auth.headers("operator")
    staff = auth.headers("agency", agency_id=world.adm_krasnodar.id)
    case = client.post("/api/v1/incidents", json=incident(), headers=operator).json()
    assert client.post(f"/api/v1/cases/{case['id']}/accept", headers=staff).status_code == 200

    rows = outbox(db)
    assert [r.event_type for r in rows] == ["case.created", "case.assigned", "case.accepted"]
    history = client.get(f"/api/v1/cases/{case['id']}/events", headers=operator).json()
    mapped = [e for e in history if e["action"] in ACTION_EVENT_TYPES]
    assert [r.case_event_id for r in rows] == [e["id"] for e in mapped]
    assert all(r.case_id == case["id"] and r.dispatched_at is None for r in rows)
    assert [r.occurred_at.isoformat() for r in rows] == [
        e["created_at"].replace("Z", "+00:00") for e in mapped
    ]


def test_a_request_that_fails_after_its_change_leaves_no_event(
    client, auth, db, world, monkeypatch
):
    operator = auth.headers("operator")
    case = client.post("/api/v1/incidents", json=incident(), headers=operator).json()
    before = len(outbox(db))

    def broken(self, case):  # fails after the action's events were flushed
        raise RuntimeError("the response could not be built")

    monkeypatch.setattr(CaseService, "read", broken)
    response = client.post(
        f"/api/v1/cases/{case['id']}/assign",
        json={"agency_id": world.adm_krasnodar.id},
        headers=operator,
    )
    assert response.status_code == 500
    assert len(outbox(db)) == before  # the assignment was rolled back, and so was its event
    monkeypatch.undo()
    assert client.get(f"/api/v1/cases/{case['id']}", headers=operator).json()["status"] == "new"


def test_rolled_back_transaction_takes_its_outbox_rows_with_it(db):
    case = a_case(db)

    class Boom(Exception):
        pass

    seen_inside = []

    async def work(session):
        session.add(an_event(case.id, "close"))
        await session.flush()
        count = await session.execute(select(func.count()).select_from(WebhookEvent))
        seen_inside.append(count.scalar_one())
        raise Boom

    with pytest.raises(Boom):
        db.run(work)
    assert seen_inside == [1]  # written in the same transaction as the event…
    assert outbox(db) == []  # …and gone with it


@pytest.mark.parametrize("action", [*ACTION_EVENT_TYPES, "notify", "edit"])
def test_each_action_maps_to_its_event_type(db, action):
    case = a_case(db)
    db.add(an_event(case.id, action))
    expected = [ACTION_EVENT_TYPES[action]] if action in ACTION_EVENT_TYPES else []
    assert [r.event_type for r in outbox(db)] == expected


def test_every_event_type_has_an_action():
    assert set(ACTION_EVENT_TYPES.values()) == set(EventType)


def test_bulk_core_inserts_are_captured_too(db):
    """Batch intake may insert events with one Core statement: the trigger still sees each."""
    cases = [a_case(db) for _ in range(3)]

    async def work(session):
        await session.execute(
            insert(CaseEvent.__table__),
            [
                {
                    "case_id": c.id,
                    "action": "create",
                    "actor": "client:1",
                    "actor_name": "Мониторинг",
                    "actor_role": "integration",
                    "created_at": utcnow(),
                }
                for c in cases
            ],
        )

    db.run(work)
    rows = outbox(db)
    assert [(r.case_id, r.event_type) for r in rows] == [(c.id, "case.created") for c in cases]
