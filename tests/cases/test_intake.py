from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.cases.conftest import appeal, incident, rule
from tests.sql import statements, uncached


def test_incident_is_routed_by_sector_and_russian_word_form(client, auth, db, world):
    rule(
        db,
        name="Ямы в Краснодаре",
        category_ids=[world.roads.id],
        territory_ids=[world.krasnodar.id],
        keywords=["яма"],
        agency_id=world.adm_krasnodar.id,
    )
    headers = auth.headers("integration", source="incident-management")
    body = incident(
        category_id=world.potholes.id,
        territory_id=world.krasnodar.id,
        text="Опять ямой разбили колесо на Северной",
    )
    response = client.post("/api/v1/incidents", json=body, headers=headers)
    assert response.status_code == 201, response.text
    case = response.json()
    assert case["status"] == "assigned"
    assert case["agency_id"] == world.adm_krasnodar.id
    assert case["number"].startswith(f"INC-{datetime.now(UTC).year}-")
    assert case["source_system"] == "incident-management"
    assert "Ямы в Краснодаре" in case["routing_reason"]
    assert case["due_at"] is not None  # the default 9-working-hour policy applied
    assert response.headers["ETag"] == f'"{case["version"]}"'
    assert response.headers["Location"] == f"/api/v1/cases/{case['id']}"
    events = client.get(f"/api/v1/cases/{case['id']}/events", headers=headers).json()
    assert [e["action"] for e in events] == ["create", "assign"]
    assert events[1]["to_agency_id"] == world.adm_krasnodar.id
    assert events[1]["actor"] == "system:routing"


def test_unmatched_case_stays_new_for_triage(client, auth, world):
    headers = auth.headers("operator")
    response = client.post("/api/v1/incidents", json=incident(), headers=headers)
    assert response.status_code == 201
    assert response.json()["status"] == "new"
    assert response.json()["agency_id"] is None
    assert response.json()["routing_reason"] == "No rule matched"


