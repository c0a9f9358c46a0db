"""Soak: intake, workflow actions and lists together for N minutes against one uvicorn worker on
PostgreSQL, reporting errors and the server's resident memory each minute.

    python -m bench.soak                 # 5 minutes (make soak)
    python -m bench.soak --minutes 3 --concurrency 4

The database is `regiondesk_soak`, made fresh for every run: a copy of the 100k benchmark dataset
when it exists (bench/run.py builds it; it is not rebuilt here), else the demo region alone; then
`python -m app migrate`. The server, its settings and the tokens are bench/run.py's.

Each case submitted goes through assign (operator, to adm-krasnodar), accept and close (that
agency's staff) by one actor, so no two clients race on a case: any answer other than the
expected one is an error. Exit status 1 on any error, or when the server's RSS grows by more
than --max-growth (default 20 %) between the end of minute 2 and the end of the run."""

# An orchestrator: it runs local tools (uvicorn, migrations) with arguments it builds.
# ruff: noqa: S311

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx

from bench.run import (
    PY,
    RESULTS,
    Bench,
    _admin,
    _app_env,
    _check,
    _db_url,
    log,
)
from bench.run import parse as run_parse

DATABASE = "regiondesk_soak"
TEMPLATE = "regiondesk_bench_100k_data"
CLOSE = {"answer": "Исправлено", "resolution": "solved", "responsible_official": "Иванов И. И."}


def make_database() -> str:
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
    url = _db_url(DATABASE)
    env = _app_env(url, REGIONDESK_ENV="dev")
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{DATABASE}" TEMPLATE "{TEMPLATE}"'))
        log(f"{DATABASE}: a copy of {TEMPLATE}")
    except Exception as exc:  # no dataset, or someone is using it: the demo region alone
        log(f"{DATABASE}: the demo region only ({TEMPLATE} not usable: {exc})")
        asyncio.run(_admin(f'CREATE DATABASE "{DATABASE}"'))
        _check([PY, "-m", "app", "migrate"], env, "migrate")
        seed = (
            "import sys, app.models; from app.__main__ import main; sys.exit(main(['seed-demo']))"
        )
        _check([PY, "-c", seed], env, "seed-demo")
    _check([PY, "-m", "app", "migrate"], env, "migrate")
    return url


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Minute:
    requests: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    rss_mb: float = 0.0


