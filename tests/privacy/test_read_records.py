"""152-ФЗ on the read path: on PostgreSQL a read and its record are one statement (an INSERT in
its WITH clause), so the SQL's notion of "shows personal data" must be has_personal_data()'s,
and a page records the cases it shows — not the extra row that only tells a next page exists."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, literal_column, select, update

from app.cases.models import Case
from app.privacy.models import PersonalDataAccess
from app.privacy.service import has_personal_data
from tests.cases.conftest import appeal, incident


def _recorded(db) -> list[tuple[int, str]]:
    """Each case of each record, in the records' order: (case id, via)."""
    stmt = select(PersonalDataAccess.case_ids, PersonalDataAccess.via).order_by(
        PersonalDataAccess.id
    )
    records = db.run(lambda session: _all(session, stmt))
    return [(case_id, via) for case_ids, via in records for case_id in case_ids]


async def _all(session, stmt):
    return [tuple(r) for r in await session.execute(stmt)]


def _cases(db, ids) -> dict[int, Case]:
    async def work(session):
        rows = await session.execute(select(Case).where(Case.id.in_(ids)))
        return {c.id: c for c in rows.scalars()}

    return db.run(work)


def _set(db, case_id, **values):
    stmt = update(Case).where(Case.id == case_id).values(**values)
    db.run(lambda session: session.execute(stmt))


def test_what_is_recorded_is_what_has_personal_data_says(client, auth, db, world):
    pos = auth.headers("integration", source="pos")
    submitted = {
        "appeal": client.post("/api/v1/appeals", json=appeal(n=1), headers=pos),
        "author": client.post("/api/v1/incidents", json=incident(n=2), headers=pos),
        "empty author": client.post(
            "/api/v1/incidents", json=incident(n=3, author_handle=""), headers=pos
        ),
        "no author": client.post(
            "/api/v1/incidents", json=incident(n=4, author_handle=None), headers=pos
        ),
        "attachments only": client.post(
            "/api/v1/appeals",
            json=appeal(n=5, attachment_urls=["https://photos.example/5.jpg"]),
            headers=pos,
        ),
        "erased": client.post("/api/v1/appeals", json=appeal(n=6), headers=pos),
        "no attachments": client.post(
            "/api/v1/appeals", json=appeal(n=7, attachment_urls=[]), headers=pos
        ),
    }
    ids = {name: r.json()["id"] for name, r in submitted.items()}
    blank = {"applicant_name": None, "applicant_email": None, "applicant_phone": None}
    _set(db, ids["attachments only"], **blank)
    _set(db, ids["erased"], **blank, attachment_urls=None)
    _set(db, ids["no attachments"], **blank)  # an empty list of attachments
    cases = _cases(db, list(ids.values()))
    personal = {i for i in ids.values() if has_personal_data(cases[i])}
    assert personal == {ids[n] for n in ("appeal", "author", "attachments only")}

    operator = auth.headers("operator")
    for case_id in ids.values():
        assert client.get(f"/api/v1/cases/{case_id}", headers=operator).status_code == 200
    assert _recorded(db) == [(i, "read") for i in ids.values() if i in personal]

    before = len(_recorded(db))
    page = client.get("/api/v1/cases?limit=50", headers=operator).json()
    assert len(page["items"]) == len(ids)
    listed = _recorded(db)[before:]
    assert {v for _, v in listed} == {"list"}
    assert sorted(i for i, _ in listed) == sorted(personal)


