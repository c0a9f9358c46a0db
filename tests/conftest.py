"""Test harness: every test runs on SQLite and on PostgreSQL, against databases built by the
real migrations, each test starting from empty tables."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import app.models  # noqa: F401  (every table registered)
from app.accounts.models import User
from app.core import config as config_module
from app.core.config import Settings
from app.core.tokens import issue_access_token
from app.main import create_app
from tests import factories

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
TEST_SECRET = "test-secret-" + "x" * 40


def _pg_required() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("REGIONDESK_REQUIRE_POSTGRES") == "1"


def _admin_pg_url() -> str:
    return Settings(
        database_url=os.environ.get("REGIONDESK_TEST_DATABASE_URL", DEFAULT_PG), _env_file=None
    ).database_url


async def _pg_exec(url: str, sql: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


def run_migrations(database_url: str, revision: str = "head", *, downgrade: bool = False) -> None:
    """Runs Alembic against database_url, as `python -m app migrate` would."""
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["configure_logging"] = False
    previous = os.environ.get("REGIONDESK_DATABASE_URL")
    os.environ["REGIONDESK_DATABASE_URL"] = database_url
    config_module.get_settings.cache_clear()
    try:
        (command.downgrade if downgrade else command.upgrade)(cfg, revision)
    finally:
        if previous is None:
            os.environ.pop("REGIONDESK_DATABASE_URL", None)
        else:
            os.environ["REGIONDESK_DATABASE_URL"] = previous
        config_module.get_settings.cache_clear()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The CLI's `migrate`, `serve` and `worker` configure logging (and lean_records); put the
    test run's back."""
    names = ["", "sqlalchemy", "alembic"]
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level) for n in names}
    flags = ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing")
    saved_flags = {f: getattr(logging, f) for f in flags}
    yield
    for name, (handlers, level) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
    for flag, value in saved_flags.items():
        setattr(logging, flag, value)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request, tmp_path_factory) -> Iterator[str]:
    """A migrated database of each kind, made once per session."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "test.db"
        url = f"sqlite+aiosqlite:///{path}"
        run_migrations(url)
        yield url
        return
    with empty_postgresql_database() as url:
        run_migrations(url)
        yield url


@contextmanager
def empty_postgresql_database() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped afterwards. Unreachable PostgreSQL
    fails the test when it is required (REGIONDESK_REQUIRE_POSTGRES), else skips it."""
    admin_url = _admin_pg_url()
    name = f"regiondesk_test_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_pg_exec(admin_url, f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        if _pg_required():
            pytest.fail(f"PostgreSQL is required here but unreachable at {admin_url}: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {admin_url}: {exc}")
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_pg_exec(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        _env_file=None,
        env="test",
        database_url=database_url,
        secret_key=TEST_SECRET,
        database_pool_size=5,
    )


# Rows the migrations themselves load (default deadline policies): kept across tests.
SEEDED_TABLES = ("deadline_policy",)
_seeded_rows: dict[str, dict[str, list]] = {}


async def _snapshot_seeds(engine) -> dict[str, list]:
    url = str(engine.url)
    if url not in _seeded_rows:
        async with engine.connect() as conn:
            _seeded_rows[url] = {
                name: [
                    dict(row._mapping)
                    for row in await conn.execute(SQLModel.metadata.tables[name].select())
                ]
                for name in SEEDED_TABLES
            }
    return _seeded_rows[url]


_schema_tables: dict[str, list[str] | None] = {}


async def _emptied_as_replica(conn) -> bool:
    """Empties, on PostgreSQL, every table of the schema that holds rows (the models' and
    those only migrations make, such as case_search; not alembic_version) with DELETE, as a
    replica applying changes would (session_replication_role): neither the foreign keys'
    order nor the triggers apply (case_event's against DELETE, case_search's copies of
    case_file: every table is emptied anyway). Every sequence that was used goes back to its
    start, as TRUNCATE ... RESTART IDENTITY did. False, having done nothing, where the test
    run's role may not set that (not a superuser).

    TRUNCATE of every table made new files for each table and index: 70-150 ms a test, the
    largest part of a PostgreSQL test's time; this takes 10-20 ms (tests' --durations)."""
    url = str(conn.engine.url)
    if url not in _schema_tables:
        superuser = (await conn.execute(text("SHOW is_superuser"))).scalar() == "on"
        names = await conn.execute(
            text(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                "AND tablename <> 'alembic_version' ORDER BY tablename"
            )
        )
        _schema_tables[url] = names.scalars().all() if superuser else None
    tables = _schema_tables[url]
    if tables is None:
        return False
    holding = " UNION ALL ".join(f"SELECT '{t}' WHERE EXISTS (SELECT FROM {t})" for t in tables)
    used = (await conn.execute(text(holding))).scalars().all()
    await conn.execute(text("SET LOCAL session_replication_role = replica"))
    for table in used:
        await conn.execute(text(f"DELETE FROM {table}"))
    await conn.execute(
        text(
            "SELECT setval(format('%I.%I', schemaname, sequencename), start_value, false) "
            "FROM pg_sequences WHERE schemaname = current_schema() AND last_value IS NOT NULL"
        )
    )
    return True


