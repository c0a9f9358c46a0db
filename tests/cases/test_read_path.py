"""A reading request on PostgreSQL (autocommit): its statement goes through a connection taken
for it alone (app.core.db.read_rows), no ORM transaction begun and committed around it."""

from __future__ import annotations

import contextlib
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

import app as app_package
from app.auth import account_cache
from app.cases.service import _KNOWN_REFERENCES
from tests.cases.conftest import appeal, incident, rule


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


@contextmanager
def connections_made():
    """Each SQLAlchemy Connection made (the pool's connections are not: they are the driver's)."""
    from sqlalchemy.engine.base import Connection

    made: list[int] = []
    init = Connection.__init__

    def counted(self, *args, **kwargs):
        made.append(1)
        init(self, *args, **kwargs)

    Connection.__init__ = counted
    try:
        yield made
    finally:
        Connection.__init__ = init


@contextmanager
def sqlalchemy_greenlets_made():
    """Each greenlet SQLAlchemy's greenlet_spawn makes (app.core.greenlets keeps its own)."""
    from sqlalchemy.util import _concurrency_py3k

    made: list[str] = []
    kind = _concurrency_py3k._AsyncIoGreenlet
    init = kind.__init__

    def counted(self, fn, driver):
        made.append(getattr(fn, "__qualname__", repr(fn)))
        init(self, fn, driver)

    kind.__init__ = counted
    try:
        yield made
    finally:
        kind.__init__ = init


def test_reads_and_a_create_go_to_the_driver_without_a_sqlalchemy_connection(
    client, auth, db, world
):
    """A statement that is a request's whole unit of work takes the pool's connection and gives
    it back, with no SQLAlchemy Connection built, switched to autocommit and back around it
    (app.core.db._fetch_pooled): a tenth of a read's instructions. The pool's checkout and
    return run on greenlets kept from earlier requests (app.core.greenlets): SQLAlchemy's
    greenlet_spawn would make two new ones a request."""
    if db.dialect != "postgresql":
        pytest.skip("SQLite reads and writes in the request's transaction")
    rule(db, category_ids=[world.roads.id], agency_id=world.adm_krasnodar.id)
    intake = auth.headers("integration", source="incident-management")
    operator = auth.headers("operator")
    warm = client.post(
        "/api/v1/incidents", json=incident(n="warm", category_id=world.potholes.id), headers=intake
    )
    assert warm.status_code == 201, warm.text  # the references and the account remembered
    path = f"/api/v1/cases/{warm.json()['id']}"
    assert client.get(path, headers=operator).status_code == 200
    assert client.get("/api/v1/cases?limit=2", headers=operator).status_code == 200
    engine = client.app.state.engine
    body = incident(n="driver", category_id=world.potholes.id)
    with (
        connections_made() as made,
        checkouts(engine) as taken,
        sqlalchemy_greenlets_made() as greenlets,
    ):
        one = client.get(path, headers=operator)
        page = client.get("/api/v1/cases?limit=2&with_total=true", headers=operator)
        created = client.post("/api/v1/incidents", json=body, headers=intake)
    assert one.status_code == 200 and one.json()["id"] == warm.json()["id"]
    assert page.status_code == 200 and page.json()["total"] == 1
    assert created.status_code == 201, created.text
    assert created.json()["agency_id"] == world.adm_krasnodar.id
    assert made == [] and greenlets == []
    assert len(taken) == 4 and engine.pool.checkedout() == 0  # the page's count its own


def test_losing_the_database_during_a_read_is_503_then_the_pool_recovers(
    client, auth, db, world, settings
):
    if db.dialect != "postgresql":
        pytest.skip("one SQLite file: no connection to lose")
    from tests.observability.test_database_errors import _terminate_other_connections

    pos = auth.headers("integration", source="pos")
    operator = auth.headers("operator")
    case = client.post("/api/v1/appeals", json=appeal(n="read"), headers=pos).json()
    path = f"/api/v1/cases/{case['id']}"
    assert client.get(path, headers=operator).status_code == 200
    assert client.portal.call(_terminate_other_connections, settings.database_url) >= 1
    lost = client.get(path, headers=operator)
    assert lost.status_code == 503 and lost.headers["retry-after"] == "5"
    assert lost.headers["content-type"] == "application/problem+json"
    assert client.app.state.engine.pool.checkedout() == 0
    again = client.get(path, headers=operator)
    assert again.status_code == 200 and again.json()["id"] == case["id"]


