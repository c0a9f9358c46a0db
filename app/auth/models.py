"""Refresh tokens (rotated, in families) and failed-login throttling."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Integer, String
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, utcnow


class RefreshToken(SQLModel, table=True):
    """Only the SHA-256 of a refresh token is stored. A token works once; presenting a spent
    one revokes its whole family (every token descended from the same login)."""

    __tablename__ = "refresh_token"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    family_id: str = Field(sa_column=Column(String(32), nullable=False, index=True))
    subject: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    # The scopes granted at login: a refresh can keep or narrow them, never widen them.
    scope: str = Field(default="", sa_column=Column(String(1000), nullable=False))
    issued_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class LoginThrottle(SQLModel, table=True):
    """Consecutive failed logins per account name (known or not), and the lock they caused."""

    __tablename__ = "login_throttle"

    username: str = Field(sa_column=Column(String(64), primary_key=True))
    failures: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    last_failure_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