def test_same_source_id_returns_the_existing_case(client, auth, world):
    headers = auth.headers("integration", source="monitor")
    first = client.post("/api/v1/incidents", json=incident(n=1), headers=headers)
    again = client.post("/api/v1/incidents", json=incident(n=1), headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    events = client.get(f"/api/v1/cases/{first.json()['id']}/events", headers=headers).json()
    assert len(events) == 1


def test_appeal_intake_keeps_personal_data_for_those_who_need_it(client, auth, world):
    headers = auth.headers("integration", source="pos")
    response = client.post("/api/v1/appeals", json=appeal(), headers=headers)
    assert response.status_code == 201, response.text
    case = response.json()
    assert case["kind"] == "appeal" and case["number"].startswith("APL-")
    assert case["applicant_phone"] == "+79181234567"
    analyst = client.get(f"/api/v1/cases/{case['id']}", headers=auth.headers("analyst")).json()
    assert analyst["applicant_name"] is None and analyst["applicant_email"] is None
    assert analyst["applicant_phone"] is None and analyst["personal_data_hidden"] is True
    operator = client.get(f"/api/v1/cases/{case['id']}", headers=auth.headers("operator")).json()
    assert operator["applicant_name"] == "Иванова Мария Петровна"


def test_missing_person_goes_to_partner_and_is_urgent(client, auth, db, world):
    rule(
        db,
        name="Пропавшие",
        position=1,
        missing_person=True,
        stop=False,
        notify_agency_ids=[world.lizaalert.id],
        priority="urgent",
    )
    headers = auth.headers("operator")
    body = incident(missing_person=True, text="Пропал ребёнок, 10 лет, в красной куртке")
    case = client.post("/api/v1/incidents", json=body, headers=headers).json()
    assert case["priority"] == "urgent"
    partner = auth.headers("agency", agency_id=world.lizaalert.id)
    assert client.get(f"/api/v1/cases/{case['id']}", headers=partner).status_code == 200


def _problem(response, status, field=None):
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    if field:
        assert field in response.text
    return body


def test_intake_validation_names_the_field(client, auth, world):
    headers = auth.headers("operator")
    cases = [
        (incident(category_id=999999), "category_id"),
        (incident(territory_id=999999), "territory_id"),
        (incident(post_url="not a url"), "post_url"),
        (incident(latitude=91, longitude=10), "latitude"),
        (incident(latitude=45), "longitude"),
        (incident(text=""), "text"),
        (incident(text="x" * 10_001), "text"),
        (incident(network="myspace"), "network"),
        (
            incident(published_at=(datetime.now(UTC) + timedelta(days=1)).isoformat()),
            "published_at",
        ),
        (incident(published_at="2026-01-01T10:00:00"), "published_at"),
        (incident(status="closed"), "status"),
        (incident(agency_id=world.adm_sochi.id), "agency_id"),
        (appeal(applicant_phone="12"), "applicant_phone"),
    ]
    for body, field in cases:
        _problem(
            client.post(
                "/api/v1/incidents" if "network" in body else "/api/v1/appeals",
                json=body,
                headers=headers,
            ),
            422,
            field,
        )
    assert client.get("/api/v1/cases?with_total=true", headers=headers).json()["total"] == 0


def test_inactive_category_refused(client, auth, db, world):
    from tests import factories

    old = db.add(factories.category(is_active=False))
    response = client.post(
        "/api/v1/incidents", json=incident(category_id=old.id), headers=auth.headers("operator")
    )
    _problem(response, 422, "category_id")


def test_only_submitters_may_submit(client, auth, world):
    for role in ("agency", "analyst", "admin"):
        response = client.post("/api/v1/incidents", json=incident(), headers=auth.headers(role))
        _problem(response, 403)
    _problem(client.post("/api/v1/incidents", json=incident()), 401)


def test_a_create_is_one_query_and_one_insert_on_postgresql(client, auth, db, world):
    """References (with the agencies routing may pick) in one query; the case, its number,
    events and access rows in one statement on PostgreSQL (four on SQLite). No savepoint, no
    UPDATE for the number, no lookup of the source id first. On PostgreSQL a create whose
    references an earlier one read is that one statement alone: it checks them itself."""

    rule(db, category_ids=[world.roads.id], agency_id=world.adm_krasnodar.id)
    rule(db, name="Пропавшие", position=1, missing_person=True, stop=False,
         notify_agency_ids=[world.lizaalert.id])  # fmt: skip
    headers = auth.headers("integration", source="incident-management")
    client.post("/api/v1/incidents", json=incident(n="warm"), headers=headers)
    with statements(client) as sent:
        body = incident(category_id=world.potholes.id, missing_person=True)
        response = client.post("/api/v1/incidents", json=body, headers=headers)
    with statements(client) as sent_again:
        again = incident(n="again", category_id=world.potholes.id, missing_person=True)
        repeat = client.post("/api/v1/incidents", json=again, headers=headers)
    assert response.status_code == 201, response.text
    case = response.json()
    assert case["agency_id"] == world.adm_krasnodar.id and case["priority"] == "urgent"
    assert case["number"] == f"INC-{case['created_at'][:4]}-{case['id']:06d}"
    assert repeat.status_code == 201, repeat.text
    same = {k for k in case if k not in ("id", "number", "external_id", "created_at")}
    same -= {"updated_at", "assigned_at", "due_at", "published_at"}
    assert {k: repeat.json()[k] for k in same} == {k: case[k] for k in same}
    work = uncached(sent)
    if db.dialect == "postgresql":
        assert [s[:25] for s in work] == ["SELECT $1::VARCHAR AS ano", "WITH c AS (INSERT INTO ca"]
        assert [s[:15] for s in uncached(sent_again)] == ["WITH ok AS (SEL"]
    else:
        assert [s.split(" (")[0] for s in work[1:]] == [
            "INSERT INTO case_file",
            "INSERT INTO case_event",
            "INSERT INTO case_agency",
        ], work
    events = client.get(f"/api/v1/cases/{case['id']}/events", headers=headers).json()
    assert [e["action"] for e in events] == ["create", "notify", "assign"]
    assert events[1]["data"] == {"agency_ids": [world.lizaalert.id]}
    assert events[2]["data"]["due_at"] is not None and events[2]["reason"] == "routing"
    assert {e["created_at"] for e in events} == {case["created_at"]}
    partner = auth.headers("agency", agency_id=world.lizaalert.id)
    assert client.get(f"/api/v1/cases/{case['id']}", headers=partner).status_code == 200


def test_a_repeat_with_a_bad_reference_still_answers_the_case_filed(client, auth, world):
    headers = auth.headers("integration", source="monitor")
    first = client.post("/api/v1/incidents", json=incident(n=7), headers=headers)
    again = client.post(
        "/api/v1/incidents", json=incident(n=7, territory_id=999_999), headers=headers
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    fresh = client.post(
        "/api/v1/incidents", json=incident(n=8, territory_id=999_999), headers=headers
    )
    assert fresh.status_code == 422 and "territory_id" in fresh.text


def test_numbers_keep_six_digits_at_least(client, auth, db, world):
    """{id:06d}: padded below a million, whole above it (PostgreSQL's lpad alone would cut)."""
    from sqlalchemy import text

    from app.cases.models import Case

    headers = auth.headers("integration", source="monitor")
    small = client.post("/api/v1/incidents", json=incident(n=1), headers=headers).json()
    assert small["number"].endswith(f"-{small['id']:06d}")
    if db.dialect == "postgresql":
        db.run(lambda s: s.execute(text("SELECT setval('case_file_id_seq', 12345677)")))
    else:  # SQLite's next rowid is one past the largest: a copy of the case with a big id
        names = [c.name for c in Case.__table__.columns]
        big = {"id": "12345677", "number": "'X'", "external_id": "'placeholder'"}
        copy = (
            f"INSERT INTO case_file ({', '.join(names)}) "
            f"SELECT {', '.join(big.get(n, n) for n in names)} FROM case_file WHERE id = :id"
        )
        db.run(lambda s: s.execute(text(copy), {"id": small["id"]}))
    big = client.post("/api/v1/incidents", json=incident(n=2), headers=headers).json()
    assert big["id"] == 12345678 and big["number"].endswith("-12345678")
    batch = client.post(
        "/api/v1/incidents/batch", json={"items": [incident(n=3)]}, headers=headers
    ).json()
    assert batch["items"][0]["number"].endswith("-12345679")


def _create(client, headers, **kw):
    return client.post("/api/v1/incidents", json=incident(**kw), headers=headers)


def test_remembered_references_are_checked_when_they_change(client, auth, db, world):
    """A create skips the query of references an earlier one read, but an edit made since, in
    any process and however (here plain SQL, as another worker's would be), counts at once:
    the same answers as a create that read them."""
    from sqlalchemy import text

    from tests import factories

    rule(db, category_ids=[world.roads.id], agency_id=world.adm_krasnodar.id)
    other_sector = db.add(factories.category(code="water", name_ru="Вода"))
    rule(db, name="Вода", position=-1, category_ids=[other_sector.id],
         agency_id=world.adm_sochi.id)  # fmt: skip
    headers = auth.headers("integration", source="incident-management")
    refs = {"category_id": world.potholes.id, "territory_id": world.krasnodar.id}

    def sql(statement: str, **params) -> None:
        db.run(lambda session: session.execute(text(statement), params))

    first = _create(client, headers, n=1, **refs)
    assert first.json()["agency_id"] == world.adm_krasnodar.id

    for n, (table, ref_id) in enumerate(
        (("category", world.potholes.id), ("territory", world.krasnodar.id)), start=1
    ):
        sql(f"UPDATE {table} SET is_active = false WHERE id = :id", id=ref_id)
        refused = _create(client, headers, n=2 * n, **refs)
        _problem(refused, 422, f"{table}_id")
        assert refused.json()["detail"] == f"{table}_id: {table} {ref_id} is inactive"
        sql(f"UPDATE {table} SET is_active = true WHERE id = :id", id=ref_id)
        assert _create(client, headers, n=2 * n + 1, **refs).status_code == 201

    # The category moved to another sector: routed by the new one.
    sql(
        "UPDATE category SET parent_id = :p WHERE id = :id", p=other_sector.id, id=world.potholes.id
    )
    moved = _create(client, headers, n=6, **refs)
    assert moved.status_code == 201 and moved.json()["agency_id"] == world.adm_sochi.id
    sql("UPDATE category SET parent_id = :p WHERE id = :id", p=world.roads.id, id=world.potholes.id)
    assert _create(client, headers, n=7, **refs).json()["agency_id"] == world.adm_krasnodar.id

    # The agency routing picks was switched off: left for triage, as a fresh read would.
    sql("UPDATE agency SET is_active = false WHERE id = :id", id=world.adm_krasnodar.id)
    triage = _create(client, headers, n=8, **refs).json()
    assert triage["status"] == "new" and triage["agency_id"] is None
    assert f"agency {world.adm_krasnodar.id} is inactive" in triage["routing_reason"]
    sql("UPDATE agency SET is_active = true WHERE id = :id", id=world.adm_krasnodar.id)
    assert _create(client, headers, n=9, **refs).json()["agency_id"] == world.adm_krasnodar.id

    # A repeat of a case filed before is still that case, its source id taken.
    repeat = _create(client, headers, n=1, **refs)
    assert repeat.status_code == 200 and repeat.json()["id"] == first.json()["id"]
    numbers = [c["number"] for c in client.get("/api/v1/cases", headers=headers).json()["items"]]
    assert len(numbers) == len(set(numbers)) == 7


def test_create_answers_are_what_the_response_model_serialises(client, auth, db, world):
    """A create writes its answer's JSON itself (reads.case_json): byte for byte what FastAPI
    made of the CaseRead response model, with the same status and headers, for a new case, a
    repeat, and an idempotent replay; personal data shown or hidden."""
    from app.cases.schemas import CaseRead

    rule(db, name="Сочи", territory_ids=[world.sochi.id], agency_id=world.adm_sochi.id)
    bodies = [
        (
            "/api/v1/appeals",
            appeal(
                n="model",
                territory_id=world.sochi.id,
                latitude=43.585472,
                longitude=39.723098,
                attachment_urls=["https://photos.example/1.jpg", "https://пример.рф"],
                address="Сочи, Курортный пр., 1 — «вход со двора»",
            ),
        ),
        ("/api/v1/incidents", incident(n="model", reach=12, important=True)),
    ]
    for role, source in (("integration", "pos"), ("operator", None)):
        headers = auth.headers(role, **({"source": source} if source else {}))
        for path, body in bodies:
            body = {**body, **({"number": f"{body['number']}-{role}"} if "number" in body else {})}
            if "post_id" in body:
                body["post_id"] = f"{body['post_id']}-{role}"
            keyed = {**headers, "Idempotency-Key": f"key-{role}-{path[-3:]}"}
            answers = [
                client.post(path, json=body, headers=keyed),  # new
                client.post(path, json=body, headers=keyed),  # replayed
                client.post(path, json=body, headers=headers),  # the same source id again
            ]
            assert [a.status_code for a in answers] == [201, 201, 200]
            case = answers[0].json()
            for answer in answers:
                assert answer.headers["content-type"] == "application/json"
                assert answer.headers["etag"] == f'"{case["version"]}"'
                assert answer.headers["location"] == f"/api/v1/cases/{case['id']}"
                model = CaseRead.model_validate_json(answer.content)
                assert model.model_dump_json().encode() == answer.content
            assert answers[1].content == answers[0].content
            assert answers[2].json()["id"] == case["id"]
