"""Stored answers of the stats routes (app.stats.snapshots): one row per distinct resolved
request, shared by every API worker and instance, refreshed by the worker while people ask."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Integer, String, Text
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, utcnow


class StatsSnapshot(SQLModel, table=True):
    __tablename__ = "stats_snapshot"
    __table_args__ = (Index("ix_stats_snapshot_last_requested_at", "last_requested_at"),)

    # sha256 of the resolved request's canonical JSON (app.stats.service.StatsRequest.key):
    # the caller's reach is already in it, so one agency's answer is never another's.
    key: str = Field(sa_column=Column(String(64), primary_key=True))
    report: str = Field(sa_column=Column(String(16), nullable=False))
    # The resolved request (period in UTC, filters with the forced agency, options), for
    # operators reading the table and for the worker, which recomputes from it.
    params: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    body: str = Field(sa_column=Column(Text, nullable=False))  # the JSON answer, as served
    generated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)  # its `generated_at`
    took_ms: int = Field(sa_column=Column(Integer, nullable=False))  # the computation's time
    # The last time an API process read or computed it: what the worker's refresh follows.
    last_requested_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
