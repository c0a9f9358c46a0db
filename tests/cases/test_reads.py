"""The read path (app/cases/reads.py): one statement per read, the partners' receipts on a single
case, and answers that are exactly what the response models serialise to."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from app.cases.models import Case
from app.cases.schemas import CasePage, CaseRead
from app.core.types import utcnow
from tests import factories
from tests.cases.conftest import appeal, incident, rule
from tests.sql import statements


def _get(client, path, headers):
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    return response


def test_a_case_is_read_in_one_statement(client, auth, db, world):
    rule(db, name="Сочи", territory_ids=[world.sochi.id], agency_id=world.adm_sochi.id)
    pos = auth.headers("integration", source="pos")
    case = client.post("/api/v1/appeals", json=appeal(territory_id=world.sochi.id), headers=pos)
    path = f"/api/v1/cases/{case.json()['id']}"
    for headers in (
        auth.headers("agency", agency_id=world.adm_sochi.id),  # a person: the read is recorded
        auth.headers("operator"),
        auth.headers("analyst"),  # personal data hidden, nothing recorded
        pos,
    ):
        _get(client, path, headers)  # the account is read once, then remembered for seconds
        with statements(client) as sent:
            _get(client, path, headers)
            _get(client, path.replace("/cases/", "/appeals/"), headers)
        if db.dialect != "postgresql":  # no INSERT in a WITH clause: the record at commit
            sent = [s for s in sent if not s.startswith("INSERT INTO personal_data_access")]
        assert len(sent) == 2, sent
    with statements(client) as sent:
        assert client.get("/api/v1/cases/999999", headers=pos).status_code == 404
    assert len(sent) == 1


def test_a_single_case_shows_its_partners_receipts(client, auth, db, world):
    searchers = db.add(factories.agency(code="searchers", kind="partner"))
    rule(
        db,
        name="Пропавшие",
        position=1,
        missing_person=True,
        stop=False,
        notify_agency_ids=[searchers.id, world.lizaalert.id],
    )
    rule(db, name="Сочи", position=2, territory_ids=[world.sochi.id], agency_id=world.adm_sochi.id)
    operator = auth.headers("operator")
    body = incident(n=1, missing_person=True, territory_id=world.sochi.id, text="Пропал человек")
    missing = client.post("/api/v1/incidents", json=body, headers=operator).json()
    ordinary = client.post("/api/v1/incidents", json=incident(n=2), headers=operator).json()
    delivered = utcnow() - timedelta(minutes=3)

    async def receipt(session):
        from app.cases.models import CaseAgency

        await session.execute(
            update(CaseAgency)
            .where(CaseAgency.case_id == missing["id"], CaseAgency.agency_id == searchers.id)
            .values(delivered_at=delivered)
        )

    db.run(receipt)

    _get(client, f"/api/v1/cases/{missing['id']}", operator)
    with statements(client) as sent:
        shown = _get(client, f"/api/v1/cases/{missing['id']}", operator).json()
    if db.dialect != "postgresql":  # no INSERT in a WITH clause: the record at commit
        sent = [s for s in sent if not s.startswith("INSERT INTO personal_data_access")]
    assert len(sent) == 1, sent
    # the partners only (not the municipal agency it was assigned to), by agency id
    assert shown["agency_id"] == world.adm_sochi.id
    expected = sorted(
        [
            {"agency_id": world.lizaalert.id, "agency_name": world.lizaalert.name, "at": None},
            {"agency_id": searchers.id, "agency_name": searchers.name, "at": delivered},
        ],
        key=lambda p: p["agency_id"],
    )
    assert [(p["agency_id"], p["agency_name"]) for p in shown["partner_deliveries"]] == [
        (p["agency_id"], p["agency_name"]) for p in expected
    ]
    for got, want in zip(shown["partner_deliveries"], expected, strict=True):
        if want["at"] is None:
            assert got["delivered_at"] is None
        else:
            assert got["delivered_at"] == want["at"].isoformat().replace("+00:00", "Z")
    by_kind = _get(client, f"/api/v1/incidents/{missing['id']}", operator).json()
    assert by_kind["partner_deliveries"] == shown["partner_deliveries"]
    assert (
        _get(client, f"/api/v1/cases/{ordinary['id']}", operator).json()["partner_deliveries"] == []
    )
    # the partner sees the case it was given; lists never carry the receipts
    partner = auth.headers("agency", agency_id=searchers.id)
    assert _get(client, f"/api/v1/cases/{missing['id']}", partner).json()["id"] == missing["id"]
    listed = _get(client, "/api/v1/cases", operator).json()["items"]
    assert [c["partner_deliveries"] for c in listed] == [None, None]


def test_read_answers_are_what_the_response_models_serialise(client, auth, db, world):
    """The reads build their JSON themselves; it must be byte for byte what FastAPI makes of
    the response model (the workflow actions still answer through it)."""
    rule(db, name="Сочи", territory_ids=[world.sochi.id], agency_id=world.adm_sochi.id)
    pos = auth.headers("integration", source="pos")
    body = appeal(
        territory_id=world.sochi.id,
        latitude=43.585472,
        longitude=39.723098,
        attachment_urls=["https://photos.example/1.jpg"],
        address="Сочи, Курортный пр., 1 — «вход со двора»",
    )
    case = client.post("/api/v1/appeals", json=body, headers=pos).json()
    staff = auth.headers("agency", agency_id=world.adm_sochi.id)
    accepted = client.post(f"/api/v1/cases/{case['id']}/accept", headers=staff)
    assert accepted.status_code == 200, accepted.text
    read = _get(client, f"/api/v1/cases/{case['id']}", staff)
    assert read.headers["etag"] == accepted.headers["etag"] == '"2"'
    assert read.headers["content-type"] == accepted.headers["content-type"]
    assert read.content == accepted.content.replace(
        b'"partner_deliveries":null', b'"partner_deliveries":[]'
    )
    assert CaseRead.model_validate_json(read.content).model_dump_json().encode() == read.content
    for headers in (staff, auth.headers("analyst"), auth.headers("operator")):
        page = _get(client, "/api/v1/cases?with_total=true", headers)
        assert CasePage.model_validate_json(page.content).model_dump_json().encode() == (
            page.content
        )
        one = _get(client, f"/api/v1/cases/{case['id']}", headers)
        assert CaseRead.model_validate_json(one.content).model_dump_json().encode() == (one.content)


def test_a_filtered_page_is_one_statement(client, auth, db, world):
    operator = auth.headers("operator")
    for n, category in enumerate((world.potholes, world.roads, world.health)):
        client.post(
            "/api/v1/incidents", json=incident(n=n, category_id=category.id), headers=operator
        )
    _get(client, "/api/v1/cases", operator)
    with statements(client) as sent:
        page = _get(client, f"/api/v1/cases?category_id={world.roads.id}&limit=1", operator)
        following = page.json()["next_cursor"]
        rest = _get(
            client, f"/api/v1/cases?category_id={world.roads.id}&cursor={following}", operator
        )
        _get(client, "/api/v1/cases?q=ямы&status=new", operator)
    if db.dialect != "postgresql":  # no INSERT in a WITH clause: the record at commit
        sent = [s for s in sent if not s.startswith("INSERT INTO personal_data_access")]
    assert len(sent) == 3, sent
    assert len(page.json()["items"]) == 1 and len(rest.json()["items"]) == 1


def test_overdue_within_chosen_statuses(client, auth, db, world):
    operator = auth.headers("operator")
    ids = [
        client.post("/api/v1/incidents", json=incident(n=n), headers=operator).json()["id"]
        for n in range(3)
    ]
    late, on_time, closed_late = ids
    client.post(
        f"/api/v1/cases/{late}/assign", json={"agency_id": world.adm_sochi.id}, headers=operator
    )
    past, future = utcnow() - timedelta(hours=1), utcnow() + timedelta(days=1)

    async def deadlines(session):
        for case_id, due, status in (
            (late, past, None),
            (on_time, future, None),
            (closed_late, past, "closed"),
        ):
            values = {"due_at": due} | ({"status": status} if status else {})
            await session.execute(update(Case).where(Case.id == case_id).values(**values))

    db.run(deadlines)

    def listed(query):
        return {c["id"] for c in _get(client, f"/api/v1/cases?{query}", operator).json()["items"]}

    open_statuses = "status=new&status=assigned&status=in_progress&status=returned"
    assert listed(f"{open_statuses}&overdue=true&sort=due_at") == {late}
    assert listed("status=assigned&overdue=true") == {late}
    assert listed("status=new&overdue=true") == set()
    assert listed("overdue=true") == {late}
    assert listed("status=closed&overdue=true") == set()
    assert listed(f"{open_statuses}&overdue=false") == {on_time}
    assert listed("overdue=false") == {on_time, closed_late}


def test_date_filters_need_a_zone(client, auth, world):
    """A date filter without a zone was a 500 (the UTC column refuses naive values)."""
    operator = auth.headers("operator")
    case = client.post("/api/v1/incidents", json=incident(n=1), headers=operator).json()
    for query in ("created_from=2024-01-01T00:00:00", "due_to=2024-01-01", "created_to=now"):
        response = client.get(f"/api/v1/cases?{query}", headers=operator)
        assert response.status_code == 422, (query, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert query.split("=")[0] in response.text
    for query in ("created_from=2024-01-01T00:00:00Z", "created_to=2099-01-01T03:00:00%2B03:00"):
        listed = _get(client, f"/api/v1/cases?{query}", operator).json()["items"]
        assert [c["id"] for c in listed] == [case["id"]]


def test_a_case_shows_the_same_values_as_an_object_and_as_a_record_of_its_row():
    # A create's answer reads the asyncpg record of its INSERT ... RETURNING (db.Record), an
    # action's the ORM object: both give COLUMNS' values in order.
    from app.cases import reads
    from app.core.db import Record

    case = Case(
        id=7, number="INC-2026-000007", kind="incident", status="new", text="Яма",
        applicant_name="Иванов", created_at=utcnow(),
    )  # fmt: skip
    expected = tuple(getattr(case, column.name) for column in reads.COLUMNS)
    assert reads.shown_values(case) == expected
    row = {column.name: getattr(case, column.name) for column in reversed(reads.COLUMNS)}
    assert reads.shown_values(Record(row)) == expected