async def _truncate(engine) -> None:
    """Empties every table, then puts back what the migrations seeded."""
    seeds = await _snapshot_seeds(engine)
    tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            if not await _emptied_as_replica(conn):
                await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                await conn.execute(text(f"DELETE FROM {table}"))
        for name, rows in seeds.items():
            if rows:
                await conn.execute(SQLModel.metadata.tables[name].insert(), rows)
                if engine.dialect.name == "postgresql":  # move the id sequence past them
                    await conn.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                            f"(SELECT max(id) FROM {name}))"
                        )
                    )


class DB:
    """Runs async database work on the app's own event loop and engine (commits)."""

    def __init__(self, client: TestClient):
        self.client = client

    def run(self, work: Callable[[Any], Any]) -> Any:
        async def _go():
            async with self.client.app.state.sessionmaker() as session:
                result = await work(session)
                await session.commit()
                return result

        return self.client.portal.call(_go)

    def add(self, *objs: SQLModel) -> Any:
        async def work(session):
            for obj in objs:
                session.add(obj)
            await session.flush()
            for obj in objs:
                await session.refresh(obj)
            return objs[0] if len(objs) == 1 else objs

        return self.run(work)

    @property
    def dialect(self) -> str:
        return self.client.app.state.engine.dialect.name


# The first app made with given settings, whose routes the later ones take (_app).
_ROUTE_DONORS: dict[str, Any] = {}


def _app(settings: Settings):
    """A new app for a test: its own state, middleware, caches and engine, as create_app makes
    them, but the routes of the first app made with the same settings.

    FastAPI builds an included router's routes (every dependant, its parameters' pydantic
    fields) for each app, at the app's first request: 80-150 ms, a fifth of the suite's time
    when every test made them anew. Those built routes hold nothing of a request or of the
    app's state: only the app whose `dependency_overrides` they consult, so the app shares
    that dict with the donor, and the fixture empties it after each test. The route list is
    the app's own copy: a test that adds a route adds it to its own app."""
    app = create_app(settings)
    donor = _ROUTE_DONORS.setdefault(settings.model_dump_json(), app)
    if donor is not app:
        app.router.routes = list(donor.router.routes)
        app.dependency_overrides = donor.dependency_overrides
    return app


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = _app(settings)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        test_client.portal.call(_snapshot_seeds, app.state.engine)
        try:
            yield test_client
        finally:
            app.dependency_overrides.clear()
            test_client.portal.call(_truncate, app.state.engine)


@pytest.fixture
def db(client: TestClient) -> DB:
    return DB(client)


def bearer(settings: Settings, subject: str, role: str, **kw) -> dict[str, str]:
    from app.auth.permissions import ROLE_SCOPES, Role

    token = issue_access_token(
        settings,
        subject=subject,
        role=role,
        scopes=sorted(ROLE_SCOPES[Role(role)]),
        lifetime=kw.pop("lifetime", timedelta(minutes=5)),
        **kw,
    )
    return {"Authorization": f"Bearer {token}"}


class Auth:
    """Makes accounts of any role and the Authorization headers to act as them."""

    def __init__(self, db: DB, settings: Settings):
        self.db = db
        self.settings = settings

    def user(self, role: str = "operator", **kw) -> User:
        return self.db.add(factories.user(role=role, **kw))

    def headers(
        self, role: str, *, agency_id: int | None = None, source: str | None = None, **kw
    ) -> dict[str, str]:
        if role == "integration":
            account = self.db.add(
                factories.api_client(**({"source_system": source} if source else {}))
            )
            return bearer(self.settings, f"client:{account.id}", role, **kw)
        if role == "agency" and agency_id is None:
            agency_id = self.db.add(factories.agency()).id
        account = self.user(role, agency_id=agency_id)
        return bearer(self.settings, f"user:{account.id}", role, **kw)


@pytest.fixture
def auth(db: DB, settings: Settings) -> Auth:
    return Auth(db, settings)
