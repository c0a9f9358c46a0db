from __future__ import annotations

import pytest

from app.routing.engine import invalidate_rules
from tests.cases.conftest import incident, rule


@pytest.fixture
def flow(client, auth, world):
    """A new case, an operator, and staff of two agencies."""

    class Flow:
        operator = auth.headers("operator")
        krasnodar = auth.headers("agency", agency_id=world.adm_krasnodar.id)
        sochi = auth.headers("agency", agency_id=world.adm_sochi.id)

        def __init__(self):
            self.case = client.post(
                "/api/v1/incidents", json=incident(), headers=self.operator
            ).json()
            self.id = self.case["id"]

        def act(self, action, headers, body=None, **kw):
            return client.post(
                f"/api/v1/cases/{self.id}/{action}", json=body, headers=headers, **kw
            )

        def assign(self, agency):
            response = self.act("assign", self.operator, {"agency_id": agency.id})
            assert response.status_code == 200, response.text
            return response.json()

        def events(self):
            return client.get(f"/api/v1/cases/{self.id}/events", headers=self.operator).json()

    return Flow()


CLOSE = {
    "answer": "Яма заделана 12 мая",
    "resolution": "solved",
    "responsible_official": "Петров П. П., начальник ДДХ",
}


def test_full_path_assign_accept_interim_close(flow, world):
    case = flow.assign(world.adm_krasnodar)
    assert case["status"] == "assigned" and case["agency_id"] == world.adm_krasnodar.id
    first_due = case["due_at"]
    assert first_due is not None
    case = flow.act("accept", flow.krasnodar).json()
    assert case["status"] == "in_progress"
    response = flow.act(
        "interim-answer",
        flow.krasnodar,
        {"text": "Работы запланированы", "planned_date": "2026-12-15"},
    )
    assert response.status_code == 200, response.text
    case = response.json()
    assert case["status"] == "in_progress" and case["interim_answer"] == "Работы запланированы"
    assert case["first_response_at"] is not None
    assert case["due_at"] > first_due  # 7 working days after the interim answer
    case = flow.act("close", flow.krasnodar, CLOSE).json()
    assert case["status"] == "closed" and case["resolution"] == "solved"
    assert case["responsible_official"].startswith("Петров")
    assert case["closed_at"] is not None
    actions = [e["action"] for e in flow.events()]
    assert actions == ["create", "assign", "accept", "interim-answer", "close"]
    interim = flow.events()[3]
    assert interim["changes"]["due_at"]["old"] is not None


def test_due_dates_are_answered_in_utc_as_the_reads_write_them(flow, client, db, world):
    """The calendar counts terms in the region's zone; an action's answer writes the due date
    in UTC, the same text a later read of the case gives (it wrote +03:00 before)."""

    def read() -> dict:
        return client.get(f"/api/v1/cases/{flow.id}", headers=flow.operator).json()

    assigned = flow.assign(world.adm_krasnodar)
    assert assigned["due_at"].endswith("Z") and assigned["due_at"] == read()["due_at"]
    assert flow.act("accept", flow.krasnodar).status_code == 200
    interim = flow.act(
        "interim-answer",
        flow.krasnodar,
        {"text": "Работы запланированы", "planned_date": "2026-12-15"},
    ).json()
    assert interim["due_at"].endswith("Z") and interim["due_at"] == read()["due_at"]
    assert interim["due_at"] > assigned["due_at"]
    # Routed at intake or assigned by hand, the assignment's event writes it in UTC too.
    rule(db, category_ids=[world.roads.id], agency_id=world.adm_krasnodar.id)
    invalidate_rules()  # written directly, as a script would: the cache reads it again
    routed = incident(n="routed-utc", category_id=world.potholes.id)
    routed = client.post("/api/v1/incidents", json=routed, headers=flow.operator).json()
    assert routed["status"] == "assigned" and routed["due_at"].endswith("Z")
    assignments = [
        event["data"]["due_at"]
        for case_id in (flow.id, routed["id"])
        for event in client.get(f"/api/v1/cases/{case_id}/events", headers=flow.operator).json()
        if event["action"] == "assign"
    ]
    assert len(assignments) == 2 and all(due.endswith("+00:00") for due in assignments)


def test_every_event_records_statuses_agencies_and_actor(flow, world):
    flow.assign(world.adm_krasnodar)
    flow.assign(world.adm_sochi)  # reassign
    event = flow.events()[-1]
    assert event["from_status"] == "assigned" and event["to_status"] == "assigned"
    assert event["from_agency_id"] == world.adm_krasnodar.id
    assert event["to_agency_id"] == world.adm_sochi.id
    assert event["actor_role"] == "operator" and event["actor"].startswith("user:")


def test_return_requires_reason_and_goes_back_to_triage(flow, world):
    flow.assign(world.adm_krasnodar)
    assert flow.act("return", flow.krasnodar, {"reason": "not_our_competence"}).status_code == 422
    response = flow.act(
        "return", flow.krasnodar, {"reason": "wrong_territory", "comment": "Это Сочи"}
    )
    assert response.json()["status"] == "returned"
    assert flow.events()[-1]["reason"] == "wrong_territory"
    assert flow.assign(world.adm_sochi)["status"] == "assigned"


