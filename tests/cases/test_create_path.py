"""A create that is one statement on PostgreSQL (its references remembered) runs alone in
autocommit, through a connection taken for it alone (app.core.db.write_one): no ORM transaction
begun and committed around it. With an Idempotency-Key, or an answer that records a person's
read of personal data, the request keeps its transaction: those rows commit with the case."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import event, func, select

from app.cases.models import CaseAgency, CaseEvent
from app.privacy.models import PersonalDataAccess
from tests.cases.conftest import appeal, incident, rule
from tests.cases.test_read_path import checkouts, session_events
from tests.observability.test_database_errors import _terminate_other_connections


@pytest.fixture
def postgresql(db):
    if db.dialect != "postgresql":
        pytest.skip("SQLite files a case in the request's transaction (several statements)")


@contextmanager
def in_order(engine):
    """The session's transaction events and the intake's statement, in the order they came."""
    with session_events() as seen:

        def sent(_conn, _cursor, statement, *_):
            if "INSERT INTO case_file" in statement:
                seen.append("intake")

        event.listen(engine.sync_engine, "before_cursor_execute", sent)
        try:
            yield seen
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", sent)


def _count(db, model, **where) -> int:
    stmt = select(func.count()).select_from(model).filter_by(**where)
    return db.run(lambda session: session.scalar(stmt))


def test_a_create_is_one_autocommit_statement(client, auth, db, world, postgresql):
    rule(db, category_ids=[world.roads.id], agency_id=world.adm_krasnodar.id)
    rule(db, name="Пропавшие", position=1, missing_person=True, stop=False,
         notify_agency_ids=[world.lizaalert.id])  # fmt: skip
    headers = auth.headers("integration", source="incident-management")
    warm = client.post(
        "/api/v1/incidents",
        json=incident(n="warm", category_id=world.potholes.id, missing_person=True),
        headers=headers,
    )
    assert warm.status_code == 201, warm.text  # the references and the account remembered
    engine = client.app.state.engine
    body = incident(n="one", category_id=world.potholes.id, missing_person=True)
    cursors = []

    def sent(_conn, cursor, statement, *_):
        if "INSERT INTO case_file" in statement:
            cursors.append(cursor)

    event.listen(engine.sync_engine, "before_cursor_execute", sent)
    try:
        with session_events() as seen, checkouts(engine) as taken:
            created = client.post("/api/v1/incidents", json=body, headers=headers)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", sent)
    assert created.status_code == 201, created.text
    assert seen == []  # no session transaction begun, committed or rolled back
    assert cursors == [None]  # sent straight to asyncpg (db.fetch_all), not through a cursor
    assert len(taken) == 1 and engine.pool.checkedout() == 0  # one connection, returned
    case = created.json()
    assert case["agency_id"] == world.adm_krasnodar.id and case["priority"] == "urgent"
    assert created.headers["Location"] == f"/api/v1/cases/{case['id']}"
    # committed, all of it: the case, its events and access rows
    assert _count(db, CaseEvent, case_id=case["id"]) == 3
    assert _count(db, CaseAgency, case_id=case["id"]) == 2

    # The same source id again: the case filed is answered (read in a transaction, as before).
    with session_events() as seen, checkouts(engine) as taken:
        repeat = client.post("/api/v1/incidents", json=body, headers=headers)
    assert repeat.status_code == 200 and repeat.json() == case
    assert len(taken) == 2 and engine.pool.checkedout() == 0  # one after the other
    assert _count(db, CaseEvent, case_id=case["id"]) == 3


def test_an_idempotency_key_keeps_the_transaction(client, auth, db, world, postgresql):
    headers = auth.headers("integration", source="pos")
    client.post("/api/v1/appeals", json=appeal(n="warm"), headers=headers)
    keyed = {**headers, "Idempotency-Key": "create-path-1"}
    with in_order(client.app.state.engine) as seen:
        first = client.post("/api/v1/appeals", json=appeal(n="keyed"), headers=keyed)
    assert first.status_code == 201, first.text
    # begun before the intake, committed after it (the key's record in a savepoint first)
    assert seen[0] == "after_begin" and seen[-2:] == ["intake", "before_commit"]
    again = client.post("/api/v1/appeals", json=appeal(n="keyed"), headers=keyed)
    assert again.status_code == 201 and again.json() == first.json()  # replayed


def test_a_persons_recorded_read_commits_with_the_case(client, auth, db, world, postgresql):
    operator = auth.headers("operator")
    client.post("/api/v1/appeals", json=appeal(n="warm"), headers=operator)
    with in_order(client.app.state.engine) as seen:
        created = client.post("/api/v1/appeals", json=appeal(n="person"), headers=operator)
    assert created.status_code == 201, created.text
    assert seen == ["after_begin", "intake", "before_commit"]  # the read's record with it
    records = db.run(lambda session: session.scalars(select(PersonalDataAccess.case_ids)))
    assert [ids for ids in records if created.json()["id"] in ids] == [[created.json()["id"]]]


def test_losing_the_database_during_the_create_is_503(
    client, auth, db, world, settings, postgresql
):
    headers = auth.headers("integration", source="pos")
    assert client.post("/api/v1/appeals", json=appeal(n="warm"), headers=headers).status_code == 201
    assert client.portal.call(_terminate_other_connections, settings.database_url) >= 1
    lost = client.post("/api/v1/appeals", json=appeal(n="lost"), headers=headers)
    assert lost.status_code == 503 and lost.headers["retry-after"] == "5"
    assert lost.headers["content-type"] == "application/problem+json"
    assert client.app.state.engine.pool.checkedout() == 0
    again = client.post("/api/v1/appeals", json=appeal(n="lost"), headers=headers)
    assert again.status_code == 201, again.text  # nothing was written; the pool recovered
