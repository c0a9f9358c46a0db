"""152-ФЗ: reads of personal data by people are recorded; retention erases it, keeps the case."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update

from app.__main__ import main
from app.cases.models import Case, CaseEvent
from app.core.types import utcnow
from app.privacy.models import PersonalDataAccess
from app.privacy.service import ReadFilters, erase_expired, reads_selected
from tests.cases.conftest import appeal, incident, rule


def _records(db) -> list[tuple]:
    """The records in order: (case ids, actor, role, via)."""

    async def work(session):
        stmt = select(
            PersonalDataAccess.case_ids,
            PersonalDataAccess.actor,
            PersonalDataAccess.actor_role,
            PersonalDataAccess.via,
        ).order_by(PersonalDataAccess.id)
        return [tuple(r) for r in await session.execute(stmt)]

    return db.run(work)


def _reads(db) -> list[tuple]:
    """Each case of each record: (case id, actor, role, via)."""
    return [(case_id, *rest) for case_ids, *rest in _records(db) for case_id in case_ids]


@pytest.fixture
def pos(auth) -> dict:
    """The federal platform's machine client, which submits the appeals."""
    return auth.headers("integration", source="pos")


def _submit_appeal(client, headers, n=1, **kw):
    response = client.post("/api/v1/appeals", json=appeal(n=n, **kw), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_a_persons_read_of_personal_data_is_recorded(client, auth, pos, db, world):
    case = _submit_appeal(client, pos)  # by a machine: not a person, nothing recorded
    assert _reads(db) == []
    headers = auth.headers("operator")
    shown = client.get(f"/api/v1/cases/{case['id']}", headers=headers).json()
    assert shown["applicant_name"] is not None
    [(case_id, actor, role, via)] = _reads(db)
    assert (case_id, role, via) == (case["id"], "operator", "read")
    assert actor.startswith("user:")


def test_lists_record_each_case_whose_personal_data_they_show(client, auth, pos, db, world):
    first = _submit_appeal(client, pos, n=1)
    second = _submit_appeal(client, pos, n=2)
    no_author = client.post(
        "/api/v1/incidents",
        json={k: v for k, v in incident(n=3).items() if k != "author_handle"},
        headers=auth.headers("operator"),
    ).json()
    before = len(_records(db))  # the operator's own intake answer showed nothing personal
    page = client.get("/api/v1/cases", headers=auth.headers("operator")).json()
    assert len(page["items"]) == 3
    listed = [r for r in _records(db)[before:] if r[3] == "list"]
    # one record for the page, naming the cases on it that show personal data
    assert [r[0] for r in listed] == [sorted([first["id"], second["id"]])]
    assert no_author["id"] not in listed[0][0]


def test_no_record_where_no_personal_data_is_shown(client, auth, pos, db, world):
    case = _submit_appeal(client, pos)
    analyst = client.get(f"/api/v1/cases/{case['id']}", headers=auth.headers("analyst")).json()
    assert analyst["personal_data_hidden"] is True
    assert client.get(f"/api/v1/cases/{case['id']}", headers=pos).status_code == 200
    assert _reads(db) == []


def test_agency_staff_reads_and_answers_are_recorded(client, auth, pos, db, world):
    rule(db, name="Сочи", territory_ids=[world.sochi.id], agency_id=world.adm_sochi.id)
    case = _submit_appeal(client, pos, territory_id=world.sochi.id)
    staff = auth.headers("agency", agency_id=world.adm_sochi.id)
    assert client.post(f"/api/v1/cases/{case['id']}/accept", headers=staff).status_code == 200
    assert [(r[0], r[2], r[3]) for r in _reads(db)] == [(case["id"], "agency", "read")]


def test_a_refused_request_records_nothing(client, auth, pos, db, world):
    case = _submit_appeal(client, pos)
    headers = auth.headers("operator")
    close = {"answer": "x", "resolution": "solved", "responsible_official": "y"}
    response = client.post(f"/api/v1/cases/{case['id']}/close", json=close, headers=headers)
    assert response.status_code == 403
    assert _reads(db) == []


def test_admins_read_the_record_others_cannot(client, auth, pos, db, world):
    case = _submit_appeal(client, pos)
    other = _submit_appeal(client, pos, n=2)
    operator = auth.headers("operator")
    client.get(f"/api/v1/cases/{case['id']}", headers=operator)
    client.get(f"/api/v1/cases/{other['id']}", headers=operator)
    admin = auth.headers("admin")
    page = client.get(f"/api/v1/audit/personal-data?case_id={case['id']}", headers=admin)
    assert page.status_code == 200
    body = page.json()
    assert body["total"] is None and body["next_offset"] is None  # counted only when asked
    assert len(body["items"]) == 1 and body["items"][0]["case_ids"] == [case["id"]]
    assert body["items"][0]["actor_role"] == "operator" and body["items"][0]["via"] == "read"
    assert "applicant_name" not in body["items"][0]
    for role in ("operator", "analyst", "agency", "integration"):
        denied = client.get("/api/v1/audit/personal-data", headers=auth.headers(role))
        assert denied.status_code == 403, role


def test_a_cases_records_include_the_pages_that_showed_it(client, auth, pos, db, world):
    first = _submit_appeal(client, pos, n=1)
    second = _submit_appeal(client, pos, n=2)
    third = _submit_appeal(client, pos, n=3)
    operator, admin = auth.headers("operator"), auth.headers("admin")
    shown = client.get("/api/v1/cases?limit=2", headers=operator).json()["items"]
    assert [c["id"] for c in shown] == [third["id"], second["id"]]
    client.get(f"/api/v1/cases/{second['id']}", headers=operator)

    def records(case_id):
        response = client.get(f"/api/v1/audit/personal-data?case_id={case_id}", headers=admin)
        assert response.status_code == 200, response.text
        return [(r["case_ids"], r["via"]) for r in response.json()["items"]]

    page = sorted([second["id"], third["id"]])
    assert records(second["id"]) == [([second["id"]], "read"), (page, "list")]
    assert records(third["id"]) == [(page, "list")]
    assert records(first["id"]) == []  # never shown to a person


def test_the_record_pages_newest_first_and_is_counted_only_when_asked(client, auth, pos, db):
    cases = [_submit_appeal(client, pos, n=n) for n in range(1, 6)]
    operator, admin = auth.headers("operator"), auth.headers("admin")
    for case in cases:
        assert client.get(f"/api/v1/cases/{case['id']}", headers=operator).status_code == 200
    newest_first = [[c["id"]] for c in reversed(cases)]

    def page(**params):
        response = client.get("/api/v1/audit/personal-data", params=params, headers=admin)
        assert response.status_code == 200, response.text
        return response.json()

    first = page(limit=2)
    assert [r["case_ids"] for r in first["items"]] == newest_first[:2]
    assert first["total"] is None and first["next_offset"] == 2
    second = page(limit=2, offset=first["next_offset"], with_total="true")
    assert [r["case_ids"] for r in second["items"]] == newest_first[2:4]
    assert second["total"] == 5 and second["next_offset"] == 4
    last = page(limit=2, offset=4)
    assert [r["case_ids"] for r in last["items"]] == newest_first[4:]
    assert last["next_offset"] is None

    times = [r["at"] for r in first["items"] + second["items"] + last["items"]]
    assert times == sorted(times, reverse=True)
    period = page(at_from=times[3], at_to=times[1], with_total="true")  # [4th newest, 2nd)
    assert all(r["case_ids"] in newest_first[1:4] for r in period["items"])
    assert period["total"] == len(period["items"]) >= 1
    actor = first["items"][0]["actor"]
    assert page(actor=actor, with_total="true")["total"] == 5
    assert page(actor="user:999999", with_total="true") == {
        "items": [],
        "total": 0,
        "limit": 50,
        "offset": 0,
        "next_offset": None,
    }
    refused = client.get(
        "/api/v1/audit/personal-data", params={"with_total": "maybe"}, headers=admin
    )
    assert refused.status_code == 422
    assert [e["loc"] for e in refused.json()["errors"]] == [["query", "with_total"]]


def _plan(db, filters: ReadFilters) -> str:
    stmt = reads_selected(filters, "postgresql").limit(51).offset(0)
    sql = str(
        stmt.compile(
            dialect=db.client.app.state.engine.dialect, compile_kwargs={"literal_binds": True}
        )
    )

    async def plan(session):
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        return [row[0] for row in await session.execute(text(f"EXPLAIN {sql}"))]

    return "\n".join(db.run(plan))


def test_the_whole_record_and_a_period_of_it_are_read_along_an_index(db):
    """The record grows by a row per read; its list, unfiltered or over a period, walks back
    along (at, id) and sorts nothing (before 0019: the whole table read and sorted)."""
    if db.dialect != "postgresql":
        pytest.skip("the plan is PostgreSQL's")
    now = utcnow()
    for filters in (ReadFilters(), ReadFilters(at_from=now - timedelta(days=7), at_to=now)):
        lines = _plan(db, filters)
        assert "ix_personal_data_access_at_id" in lines, lines
        assert "Sort" not in lines, lines


def test_a_cases_records_are_found_by_the_index_of_their_cases(db):
    """A record names its cases in an array; a case's records come from its GIN index (0023),
    not from reading every record."""
    if db.dialect != "postgresql":
        pytest.skip("the plan is PostgreSQL's")
    lines = _plan(db, ReadFilters(case_id=42))
    assert "ix_personal_data_access_case_ids" in lines, lines
    assert "case_ids @> " in lines, lines


def _close(client, auth, pos, db, world, n):
    rule(db, name=f"Сочи {n}", territory_ids=[world.sochi.id], agency_id=world.adm_sochi.id)
    case = _submit_appeal(client, pos, n=n, territory_id=world.sochi.id)
    staff = auth.headers("agency", agency_id=world.adm_sochi.id)
    close = {"answer": "Сделано", "resolution": "solved", "responsible_official": "Петров"}
    assert client.post(f"/api/v1/cases/{case['id']}/close", json=close, headers=staff).is_success
    return case


def _age(db, case_id: int, days: int):
    when = utcnow() - timedelta(days=days)
    stmt = update(Case).where(Case.id == case_id).values(closed_at=when, updated_at=when)
    db.run(lambda session: session.execute(stmt.execution_options(synchronize_session=False)))


def test_retention_erases_old_personal_data_and_keeps_the_case(client, auth, pos, db, world):
    old = _close(client, auth, pos, db, world, n=1)
    recent = _close(client, auth, pos, db, world, n=2)
    still_open = _submit_appeal(client, pos, n=3)
    _age(db, old["id"], 400)
    _age(db, recent["id"], 10)
    _age(db, still_open["id"], 400)  # open cases keep their data however old

    dry = db.run(lambda session: erase_expired(session, 365, dry_run=True))
    assert dry.cases == 1
    result = db.run(lambda session: erase_expired(session, 365, dry_run=False))
    assert result.cases == 1

    admin = auth.headers("admin")
    erased = client.get(f"/api/v1/cases/{old['id']}", headers=admin).json()
    assert erased["applicant_name"] is None and erased["applicant_email"] is None
    assert erased["applicant_phone"] is None and erased["attachment_urls"] is None
    assert erased["personal_data_erased_at"] is not None
    assert erased["status"] == "closed" and erased["text"] == old["text"]
    assert erased["version"] > old["version"]
    events = client.get(f"/api/v1/cases/{old['id']}/events", headers=admin).json()
    assert events[-1]["action"] == "erase_personal_data" and events[-1]["actor"].startswith(
        "system:"
    )
    for kept in (recent, still_open):
        body = client.get(f"/api/v1/cases/{kept['id']}", headers=admin).json()
        assert body["applicant_name"] == "Иванова Мария Петровна"
    again = db.run(lambda session: erase_expired(session, 365, dry_run=False))
    assert again.cases == 0

    async def counts(session):
        cases = (await session.execute(select(func.count()).select_from(Case))).scalar_one()
        events = await session.execute(
            select(func.count()).where(CaseEvent.action == "erase_personal_data")
        )
        return cases, events.scalar_one()

    assert db.run(counts) == (3, 1)


def test_retention_command(client, auth, pos, db, world, settings, monkeypatch, capsys):
    old = _close(client, auth, pos, db, world, n=1)
    _age(db, old["id"], 40)
    monkeypatch.setenv("REGIONDESK_DATABASE_URL", settings.database_url)
    from app.core.config import get_settings

    get_settings.cache_clear()
    try:
        assert main(["erase-personal-data", "--older-than-days", "30", "--dry-run"]) == 0
        assert "would erase" in capsys.readouterr().out
        assert main(["erase-personal-data", "--older-than-days", "30"]) == 0
        assert "erased from 1 cases" in capsys.readouterr().out
        assert main(["erase-personal-data", "--older-than-days", "0"]) == 2
    finally:
        get_settings.cache_clear()
    body = client.get(f"/api/v1/cases/{old['id']}", headers=auth.headers("admin")).json()
    assert body["applicant_name"] is None


def test_a_persons_export_records_each_case_with_personal_data(client, auth, pos, db, world):
    cases = [_submit_appeal(client, pos, n=n) for n in (1, 2)]
    no_author = {k: v for k, v in incident(n=3).items() if k != "author_handle"}
    client.post("/api/v1/incidents", json=no_author, headers=pos)
    response = client.get("/api/v1/exports/cases?format=csv", headers=auth.headers("operator"))
    assert response.status_code == 200 and "applicant_name" in response.text
    exported = sorted(r[0] for r in _reads(db) if r[3] == "export")
    assert exported == sorted(c["id"] for c in cases)
    # an analyst's export has no personal columns, so nothing to record
    analyst = client.get("/api/v1/exports/cases?format=csv", headers=auth.headers("analyst"))
    assert analyst.status_code == 200 and "applicant_name" not in analyst.text
    assert len([r for r in _reads(db) if r[3] == "export"]) == 2
