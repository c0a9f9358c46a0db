"""Engine, metadata naming convention and the per-request unit of work."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from types import MappingProxyType
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request
from sqlalchemy import JSON, Executable, Row, Table, event, insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import Settings
from app.core.greenlets import spawn

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


def json_text(value: Any) -> str:
    """JSON columns' and parameters' values as text, written by orjson rather than the standard
    library's encoder (SQLAlchemy's default): a case filed sends its events and access rows as
    JSON, 3 % of a create's CPU through `json.dumps`. Keys that are not strings are written as
    strings, as `json.dumps` writes them. Read back by orjson too (`json_value`): every case of a
    page has its JSON columns, 3 % of a queue page's CPU through `json.loads`."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


json_value = orjson.loads


SERVER_SETTINGS = {"jit": "off"}
"""PostgreSQL settings of the app's connections. No JIT: PostgreSQL compiles a statement whose
estimated cost passes jit_above_cost, and a search page's fallback (every match of a common
word, sorted, which the walk makes unnecessary) is estimated at 120,000 at 1M cases: 100-280 ms
of compiling for a page read in 2 ms. Statements that serve one request never gain that back.
The bench tools that explain the app's statements connect with them too."""


def make_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        engine = create_async_engine(
            settings.database_url,
            connect_args={"timeout": 30},
            hide_parameters=True,  # errors are logged: no case data or personal data in them
            json_serializer=json_text,
            json_deserializer=json_value,
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
        json_serializer=json_text,
        json_deserializer=json_value,
        connect_args={"server_settings": SERVER_SETTINGS},
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


# --- reads straight through the driver ----------------------------------------------------------

_SENT: dict[
    int, tuple[Executable, str | None, tuple[str, ...], dict[str, Any], dict[str, Any]]
] = {}
_SENT_MAX = 1024


def _as_sent(
    stmt: Executable, dialect: Any
) -> tuple[str | None, tuple[str, ...], dict[str, Any], dict[str, Any]]:
    """A statement built once, compiled once: its SQL, the names of its positional parameters,
    the values it binds itself (literals; None for those the caller gives) and the parameters'
    bind processors."""
    entry = _SENT.get(id(stmt))
    if entry is None or entry[0] is not stmt:
        if len(_SENT) >= _SENT_MAX:
            _SENT.clear()
        compiled = stmt.compile(dialect=dialect)
        names = tuple(compiled.positiontup or ())
        processors = {n: p for n, p in compiled._bind_processors.items() if n in names}
        bound = compiled.construct_params(_check=False)
        # an expanding IN (overdue=false's NOT IN of the open statuses) is rendered per
        # execution by SQLAlchemy: such a statement is not sent directly (None)
        sendable = not (compiled.post_compile_params or compiled.literal_execute_params)
        sql = compiled.string if sendable else None
        entry = _SENT[id(stmt)] = (stmt, sql, names, bound, processors)
    return entry[1:]


async def fetch_all(
    connection: AsyncConnection, stmt: Executable, params: dict[str, Any]
) -> Sequence[Sequence[Any]]:
    """The rows of a reading statement built once (app/cases/reads.py), by position.

    On a PostgreSQL connection in autocommit (the reading requests' sessions,
    make_read_sessionmaker) the statement goes straight to asyncpg: compiled once, its
    parameters bound by position, asyncpg's own prepared statements and codecs (the same
    connection, so the same JSON codec) — a third of the CPU of SQLAlchemy's execution of the
    same statement, whose rows, contexts and events cost more than the query. Listeners of
    `before_cursor_execute` (tests count statements with one) still see the statement, and a
    failure is SQLAlchemy's error as it would have raised it (the connection invalidated when
    lost, so the pool recovers). Anywhere else — SQLite, or inside a transaction, where the
    statement must join it — through SQLAlchemy."""
    if connection.dialect.driver != "asyncpg":
        return (await connection.execute(stmt, params)).all()
    # The pool's connection as the Connection holds it (get_raw_connection() would fetch the
    # same through a greenlet); only a connection invalidated since needs that round.
    pooled = connection.sync_connection._dbapi_connection
    if pooled is None:
        pooled = await connection.get_raw_connection()
    adapter = pooled.dbapi_connection
    if adapter.isolation_level != "autocommit" or adapter._started:
        return (await connection.execute(stmt, params)).all()
    sql, names, bound, processors = _as_sent(stmt, connection.dialect)
    if sql is None:
        return (await connection.execute(stmt, params)).all()
    args = _arguments(names, bound, processors, params)
    sync = connection.sync_connection
    if sync._has_events or sync.engine._has_events:
        sync.dispatch.before_cursor_execute(sync, None, sql, tuple(args), None, False)
    driver = adapter._connection
    try:
        async with adapter._execute_mutex:
            return await driver.fetch(sql, *args)
    except Exception as error:
        raise await _as_sqlalchemy_error(
            connection.invalidate, connection.dialect, adapter, error, sql
        ) from error


def _arguments(
    names: tuple[str, ...], bound: dict[str, Any], processors: dict[str, Any], params: dict
) -> list[Any]:
    values = bound | params
    return [
        processors[name](values[name]) if name in processors else values[name] for name in names
    ]


async def _fetch_pooled(
    engine: AsyncEngine, stmt: Executable, params: dict[str, Any]
) -> Sequence[Sequence[Any]] | None:
    """The rows of a reading (or single writing) statement built once, run in autocommit on
    a connection taken from the engine's pool and put back at once, with no SQLAlchemy
    Connection around it: one greenlet round to take the pooled connection, one to return
    it, both on kept greenlets (app/core/greenlets.py; the pool's own checks, a pre-ping, a
    recycle, stay as they are), and none of the Connection's construction, isolation-level
    switch and events. Outside a transaction
    asyncpg's statements commit by themselves, whatever the adapter's isolation level, and
    the adapter has begun none on a connection just taken from the pool.

    None when the statement cannot go this way: SQLAlchemy renders it per execution, or the
    engine has event listeners (tests count statements with `before_cursor_execute`), which
    the caller's path through a Connection lets see it."""
    sync_engine = engine.sync_engine
    if sync_engine.dispatch.before_cursor_execute:  # listened to: through a Connection
        return None
    dialect = sync_engine.dialect
    sql, names, bound, processors = _as_sent(stmt, dialect)
    if sql is None:
        return None
    args = _arguments(names, bound, processors, params)
    pooled = await spawn(sync_engine.raw_connection)
    adapter = pooled.dbapi_connection
    try:
        if adapter._started:  # never on a connection the pool handed out; kept safe anyway
            await spawn(adapter.rollback)
        async with adapter._execute_mutex:
            rows = await adapter._connection.fetch(sql, *args)
    except Exception as error:

        async def invalidate() -> None:
            await spawn(pooled.invalidate)

        try:
            failure = await _as_sqlalchemy_error(invalidate, dialect, adapter, error, sql)
        finally:
            await asyncio.shield(spawn(pooled.close))
        raise failure from error
    except BaseException:  # cancelled: the connection goes back all the same
        await asyncio.shield(spawn(pooled.close))
        raise
    await spawn(pooled.close)
    return rows


async def _as_sqlalchemy_error(
    invalidate: Any, dialect: Any, adapter: Any, error: Exception, sql: str
) -> Exception:
    """The exception SQLAlchemy raises for this driver error (app/core/errors.py tells a lost
    database, 503, from a wrong query, 500, by it); a lost connection is invalidated
    (`invalidate`, awaited)."""
    try:
        adapter._handle_exception(error)  # raises the driver error as a DB-API error
    except Exception as dbapi_error:  # whatever it became is wrapped below
        error = dbapi_error
    lost = adapter._connection.is_closed()
    if lost:
        await invalidate()
    return DBAPIError.instance(
        sql,
        None,
        error,
        dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=lost,
        dialect=dialect,
    )


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


async def unit_of_work(request: Request) -> AsyncSession:
    """One transaction per request: committed when the handler succeeds, rolled back otherwise.
    Reading requests on PostgreSQL use autocommit sessions instead (make_read_sessionmaker).

    Services only flush; nothing else commits. The session is ended on the way out of the
    handler, before the answer is sent (FastAPI's per-function exit stack, as a dependency
    with yield and scope="function" would be, without the generator's cost per request).
    It is made when first used (RequestSession): most reads never use it.
    """
    state = request.app.state
    sessionmaker: async_sessionmaker[AsyncSession] = state.sessionmaker
    if request.method in READ_METHODS:
        sessionmaker = getattr(state, "read_sessionmaker", None) or sessionmaker
    stack = request.scope.get("fastapi_function_astack")
    if stack is None:  # FastAPI before 0.121, or one that renamed it: no session never ended
        raise RuntimeError("FastAPI's per-function exit stack is missing (FastAPI >= 0.121)")
    session = RequestSession(sessionmaker)
    stack.push_async_exit(session)  # its __aexit__ (a bound method would cost a failed look-up)
    return session  # type: ignore[return-value]  # an AsyncSession to everything that uses it


class RequestSession:
    """A request's AsyncSession, made when something first uses it, and ended with the request.

    Most reading requests never use theirs: the caller's account comes from the cache and the
    statement goes straight to the driver on a connection of its own (read_rows). Making an
    AsyncSession (and its Session, identity map and transaction state) only to drop it was 2 %
    of a get's instructions (python -m bench.instructions). What those paths ask without using the
    session — its engine (`bind`), whether it began a transaction — is answered without making
    it; any other attribute makes it and is the session's own."""

    __slots__ = ("_bind", "_maker", "_session")

    def __init__(self, maker: async_sessionmaker[AsyncSession]) -> None:
        self._maker = maker
        self._bind = getattr(maker, "kw", {}).get("bind")  # None: not a sessionmaker's
        self._session: AsyncSession | None = None

    @property
    def bind(self) -> Any:
        session = self._session
        if session is None and self._bind is not None:
            return self._bind
        return self.__getattr__("bind")

    def in_transaction(self) -> bool:
        session = self._session
        return session is not None and session.in_transaction()

    @property
    def started(self) -> AsyncSession | None:
        """The session if something made it, else None."""
        return self._session

    def __getattr__(self, name: str) -> Any:  # anything else: the session's own
        session = self._session
        if session is None:
            session = self._session = self._maker()
        return getattr(session, name)

    async def end(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        """Commit after success, else roll back; then close. A session never made, or made
        and never used, is dropped as it is."""
        session = self._session
        if session is None:
            return False
        sync = session.sync_session
        if not (sync.in_transaction() or sync.info or sync.new or sync.identity_map):
            return False
        try:
            if exc_type is None:
                try:
                    await session.commit()
                except BaseException:
                    await asyncio.shield(session.rollback())
                    raise
            else:
                await asyncio.shield(session.rollback())
        finally:
            await asyncio.shield(session.close())
        return False

    # What the exit stack calls: given the session itself, it finds the exit on the class at
    # once. Given the bound method `end`, it first looked for `__aexit__` on the method's type,
    # a formatted and caught AttributeError on every request.
    __aexit__ = end


_NOTHING: Mapping[str, Any] = MappingProxyType({})


def info_of(session: Any) -> Mapping[str, Any]:
    """A session's `info`, to read: what a request's session not made yet holds is nothing, and
    it stays unmade (RequestSession); any other session's own `info`. Write through
    `session.info`, which makes it."""
    if isinstance(session, RequestSession) and session.started is None:
        return _NOTHING
    return session.info


def engine_of(session: AsyncSession) -> Any:
    """The (sync) engine a session works on, as `session.sync_session.get_bind().engine`
    gives it, without making a RequestSession's session: a key for what is cached per
    database (the routing rules, the references)."""
    bind = session.bind
    sync = getattr(bind, "sync_engine", bind)
    return getattr(sync, "engine", sync)


async def read_rows(
    session: AsyncSession, stmt: Executable, params: dict[str, Any]
) -> Sequence[Sequence[Any]]:
    """fetch_all for a request's session. A reading request's session on PostgreSQL runs in
    autocommit, every statement its own transaction: when it has begun nothing yet, the
    statement goes through a connection of the same pool taken for it alone and returned at
    once (_fetch_alone), with no ORM transaction to begin, commit and close around it.
    Otherwise (a session already in use, a transactional one, SQLite) through the session's
    own connection, so that the statement joins what it began and a request never holds two
    connections."""
    bind = session.bind
    if (
        bind.dialect.driver == "asyncpg"
        and not session.in_transaction()
        and bind.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
    ):
        return await _fetch_alone(bind, stmt, params)
    return await fetch_all(await session.connection(), stmt, params)


async def _fetch_alone(
    engine: AsyncEngine, stmt: Executable, params: dict[str, Any]
) -> Sequence[Sequence[Any]]:
    """The rows of a statement run in autocommit on a PostgreSQL connection taken for it
    alone and returned at once: straight from the pool (_fetch_pooled), or, when it cannot
    go that way, through an autocommit SQLAlchemy Connection (fetch_all)."""
    rows = await _fetch_pooled(engine, stmt, params)
    if rows is not None:
        return rows
    if engine.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        engine = _autocommit(engine)
    connection = await engine.connect()
    try:
        rows = await fetch_all(connection, stmt, params)
    except BaseException:
        await asyncio.shield(connection.close())
        raise
    await connection.close()
    return rows


# The autocommit twin of each transactional engine (the same pool), for write_one.
_AUTOCOMMIT: weakref.WeakKeyDictionary[Any, AsyncEngine] = weakref.WeakKeyDictionary()


def _autocommit(engine: AsyncEngine) -> AsyncEngine:
    twin = _AUTOCOMMIT.get(engine.sync_engine)
    if twin is None:
        twin = _AUTOCOMMIT[engine.sync_engine] = engine.execution_options(
            isolation_level="AUTOCOMMIT"
        )
    return twin


async def write_one(session: AsyncSession, stmt: Executable, params: dict[str, Any]) -> Any:
    """The first row (or None) of a statement that is a whole unit of work by itself: one
    writing statement, atomic on its own, after which the request writes nothing else (the
    caller decides that). On PostgreSQL, when the session has begun nothing and holds nothing
    pending, it runs in autocommit through a connection taken for it alone and returned at
    once, as read_rows does: no BEGIN and COMMIT round trips, no ORM transaction to begin,
    commit and close, and the statement sent straight to asyncpg (fetch_all; the row is then
    a Record, read by attribute like a Row). Otherwise (a session already in use, SQLite)
    through the session, in its transaction, so that the statement joins what it began and a
    request never holds two connections. Errors are SQLAlchemy's, as through the session."""
    bind = session.bind
    made = session.started if isinstance(session, RequestSession) else session
    sync = None if made is None else made.sync_session
    if bind.dialect.name != "postgresql" or (
        sync is not None
        and (sync.in_transaction() or sync.info or sync.new or sync.dirty or sync.deleted)
    ):
        return (await session.execute(stmt, params)).first()
    engine = bind if isinstance(bind, AsyncEngine) else bind.engine
    rows = await _fetch_alone(engine, stmt, params)  # straight to asyncpg, as reads go
    if not rows:
        return None
    row = rows[0]
    return row if isinstance(row, Row) else Record(row)


class Record:
    """A row asyncpg returned (fetch_all), read by column name as an attribute, as a
    SQLAlchemy Row is: `row.id`."""

    __slots__ = ("_values",)

    def __init__(self, values: Any) -> None:
        self._values = values

    @property
    def values(self) -> Any:
        """The asyncpg record itself: by name or position (`record["id"]`), in C."""
        return self._values

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None


# The session of the request (see unit_of_work), ended before the response is sent, so a client
# never sees success for a transaction that then fails to commit.
SessionDep = Annotated[AsyncSession, Depends(unit_of_work)]
