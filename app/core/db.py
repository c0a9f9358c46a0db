"""Engine, metadata naming convention and the per-request unit of work."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from sqlalchemy import JSON, Table, event, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import Settings

# Constraint names are stable across SQLite and PostgreSQL, so migrations can refer to them.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def casefold(value: str | None) -> str | None:
    return value.casefold().replace("ё", "е") if value is not None else None


def make_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        engine = create_async_engine(
            settings.database_url,
            connect_args={"timeout": 30},
            hide_parameters=True,  # errors are logged: no case data or personal data in them
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - driver hook
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
            # SQLite's lower() folds ASCII only; Russian text search needs Unicode folding.
            dbapi_conn.create_function("rd_casefold", 1, casefold, deterministic=True)

        return engine
    # Up to twice the pool size, as before (pool size plus as many overflow), but every one
    # kept once opened: overflow connections are closed on return whenever the pool has its
    # pool size idle, which under load meant reconnecting ~25 times a second per worker.
    return create_async_engine(
        settings.database_url,
        pool_size=2 * settings.database_pool_size,
        max_overflow=0,
        pool_pre_ping=settings.database_pool_pre_ping,
        pool_recycle=1800,
        hide_parameters=True,  # errors are logged: no case data or personal data in them
    )


@asynccontextmanager
async def savepoint(session: AsyncSession) -> AsyncIterator[None]:
    """A SAVEPOINT that can be rolled back alone (`session.begin_nested()`), also on SQLite.

    SQLite's driver opens a transaction only before a write; a SAVEPOINT issued with none open
    would open one itself, and its RELEASE would commit everything at once. So on SQLite the
    transaction is begun first, taking the write lock the savepoint is about to need anyway.
    """
    connection = await session.connection()
    if connection.dialect.name == "sqlite":
        raw = await connection.get_raw_connection()
        if not raw.driver_connection.in_transaction:
            await connection.exec_driver_sql("BEGIN IMMEDIATE")
    async with session.begin_nested():
        yield


# Fewer rows than this go in as an INSERT: COPY costs a round trip more, and wins only in bulk.
COPY_MIN_ROWS = 32


async def insert_rows(
    session: AsyncSession,
    table: Table,
    columns: Sequence[str],
    rows: Iterable[tuple[Any, ...]],
    count: int | None = None,
) -> None:
    """Plain rows (tuples of `columns`, values as the ORM takes them) added in one go: on
    PostgreSQL with COPY when there are many, about ten times faster than INSERTs for a batch
    (triggers fire and constraints hold as for an INSERT; a violation is an IntegrityError,
    as it would be from an INSERT), else one executemany. COPY goes through the driver, past
    SQLAlchemy, so its events (`before_cursor_execute`) do not see it. `rows` may be a
    generator (then `count` says how many it yields): COPY streams it, built row by row as
    the driver sends them, never all at once."""
    if count is None:
        count = len(rows)  # a sequence, then
    if not count:
        return
    connection = await session.connection()
    if connection.dialect.name != "postgresql" or count < COPY_MIN_ROWS:
        await session.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    from asyncpg.exceptions import IntegrityConstraintViolationError

    json_at = [i for i, name in enumerate(columns) if isinstance(table.c[name].type, JSON)]
    if json_at:
        # The driver takes JSON as text, as SQLAlchemy hands it over; and like SQLAlchemy's
        # JSON type (none_as_null=False), None is stored as JSON null.
        def as_text(row: tuple[Any, ...]) -> tuple[Any, ...]:
            values = list(row)
            for i in json_at:
                values[i] = orjson.dumps(values[i]).decode()
            return tuple(values)

        records = map(as_text, rows)
    else:
        records = iter(rows)
    driver = (await connection.get_raw_connection()).driver_connection
    try:
        await driver.copy_records_to_table(table.name, records=records, columns=list(columns))
    except IntegrityConstraintViolationError as exc:
        raise IntegrityError(f"COPY {table.name}", None, exc) from exc


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False, autoflush=False)


def make_read_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for the reading requests (GET, HEAD). On PostgreSQL they run in autocommit:
    no BEGIN and no COMMIT round trip, each statement its own transaction. Under READ COMMITTED
    (the default) every statement already reads its own snapshot, so the reads see what they
    would inside a transaction; the one write a read makes, the personal-data access rows, is a
    single INSERT at the end (`before_commit`), atomic by itself, and sent before the answer.
    Same pool. Elsewhere (SQLite) the ordinary transactional sessions."""
    if engine.dialect.name != "postgresql":
        return make_sessionmaker(engine)
    return make_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"))


READ_METHODS = frozenset({"GET", "HEAD"})


async def unit_of_work(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the handler succeeds, rolled back otherwise.
    Reading requests on PostgreSQL use autocommit sessions instead (make_read_sessionmaker).

    Services only flush; nothing else commits.
    """
    state = request.app.state
    sessionmaker: async_sessionmaker[AsyncSession] = state.sessionmaker
    if request.method in READ_METHODS:
        sessionmaker = getattr(state, "read_sessionmaker", None) or sessionmaker
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


# scope="function": commit before the response is sent, so a client never sees success for a
# transaction that then fails to commit.
SessionDep = Annotated[AsyncSession, Depends(unit_of_work, scope="function")]