def test_reject_duplicate_names_its_original(flow, client, world):
    original = client.post(
        "/api/v1/incidents", json=incident(n="orig"), headers=flow.operator
    ).json()
    assert flow.act("reject", flow.operator, {"reason": "duplicate"}).status_code == 422
    response = flow.act(
        "reject", flow.operator, {"reason": "duplicate", "duplicate_of": original["id"]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "rejected"
    assert response.json()["duplicate_of_id"] == original["id"]
    bad = flow.act("reject", flow.operator, {"reason": "duplicate", "duplicate_of": 999999})
    assert bad.status_code == 409  # already rejected: the transition is checked first


def test_reopen_counts_and_reassigns(flow, world):
    flow.assign(world.adm_krasnodar)
    flow.act("close", flow.krasnodar, CLOSE)
    response = flow.act("reopen", flow.operator, {"reason": "citizen_dissatisfied"})
    case = response.json()
    assert case["status"] == "assigned" and case["reopen_count"] == 1
    assert case["agency_id"] == world.adm_krasnodar.id and case["closed_at"] is None
    flow.act("close", flow.krasnodar, CLOSE)
    assert flow.act("reopen", flow.operator, {"reason": "poor_answer"}).json()["reopen_count"] == 2


@pytest.mark.parametrize(
    ("action", "who", "body"),
    [
        ("accept", "krasnodar", None),
        ("interim-answer", "krasnodar", {"text": "x", "planned_date": "2026-12-01"}),
        ("close", "krasnodar", CLOSE),
        ("return", "krasnodar", {"reason": "wrong_territory", "comment": "x"}),
        ("reopen", "operator", {"reason": "poor_answer", "agency_id": None}),
    ],
)
def test_transition_not_allowed_from_new_is_409_listing_allowed(flow, world, action, who, body):
    if action in ("accept", "interim-answer", "close", "return"):
        # Make the agency's own case but in the wrong status: assigned then closed.
        flow.assign(world.adm_krasnodar)
        flow.act("close", flow.krasnodar, CLOSE)
    response = flow.act(action, getattr(flow, who), body)
    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["allowed_actions"]
    assert "allows" in problem["detail"]
    assert len(flow.events()) == (3 if action != "reopen" else 1)


def test_interim_answer_only_in_progress(flow, world):
    flow.assign(world.adm_krasnodar)
    response = flow.act(
        "interim-answer", flow.krasnodar, {"text": "x", "planned_date": "2026-12-01"}
    )
    assert response.status_code == 409
    assert response.json()["allowed_actions"] == ["assign", "accept", "close", "return"]


def test_other_agency_cannot_act_or_see(flow, world):
    flow.assign(world.adm_krasnodar)
    assert flow.act("accept", flow.sochi).status_code == 404
    assert flow.act("close", flow.sochi, CLOSE).status_code == 404
    assert len(flow.events()) == 2


def test_previous_agency_sees_history_but_cannot_act(flow, client, world):
    flow.assign(world.adm_krasnodar)
    flow.assign(world.adm_sochi)
    seen = client.get(f"/api/v1/cases/{flow.id}", headers=flow.krasnodar)
    assert seen.status_code == 200 and seen.json()["allowed_actions"] == []
    assert flow.act("accept", flow.krasnodar).status_code == 403
    assert flow.act("accept", flow.sochi).status_code == 200


def test_roles_on_actions(flow, world):
    assert (
        flow.act("assign", flow.krasnodar, {"agency_id": world.adm_krasnodar.id}).status_code == 403
    )
    flow.assign(world.adm_krasnodar)
    assert flow.act("accept", flow.operator).status_code == 403
    assert flow.act("assign", {}, {"agency_id": world.adm_sochi.id}).status_code == 401


def test_assign_to_unknown_or_inactive_agency_is_422(flow, db, world):
    from tests import factories

    inactive = db.add(factories.agency(is_active=False))
    for agency_id in (999999, inactive.id):
        response = flow.act("assign", flow.operator, {"agency_id": agency_id})
        assert response.status_code == 422 and "agency_id" in response.text
    assert len(flow.events()) == 1


def test_if_match_stale_is_412_and_changes_nothing(flow, world):
    version = flow.case["version"]
    ok = flow.act(
        "assign",
        {**flow.operator, "If-Match": f'"{version}"'},
        {"agency_id": world.adm_krasnodar.id},
    )
    assert ok.status_code == 200 and ok.json()["version"] == version + 1
    assert ok.headers["ETag"] == f'"{version + 1}"'
    stale = flow.act(
        "assign", {**flow.operator, "If-Match": f'"{version}"'}, {"agency_id": world.adm_sochi.id}
    )
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    assert len(flow.events()) == 2


def test_operator_edits_are_recorded(flow, client, world):
    response = client.patch(
        f"/api/v1/cases/{flow.id}",
        headers=flow.operator,
        json={"category_id": world.potholes.id, "priority": "high", "comment": "уточнил категорию"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["priority"] == "high"
    event = flow.events()[-1]
    assert event["action"] == "edit"
    assert event["changes"]["priority"] == {"old": "normal", "new": "high"}
    assert event["changes"]["category_id"]["new"] == world.potholes.id
    bad = client.patch(f"/api/v1/cases/{flow.id}", headers=flow.operator, json={"status": "closed"})
    assert bad.status_code == 422
    bad = client.patch(
        f"/api/v1/cases/{flow.id}", headers=flow.operator, json={"territory_id": 999999}
    )
    assert bad.status_code == 422 and "territory_id" in bad.text
    assert (
        client.patch(
            f"/api/v1/cases/{flow.id}", headers=flow.krasnodar, json={"priority": "low"}
        ).status_code
        == 403
    )


def test_events_cannot_be_edited(flow, client, db):
    from sqlalchemy import text

    for method in ("put", "patch", "delete"):
        response = getattr(client, method)(f"/api/v1/cases/{flow.id}/events", headers=flow.operator)
        assert response.status_code == 405

    async def tamper(session):
        await session.execute(text("UPDATE case_event SET action = 'forged'"))

    with pytest.raises(Exception, match="immutable"):
        db.run(tamper)
