"""Alembic environment: runs migrations over the service's own async engine."""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

import app.models  # noqa: F401  (registers every table)
from app.core.config import get_settings
from app.core.db import make_engine

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = SQLModel.metadata


def _render_item(type_, obj, autogen_context):
    # Our own column types live in app.core.types; make the migration import that module.
    if type_ == "type" and type(obj).__module__ == "app.core.types":
        autogen_context.imports.add("import app.core.types")
    return False


# Made by migrations for PostgreSQL only (expression indexes), so absent from the metadata.
# PostgreSQL full-text search: a stored generated column and its GIN index (migration 0008),
# which the models cannot express; and the narrow table searches walk in time order, kept in
# step with case_file by triggers (migration 0014).
MIGRATION_ONLY_OBJECTS = {
    "search_vector",
    "ix_case_file_search",
    "case_search",
    "ix_personal_data_access_case_ids",  # GIN, PostgreSQL only (0023)
}


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    return name not in MIGRATION_ONLY_OBJECTS


def _configure(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_item=_render_item,
        include_object=include_object,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by table copy
        compare_type=True,
    )


def _run(connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=get_settings().database_url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # handed in by a caller that already holds a connection
        _run(connection)
        return
    asyncio.run(_run_async(make_engine(get_settings())))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
