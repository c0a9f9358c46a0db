"""The record of who saw whose personal data (152-ФЗ): one row per read, naming its cases."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, String
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, utcnow

BigId = BigInteger().with_variant(Integer, "sqlite")
# The ids of the cases a read showed: an array on PostgreSQL (found by a GIN index, made by
# migration 0023), a JSON list on SQLite.
CaseIds = ARRAY(BigInteger).with_variant(JSON(), "sqlite")


class PersonalDataAccess(SQLModel, table=True):
    """A person received personal data (applicant or author fields) of these cases from the
    API, at once: a case's page, a page of a list (the cases on it with personal data), an
    action's answer, an export.

    One row per read, not per case (migration 0023): a page of the queue shows up to 50 cases,
    and a row for each, with its four index entries, was half of PostgreSQL's work for the
    page. The cases of a read are found by a GIN index of `case_ids` on PostgreSQL (a case's
    records, for the audit route); SQLite reads the lists.

    Append-only: no route changes or deletes these. Evidence that outlives anything: the case
    ids are no foreign keys (migration 0016), so nothing removes a record with its case, and
    the reads that write it (in the page's own statement) neither look the cases up again nor
    lock their rows."""

    __tablename__ = "personal_data_access"
    __table_args__ = (
        Index("ix_personal_data_access_actor_at", "actor", "at"),
        Index("ix_personal_data_access_at_id", "at", "id"),  # the list, newest first (0019)
    )

    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True))
    case_ids: list[int] = Field(sa_column=Column(CaseIds, nullable=False))
    actor: str = Field(sa_column=Column(String(64), nullable=False))
    actor_name: str = Field(sa_column=Column(String(200), nullable=False))
    actor_role: str = Field(sa_column=Column(String(16), nullable=False))
    via: str = Field(sa_column=Column(String(16), nullable=False))  # read | list | action | export
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
