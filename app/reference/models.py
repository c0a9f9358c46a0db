"""Reference data: the category tree, territories and agencies."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Column, ForeignKey, Integer, String
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, utcnow


class TerritoryKind(enum.StrEnum):
    region = "region"
    city_district = "city_district"  # городской округ
    municipal_district = "municipal_district"  # муниципальный район
    municipal_okrug = "municipal_okrug"  # муниципальный округ
    settlement = "settlement"  # городское или сельское поселение


class AgencyKind(enum.StrEnum):
    control_centre = "control_centre"
    regional_ministry = "regional_ministry"
    municipal_administration = "municipal_administration"
    federal_body = "federal_body"
    partner = "partner"
    contractor = "contractor"


def _kind_column() -> Column:
    # Stored as text, checked by the application: adding a kind needs no migration dance.
    return Column(String(32), nullable=False, index=True)


class Category(SQLModel, table=True):
    __tablename__ = "category"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    name_ru: str = Field(sa_column=Column(String(200), nullable=False))
    name_en: str = Field(sa_column=Column(String(200), nullable=False))
    parent_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("category.id"), nullable=True, index=True),
    )
    is_active: bool = Field(default=True, nullable=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class Territory(SQLModel, table=True):
    __tablename__ = "territory"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    oktmo: str | None = Field(default=None, sa_column=Column(String(11), nullable=True))
    name: str = Field(sa_column=Column(String(200), nullable=False))
    kind: str = Field(sa_column=_kind_column())
    parent_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("territory.id"), nullable=True, index=True),
    )
    is_active: bool = Field(default=True, nullable=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class Agency(SQLModel, table=True):
    __tablename__ = "agency"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    name: str = Field(sa_column=Column(String(300), nullable=False))
    kind: str = Field(sa_column=_kind_column())
    territory_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("territory.id"), nullable=True, index=True),
    )
    parent_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("agency.id"), nullable=True, index=True),
    )
    email: str | None = Field(default=None, sa_column=Column(String(254), nullable=True))
    phone: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    address: str | None = Field(default=None, sa_column=Column(String(500), nullable=True))
    website: str | None = Field(default=None, sa_column=Column(String(500), nullable=True))
    is_active: bool = Field(default=True, nullable=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class AgencySector(SQLModel, table=True):
    """The sectors (top-level categories) an agency is competent in."""

    __tablename__ = "agency_sector"

    agency_id: int = Field(
        sa_column=Column(Integer, ForeignKey("agency.id", ondelete="CASCADE"), primary_key=True)
    )
    category_id: int = Field(
        sa_column=Column(Integer, ForeignKey("category.id"), primary_key=True, index=True)
    )
