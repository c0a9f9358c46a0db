"""People (users) and machine clients."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Integer, String
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, utcnow


class User(SQLModel, table=True):
    __tablename__ = "user_account"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    full_name: str = Field(default="", sa_column=Column(String(200), nullable=False))
    email: str | None = Field(default=None, sa_column=Column(String(254), nullable=True))
    password_hash: str = Field(sa_column=Column(String(200), nullable=False))
    role: str = Field(sa_column=Column(String(16), nullable=False, index=True))
    agency_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("agency.id"), nullable=True, index=True),
    )
    is_active: bool = Field(default=True, nullable=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    password_changed_at: datetime = Field(
        default_factory=utcnow, sa_type=UTCDateTime, nullable=False
    )


class ApiClient(SQLModel, table=True):
    """A machine client (ministry or monitoring system) using client_credentials."""

    __tablename__ = "api_client"

    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    name: str = Field(sa_column=Column(String(200), nullable=False))
    role: str = Field(sa_column=Column(String(16), nullable=False))
    source_system: str | None = Field(
        default=None, sa_column=Column(String(64), nullable=True, unique=True)
    )
    agency_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("agency.id"), nullable=True, index=True),
    )
    secret_hash: str = Field(sa_column=Column(String(200), nullable=False))
    is_active: bool = Field(default=True, nullable=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    secret_rotated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
