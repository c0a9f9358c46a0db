"""The command line (python -m app): migrate, seed-demo, create-user, create-client."""

from __future__ import annotations

import sqlite3

import pytest

from app.__main__ import main
from app.core.config import get_settings
from app.core.passwords import verify_secret
from tests.reference import cheap_argon2

PASSWORD = "a-long-enough-password"


pytestmark = pytest.mark.usefixtures("restore_logging")


@pytest.fixture
def db_file(tmp_path, monkeypatch):
    """A fresh SQLite file that the CLI's settings point at (no .env, no stray settings)."""
    path = tmp_path / "cli.db"
    monkeypatch.chdir(tmp_path)
    for name in ("REGIONDESK_ENV", "REGIONDESK_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REGIONDESK_DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    cheap_argon2(monkeypatch)
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


@pytest.fixture
def migrated(db_file):
    assert main(["migrate"]) == 0
    return db_file


def query(path, sql: str, *params):
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, params).fetchall()


def test_migrate_builds_the_schema_and_is_repeatable(db_file, capsys):
    assert not db_file.exists()
    assert main(["migrate"]) == 0
    tables = {row[0] for row in query(db_file, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {
        "category",
        "territory",
        "agency",
        "agency_sector",
        "user_account",
        "api_client",
        "alembic_version",
    } <= tables
    (version,) = query(db_file, "SELECT version_num FROM alembic_version")
    assert main(["migrate"]) == 0  # already at head: nothing to do, no error
    assert query(db_file, "SELECT version_num FROM alembic_version") == [version]


def test_seed_demo_loads_the_region_and_prints_the_logins(migrated, capsys):
    assert main(["seed-demo"]) == 0
    out = capsys.readouterr().out
    assert "52 agencies" in out and "70 categories" in out
    assert "Demo logins" in out
    assert "admin" in out and "demo-admin-2026" in out
    assert "client_secret: demo-incident-secret-2026" in out
    assert query(migrated, "SELECT count(*) FROM agency") == [(52,)]
    assert query(migrated, "SELECT count(*) FROM territory") == [(45,)]
    (stored,) = query(migrated, "SELECT password_hash FROM user_account WHERE username='admin'")
    assert verify_secret(stored[0], "demo-admin-2026")

    assert main(["seed-demo"]) == 0
    assert "nothing new" in capsys.readouterr().out
    assert query(migrated, "SELECT count(*) FROM agency") == [(52,)]


def test_seed_demo_is_refused_in_production(migrated, monkeypatch, capsys):
    monkeypatch.setenv("REGIONDESK_ENV", "production")
    monkeypatch.setenv("REGIONDESK_SECRET_KEY", "p" * 40)
    get_settings.cache_clear()
    assert main(["seed-demo"]) == 2
    assert "production" in capsys.readouterr().err
    assert query(migrated, "SELECT count(*) FROM user_account") == [(0,)]


def test_create_user(migrated, capsys):
    rc = main(
        [
            "create-user",
            "--username",
            "ivanov",
            "--password",
            PASSWORD,
            "--role",
            "admin",
            "--full-name",
            "Иванов Иван",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "ivanov" in out and "admin" in out
    rows = query(
        migrated,
        "SELECT role, full_name, password_hash, agency_id FROM user_account "
        "WHERE username='ivanov'",
    )
    assert len(rows) == 1
    role, full_name, password_hash, agency_id = rows[0]
    assert (role, full_name, agency_id) == ("admin", "Иванов Иван", None)
    assert password_hash != PASSWORD and verify_secret(password_hash, PASSWORD)

    # The same username again is a clash, reported without a traceback.
    assert (
        main(["create-user", "--username", "ivanov", "--password", PASSWORD, "--role", "operator"])
        == 2
    )
    assert "already exists" in capsys.readouterr().err


def test_create_user_refusals(migrated, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["create-user", "--username", "x-user", "--password", PASSWORD, "--role", "root"])
    assert exc.value.code == 2
    assert "--role" in capsys.readouterr().err

    assert (
        main(["create-user", "--username", "x-user", "--password", "short", "--role", "operator"])
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("error:") and "password" in err

    assert (
        main(
            [
                "create-user",
                "--username",
                "x-user",
                "--password",
                PASSWORD,
                "--role",
                "agency",
                "--agency",
                "no-such-agency",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "--agency" in err and "no-such-agency" in err

    assert (
        main(["create-user", "--username", "x-user", "--password", PASSWORD, "--role", "agency"])
        == 2
    )
    assert "agency_id" in capsys.readouterr().err
    assert query(migrated, "SELECT count(*) FROM user_account") == [(0,)]


def test_create_agency_user_bound_by_agency_code(migrated, capsys):
    assert main(["seed-demo"]) == 0
    assert (
        main(
            [
                "create-user",
                "--username",
                "sochi-clerk",
                "--password",
                PASSWORD,
                "--role",
                "agency",
                "--agency",
                "adm-sochi",
            ]
        )
        == 0
    )
    rows = query(
        migrated,
        "SELECT a.code FROM user_account u JOIN agency a ON a.id = u.agency_id "
        "WHERE u.username = 'sochi-clerk'",
    )
    assert rows == [("adm-sochi",)]


def test_create_client_prints_its_id_and_secret(migrated, capsys):
    assert main(["create-client", "--name", "Мониторинг", "--source", "monitoring"]) == 0
    lines = dict(
        line.split(": ", 1) for line in capsys.readouterr().out.splitlines() if ": " in line
    )
    assert lines["client_id"] == "monitoring"
    secret = lines["client_secret"]
    rows = query(migrated, "SELECT role, source_system, secret_hash FROM api_client")
    assert len(rows) == 1
    role, source, secret_hash = rows[0]
    assert (role, source) == ("integration", "monitoring")
    assert secret not in secret_hash and verify_secret(secret_hash, secret)

    assert main(["create-client", "--name", "Again", "--source", "monitoring"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["create-client", "--name", "Bad", "--source", "Not Valid"]) == 2
    assert "source_system" in capsys.readouterr().err


def test_production_with_the_default_secret_refuses_to_migrate(db_file, monkeypatch, capsys):
    monkeypatch.setenv("REGIONDESK_ENV", "production")
    get_settings.cache_clear()
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert "REGIONDESK_SECRET_KEY" in err
    assert "Traceback" not in err
    assert not db_file.exists()  # nothing was touched


def test_a_fresh_process_migrates_and_seeds(db_file):
    """As `make run` does it: each command in its own interpreter, with nothing imported
    beforehand (inside the test run, other tests have loaded every model already)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "REGIONDESK_DATABASE_URL": f"sqlite+aiosqlite:///{db_file}"}
    for command in (["migrate"], ["seed-demo"]):
        done = subprocess.run(
            [sys.executable, "-m", "app", *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        assert done.returncode == 0, done.stderr[-2000:]
    assert query(db_file, "SELECT count(*) FROM agency") == [(52,)]
