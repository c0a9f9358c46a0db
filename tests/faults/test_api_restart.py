"""A restart of the API loses no accepted case: the real server (`python -m app serve`) on a
fresh PostgreSQL database takes concurrent submissions, is killed with SIGKILL right after some
of them were answered, and is started again. Every case answered 201/200 is there exactly once,
and a client retrying with the same post id gets 200 and the same case.

PostgreSQL only: SQLite is the one-process store (README), not what production restarts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from app.core.config import Settings
from tests import factories
from tests.conftest import ROOT, TEST_SECRET, _admin_pg_url, _pg_exec, bearer, run_migrations

SUBMISSIONS = 120
CONCURRENCY = 16
KILL_AFTER = 30  # answers received before the SIGKILL


@pytest.fixture
def fresh_pg(database_url: str) -> Iterator[str]:
    """A database of its own (the server's writes must not meet the suite's tables)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite is the single-process store, not restarted in prod")
    admin = _admin_pg_url()
    name = f"regiondesk_fault_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_exec(admin, f'CREATE DATABASE "{name}"'))
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    try:
        run_migrations(url)
        yield url
    finally:
        asyncio.run(_pg_exec(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    def __init__(self, url: str, port: int, log: Path):
        self.url, self.port, self.log = url, port, log
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGIONDESK_")}
        env |= {
            "REGIONDESK_DATABASE_URL": self.url,
            "REGIONDESK_ENV": "test",
            "REGIONDESK_SECRET_KEY": TEST_SECRET,
            "REGIONDESK_LOG_ACCESS": "false",
            "PYTHONPATH": str(ROOT),
        }
        cmd = [sys.executable, "-m", "app", "serve", "--port", str(self.port)]
        with self.log.open("a") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=out)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/health/ready", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise AssertionError(f"the API did not come up:\n{self.log.read_text()}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def api(fresh_pg: str, tmp_path: Path) -> Iterator[Api]:
    server = Api(fresh_pg, _free_port(), tmp_path / "api.log")
    try:
        yield server
    finally:
        server.kill()


async def _add_client(url: str) -> int:
    engine = create_async_engine(url)
    try:
        async with AsyncSession(engine) as session:
            machine = factories.api_client(source_system="monitoring")
            session.add(machine)
            await session.flush()
            pk = machine.id
            await session.commit()
            return pk
    finally:
        await engine.dispose()


async def _rows(url: str) -> dict[str, list[int]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT external_id, id FROM case_file WHERE source_system = 'monitoring'")
            )
            found: dict[str, list[int]] = {}
            for external_id, case_id in rows:
                found.setdefault(external_id, []).append(case_id)
            return found
    finally:
        await engine.dispose()


def _incident(post_id: str) -> dict:
    return {
        "network": "vk",
        "post_url": "https://vk.com/wall-1_2",
        "post_id": post_id,
        "author_handle": "ivan_petrov",
        "published_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "text": "На улице Красной огромные ямы",
    }


async def _submit_until_killed(api: Api, headers: dict, post_ids: list[str]) -> dict[str, dict]:
    """Submits concurrently; kills the server once KILL_AFTER answers are in. Returns the
    answered submissions (post id -> {status, id}); the rest got no answer."""
    answered: dict[str, dict] = {}
    queue: asyncio.Queue[str] = asyncio.Queue()
    for post_id in post_ids:
        queue.put_nowait(post_id)

    async def submitter(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            post_id = queue.get_nowait()
            try:
                response = await http.post("/api/v1/incidents", json=_incident(post_id))
            except httpx.TransportError:
                continue  # no answer: the client does not know, and will retry
            assert response.status_code in (200, 201), response.text
            answered[post_id] = {"status": response.status_code, "id": response.json()["id"]}
            if len(answered) == KILL_AFTER:
                api.kill()

    timeout = httpx.Timeout(10.0)
    async with httpx.AsyncClient(base_url=api.base, headers=headers, timeout=timeout) as http:
        await asyncio.gather(*(submitter(http) for _ in range(CONCURRENCY)))
    return answered


def test_a_killed_and_restarted_api_loses_no_accepted_case(api: Api, fresh_pg: str):
    client_pk = asyncio.run(_add_client(fresh_pg))
    settings = Settings(_env_file=None, env="test", database_url=fresh_pg, secret_key=TEST_SECRET)
    headers = bearer(settings, f"client:{client_pk}", "integration", lifetime=timedelta(hours=1))
    post_ids = [f"restart-{n}" for n in range(SUBMISSIONS)]

    api.start()
    answered = asyncio.run(_submit_until_killed(api, headers, post_ids))
    assert api.proc is not None and api.proc.returncode == -signal.SIGKILL, "not killed"
    assert len(answered) >= KILL_AFTER
    assert len(answered) < SUBMISSIONS, "the kill came after every answer: nothing tested"

    api.start()
    stored = asyncio.run(_rows(fresh_pg))
    for post_id, answer in answered.items():
        assert stored.get(post_id) == [answer["id"]], (post_id, answer, stored.get(post_id))
    assert all(len(ids) == 1 for ids in stored.values())

    # The client retries everything it sent: answered ones come back as they were; unanswered
    # ones are created now, or found if the kill came between the commit and the answer.
    with httpx.Client(base_url=api.base, headers=headers, timeout=10) as http:
        for post_id in post_ids:
            response = http.post("/api/v1/incidents", json=_incident(post_id))
            if post_id in answered:
                assert response.status_code == 200, response.text
                assert response.json()["id"] == answered[post_id]["id"]
            else:
                assert response.status_code in (200, 201), response.text
                if post_id in stored:
                    assert response.status_code == 200
                    assert response.json()["id"] == stored[post_id][0]
    final = asyncio.run(_rows(fresh_pg))
    assert sorted(final) == sorted(post_ids)
    assert all(len(ids) == 1 for ids in final.values())
