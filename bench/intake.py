"""The write path in process: creates and 1,000-item batches through the whole app (middleware,
auth, validation, routing, SQL) but no HTTP server and no wrk, so a change's effect shows on a
shared machine where bench/run.py's figures drown in the noise. Per create: the statements,
wall time and the process's CPU (user + sys); per batch: the same, the COPYs, and with
--memory the peak of Python's allocations (tracemalloc, which slows it down).

    python -m bench.intake --database regiondesk_bench_100k_<tag> --creates 300 --batches 5

It writes cases into the database: use a copy (bench/run.py's --tag copy is rebuilt every run),
never a dataset. Run it twice back to back (or against two checkouts) and compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import time
import tracemalloc
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
from sqlalchemy import event

from app.auth.permissions import ROLE_SCOPES, Role
from app.core.config import Settings
from app.core.tokens import issue_access_token
from app.main import create_app
from bench.generate import asyncpg_dsn
from bench.run import _db_url


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Counter:
    """Statements through SQLAlchemy, and COPYs through the driver (bulk inserts)."""

    def __init__(self, engine) -> None:
        self.statements: list[str] = []
        self.copies: list[str] = []
        event.listen(engine.sync_engine, "before_cursor_execute", self._statement)
        copy = asyncpg.Connection.copy_records_to_table

        async def counted(conn, table_name, **kw):
            self.copies.append(table_name)
            return await copy(conn, table_name, **kw)

        asyncpg.Connection.copy_records_to_table = counted  # a spy: it calls through

    def _statement(self, conn, cursor, statement, *args) -> None:
        self.statements.append(" ".join(statement.split())[:60])

    def reset(self) -> None:
        self.statements.clear()
        self.copies.clear()


async def run(opts: argparse.Namespace) -> None:
    dsn = _db_url(opts.database).replace("postgresql://", "postgresql+asyncpg://", 1)
    settings = Settings(
        _env_file=None,
        env="production",
        database_url=dsn,
        secret_key=os.urandom(32).hex(),
        rate_limit_enabled=False,
        log_access=False,
        metrics_enabled=False,
    )
    conn = await asyncpg.connect(asyncpg_dsn(_db_url(opts.database)))
    try:
        client_id = await conn.fetchval(
            "SELECT id FROM api_client WHERE source_system = 'incident-management'"
        )
        categories = [r["id"] for r in await conn.fetch(
            "SELECT id FROM category WHERE parent_id IS NOT NULL ORDER BY id LIMIT 6"
        )]  # fmt: skip
        territories = [r["id"] for r in await conn.fetch(
            "SELECT id FROM territory ORDER BY id LIMIT 4"
        )]  # fmt: skip
    finally:
        await conn.close()
    token = issue_access_token(
        settings,
        subject=f"client:{client_id}",
        role="integration",
        scopes=sorted(ROLE_SCOPES[Role.integration]),
        lifetime=timedelta(hours=1),
    )
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    published = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    run_id = f"intake{int(time.time() * 1000)}"
    serial = 0

    def item() -> dict:
        nonlocal serial
        serial += 1
        return {
            "network": "vk",
            "post_url": f"https://vk.com/wall-1_{serial}",
            "post_id": f"{run_id}-{serial}",
            "author_handle": "bench_user",
            "published_at": published,
            "text": "На улице Красной огромные ямы, машины бьются. Просим принять меры.",
            "category_id": categories[serial % len(categories)],
            "territory_id": territories[serial % len(territories)],
            "reach": serial,
            "missing_person": serial % 50 == 0,
        }

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        counter = Counter(app.state.engine)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=300) as http:

            async def post(path: str, body: object) -> httpx.Response:
                content = json.dumps(body, ensure_ascii=False).encode()
                response = await http.post(path, content=content, headers=headers)
                assert response.status_code in (200, 201), response.text[:500]
                return response

            for _ in range(20):  # caches warm, connections open
                await post("/api/v1/incidents", item())
            await post("/api/v1/incidents/batch", {"items": [item() for _ in range(10)]})

            if opts.creates:
                counter.reset()
                await post("/api/v1/incidents", item())
                print(f"one create: {len(counter.statements)} statements")
                for statement in counter.statements:
                    print(f"    {statement}")
                times = []
                cpu = _cpu()
                for _ in range(opts.creates):
                    started = time.perf_counter()
                    await post("/api/v1/incidents", item())
                    times.append(time.perf_counter() - started)
                cpu = _cpu() - cpu
                times.sort()
                print(
                    f"{opts.creates} creates one after another: "
                    f"median {statistics.median(times) * 1000:.2f} ms, "
                    f"p90 {times[int(len(times) * 0.9)] * 1000:.2f} ms, "
                    f"CPU {cpu / opts.creates * 1000:.2f} ms per create"
                )

            for number in range(opts.batches):
                body = {"items": [item() for _ in range(opts.batch_size)]}
                counter.reset()
                if opts.memory:
                    tracemalloc.start()
                cpu, started = _cpu(), time.perf_counter()
                response = await post("/api/v1/incidents/batch", body)
                took, cpu = time.perf_counter() - started, _cpu() - cpu
                peak = ""
                if opts.memory:
                    peak = f", traced peak {tracemalloc.get_traced_memory()[1] / 2**20:.1f} MB"
                    tracemalloc.stop()
                created = response.json()["created"]
                print(
                    f"batch {number}: {created} created in {took:.3f} s "
                    f"({created / took:,.0f} cases/s), CPU {cpu:.3f} s, "
                    f"{len(counter.statements)} statements + COPY {counter.copies}{peak}"
                )
            if opts.batches:
                for statement in counter.statements:
                    print(f"    {statement}")
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"peak RSS {maxrss:.0f} MB; load average {load}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--database", required=True, help="a copy to write into, never a dataset")
    p.add_argument("--creates", type=int, default=300)
    p.add_argument("--batches", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--memory", action="store_true", help="trace the batches' peak allocations")
    opts = p.parse_args()
    if opts.database.endswith("_data"):
        raise SystemExit("that is a dataset (a template of the bench copies): use a copy")
    asyncio.run(run(opts))


if __name__ == "__main__":
    main()
