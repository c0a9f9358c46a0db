"""CPU per request of one route, in process: raw ASGI calls into the app (no server, no wrk),
so the figure is the app's own work, steady on a machine that other work shares.

    python -m bench.inprocess postgresql://postgres@127.0.0.1:5432/regiondesk_bench_1m_get
    python -m bench.inprocess --scenario queue postgresql://…/regiondesk_bench_1m_get
    python -m bench.inprocess --scenario create postgresql://…/regiondesk_bench_1m_get

`get` (the default) logs in as the demo agency user of adm-krasnodar (the get scenario's
caller) and reads random cases within that agency's reach; `queue` logs in as the operator and
reads the first pages of the queue scenario's eight filters (bench/run.py), in turn; `create`
logs in as the incident-management client and files the create scenario's incidents
(bench.run.incident_bodies), each with a source id of its own: it writes, so run it on a copy.
Requests go `--concurrency` at a time; it prints the process CPU time (time.process_time) per
request of each round and the best round. Logging is set up as the service sets it up (JSON),
written to /dev/null. Compare two branches by running it from each, alternately, a few times.
"""

# ruff: noqa: S311

from __future__ import annotations

import argparse
import asyncio
import logging.config
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import orjson
import uvloop
from sqlalchemy import event

from app.core.config import Settings
from app.main import create_app
from app.observability.logging import logging_config
from bench.generate import asyncpg_dsn
from bench.run import INCIDENT_CATEGORIES, INCIDENT_TERRITORIES, incident_bodies

LOGINS = {
    "get": b"grant_type=password&username=krasnodar&password=demo-krasnodar-2026",
    "queue": b"grant_type=password&username=operator&password=demo-operator-2026",
    "create": b"grant_type=client_credentials&client_id=incident-management"
    b"&client_secret=demo-incident-secret-2026",
}
# The queue scenario's filters (bench/run.py, Bench.queue), {names} filled from the database.
QUEUE_FILTERS = (
    "{open}&limit=50&sort=-created_at",
    "{open}&limit=50&sort=due_at",
    "{open}&limit=50&sort=-created_at&territory_id={krasnodar}",
    "{open}&limit=50&sort=-created_at&category_id={roads}",
    "{open}&limit=50&sort=due_at&overdue=true",
    "{open}&limit=50&sort=-created_at&kind=incident&priority=high",
    "status=new&status=returned&limit=50&sort=-created_at",
    "{open}&limit=50&sort=-updated_at&territory_id={sochi}&category_id={housing_utilities}",
)
OPEN = "status=new&status=assigned&status=in_progress&status=returned"


async def call(
    app: Any, method: str, path: str, headers: list, body: bytes = b"", query: bytes = b""
) -> dict:
    """One request through the ASGI app; the answer's status, headers and body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # never: nothing reads past the body
        return {}

    answer: dict[str, Any] = {"body": b""}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            answer["status"], answer["headers"] = message["status"], message["headers"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return answer


async def queue_queries(conn: asyncpg.Connection) -> list[str]:
    """QUEUE_FILTERS as query strings, with the ids of the territories and categories they
    name read from the database."""
    names = {
        r["code"]: r["id"]
        for r in await conn.fetch(
            "SELECT code, id FROM territory WHERE code IN ('krasnodar', 'sochi') UNION ALL "
            "SELECT code, id FROM category WHERE code IN ('roads', 'housing_utilities')"
        )
    }
    return [shape.format(open=OPEN, **names) for shape in QUEUE_FILTERS]


async def logged_in(app: Any, scenario: str) -> list[tuple[bytes, bytes]]:
    """The headers of a request by the demo account of `scenario` (LOGINS), logged in through
    the app's own token endpoint."""
    form = [
        (b"host", b"bench"),
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"content-length", str(len(LOGINS[scenario])).encode()),
    ]
    login = await call(app, "POST", "/api/v1/auth/token", form, LOGINS[scenario])
    token = orjson.loads(login["body"])["access_token"]
    return [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())]


@contextmanager
def case_statements(app: Any) -> Iterator[list[tuple[str, tuple]]]:
    """The SQL and parameters of each statement on case_file the app sends meanwhile, in
    order. Listened to, the engine sends each statement through a SQLAlchemy Connection
    (app.core.db._fetch_pooled): the same SQL and parameters."""
    sent: list[tuple[str, tuple]] = []

    def caught(connection, cursor, statement, parameters, *args) -> None:
        if "case_file" in statement:
            sent.append((statement, tuple(parameters or ())))

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", caught)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", caught)


