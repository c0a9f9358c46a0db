"""A Hypothesis state machine (issue 7, reliability): random intake and workflow actions by
random roles through the HTTP API. Invariants: only statuses of the workflow table are ever
reached; a refused action changes nothing; the event history replays to the current status and
agency; the statistics' counts match the cases."""

from __future__ import annotations

from datetime import date

from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from app.cases.models import CaseStatus
from app.cases.workflow import TRANSITIONS, Action
from tests import factories
from tests.cases.conftest import appeal, incident
from tests.conftest import _truncate, bearer

STATUSES = {s.value for t in TRANSITIONS.values() for s in (*t.sources, t.target)}
OPEN = {"new", "assigned", "in_progress", "returned"}
ROLES = ("operator", "own_agency", "other_agency", "analyst")


def _body(action: Action, agency_id: int) -> dict | None:
    return {
        Action.assign: {"agency_id": agency_id},
        Action.accept: None,
        Action.interim_answer: {"text": "Работы начаты", "planned_date": str(date(2030, 1, 10))},
        Action.close: {
            "answer": "Яма заделана",
            "resolution": "solved",
            "responsible_official": "Петров П. П.",
        },
        Action.return_: {"reason": "wrong_territory", "comment": "Не наша территория"},
        Action.reject: {"reason": "spam"},
        Action.reopen: {"reason": "poor_answer", "agency_id": agency_id},
    }[action]


def _replay(events: list[dict]) -> tuple[str | None, int | None]:
    status, agency = None, None
    for event in events:
        if event["to_status"] is not None:
            assert status is None or event["from_status"] == status, event
            status = event["to_status"]
        if event["from_agency_id"] is not None or event["to_agency_id"] is not None:
            assert event["from_agency_id"] == agency, event
            agency = event["to_agency_id"]
    return status, agency


def make_machine(client, db, test_settings):
    class Workflow(RuleBasedStateMachine):
        @initialize()
        def world(self):
            client.portal.call(_truncate, client.app.state.engine)
            roads = db.add(factories.category(code="roads"))
            self.category_id = roads.id
            self.territories = [
                db.add(factories.territory(code=code, kind="city_district")).id
                for code in ("krasnodar", "sochi")
            ]
            self.agencies = [
                db.add(factories.agency(code=f"adm-{n}", territory_id=t)).id
                for n, t in enumerate(self.territories)
            ]
            self.headers = {}
            for role in ("operator", "analyst"):
                account = db.add(factories.user(role=role))
                self.headers[role] = bearer(test_settings, f"user:{account.id}", role)
            for agency_id in self.agencies:
                account = db.add(factories.user(role="agency", agency_id=agency_id))
                self.headers[agency_id] = bearer(test_settings, f"user:{account.id}", "agency")
            self.cases: list[int] = []
            self.n = 0

        def read(self, case_id: int) -> dict:
            response = client.get(f"/api/v1/cases/{case_id}", headers=self.headers["operator"])
            assert response.status_code == 200, response.text
            return response.json()

        def caller(self, role: str, case: dict) -> dict[str, str]:
            if role in ("operator", "analyst"):
                return self.headers[role]
            own = case["agency_id"] if case["agency_id"] in self.agencies else self.agencies[0]
            if role == "own_agency":
                return self.headers[own]
            return self.headers[next(a for a in self.agencies if a != own)]

        def check_history(self, case: dict) -> None:
            events = client.get(
                f"/api/v1/cases/{case['id']}/events", headers=self.headers["operator"]
            )
            assert events.status_code == 200, events.text
            assert _replay(events.json()) == (case["status"], case["agency_id"])

        @rule(kind=st.sampled_from(["incident", "appeal"]), where=st.integers(0, 1))
        def intake(self, kind, where):
            self.n += 1
            data = (incident if kind == "incident" else appeal)(n=self.n)
            data |= {"category_id": self.category_id, "territory_id": self.territories[where]}
            response = client.post(f"/api/v1/{kind}s", json=data, headers=self.headers["operator"])
            assert response.status_code == 201, response.text
            case = response.json()
            assert case["status"] in STATUSES
            self.cases.append(case["id"])
            self.check_history(case)

        @precondition(lambda self: self.cases)
        @rule(
            data=st.data(),
            action=st.sampled_from(list(Action)),
            role=st.sampled_from(ROLES),
            to=st.integers(0, 1),
        )
        def act(self, data, action, role, to):
            case_id = data.draw(st.sampled_from(self.cases))
            before = self.read(case_id)
            body = _body(action, self.agencies[to])
            response = client.post(
                f"/api/v1/cases/{case_id}/{action.value}",
                json=body,
                headers=self.caller(role, before),
            )
            self.settle(response, before, TRANSITIONS[action].target.value)

        @precondition(lambda self: self.cases)
        @rule(
            data=st.data(),
            role=st.sampled_from(ROLES),
            priority=st.sampled_from(["low", "normal", "high", "critical"]),
            where=st.integers(0, 1),
        )
        def edit(self, data, role, priority, where):
            case_id = data.draw(st.sampled_from(self.cases))
            before = self.read(case_id)
            response = client.patch(
                f"/api/v1/cases/{case_id}",
                json={"priority": priority, "territory_id": self.territories[where]},
                headers=self.caller(role, before),
            )
            self.settle(response, before, before["status"])

        def settle(self, response, before: dict, target: str) -> None:
            assert response.status_code < 500, response.text
            after = self.read(before["id"])
            if response.status_code == 200:
                assert after["status"] == target
                assert after["version"] >= before["version"]
            else:
                assert response.status_code in (403, 404, 409, 422), response.text
                assert after["version"] == before["version"], response.text
                assert after["status"] == before["status"]
                assert after["agency_id"] == before["agency_id"]
            assert after["status"] in STATUSES
            self.check_history(after)

        @invariant()
        def statistics_match_the_cases(self):
            if not hasattr(self, "cases"):
                return
            listed = client.get(
                "/api/v1/cases", params={"limit": 200}, headers=self.headers["operator"]
            )
            assert listed.status_code == 200, listed.text
            statuses = [c["status"] for c in listed.json()["items"]]
            assert len(statuses) == len(self.cases)
            assert set(statuses) <= STATUSES
            summary = client.get("/api/v1/stats/summary", headers=self.headers["operator"])
            assert summary.status_code == 200, summary.text
            items = summary.json()["items"]
            row = items[0] if items else {}
            expected = {
                "received": len(statuses),
                "open": sum(s in OPEN for s in statuses),
                "closed": statuses.count(CaseStatus.closed),
                "rejected": statuses.count(CaseStatus.rejected),
                "returned": statuses.count(CaseStatus.returned),
            }
            assert {k: row.get(k, 0) for k in expected} == expected, row

        def teardown(self):
            for case_id in getattr(self, "cases", []):
                self.check_history(self.read(case_id))

    return Workflow


def test_random_workflows_keep_the_invariants(client, db, settings):
    Machine = make_machine(client, db, settings)
    run_state_machine_as_test(
        Machine,
        settings=settings_for_machine(),
    )


def settings_for_machine():
    return hypothesis_settings(
        max_examples=15,
        stateful_step_count=20,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
