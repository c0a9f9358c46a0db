"""What a serving process does once at start-up."""

from __future__ import annotations

import gc
import subprocess
import sys
import tomllib
import weakref
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from app.core import passwords
from app.core.config import Settings
from app.deadlines import calendar
from app.main import create_app

ROOT = Path(__file__).resolve().parents[2]


def _settings(tmp_path: Path, env: str) -> Settings:
    return Settings(
        _env_file=None,
        env=env,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/s.db",
        secret_key="a-secret-long-enough-for-production-checks-0123456789",
        cors_origins=[],
    )


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()  # what a test froze is collectable again


@pytest.mark.parametrize(("env", "frozen"), [("dev", True), ("production", True), ("test", False)])
def test_a_serving_process_moves_its_start_up_objects_out_of_the_collector(
    tmp_path, unfrozen, env, frozen
):
    # Full collections then skip the long-lived objects: the latency tail under load halved
    # (docs/benchmarks.md). Test processes build many apps and keep nothing frozen.
    with TestClient(create_app(_settings(tmp_path, env))):
        assert (gc.get_freeze_count() > 0) is frozen


@pytest.mark.parametrize(("env", "built"), [("dev", 2), ("production", 2), ("test", 0)])
def test_a_serving_process_builds_the_holiday_tables_before_its_first_deadline(
    tmp_path, unfrozen, env, built
):
    # The first holidays.RU loads every country's module of the library (8 MB): at start-up,
    # frozen with the rest, not in the first routed intake's answer (94-96 ms against 39-42).
    calendar._ru_year.cache_clear()
    with TestClient(create_app(_settings(tmp_path, env))):
        assert calendar._ru_year.cache_info().currsize == built
        year = datetime.now(UTC).year
        calendar._ru_year(year), calendar._ru_year(year + 1)
        assert calendar._ru_year.cache_info().misses == 2  # this year and the next, once


def test_importing_the_app_hashes_no_password():
    # The dummy hash that makes an unknown login cost what a known one costs is made on first
    # use: one Argon2id hash holds 64 MiB for a moment, and every process importing the app (API,
    # webhook worker, CLI) used to pay it at import, peaking at about 140 MB before serving.
    code = (
        "import argon2\n"
        "calls = []\n"
        "hash_ = argon2.PasswordHasher.hash\n"
        "argon2.PasswordHasher.hash = lambda *a, **k: calls.append(1) or hash_(*a, **k)\n"
        "import app.main, app.webhooks.delivery, app.__main__\n"
        "print(len(calls))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == "0"


def test_an_unknown_account_still_costs_one_argon2_verification(monkeypatch):
    verified = []
    real = PasswordHasher.verify
    monkeypatch.setattr(
        PasswordHasher, "verify", lambda self, h, s: verified.append(h) or real(self, h, s)
    )
    assert passwords.verify_secret(None, "anything") is False
    assert passwords.verify_secret(None, "anything") is False
    assert len(verified) == 2 and verified[0] == verified[1]  # the same dummy, made once
    assert verified[0].startswith("$argon2id$")


def _imported_by_the_app(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return done.stdout.strip()


def test_tokens_are_signed_and_checked_without_the_cryptography_package():
    # python-jose signs HS256 with the standard library's hmac; its `cryptography` backend (7 MB
    # of OpenSSL bindings in every process) is not a dependency, and nothing may need it.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [
        *project["dependencies"],
        *(d for ds in project["optional-dependencies"].values() for d in ds),
    ]
    assert not [d for d in wanted if "cryptography" in d], "python-jose imports it when installed"
    code = (
        "import sys\n"
        "sys.modules['cryptography'] = None  # any import of it fails\n"
        "from datetime import timedelta\n"
        "import app.main, app.webhooks.delivery, app.__main__\n"
        "from app.core.config import Settings\n"
        "from app.core import tokens\n"
        "s = Settings(_env_file=None, secret_key='k' * 48)\n"
        "t = tokens.issue_access_token(s, subject='user:1', role='operator', scopes=['cases:read'],"
        " lifetime=timedelta(minutes=5))\n"
        "print(tokens.decode_access_token(s, t).sub)\n"
    )
    assert _imported_by_the_app(code) == "user:1"


def test_importing_the_app_leaves_the_xlsx_writer_for_the_first_export():
    code = "import sys, app.main\nprint('xlsxwriter' in sys.modules)\n"
    assert _imported_by_the_app(code) == "False"


def test_an_app_no_longer_used_is_freed_with_its_state(tmp_path, unfrozen):
    # FastAPI keeps the endpoints it has classified in process-wide caches (thousands of
    # entries): an endpoint closing over its app would keep every app made in the process
    # alive, with its engine and caches (the test suite's workers grew to millions of objects).
    settings = Settings(
        _env_file=None,
        env="test",  # a serving process freezes what start-up made (the test above)
        database_url=f"sqlite+aiosqlite:///{tmp_path}/s.db",
        secret_key="a-secret-long-enough-for-production-checks-0123456789",
    )
    assert settings.docs_enabled
    app = create_app(settings)
    with TestClient(app) as client:
        for page in ("/docs", "/redoc"):
            assert client.get(page).status_code == 200
    gone = weakref.ref(app)
    del app, client
    gc.collect()
    assert gone() is None