async def list_page(
    app: Any, headers: list, query: str, sent: list[tuple[str, tuple]]
) -> tuple[dict[str, Any], tuple[str, tuple]]:
    """A page of GET /api/v1/cases?`query` and the statement on case_file that read it (the
    last one `sent`, a case_statements() list, caught); stops the program on any other answer
    than 200."""
    sent.clear()
    answer = await call(app, "GET", "/api/v1/cases", headers, query=query.encode())
    if answer["status"] != 200:
        raise SystemExit(f"{query} answered {answer['status']}: {answer['body']!r}")
    return orjson.loads(answer["body"]), sent[-1]


async def measure(opts: argparse.Namespace, settings: Settings) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(opts.database_url))
    try:
        agency = await conn.fetchval("SELECT id FROM agency WHERE code = 'adm-krasnodar'")
        ids = [
            r[0]
            for r in await conn.fetch(
                "SELECT case_id FROM case_agency WHERE agency_id = $1 ORDER BY random() LIMIT 2000",
                agency,
            )
        ]
        queries = [query.encode() for query in await queue_queries(conn)]
        categories = await conn.fetch(
            "SELECT code, id FROM category WHERE code = ANY($1)", list(INCIDENT_CATEGORIES)
        )
        territories = await conn.fetch(
            "SELECT id FROM territory WHERE code = ANY($1)", list(INCIDENT_TERRITORIES)
        )
    finally:
        await conn.close()

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        headers = await logged_in(app, opts.scenario)
        turn = iter(range(1 << 62))
        bodies = incident_bodies(
            {r["code"]: r["id"] for r in categories}, [r["id"] for r in territories]
        )
        run_id = f"inprocess-{time.time_ns()}"
        posted = [*headers, (b"content-type", b"application/json")]

        async def client(n: int) -> None:
            for _ in range(n):
                if opts.scenario == "queue":
                    query = queries[next(turn) % len(queries)]
                    answer = await call(app, "GET", "/api/v1/cases", headers, query=query)
                elif opts.scenario == "create":
                    k = next(turn)
                    prefix, suffix = bodies[k % len(bodies)]
                    body = f"{prefix}{run_id}-{k}{suffix}".encode()
                    length = (b"content-length", str(len(body)).encode())
                    answer = await call(app, "POST", "/api/v1/incidents", [*posted, length], body)
                else:
                    answer = await call(app, "GET", f"/api/v1/cases/{random.choice(ids)}", headers)
                if answer["status"] != (201 if opts.scenario == "create" else 200):
                    raise SystemExit(f"answered {answer['status']}: {answer['body'][:200]}")

        each = max(1, opts.requests // opts.concurrency)
        await asyncio.gather(*(client(max(1, 200 // opts.concurrency)) for _ in range(8)))
        best = None
        for n in range(opts.rounds):
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.gather(*(client(each) for _ in range(opts.concurrency)))
            done = each * opts.concurrency
            cpu = (time.process_time() - cpu) / done * 1e6
            wall = (time.perf_counter() - wall) / done * 1e6
            print(f"round {n + 1}: {cpu:.0f} µs CPU per request ({wall:.0f} µs wall)")
            best = cpu if best is None else min(best, cpu)
        print(f"best: {best:.0f} µs CPU per request")


def in_process_settings(database_url: str) -> Settings:
    """The app's settings for driving it in process: production's, on `database_url`, with a
    secret of its own and no intake rate limits."""
    return Settings(
        _env_file=None,
        env="production",
        database_url=database_url,
        secret_key="in-process-" + "x" * 40,
        metrics_token="in-process-metrics",
        rate_limit_enabled=False,
        access_token_minutes=600,
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("database_url", help="a copy of a bench dataset (never the template)")
    p.add_argument("--scenario", choices=tuple(LOGINS), default="get")
    p.add_argument("--requests", type=int, default=5000, help="per round")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=8)
    opts = p.parse_args(argv)
    settings = in_process_settings(opts.database_url)
    opts.database_url = settings.database_url
    config = logging_config(settings)
    config["handlers"]["default"]["stream"] = open(os.devnull, "w")  # noqa: SIM115
    logging.config.dictConfig(config)
    uvloop.run(measure(opts, settings))


if __name__ == "__main__":
    main()
