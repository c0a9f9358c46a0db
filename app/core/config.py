"""Settings: environment variables with the REGIONDESK_ prefix, and an optional .env file."""

from __future__ import annotations

import enum
from datetime import time
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "dev-only-insecure-secret-change-me"  # refused in production


class Environment(enum.StrEnum):
    dev = "dev"
    test = "test"
    production = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="REGIONDESK_", env_file=".env", extra="ignore", frozen=True
    )

    env: Environment = Environment.dev
    database_url: str = "sqlite+aiosqlite:///./regiondesk.db"
    database_pool_size: int = Field(default=10, ge=1, le=200)
    secret_key: str = DEFAULT_SECRET
    jwt_issuer: str = "regiondesk"
    jwt_audience: str = "regiondesk-api"
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_days: int = Field(default=14, ge=1, le=365)
    client_token_minutes: int = Field(default=60, ge=1, le=24 * 60)
    cors_origins: list[str] = Field(default_factory=list)
    timezone: str = "Europe/Moscow"
    working_day_start: time = time(9, 0)
    working_day_end: time = time(18, 0)
    login_max_failures: int = Field(default=5, ge=1)
    login_lockout_seconds: int = Field(default=300, ge=1)
    max_page_size: int = Field(default=200, ge=1, le=1000)
    docs_enabled: bool = True

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        # Accept the usual spellings and pick the async drivers the service runs on.
        if url.startswith("postgres://"):
            url = "postgresql://" + url.removeprefix("postgres://")
        for plain, driver in (
            ("postgresql://", "postgresql+asyncpg://"),
            ("postgresql+psycopg://", "postgresql+asyncpg://"),
            ("postgresql+psycopg2://", "postgresql+asyncpg://"),
            ("sqlite://", "sqlite+aiosqlite://"),
        ):
            if url.startswith(plain):
                return driver + url.removeprefix(plain)
        return url

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {name!r}") from exc
        return name

    @model_validator(mode="after")
    def _production_rules(self) -> Settings:
        if self.working_day_end <= self.working_day_start:
            raise ValueError(
                "REGIONDESK_WORKING_DAY_END must be after REGIONDESK_WORKING_DAY_START"
            )
        if self.env is Environment.production:
            if not self.secret_key or self.secret_key == DEFAULT_SECRET:
                raise ValueError(
                    "REGIONDESK_SECRET_KEY must be set to a private value in production "
                    "(it signs every access token)"
                )
            if len(self.secret_key) < 32:
                raise ValueError(
                    "REGIONDESK_SECRET_KEY must be at least 32 characters in production"
                )
            if "*" in self.cors_origins:
                raise ValueError(
                    "REGIONDESK_CORS_ORIGINS may not contain '*' in production "
                    "(credentials are allowed); list the frontends' origins"
                )
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
