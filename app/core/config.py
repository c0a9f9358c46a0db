"""Settings: environment variables with the REGIONDESK_ prefix, and an optional .env file."""

from __future__ import annotations

import enum
import ipaddress
import logging
from datetime import time
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request
from pydantic import Field, SecretStr, field_validator, model_validator
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
    # 152-ФЗ: personal data of cases closed or rejected longer ago than this is erased by
    # `python -m app erase-personal-data` (run it daily); 5 years by default.
    personal_data_retention_days: int = Field(default=1825, ge=1)
    # Batch intakes processed at once per worker process; more wait their turn (memory bound).
    # Two: one batch's Python runs while the other waits for PostgreSQL.
    batch_concurrency: int = Field(default=2, ge=1, le=64)
    docs_enabled: bool = True
    # operations (app/observability, app/core/limits.py, app/core/security_headers.py);
    # described in docs/operations.md
    log_format: Literal["json", "text"] = "json"
    log_level: str = "INFO"
    log_access: bool = True  # one access-log line per request (uvicorn's own stays off)
    # The cases' reads and intake solve their dependencies by a plan made at start-up
    # (app/core/planned_routes.py); off: FastAPI solves them for every request.
    planned_routes: bool = True
    # FastAPI's native OpenTelemetry (traces, metrics and logs through the global providers,
    # e.g. under `opentelemetry-instrument`). Off, FastAPI no longer asks the providers on
    # every request whether anyone is listening (docs/operations.md).
    opentelemetry: bool = False
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_batch_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)  # paths ending /batch
    rate_limit_enabled: bool | None = None  # None: on, except when env is test
    rate_limit_intake_per_minute: int = Field(default=600, ge=1)
    rate_limit_auth_per_minute: int = Field(default=30, ge=1)
    trusted_proxies: list[str] = Field(default_factory=list)  # whose X-Forwarded-For counts
    metrics_enabled: bool | None = None  # None: on, except in production without a token
    metrics_token: SecretStr | None = None
    metrics_cache_seconds: float = Field(default=10.0, ge=0, le=300)
    database_pool_pre_ping: bool = False
    # webhooks (app/webhooks): delivery timeouts, retries, the worker's batches and loops
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    webhook_retry_window_hours: float = Field(default=72.0, gt=0, le=24 * 30)
    webhook_retry_base_seconds: float = Field(default=10.0, gt=0)
    webhook_retry_max_seconds: float = Field(default=3600.0, gt=0)
    webhook_batch_size: int = Field(default=500, ge=1, le=10_000)
    webhook_concurrency: int = Field(default=64, ge=1, le=1_000)
    webhook_host_concurrency: int = Field(default=16, ge=1, le=1_000)  # per receiver (origin)
    webhook_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    webhook_overdue_interval_seconds: float = Field(default=60.0, gt=0)
    webhook_overdue_batch: int = Field(default=500, ge=1, le=2_000)
    webhook_secret_grace_hours: float = Field(default=24.0, ge=0, le=24 * 30)
    webhook_retention_days: int = Field(default=30, ge=1)  # finished deliveries, then deleted
    # statistics (app/stats/snapshots.py), described in docs/statistics.md: stats answers are
    # served from stored snapshots younger than this; 0 computes every answer afresh.
    # None: 60 s, except 0 when env is test (tests change data and expect fresh figures).
    stats_max_age_seconds: int | None = Field(default=None, ge=0, le=24 * 3600)
    stats_cache_mb: int = Field(default=64, ge=0, le=4096)  # ready answers kept per process
    stats_refresh_seconds: float = Field(default=10.0, gt=0, le=3600)  # the worker's pass
    stats_refresh_window_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)  # "requested"
    stats_refresh_batch: int = Field(default=20, ge=1, le=1_000)  # recomputed per pass at most
    # PostgreSQL work_mem for the stats statement alone (SET LOCAL); 0: the server's own. Off
    # by default: at 1M cases it ends the sorts' spills but not the time (docs/statistics.md).
    stats_work_mem_mb: int = Field(default=0, ge=0, le=4096)

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

    @field_validator("log_level", mode="before")
    @classmethod
    def _known_level(cls, level: str) -> str:
        level = str(level).upper()
        if not isinstance(logging.getLevelNamesMapping().get(level), int):
            raise ValueError(f"unknown log level {level!r}")
        return level

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError as exc:
                raise ValueError(f"not an IP address or network: {value!r}") from exc
        return values

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
            token = self.metrics_secret
            if self.metrics_enabled and not token:
                raise ValueError(
                    "REGIONDESK_METRICS_TOKEN must be set in production to serve /metrics "
                    "(or set REGIONDESK_METRICS_ENABLED=false)"
                )
            if token and len(token) < 16:
                raise ValueError(
                    "REGIONDESK_METRICS_TOKEN must be at least 16 characters in production"
                )
        return self

    @property
    def metrics_served(self) -> bool:
        # In production /metrics is open only behind a token: without one it is off.
        if self.metrics_enabled is not None:
            return self.metrics_enabled
        return self.env is not Environment.production or self.metrics_secret is not None

    @property
    def metrics_secret(self) -> str | None:
        return (self.metrics_token.get_secret_value() if self.metrics_token else "") or None

    @property
    def rate_limits_on(self) -> bool:
        if self.rate_limit_enabled is not None:
            return self.rate_limit_enabled
        return self.env is not Environment.test

    @property
    def stats_max_age(self) -> int:
        """Seconds a stored stats answer may be served; 0: snapshots are off."""
        if self.stats_max_age_seconds is not None:
            return self.stats_max_age_seconds
        return 0 if self.env is Environment.test else 60

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()


async def app_settings(request: Request) -> Settings:
    """The running app's settings, as a dependency (the app is built with them, so tests and
    several apps in one process each keep their own)."""
    return request.app.state.settings
