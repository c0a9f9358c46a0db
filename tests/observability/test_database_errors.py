"""Errors never show a trace, SQL or a path; the database going away is a 503 with Retry-After
(not a 500), writes of the failed request are not kept, and the service recovers by itself."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.db import SessionDep
from app.reference.models import Agency
from tests import factories
from tests.observability.conftest import assert_problem

SQL = "SELECT applicant_name FROM case_file WHERE applicant_email = 'maria@example.org'"
LEAKS = ("SELECT", "case_file", "applicant", "maria@", "sqlalchemy", "Traceback", ".py", "/work")


def _raiser(exc: Exception):
    async def route() -> dict:
        raise exc

    return route


def _routes(app: FastAPI) -> None:
    cause = Exception("server closed the connection unexpectedly")
    for path, exc in {
        "/programming": ProgrammingError(SQL, {"email": "maria@example.org"}, cause),
        "/integrity": IntegrityError(SQL, {}, Exception("duplicate key value")),
        "/operational": OperationalError(SQL, {}, cause),
        "/disconnected": DBAPIError(SQL, {}, cause, connection_invalidated=True),
        "/refused": ConnectionRefusedError(111, "Connect call failed ('10.0.0.5', 5432)"),
        "/timeout": TimeoutError(),
    }.items():
        app.add_api_route(path, _raiser(exc))

    async def probe(session: SessionDep) -> dict:
        return {"one": (await session.execute(text("SELECT 1"))).scalar_one()}

    async def write_then_lose_connection(session: SessionDep) -> dict:
        session.add(factories.agency(code="half-written"))
        await session.flush()
        await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return {"unreachable": True}

    app.add_api_route("/probe", probe)
    app.add_api_route("/write-then-lose-connection", write_then_lose_connection, methods=["POST"])


@pytest.mark.parametrize("path", ["/programming", "/integrity"])
def test_a_database_error_is_a_generic_500_without_sql(bare_app, path, log_lines):
    from fastapi.testclient import TestClient

    app = bare_app()
    _routes(app)
    with TestClient(app, raise_server_exceptions=False) as http:
        response = http.get(path, headers={"X-Request-ID": "sql-1"})
    body = assert_problem(response, 500)
    assert body["detail"] == "An unexpected error occurred; it has been logged."
    assert body["request_id"] == "sql-1"
    for leak in LEAKS:
        assert leak not in response.text, leak
    # Operators get the cause, with the statement but without its parameters.
    (logged,) = log_lines.of("regiondesk.errors")
    assert logged["request_id"] == "sql-1" and "case_file" in logged["exc"]


@pytest.mark.parametrize("path", ["/operational", "/disconnected", "/refused", "/timeout"])
def test_the_database_being_unreachable_is_a_503_with_retry_after(bare_app, path, log_lines):
    from fastapi.testclient import TestClient

    app = bare_app()
    _routes(app)
    with TestClient(app, raise_server_exceptions=False) as http:
        response = http.get(path)
    body = assert_problem(response, 503)
    assert body["type"].endswith("/database-unavailable")
    assert response.headers["retry-after"] == "5"
    assert response.headers["x-request-id"] == body["request_id"]
    for leak in (*LEAKS, "10.0.0.5", "5432"):
        assert leak not in response.text, leak
    (logged,) = log_lines.of("regiondesk.errors")
    assert logged["level"] == "WARNING"
    assert "SELECT" not in logged["message"]


def test_sql_parameters_are_hidden_from_errors_and_so_from_logs(make_client):
    http = make_client()

    async def duplicate(session):
        session.add(factories.agency(code="twice", name="Иванов Пётр"))
        session.add(factories.agency(code="twice", name="Иванов Пётр"))
        await session.flush()

    with pytest.raises(IntegrityError) as caught:
        http.portal.call(lambda: _in_session(http, duplicate))
    assert "Иванов" not in str(caught.value)
    assert "hide_parameters" in str(caught.value)


async def _in_session(http, work):
    async with http.app.state.sessionmaker() as session:
        await work(session)


# --- a real PostgreSQL going away ----------------------------------------------------------


@pytest.fixture
def pg_client(make_client, db):
    if db.dialect != "postgresql":
        pytest.skip("SQLite has no server to lose")

    def make(**overrides):
        return make_client(routes=_routes, **overrides)

    return make


async def _terminate_other_connections(url: str) -> int:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            killed = await conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            return killed.scalar_one()
    finally:
        await engine.dispose()


def _agencies(http, code: str) -> int:
    async def count():
        async with http.app.state.sessionmaker() as session:
            stmt = select(func.count()).select_from(Agency).where(Agency.code == code)
            return (await session.execute(stmt)).scalar_one()

    return http.portal.call(count)


def test_losing_the_connection_mid_request_is_503_and_writes_nothing(pg_client):
    http = pg_client()
    response = http.post("/write-then-lose-connection")
    assert_problem(response, 503)
    assert response.headers["retry-after"] == "5"
    assert _agencies(http, "half-written") == 0
    assert http.get("/probe").json() == {"one": 1}  # recovered on the next request


def test_after_a_database_restart_one_request_fails_then_the_pool_recovers(pg_client, settings):
    http = pg_client()
    assert http.get("/probe").status_code == 200  # a pooled connection now exists
    assert asyncio.run(_terminate_other_connections(settings.database_url)) >= 1
    assert_problem(http.get("/probe"), 503)
    assert http.get("/probe").json() == {"one": 1}
    assert http.get("/health/ready").status_code == 200


def test_with_pre_ping_a_database_restart_is_not_even_noticed(pg_client, settings):
    http = pg_client(database_pool_pre_ping=True)
    assert http.get("/probe").status_code == 200
    assert asyncio.run(_terminate_other_connections(settings.database_url)) >= 1
    assert http.get("/probe").json() == {"one": 1}
