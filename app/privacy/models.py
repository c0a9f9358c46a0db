"""The record of who saw whose personal data (152-ФЗ): one row per case per read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Integer, String
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, utcnow

BigId = BigInteger().with_variant(Integer, "sqlite")


class PersonalDataAccess(SQLModel, table=True):
    """A person received a case's personal data (applicant or author fields) from the API.

    Append-only: no route changes or deletes these. Evidence that outlives anything: case_id
    is no foreign key (migration 0016), so nothing removes a record with its case, and the
    reads that write it (in the page's own statement) neither look the case up again nor
    lock its row."""

    __tablename__ = "personal_data_access"
    __table_args__ = (
        Index("ix_personal_data_access_case_at", "case_id", "at"),
        Index("ix_personal_data_access_actor_at", "actor", "at"),
        Index("ix_personal_data_access_at_id", "at", "id"),  # the list, newest first (0019)
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    case_id: int = Field(sa_column=Column(BigId, nullable=False))
    actor: str = Field(sa_column=Column(String(64), nullable=False))
    actor_name: str = Field(sa_column=Column(String(200), nullable=False))
    actor_role: str = Field(sa_column=Column(String(16), nullable=False))
    via: str = Field(sa_column=Column(String(16), nullable=False))  # read | list | action | export
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
