from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import EmailStr, Field, HttpUrl, StringConstraints

from app.core.schemas import Input, Output, Patch
from app.reference.models import AgencyKind, TerritoryKind

Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.\-]{0,63}$", max_length=64)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=300)]
Oktmo = Annotated[str, StringConstraints(pattern=r"^(\d{8}|\d{11})$")]
Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9 ()\-]{5,32}$")]


class CategoryCreate(Input):
    code: Code
    name_ru: Name
    name_en: Name
    parent_id: int | None = Field(default=None, description="The sector this subcategory is in")
    is_active: bool = True


class CategoryUpdate(Patch):
    NOT_NULL = frozenset({"code", "name_ru", "name_en", "is_active"})

    code: Code | None = None
    name_ru: Name | None = None
    name_en: Name | None = None
    parent_id: int | None = None
    is_active: bool | None = None


class CategoryRead(Output):
    id: int
    code: str
    name_ru: str
    name_en: str
    parent_id: int | None
    is_active: bool
    created_at: datetime
    updated_at: datetime


class TerritoryCreate(Input):
    code: Code
    oktmo: Oktmo | None = None
    name: Name
    kind: TerritoryKind
    parent_id: int | None = None
    is_active: bool = True


class TerritoryUpdate(Patch):
    NOT_NULL = frozenset({"code", "name", "kind", "is_active"})

    code: Code | None = None
    oktmo: Oktmo | None = None
    name: Name | None = None
    kind: TerritoryKind | None = None
    parent_id: int | None = None
    is_active: bool | None = None


class TerritoryRead(Output):
    id: int
    code: str
    oktmo: str | None
    name: str
    kind: TerritoryKind
    parent_id: int | None
    is_active: bool
    created_at: datetime
    updated_at: datetime


class AgencyCreate(Input):
    code: Code
    name: Name
    kind: AgencyKind
    territory_id: int | None = None
    parent_id: int | None = None
    sector_ids: list[int] = Field(default_factory=list, max_length=50)
    email: EmailStr | None = None
    phone: Phone | None = None
    address: Annotated[str, StringConstraints(max_length=500)] | None = None
    website: HttpUrl | None = None
    is_active: bool = True


class AgencyUpdate(Patch):
    NOT_NULL = frozenset({"code", "name", "kind", "is_active", "sector_ids"})

    code: Code | None = None
    name: Name | None = None
    kind: AgencyKind | None = None
    territory_id: int | None = None
    parent_id: int | None = None
    sector_ids: list[int] | None = Field(default=None, max_length=50)
    email: EmailStr | None = None
    phone: Phone | None = None
    address: Annotated[str, StringConstraints(max_length=500)] | None = None
    website: HttpUrl | None = None
    is_active: bool | None = None


class AgencyRead(Output):
    id: int
    code: str
    name: str
    kind: AgencyKind
    territory_id: int | None
    parent_id: int | None
    sector_ids: list[int]
    email: str | None
    phone: str | None
    address: str | None
    website: str | None
    is_active: bool
    created_at: datetime
    updated_at: datetime
