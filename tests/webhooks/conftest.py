"""Webhook test harness: a real HTTP receiver on 127.0.0.1, a fake DNS, and the worker driven
one pass at a time on the app's own event loop and database."""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import insert, select

from app.cases.models import Case, CaseEvent
from app.core.types import utcnow
from app.webhooks import ssrf
from app.webhooks.delivery import Worker
from app.webhooks.models import WebhookAllowlistEntry, WebhookDelivery, WebhookEvent
from tests.cases.conftest import world  # noqa: F401  (the world fixture)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers each POST with the next scripted reply (a status, or ("sleep", s) to hang past
    the worker's timeout), then 200; records every request."""

    port: int = 0
    script: list[Any] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    on_request: Any = None  # called (in the server's thread) after each recorded request
    hold: threading.Event | None = None  # when given, each request waits for it (a hung receiver)
    in_flight: int = 0
    most_in_flight: int = 0  # requests answered at the same time, at most

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def reply(self, *steps: Any) -> None:
        with self.lock:
            self.script.extend(steps)

    def next_step(self) -> Any:
        with self.lock:
            return self.script.pop(0) if self.script else 200

    def record(self, item: Received) -> None:
        with self.lock:
            self.received.append(item)
        if self.on_request is not None:
            self.on_request()

    def bodies(self) -> list[dict[str, Any]]:
        return [r.json for r in self.received]

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def enter(self) -> None:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1


def _serve(state: Receiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as receivers do

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.enter()
            try:
                self._answer(body)
            finally:
                state.leave()

        def _answer(self, body: bytes) -> None:
            step = state.next_step()
            if isinstance(step, tuple) and step[0] == "sleep":
                time.sleep(step[1])
                step = 200
            else:
                state.record(Received(self.path, dict(self.headers.items()), body))
            if state.hold is not None:
                state.hold.wait(timeout=60)
            status = 302 if isinstance(step, tuple) else step
            reply = b"receiver says no" if status >= 300 else b"ok"
            try:
                self.send_response(status)
                if isinstance(step, tuple):  # ("redirect", location)
                    self.send_header("Location", step[1])
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the worker gave up waiting (the timeout test)

        def log_message(self, *args):  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def make_receiver() -> Iterator[Callable[[], Receiver]]:
    """make_receiver() -> another receiver on a port of its own (another origin)."""
    made: list[tuple[Receiver, ThreadingHTTPServer]] = []

    def make() -> Receiver:
        state = Receiver()
        made.append((state, _serve(state)))
        return state

    yield make
    for state, server in made:
        if state.hold is not None:
            state.hold.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver(make_receiver) -> Receiver:
    return make_receiver()


class FakeDNS:
    """Names the tests need, without the network; IP literals resolve to themselves."""

    def __init__(self) -> None:
        self.names: dict[str, list[str]] = {
            "localhost": ["127.0.0.1", "::1"],
            "hooks.example.org": ["93.184.216.34"],
        }

    async def __call__(self, host: str, port: int) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            pass
        if host not in self.names:
            raise ssrf.UrlRefused(f"the host {host} does not resolve")
        return list(self.names[host])


@pytest.fixture(autouse=True)
def dns(monkeypatch) -> FakeDNS:
    fake = FakeDNS()
    monkeypatch.setattr(ssrf, "resolve_host", fake)
    return fake


class SyncWorker:
    """The worker's steps, called from test code, run on the app's event loop."""

    def __init__(self, client, worker: Worker):
        self.client = client
        self.worker = worker

    def __getattr__(self, name: str):
        step = getattr(self.worker, name)

        def call(*args, **kw):
            async def go():
                return await step(*args, **kw)

            return self.client.portal.call(go)

        return call


@pytest.fixture
def make_worker(client, settings):
    """make_worker(**settings overrides) -> a SyncWorker over the test database."""
    made: list[Worker] = []

    def make(sessionmaker=None, name: str | None = None, **overrides) -> SyncWorker:
        worker_settings = settings.model_copy(
            update={"webhook_timeout_seconds": 2.0, "webhook_retry_base_seconds": 10.0, **overrides}
        )

        async def build():
            return Worker(
                worker_settings,
                sessionmaker or client.app.state.sessionmaker,
                rng=lambda: 0.5,
                name=name,
            )

        worker = client.portal.call(build)
        made.append(worker)
        return SyncWorker(client, worker)

    yield make
    for worker in made:
        client.portal.call(worker.aclose)


@pytest.fixture
def worker(make_worker) -> SyncWorker:
    return make_worker()


@pytest.fixture
def admin(auth) -> dict[str, str]:
    return auth.headers("admin")


@pytest.fixture
def local_allowed(db) -> None:
    """127.0.0.1 (the receiver) on the allowlist, as an admin would put a ministry system."""
    db.add(WebhookAllowlistEntry(entry="127.0.0.1/32", created_by="test"))


def subscribe(client, headers, url: str, **body) -> dict[str, Any]:
    response = client.post("/api/v1/webhooks", json={"url": url, **body}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def deliveries(db, **where) -> list[WebhookDelivery]:
    async def work(session):
        stmt = select(WebhookDelivery).order_by(WebhookDelivery.id)
        for key, value in where.items():
            stmt = stmt.where(getattr(WebhookDelivery, key) == value)
        return list((await session.execute(stmt)).scalars().all())

    return db.run(work)


def outbox(db) -> list[WebhookEvent]:
    async def work(session):
        stmt = select(WebhookEvent).order_by(WebhookEvent.id)
        return list((await session.execute(stmt)).scalars().all())

    return db.run(work)


def many_cases(db, n: int, *, due_at=None) -> list[int]:
    """n cases with their `create` events, inserted in bulk (the trigger fills the outbox)."""

    async def work(session):
        now = utcnow()
        cases = [
            Case(
                kind="incident",
                status="assigned" if due_at else "new",
                source_system="monitoring",
                submitted_by="client:1",
                text=f"Обращение {i}",
                due_at=due_at,
            )
            for i in range(n)
        ]
        session.add_all(cases)
        await session.flush()
        await session.execute(
            insert(CaseEvent.__table__),
            [
                {
                    "case_id": c.id,
                    "action": "create",
                    "actor": "client:1",
                    "actor_name": "Мониторинг",
                    "actor_role": "integration",
                    "created_at": now,
                }
                for c in cases
            ],
        )
        return [c.id for c in cases]

    return db.run(work)