class Soak:
    def __init__(self, bench: Bench, minutes: float, concurrency: int):
        self.bench = bench
        self.deadline = time.monotonic() + minutes * 60
        self.started = time.monotonic()
        self.concurrency = concurrency
        self.minutes: list[Minute] = [Minute()]
        self.queue: asyncio.Queue[dict] = asyncio.Queue(maxsize=1000)
        self.seq = 0
        self.rng = random.Random(7)
        ids = {
            r["code"]: r["id"]
            for r in bench.sql(
                "SELECT code, id FROM agency WHERE code = 'adm-krasnodar' UNION ALL "
                "SELECT code, id FROM territory WHERE code IN ('krasnodar', 'sochi') UNION ALL "
                "SELECT code, id FROM category WHERE code IN ('roads.potholes', 'healthcare')"
            )
        }
        self.agency_id = ids["adm-krasnodar"]
        self.territories = [ids[k] for k in ("krasnodar", "sochi") if k in ids]
        self.categories = [ids[k] for k in ("roads.potholes", "healthcare") if k in ids]
        self.headers = {
            role: {"Authorization": f"Bearer {bench.token(role)}"}
            for role in ("integration", "operator", "agency")
        }

    @property
    def now(self) -> Minute:
        return self.minutes[-1]

    def record(self, kind: str, response: httpx.Response | None, expected: tuple[int, ...]):
        self.now.requests[kind] += 1
        if response is None or response.status_code not in expected:
            self.now.errors[kind] += 1
            if len(self.now.samples) < 5:
                detail = (
                    "no answer"
                    if response is None
                    else f"{response.status_code} {response.text[:300]}"
                )
                self.now.samples.append(f"{kind}: {detail}")
            return False
        return True

    async def call(self, http, kind, method, url, role, expected, body=None) -> dict | None:
        try:
            response = await http.request(method, url, json=body, headers=self.headers[role])
        except httpx.HTTPError:
            response = None
        if not self.record(kind, response, expected):
            return None
        return response.json() if response.content else {}

    def _incident(self) -> dict:
        self.seq += 1
        return {
            "network": self.rng.choice(("vk", "telegram", "ok")),
            "post_url": "https://vk.com/wall-1_2",
            "post_id": f"soak-{int(self.started)}-{self.seq}",
            "author_handle": "soak_user",
            "published_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
            "text": self.rng.choice(
                ("Огромная яма на дороге", "Нет горячей воды", "Не работает поликлиника")
            ),
            "category_id": self.rng.choice(self.categories) if self.categories else None,
            "territory_id": self.rng.choice(self.territories) if self.territories else None,
        }

    async def intake(self, http) -> None:
        while time.monotonic() < self.deadline:
            case = await self.call(
                http, "intake", "POST", "/api/v1/incidents", "integration", (201,), self._incident()
            )
            if case is not None and not self.queue.full():
                await self.queue.put(case)

    async def actions(self, http) -> None:
        while time.monotonic() < self.deadline:
            try:
                case = await asyncio.wait_for(self.queue.get(), timeout=1)
            except TimeoutError:
                continue
            url = f"/api/v1/cases/{case['id']}"
            if case["status"] != "assigned" or case["agency_id"] != self.agency_id:
                body = {"agency_id": self.agency_id}
                if (
                    await self.call(
                        http, "assign", "POST", f"{url}/assign", "operator", (200,), body
                    )
                    is None
                ):
                    continue
            if (
                await self.call(http, "accept", "POST", f"{url}/accept", "agency", (200,), {})
                is None
            ):
                continue
            await self.call(http, "close", "POST", f"{url}/close", "agency", (200,), CLOSE)

    async def lists(self, http) -> None:
        filters = [
            ("operator", "/api/v1/cases?status=new&status=assigned&limit=50&sort=-created_at"),
            ("operator", "/api/v1/cases?limit=50&sort=due_at&status=assigned"),
            ("operator", "/api/v1/cases?limit=20&q=" + urllib.parse.quote("яма")),
            ("agency", "/api/v1/cases?limit=50&sort=-created_at"),
            ("agency", "/api/v1/cases?status=closed&limit=50&with_total=true"),
        ]
        while time.monotonic() < self.deadline:
            role, url = self.rng.choice(filters)
            page = await self.call(http, "list", "GET", url, role, (200,))
            cursor = page and page.get("next_cursor")
            if cursor and self.rng.random() < 0.5:
                await self.call(http, "list", "GET", f"{url}&cursor={cursor}", role, (200,))

    async def clock(self, pid: int) -> None:
        while time.monotonic() < self.deadline:
            await asyncio.sleep(
                min(60 - (time.monotonic() - self.started) % 60, self.deadline - time.monotonic())
            )
            self.now.rss_mb = rss_mb(pid)
            m = len(self.minutes)
            log(
                f"minute {m}: {sum(self.now.requests.values()):,} requests "
                f"({dict(self.now.requests)}), errors {dict(self.now.errors) or 0}, "
                f"RSS {self.now.rss_mb:.1f} MB"
            )
            for sample in self.now.samples:
                log(f"  {sample}")
            if time.monotonic() < self.deadline - 1:
                self.minutes.append(Minute())

    async def run(self, pid: int) -> None:
        limits = httpx.Limits(max_connections=self.concurrency * 3 + 2)
        async with httpx.AsyncClient(base_url=self.bench.base, timeout=30, limits=limits) as http:
            tasks = [self.clock(pid)]
            for _ in range(self.concurrency):
                tasks += [self.intake(http), self.actions(http), self.lists(http)]
            await asyncio.gather(*tasks)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=4, help="clients of each kind")
    p.add_argument(
        "--max-growth", type=float, default=0.20, help="RSS growth allowed after minute 2"
    )
    p.add_argument("--port", type=int, default=18090)
    return p.parse_args(argv)


def bench_options(port: int) -> argparse.Namespace:
    """bench/run.py's options as its own parser gives them (so the server starts as a run's
    does, whatever options it gains), with no wrk load: the soak drives the requests itself."""
    opts = run_parse(["--port", str(port)])
    opts.cases, opts.connections, opts.duration, opts.warmup = 0, 0, 0, 0
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse(argv)
    url = make_database()
    bench = Bench(bench_options(opts.port), url)
    server = bench.start_app()
    try:
        start_rss = rss_mb(server.pid)
        soak = Soak(bench, opts.minutes, opts.concurrency)
        log(
            f"soak: {opts.minutes:g} min, {opts.concurrency} clients of each kind, "
            f"RSS {start_rss:.1f} MB"
        )
        asyncio.run(soak.run(server.pid))
    finally:
        server.stop()
    minutes = soak.minutes
    errors = sum(sum(m.errors.values()) for m in minutes)
    reference = minutes[1].rss_mb if len(minutes) >= 2 else minutes[0].rss_mb
    growth = (minutes[-1].rss_mb - reference) / reference if reference else 0.0
    report = {
        "minutes": opts.minutes,
        "concurrency": opts.concurrency,
        "start_rss_mb": round(start_rss, 1),
        "per_minute": [
            {
                "minute": i + 1,
                "requests": dict(m.requests),
                "errors": dict(m.errors),
                "rss_mb": round(m.rss_mb, 1),
            }
            for i, m in enumerate(minutes)
        ],
        "errors": errors,
        "rss_growth_after_minute_2": round(growth, 4),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print("| minute | requests | intake | assign | accept | close | list | errors | RSS MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in report["per_minute"]:
        r = row["requests"]
        print(
            f"| {row['minute']} | {sum(r.values()):,} | {r.get('intake', 0):,} | "
            f"{r.get('assign', 0):,} | {r.get('accept', 0):,} | {r.get('close', 0):,} | "
            f"{r.get('list', 0):,} | {sum(row['errors'].values())} | {row['rss_mb']:.1f} |"
        )
    print(f"\nerrors: {errors}; RSS growth from minute 2 to the end: {growth:+.1%}")
    failed = errors > 0 or growth > opts.max_growth
    print("FAIL" if failed else "PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
