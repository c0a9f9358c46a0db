"""Lookups shared by every domain: 404s, 422s for bad references, 409s for clashes and for
deleting what is still referred to."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.errors import Conflict, InvalidReference, NotFound
from app.core.schemas import MAX_ID

M = TypeVar("M", bound=SQLModel)


def _label(model: type[SQLModel]) -> str:
    return model.__tablename__.replace("_", " ")


async def _get(session: AsyncSession, model: type[M], obj_id: int) -> M | None:
    # An id no column can hold names nothing (and PostgreSQL would refuse the parameter).
    return await session.get(model, obj_id) if 1 <= obj_id <= MAX_ID else None


async def get_or_404(session: AsyncSession, model: type[M], obj_id: int) -> M:
    obj = await _get(session, model, obj_id)
    if obj is None:
        raise NotFound(f"No {_label(model)} with id {obj_id}")
    return obj


async def resolve(
    session: AsyncSession,
    model: type[M],
    obj_id: int | None,
    field: str,
    *,
    must_be_active: bool = True,
) -> M | None:
    """The object a request body refers to, or a 422 naming the field."""
    if obj_id is None:
        return None
    obj = await _get(session, model, obj_id)
    if obj is None:
        raise InvalidReference(field, f"{field}: no {_label(model)} with id {obj_id}")
    if must_be_active and not getattr(obj, "is_active", True):
        raise InvalidReference(field, f"{field}: {_label(model)} {obj_id} is inactive")
    return obj


async def ensure_unique(
    session: AsyncSession,
    model: type[SQLModel],
    field: str,
    value: Any,
    exclude_id: int | None = None,
) -> None:
    column = getattr(model, field)
    stmt = select(model.id).where(column == value)
    if exclude_id is not None:
        stmt = stmt.where(model.id != exclude_id)
    if (await session.exec(stmt.limit(1))).first() is not None:
        raise Conflict(
            f"A {_label(model)} with {field} {value!r} already exists",
            field=field,
        )


async def ensure_unreferenced(session: AsyncSession, model: type[SQLModel], obj_id: int) -> None:
    """Refuses to delete a row any other table points at, and says which tables do.

    Found from the schema's foreign keys, so a new table that refers to this one is covered
    without touching this code. Cascading link rows (ondelete=CASCADE) do not block."""
    target = model.__table__
    referrers: list[str] = []
    for table in SQLModel.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table is not target or fk.ondelete == "CASCADE":
                continue
            column = fk.parent
            count = (await session.exec(select(func.count()).where(column == obj_id))).scalar_one()
            if count:
                referrers.append(f"{count} {table.name.replace('_', ' ')} row(s) via {column.name}")
    if referrers:
        raise Conflict(
            f"{_label(model).capitalize()} {obj_id} is still referred to by: "
            + "; ".join(referrers)
            + ". Deactivate it instead.",
            referenced_by=referrers,
        )
