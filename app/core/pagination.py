"""Offset pages for the small lists (reference data, accounts, rules, policies)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.schemas import PageParams


def count_of(stmt: Select) -> Select:
    """COUNT(*) of whatever the statement selects, ignoring its ORDER BY."""
    return select(func.count()).select_from(stmt.order_by(None).subquery())


async def paged(session: AsyncSession, stmt: Select, page: PageParams) -> tuple[Sequence, int]:
    """One page of rows plus the total, in the statement's ORDER BY (which must end in a key)."""
    total = (await session.exec(count_of(stmt))).scalar_one()
    rows = (await session.exec(stmt.limit(page.limit).offset(page.offset))).scalars().all()
    return rows, total
