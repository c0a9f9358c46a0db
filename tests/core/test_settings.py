"""Settings refuse unsafe or meaningless configuration before the service starts."""

from __future__ import annotations

import os
from datetime import time

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.core import config as config_module
from app.core.config import DEFAULT_SECRET, Environment, Settings
from app.main import create_app

GOOD_SECRET = "s" * 40


def make(**kw) -> Settings:
    return Settings(_env_file=None, **kw)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """No REGIONDESK_ variable from the outer environment leaks into these tests."""
    for name in list(os.environ):
        if name.startswith("REGIONDESK_"):
            monkeypatch.delenv(name)
    config_module.get_settings.cache_clear()
    yield
    config_module.get_settings.cache_clear()


# --- production safety ------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param(DEFAULT_SECRET, id="default"),
        pytest.param("", id="empty"),
        pytest.param("short-secret", id="short"),
        pytest.param("x" * 31, id="31-chars"),
    ],
)
def test_production_refuses_a_weak_secret(secret):
    with pytest.raises(ValidationError, match="REGIONDESK_SECRET_KEY"):
        make(env="production", secret_key=secret)


def test_production_refuses_a_missing_secret():
    with pytest.raises(ValidationError, match="REGIONDESK_SECRET_KEY"):
        make(env="production")


def test_production_accepts_a_long_private_secret():
    settings = make(env="production", secret_key="x" * 32)
    assert settings.env is Environment.production


def test_production_refuses_wildcard_cors():
    with pytest.raises(ValidationError, match="REGIONDESK_CORS_ORIGINS"):
        make(env="production", secret_key=GOOD_SECRET, cors_origins=["https://a.example", "*"])
    settings = make(env="production", secret_key=GOOD_SECRET, cors_origins=["https://a.example"])
    assert settings.cors_origins == ["https://a.example"]


@pytest.mark.parametrize("env", ["dev", "test"])
def test_dev_and_test_accept_defaults(env):
    settings = make(env=env)
    assert settings.secret_key == DEFAULT_SECRET
    assert settings.env == env
    assert make(env=env, cors_origins=["*"]).cors_origins == ["*"]


def test_production_read_from_the_environment_refuses_the_default_secret(monkeypatch):
    monkeypatch.setenv("REGIONDESK_ENV", "production")
    with pytest.raises(ValidationError, match="REGIONDESK_SECRET_KEY"):
        Settings(_env_file=None)


def test_create_app_in_production_with_the_default_secret_cannot_be_built(monkeypatch):
    monkeypatch.setenv("REGIONDESK_ENV", "production")
    config_module.get_settings.cache_clear()
    with pytest.raises(ValidationError, match="REGIONDESK_SECRET_KEY"):
        create_app()


# --- database URL -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db:5432/rd", "postgresql+asyncpg://u:p@db:5432/rd"),
        ("postgres://u:p@db/rd", "postgresql+asyncpg://u:p@db/rd"),
        ("postgresql+psycopg://u@db/rd", "postgresql+asyncpg://u@db/rd"),
        ("postgresql+psycopg2://u@db/rd", "postgresql+asyncpg://u@db/rd"),
        ("postgresql+asyncpg://u@db/rd", "postgresql+asyncpg://u@db/rd"),
        ("sqlite:///./x.db", "sqlite+aiosqlite:///./x.db"),
        ("sqlite+aiosqlite:///./x.db", "sqlite+aiosqlite:///./x.db"),
    ],
)
def test_database_url_gets_the_async_driver(given, expected):
    settings = make(database_url=given)
    assert settings.database_url == expected
    assert settings.is_sqlite is expected.startswith("sqlite")


# --- time -------------------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "Europe/Moskva", "", "../etc/passwd"])
def test_unknown_time_zone_is_refused(zone):
    with pytest.raises(ValidationError, match="unknown time zone"):
        make(timezone=zone)


def test_known_time_zone_is_accepted():
    settings = make(timezone="Asia/Vladivostok")
    assert settings.tz.key == "Asia/Vladivostok"


@pytest.mark.parametrize(("start", "end"), [(time(9), time(9)), (time(18), time(9))])
def test_working_day_must_end_after_it_starts(start, end):
    with pytest.raises(ValidationError, match="REGIONDESK_WORKING_DAY_END"):
        make(working_day_start=start, working_day_end=end)


# --- the environment --------------------------------------------------------------------


def test_prefixed_environment_variables_are_read(monkeypatch):
    monkeypatch.setenv("REGIONDESK_DATABASE_URL", "postgresql://env@db/rd")
    monkeypatch.setenv("REGIONDESK_ACCESS_TOKEN_MINUTES", "7")
    monkeypatch.setenv("REGIONDESK_CORS_ORIGINS", '["https://a.example","https://b.example"]')
    monkeypatch.setenv("REGIONDESK_TIMEZONE", "Asia/Yekaterinburg")
    monkeypatch.setenv("REGIONDESK_DOCS_ENABLED", "false")
    monkeypatch.setenv("ACCESS_TOKEN_MINUTES", "99")  # without the prefix: ignored
    settings = Settings(_env_file=None)
    assert settings.database_url == "postgresql+asyncpg://env@db/rd"
    assert settings.access_token_minutes == 7
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.timezone == "Asia/Yekaterinburg"
    assert settings.docs_enabled is False


def test_get_settings_reads_the_environment(monkeypatch):
    monkeypatch.setenv("REGIONDESK_LOGIN_MAX_FAILURES", "9")
    config_module.get_settings.cache_clear()
    assert config_module.get_settings().login_max_failures == 9


def test_invalid_environment_values_are_refused(monkeypatch):
    monkeypatch.setenv("REGIONDESK_ACCESS_TOKEN_MINUTES", "0")
    with pytest.raises(ValidationError, match="access_token_minutes"):
        Settings(_env_file=None)


# --- API docs ---------------------------------------------------------------------------


def _app_client(tmp_path, **kw) -> TestClient:
    settings = make(database_url=f"sqlite+aiosqlite:///{tmp_path}/docs.db", **kw)
    return TestClient(create_app(settings), raise_server_exceptions=False)


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_docs_can_be_turned_off(tmp_path, path):
    with _app_client(tmp_path, docs_enabled=True) as on:
        assert on.get(path).status_code == 200
    with _app_client(tmp_path, docs_enabled=False) as off:
        response = off.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
