"""Routing rules: ordered conditions → actions, evaluated on intake."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Column, ForeignKey, Integer, String, Text
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, utcnow


class RoutingRule(SQLModel, table=True):
    __tablename__ = "routing_rule"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String(200), nullable=False))
    description: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    position: int = Field(sa_column=Column(Integer, nullable=False, index=True))
    enabled: bool = Field(default=True, sa_column=Column(Boolean, nullable=False))

    # Conditions: an empty list or null means "any".
    kinds: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    category_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    territory_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    sources: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    keywords: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    missing_person: bool | None = Field(default=None, sa_column=Column(Boolean, nullable=True))
    important: bool | None = Field(default=None, sa_column=Column(Boolean, nullable=True))

    # Actions.
    agency_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("agency.id"), nullable=True, index=True)
    )
    priority: str | None = Field(default=None, sa_column=Column(String(16), nullable=True))
    deadline_policy_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("deadline_policy.id"), nullable=True, index=True),
    )
    notify_agency_ids: list[int] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    stop: bool = Field(default=True, sa_column=Column(Boolean, nullable=False))

    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)

    def conditions(self) -> dict[str, Any]:
        return {
            "kinds": self.kinds,
            "category_ids": self.category_ids,
            "territory_ids": self.territory_ids,
            "sources": self.sources,
            "keywords": self.keywords,
            "missing_person": self.missing_person,
            "important": self.important,
        }