def test_a_page_records_the_cases_it_shows_not_the_next_ones(client, auth, db, world):
    pos = auth.headers("integration", source="pos")
    ids = [
        client.post("/api/v1/appeals", json=appeal(n=n), headers=pos).json()["id"] for n in range(5)
    ]
    operator = auth.headers("operator")

    def shown_and_recorded(query):
        before = len(_recorded(db))
        page = client.get(f"/api/v1/cases?{query}", headers=operator).json()
        recorded = _recorded(db)[before:]
        assert {via for _, via in recorded} <= {"list"}
        return [c["id"] for c in page["items"]], sorted(i for i, _ in recorded), page

    shown, recorded, first = shown_and_recorded("limit=2")
    assert shown == [ids[4], ids[3]] and recorded == sorted(shown)
    shown, recorded, _ = shown_and_recorded(f"limit=2&cursor={first['next_cursor']}")
    assert shown == [ids[2], ids[1]] and recorded == sorted(shown)
    # no deadlines: nulls last, walked by id
    shown, recorded, page = shown_and_recorded("limit=1&sort=due_at")
    assert shown == [ids[0]] and recorded == shown and page["next_cursor"] is not None


def test_nothing_is_recorded_for_reads_that_show_nothing(client, auth, db, world):
    pos = auth.headers("integration", source="pos")
    case = client.post("/api/v1/appeals", json=appeal(n=1), headers=pos).json()
    outsider = auth.headers("agency", agency_id=world.adm_sochi.id)
    assert client.get(f"/api/v1/cases/{case['id']}", headers=outsider).status_code == 404
    assert client.get("/api/v1/cases", headers=outsider).json()["items"] == []
    operator = auth.headers("operator")
    assert client.get(f"/api/v1/incidents/{case['id']}", headers=operator).status_code == 404
    assert client.get("/api/v1/cases/999999", headers=operator).status_code == 404
    analyst = auth.headers("analyst")
    assert client.get(f"/api/v1/cases/{case['id']}", headers=analyst).status_code == 200
    assert len(client.get("/api/v1/cases", headers=analyst).json()["items"]) == 1
    assert _recorded(db) == []


def _case_without_history(db, n: int) -> int:
    # No route deletes a case, and a filed case's events are immutable (a trigger refuses
    # their cascade): a case added directly, with personal data and no events, can be deleted.
    case = Case(
        kind="appeal",
        status="new",
        source_system="pos",
        submitted_by="client:1",
        text=f"Обращение {n}",
        applicant_name=f"Заявитель {n}",
    )
    return db.add(case).id


def test_the_record_of_a_read_outlives_its_case(client, auth, db, world):
    # Evidence of who was shown what: no foreign key, so deleting a case removes none of it
    # (migration 0016; the key's ON DELETE CASCADE did).
    ids = [_case_without_history(db, n) for n in range(2)]
    operator = auth.headers("operator")
    assert client.get(f"/api/v1/cases/{ids[0]}", headers=operator).status_code == 200
    assert client.get("/api/v1/cases?limit=50", headers=operator).status_code == 200
    recorded = _recorded(db)
    assert sorted(recorded) == sorted([(ids[0], "read"), (ids[0], "list"), (ids[1], "list")])
    stmt = delete(Case).where(Case.id == ids[0])
    db.run(lambda session: session.execute(stmt))
    assert _recorded(db) == recorded


def _row_lockers(db, ids) -> dict[int, str]:
    stmt = select(Case.id, literal_column("case_file.xmax::text")).where(Case.id.in_(ids))
    return dict(db.run(lambda session: _all(session, stmt)))


def test_reading_a_page_takes_no_lock_on_the_cases_it_shows(client, auth, db, world):
    # The record is written by the read's own statement; a foreign key to case_file made it
    # take a KEY SHARE lock on every case shown, which writes the lock into the row (xmax).
    if db.dialect != "postgresql":
        pytest.skip("row locks and xmax: PostgreSQL")
    pos = auth.headers("integration", source="pos")
    ids = [
        client.post("/api/v1/appeals", json=appeal(n=n), headers=pos).json()["id"] for n in range(3)
    ]
    before = _row_lockers(db, ids)
    operator = auth.headers("operator")
    page = client.get("/api/v1/cases?limit=50", headers=operator).json()
    assert {c["id"] for c in page["items"]} == set(ids)
    assert client.get(f"/api/v1/cases/{ids[0]}", headers=operator).status_code == 200
    assert sorted(i for i, _ in _recorded(db)) == sorted([*ids, ids[0]])
    assert _row_lockers(db, ids) == before
