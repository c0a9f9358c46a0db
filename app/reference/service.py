"""Reference data rules: the two-level category tree, territories, agencies and their sectors."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import String, delete, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.db import casefold
from app.core.errors import InvalidReference
from app.core.pagination import paged
from app.core.references import ensure_unique, ensure_unreferenced, get_or_404, resolve
from app.core.schemas import PageParams
from app.core.types import utcnow
from app.reference.models import Agency, AgencySector, Category, Territory
from app.reference.schemas import (
    AgencyCreate,
    AgencyRead,
    AgencyUpdate,
    CategoryCreate,
    CategoryUpdate,
    TerritoryCreate,
    TerritoryUpdate,
)


class _Folded(FunctionElement):
    """A column folded for case-insensitive search, the same way as `app.core.db.casefold`:
    SQLite's own lower() folds ASCII only, so there the connection's rd_casefold() is used."""

    type = String()
    inherit_cache = True
    name = "folded"


@compiles(_Folded)
def _folded_default(element, compiler, **kw):
    return f"translate(lower({compiler.process(element.clauses, **kw)}), 'ё', 'е')"


@compiles(_Folded, "sqlite")
def _folded_sqlite(element, compiler, **kw):
    return f"rd_casefold({compiler.process(element.clauses, **kw)})"


def text_filter(stmt, q: str | None, *columns):
    """Rows where any of the columns contains q, ignoring case (Cyrillic included)."""
    if q:
        pattern = f"%{casefold(q)}%"
        stmt = stmt.where(or_(*(_Folded(c).like(pattern) for c in columns)))
    return stmt


def _apply(obj: SQLModel, changes: dict) -> None:
    for key, value in changes.items():
        setattr(obj, key, value)
    obj.updated_at = utcnow()


# --- categories ------------------------------------------------------------------------------


async def _check_category_parent(
    session: AsyncSession, parent_id: int | None, category_id: int | None = None
) -> None:
    parent = await resolve(session, Category, parent_id, "parent_id")
    if parent is None:
        return
    if parent.parent_id is not None:
        raise InvalidReference(
            "parent_id",
            f"parent_id: category {parent.id} is a subcategory; the tree has two levels, "
            "sector → subcategory",
        )
    if category_id is not None:
        if parent.id == category_id:
            raise InvalidReference("parent_id", "parent_id: a category cannot be its own parent")
        has_children = (
            await session.exec(select(Category.id).where(Category.parent_id == category_id))
        ).first()
        if has_children:
            raise InvalidReference(
                "parent_id",
                f"parent_id: category {category_id} has subcategories, so it must stay a sector",
            )


async def list_categories(
    session: AsyncSession,
    page: PageParams,
    *,
    parent_id: int | None,
    sectors_only: bool,
    is_active: bool | None,
    q: str | None,
):
    stmt = select(Category).order_by(Category.code, Category.id)
    if parent_id is not None:
        stmt = stmt.where(Category.parent_id == parent_id)
    if sectors_only:
        stmt = stmt.where(Category.parent_id.is_(None))
    if is_active is not None:
        stmt = stmt.where(Category.is_active == is_active)
    stmt = text_filter(stmt, q, Category.code, Category.name_ru, Category.name_en)
    return await paged(session, stmt, page)


async def create_category(session: AsyncSession, data: CategoryCreate) -> Category:
    await ensure_unique(session, Category, "code", data.code)
    await _check_category_parent(session, data.parent_id)
    category = Category(**data.model_dump())
    session.add(category)
    await session.flush()
    return category


async def update_category(session: AsyncSession, category_id: int, data: CategoryUpdate):
    category = await get_or_404(session, Category, category_id)
    changes = data.model_dump(exclude_unset=True)
    if "code" in changes:
        await ensure_unique(session, Category, "code", changes["code"], category_id)
    if "parent_id" in changes:
        await _check_category_parent(session, changes["parent_id"], category_id)
    _apply(category, changes)
    await session.flush()
    return category


async def delete_category(session: AsyncSession, category_id: int) -> None:
    category = await get_or_404(session, Category, category_id)
    await ensure_unreferenced(session, Category, category_id)
    await session.delete(category)


# --- territories -----------------------------------------------------------------------------


async def list_territories(
    session: AsyncSession,
    page: PageParams,
    *,
    kind: str | None,
    parent_id: int | None,
    is_active: bool | None,
    q: str | None,
):
    stmt = select(Territory).order_by(Territory.code, Territory.id)
    if kind is not None:
        stmt = stmt.where(Territory.kind == kind)
    if parent_id is not None:
        stmt = stmt.where(Territory.parent_id == parent_id)
    if is_active is not None:
        stmt = stmt.where(Territory.is_active == is_active)
    stmt = text_filter(stmt, q, Territory.code, Territory.name, Territory.oktmo)
    return await paged(session, stmt, page)


async def _check_territory_parent(
    session: AsyncSession, parent_id: int | None, territory_id: int | None = None
) -> None:
    if parent_id is not None and parent_id == territory_id:
        raise InvalidReference("parent_id", "parent_id: a territory cannot be its own parent")
    parent = await resolve(session, Territory, parent_id, "parent_id")
    # Walk up to refuse cycles (the tree is shallow: region → formation → settlement).
    seen = {territory_id}
    while parent is not None and parent.parent_id is not None:
        if parent.parent_id in seen:
            raise InvalidReference("parent_id", "parent_id: that would make a cycle")
        seen.add(parent.id)
        parent = await session.get(Territory, parent.parent_id)


async def create_territory(session: AsyncSession, data: TerritoryCreate) -> Territory:
    await ensure_unique(session, Territory, "code", data.code)
    await _check_territory_parent(session, data.parent_id)
    territory = Territory(**data.model_dump())
    session.add(territory)
    await session.flush()
    return territory


async def update_territory(session: AsyncSession, territory_id: int, data: TerritoryUpdate):
    territory = await get_or_404(session, Territory, territory_id)
    changes = data.model_dump(exclude_unset=True)
    if "code" in changes:
        await ensure_unique(session, Territory, "code", changes["code"], territory_id)
    if "parent_id" in changes:
        await _check_territory_parent(session, changes["parent_id"], territory_id)
    _apply(territory, changes)
    await session.flush()
    return territory


async def delete_territory(session: AsyncSession, territory_id: int) -> None:
    territory = await get_or_404(session, Territory, territory_id)
    await ensure_unreferenced(session, Territory, territory_id)
    await session.delete(territory)


# --- agencies --------------------------------------------------------------------------------


async def sector_ids_by_agency(
    session: AsyncSession, agency_ids: Sequence[int]
) -> dict[int, list[int]]:
    """Sectors for a whole page of agencies in one query."""
    result: dict[int, list[int]] = {agency_id: [] for agency_id in agency_ids}
    if agency_ids:
        rows = await session.exec(
            select(AgencySector.agency_id, AgencySector.category_id)
            .where(AgencySector.agency_id.in_(agency_ids))
            .order_by(AgencySector.agency_id, AgencySector.category_id)
        )
        for agency_id, category_id in rows:
            result[agency_id].append(category_id)
    return result


async def agency_reads(session: AsyncSession, agencies: Sequence[Agency]) -> list[AgencyRead]:
    sectors = await sector_ids_by_agency(session, [a.id for a in agencies])
    return [
        AgencyRead.model_validate({**a.model_dump(), "sector_ids": sectors[a.id]}) for a in agencies
    ]


async def list_agencies(
    session: AsyncSession,
    page: PageParams,
    *,
    kind: str | None,
    territory_id: int | None,
    sector_id: int | None,
    is_active: bool | None,
    q: str | None,
):
    stmt = select(Agency).order_by(Agency.code, Agency.id)
    if kind is not None:
        stmt = stmt.where(Agency.kind == kind)
    if territory_id is not None:
        stmt = stmt.where(Agency.territory_id == territory_id)
    if sector_id is not None:
        stmt = stmt.where(
            Agency.id.in_(
                select(AgencySector.agency_id).where(AgencySector.category_id == sector_id)
            )
        )
    if is_active is not None:
        stmt = stmt.where(Agency.is_active == is_active)
    stmt = text_filter(stmt, q, Agency.code, Agency.name)
    return await paged(session, stmt, page)


async def _check_sectors(session: AsyncSession, sector_ids: list[int]) -> None:
    for index, sector_id in enumerate(sector_ids):
        field = f"sector_ids.{index}"
        category = await resolve(session, Category, sector_id, field)
        if category.parent_id is not None:
            raise InvalidReference(
                field, f"{field}: category {sector_id} is a subcategory, not a sector"
            )


async def _check_agency_refs(session: AsyncSession, changes: dict, agency_id: int | None = None):
    if changes.get("territory_id") is not None:
        await resolve(session, Territory, changes["territory_id"], "territory_id")
    if changes.get("parent_id") is not None:
        if changes["parent_id"] == agency_id:
            raise InvalidReference("parent_id", "parent_id: an agency cannot be its own parent")
        parent = await resolve(session, Agency, changes["parent_id"], "parent_id")
        seen = {agency_id}
        while parent is not None and parent.parent_id is not None:
            if parent.parent_id in seen:
                raise InvalidReference("parent_id", "parent_id: that would make a cycle")
            seen.add(parent.id)
            parent = await session.get(Agency, parent.parent_id)
    if changes.get("sector_ids"):
        await _check_sectors(session, changes["sector_ids"])


async def _set_sectors(session: AsyncSession, agency_id: int, sector_ids: list[int]) -> None:
    await session.exec(delete(AgencySector).where(AgencySector.agency_id == agency_id))
    for category_id in dict.fromkeys(sector_ids):
        session.add(AgencySector(agency_id=agency_id, category_id=category_id))
    await session.flush()


async def create_agency(session: AsyncSession, data: AgencyCreate) -> Agency:
    await ensure_unique(session, Agency, "code", data.code)
    changes = data.model_dump(mode="json")
    await _check_agency_refs(session, changes)
    sector_ids = changes.pop("sector_ids")
    agency = Agency(**changes)
    session.add(agency)
    await session.flush()
    await _set_sectors(session, agency.id, sector_ids)
    return agency


async def update_agency(session: AsyncSession, agency_id: int, data: AgencyUpdate) -> Agency:
    agency = await get_or_404(session, Agency, agency_id)
    changes = data.model_dump(mode="json", exclude_unset=True)
    if "code" in changes:
        await ensure_unique(session, Agency, "code", changes["code"], agency_id)
    await _check_agency_refs(session, changes, agency_id)
    sector_ids = changes.pop("sector_ids", None)
    _apply(agency, changes)
    if sector_ids is not None:
        await _set_sectors(session, agency_id, sector_ids)
    await session.flush()
    return agency


async def delete_agency(session: AsyncSession, agency_id: int) -> None:
    agency = await get_or_404(session, Agency, agency_id)
    await ensure_unreferenced(session, Agency, agency_id)
    await session.delete(agency)