@contextmanager
def sessions_made(monkeypatch):
    """Every ORM Session made meanwhile (an AsyncSession makes one)."""
    made: list[int] = []
    original = Session.__init__

    def counted(self, *args, **kwargs):
        made.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(Session, "__init__", counted)
    try:
        yield made
    finally:
        monkeypatch.setattr(Session, "__init__", original)


def test_a_read_that_needs_no_session_makes_none(client, auth, db, world, monkeypatch):
    """The request's session is made when first used (app.core.db.RequestSession): a get, a
    page of the queue and a create, their caller's account and the references remembered, go
    straight to the driver and make none; a read whose account must be loaded makes one, and
    it is ended as before."""
    if db.dialect != "postgresql":
        pytest.skip("SQLite reads in the request's transaction")
    intake = auth.headers("integration", source="incident-management")
    operator = auth.headers("operator")
    case = client.post(
        "/api/v1/incidents", json=incident(n="lazy", category_id=world.potholes.id), headers=intake
    ).json()
    path = f"/api/v1/cases/{case['id']}"
    assert client.get(path, headers=operator).status_code == 200  # the account remembered
    engine = client.app.state.engine
    body = incident(n="lazy-2", category_id=world.potholes.id)
    with sessions_made(monkeypatch) as made, checkouts(engine) as taken:
        one = client.get(path, headers=operator)
        page = client.get("/api/v1/cases?limit=2", headers=operator)
        created = client.post("/api/v1/incidents", json=body, headers=intake)
    assert one.status_code == 200 and page.status_code == 200
    assert page.json()["items"][0]["id"] == case["id"]
    assert created.status_code == 201, created.text
    assert made == [] and len(taken) == 3
    account_cache.forget_all()
    with sessions_made(monkeypatch) as made:
        assert client.get(path, headers=operator).status_code == 200
    assert made == [1]  # the account's row read through the session, which was then ended
    assert engine.pool.checkedout() == 0


def test_a_create_naming_no_reference_is_one_statement_after_the_first(
    client, auth, db, monkeypatch
):
    """A case that names no category, territory or agency has nothing to look up: the first
    such create remembers that, and the next goes as one statement on its own, making no
    session, as a create naming remembered references does."""
    if db.dialect != "postgresql":
        pytest.skip("SQLite writes in the request's transaction")
    _KNOWN_REFERENCES.pop(client.app.state.engine.sync_engine, None)  # as after a start
    intake = auth.headers("integration", source="incident-management")
    first = client.post("/api/v1/incidents", json=incident(n="bare-1"), headers=intake)
    assert first.status_code == 201, first.text
    with sessions_made(monkeypatch) as made:
        second = client.post("/api/v1/incidents", json=incident(n="bare-2"), headers=intake)
    assert second.status_code == 201, second.text
    assert second.json()["category_id"] is None and second.json()["territory_id"] is None
    assert made == []


APP_DIR = str(Path(app_package.__file__).parent)


@contextmanager
def raised_in_loop(client):
    """The exceptions raised (and caught) in the app's code and in its exit stack (contextlib)
    in the event-loop thread, but the ones that are how coroutines and generators end. (The
    test client's own streams and the test loop raise and catch their own as they go.)"""
    seen: list[str] = []
    endings = (StopIteration, StopAsyncIteration, GeneratorExit)
    ours = (APP_DIR, contextlib.__file__)

    def local(frame, event, arg):
        where = frame.f_code.co_filename
        if event == "exception" and where.startswith(ours) and not issubclass(arg[0], endings):
            seen.append(f"{arg[0].__name__} in {where}:{frame.f_lineno}")
        return local

    def trace(frame, event, arg):
        return local

    client.portal.call(sys.settrace, trace)
    try:
        yield seen
    finally:
        client.portal.call(sys.settrace, None)


def test_a_read_raises_no_exception_on_its_way(client, auth, world):
    # An exception raised and caught on every request costs it several thousand instructions
    # (formatting its message, the traceback): the exit stack looked for __aexit__ on the type
    # of the bound method it was given, once per request, before it was given the session.
    pos = auth.headers("integration", source="pos")
    case = client.post("/api/v1/appeals", json=appeal(territory_id=world.sochi.id), headers=pos)
    operator = auth.headers("operator")
    path = f"/api/v1/cases/{case.json()['id']}"
    assert client.get(path, headers=operator).status_code == 200
    with raised_in_loop(client) as seen:
        assert client.get(path, headers=operator).status_code == 200
        assert client.get("/api/v1/cases?limit=5", headers=operator).status_code == 200
    assert not seen, "\n".join(sorted(set(seen)))
