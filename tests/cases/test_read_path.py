"""A reading request on PostgreSQL (autocommit): its statement goes through a connection taken
for it alone (app.core.db.read_rows), no ORM transaction begun and committed around it."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from tests.cases.conftest import appeal, rule


@contextmanager
def session_events():
    seen: list[str] = []
    listeners = [
        (name, lambda *_, name=name: seen.append(name))
        for name in ("after_begin", "before_commit", "after_rollback")
    ]
    for name, listener in listeners:
        event.listen(Session, name, listener)
    try:
        yield seen
    finally:
        for name, listener in listeners:
            event.remove(Session, name, listener)


@contextmanager
def checkouts(engine):
    seen: list[int] = []

    def checkout(*_):
        seen.append(1)

    event.listen(engine.sync_engine.pool, "checkout", checkout)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine.pool, "checkout", checkout)


def test_one_case_is_read_without_an_orm_transaction(client, auth, db, world):
    if db.dialect != "postgresql":
        pytest.skip("SQLite reads in the request's transaction (its record written at commit)")
    rule(db, name="Сочи", territory_ids=[world.sochi.id], agency_id=world.adm_sochi.id)
    pos = auth.headers("integration", source="pos")
    case = client.post("/api/v1/appeals", json=appeal(territory_id=world.sochi.id), headers=pos)
    path = f"/api/v1/cases/{case.json()['id']}"
    engine = client.app.state.engine
    for headers in (auth.headers("agency", agency_id=world.adm_sochi.id), pos):
        assert client.get(path, headers=headers).status_code == 200  # the account remembered
        with session_events() as seen, checkouts(engine) as taken:
            answer = client.get(path, headers=headers)
            missing = client.get("/api/v1/cases/999999", headers=headers)
        assert answer.status_code == 200 and answer.json()["id"] == case.json()["id"]
        assert missing.status_code == 404
        assert seen == []  # no session transaction begun, committed or rolled back
        assert len(taken) == 2  # one connection per request
        assert engine.pool.checkedout() == 0  # and each returned


def test_a_page_of_the_queue_is_read_without_an_orm_transaction(client, auth, db, world):
    if db.dialect != "postgresql":
        pytest.skip("SQLite reads in the request's transaction (its record written at commit)")
    pos = auth.headers("integration", source="pos")
    created = [
        client.post("/api/v1/appeals", json=appeal(territory_id=world.sochi.id), headers=pos)
        for _ in range(3)
    ]
    engine = client.app.state.engine
    operator = auth.headers("operator")
    assert client.get("/api/v1/cases?limit=2", headers=operator).status_code == 200
    with session_events() as seen, checkouts(engine) as taken:
        first = client.get("/api/v1/cases?limit=2", headers=operator)
        after = client.get(
            f"/api/v1/cases?limit=2&cursor={first.json()['next_cursor']}", headers=operator
        )
    ids = [c["id"] for c in first.json()["items"] + after.json()["items"]]
    assert ids == sorted((c.json()["id"] for c in created), reverse=True)
    assert seen == []  # no session transaction begun, committed or rolled back
    assert len(taken) == 2 and engine.pool.checkedout() == 0
    with session_events() as seen:  # the total is a second statement, read the same way
        counted = client.get("/api/v1/cases?limit=2&with_total=true", headers=operator)
    assert counted.json()["total"] == 3 and seen == []
