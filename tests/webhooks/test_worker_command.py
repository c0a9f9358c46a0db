"""The worker as a process: `python -m app worker [--once]`, its loops, and a clean stop."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app.__main__ import main
from app.core.config import get_settings
from tests.cases.conftest import incident
from tests.webhooks.conftest import deliveries, subscribe

ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("restore_logging")


@pytest.fixture
def sqlite_file(tmp_path, monkeypatch):
    path = tmp_path / "worker.db"
    monkeypatch.chdir(tmp_path)
    for name in ("REGIONDESK_ENV", "REGIONDESK_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REGIONDESK_DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    get_settings.cache_clear()
    assert main(["migrate"]) == 0
    yield path
    get_settings.cache_clear()


def _add_case_event(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO case_file (kind, status, priority, version, source_system, "
            "submitted_by, text, missing_person, important, reopen_count, created_at, updated_at) "
            "VALUES ('incident', 'new', 'normal', 1, 'monitoring', 'client:1', 'Яма', 0, 0, 0, "
            "'2026-11-28 10:00:00', '2026-11-28 10:00:00')"
        )
        conn.execute(
            "INSERT INTO case_event (case_id, action, actor, actor_name, actor_role, created_at) "
            "VALUES (1, 'create', 'client:1', 'Мониторинг', 'integration', '2026-11-28 10:00:00')"
        )


def test_worker_once_runs_one_pass_on_sqlite(sqlite_file, capsys):
    _add_case_event(sqlite_file)
    assert main(["worker", "--once"]) == 0
    assert "dispatched: 1" in capsys.readouterr().out
    with sqlite3.connect(sqlite_file) as conn:
        pending = conn.execute("SELECT count(*) FROM webhook_event WHERE dispatched_at IS NULL")
        assert pending.fetchall() == [(0,)]


def test_worker_process_stops_cleanly_on_sigterm(sqlite_file):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "worker"],
        cwd=sqlite_file.parent,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in process.stderr:  # wait until it says it runs
            if "started" in line:
                break
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "stopped" in err


@pytest.mark.usefixtures("local_allowed")
def test_the_running_loops_deliver_and_finish_the_batch_in_flight_when_stopped(
    client, auth, admin, db, make_worker, receiver
):
    """The long-running worker (its loops, not one pass) delivers an event; stopping it
    while the request is in flight still records the outcome."""
    subscribe(client, admin, receiver.url)
    client.post("/api/v1/incidents", json=incident(), headers=auth.headers("operator"))
    worker = make_worker(webhook_poll_seconds=0.05).worker

    async def run():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        receiver.on_request = lambda: loop.call_soon_threadsafe(stop.set)
        await worker.run(stop)

    client.portal.call(run)
    assert len(receiver.received) == 1
    [d] = deliveries(db)
    assert d.status == "delivered" and d.locked_by is None
