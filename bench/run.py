"""One benchmark run against a real uvicorn + PostgreSQL, reported as shares of a bare endpoint.

    python -m bench.run --cases 1000000              # the standard set (make bench)
    python -m bench.run --cases 100000 --quick       # short durations (make bench-quick)
    python -m bench.run --cases 10000000 --growth    # adds get/queue/search at 100k vs 10M

What it does, in order:
1. a PostgreSQL database per size (`regiondesk_bench_100k`, `_1m`, `_10m`): created, migrated
   (`python -m app migrate`), the demo region seeded, N cases generated (bench/generate.py);
   reused when its marker (a COMMENT ON DATABASE) says it holds that size — migrations are
   still applied, so new columns arrive;
2. the app under uvicorn with ONE worker (`python -m app serve`, REGIONDESK_ENV=production
   with a random secret) and the bare FastAPI app (bench/bare.py) the same way;
3. tokens of the right roles through /api/v1/auth/token (the demo accounts);
4. each scenario: a warm-up, then wrk with 32 connections for a fixed time; the server's RSS
   sampled from /proc/<pid>/status meanwhile;
5. a Markdown table into docs/benchmarks.md (a section per size, the others kept) and the raw
   figures into bench/results/<size>.json.
Scenarios that need a route or command that does not exist (404/405, no `worker` command) are
reported as "not available" instead of failing.
"""

# An orchestrator: it runs local tools (wrk, uvicorn, py-spy, git) with arguments it builds.
# ruff: noqa: S311, S603, S607

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from app.reference import demo_data
from bench import lua, texts
from bench.cpu import CpuMeter, CpuSplit, processes_seconds, spent_since, tree
from bench.generate import asyncpg_dsn

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "benchmarks.md"
PY = sys.executable
ADMIN_URL = os.environ.get(
    "REGIONDESK_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
# v2: vacuumed after loading (bench/generate.py); v3: cases created in id order, as they arrive.
# A dataset marked otherwise is rebuilt (but one marked MODIFIED, below).
MARKER = "regiondesk-bench cases={cases} seed={seed} v3"
# A dataset a --no-copy run wrote into: never rebuilt without --fresh (10M takes about an hour).
MODIFIED = "modified by a run ({marker})"
SUBSCRIPTION_NOTE = "regiondesk-bench receiver"
KEY_PACKAGES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "pydantic",
    "sqlalchemy",
    "sqlmodel",
    "asyncpg",
    "orjson",
)


def label(cases: int) -> str:
    if cases % 1_000_000 == 0:
        return f"{cases // 1_000_000}M"
    if cases % 1_000 == 0:
        return f"{cases // 1_000}k"
    return str(cases)


def log(message: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- the database


def _db_url(name: str) -> str:
    parts = urllib.parse.urlsplit(asyncpg_dsn(ADMIN_URL))
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


async def _admin(sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(asyncpg_dsn(ADMIN_URL))
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


# PostgreSQL's settings that bear on the figures (memory, the WAL and commits, the planner,
# autovacuum), where something changed them from the server's built-in defaults.
_CHANGED_SETTINGS = (
    "SELECT name || ' = ' || current_setting(name) FROM pg_settings "
    "WHERE category ~ '^(Resource Usage|Write-Ahead Log|Query Tuning|Autovacuum)' "
    "AND source NOT IN ('default', 'override') AND setting IS DISTINCT FROM boot_val "
    "ORDER BY name"
)


async def changed_settings(conn: asyncpg.Connection) -> list[str]:
    """`name = value` of each setting of _CHANGED_SETTINGS as the connection sees it: a
    machine's configuration may change them (one machine of ours ran with autovacuum off, from
    a file in conf.d), and the runs' figures are read against them."""
    return [row[0] for row in await conn.fetch(_CHANGED_SETTINGS)]


async def _server_settings() -> list[str]:
    conn = await asyncpg.connect(asyncpg_dsn(ADMIN_URL))
    try:
        return await changed_settings(conn)
    finally:
        await conn.close()


def _app_env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGIONDESK_")}
    env["REGIONDESK_DATABASE_URL"] = url
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def _check(cmd: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{what} failed:\n{result.stdout}\n{result.stderr}")


def ensure_dataset(
    cases: int, seed: int, jobs: int, fresh: bool, migrate: bool = True, modified_ok: bool = False
) -> str:
    """The generated data of one size, kept as a template database; returns its name.
    Without `migrate` a reused dataset is left at its revision (the copy is migrated instead).
    A dataset an earlier --no-copy run wrote into is used as it is with `modified_ok` (another
    --no-copy run), rebuilt with `fresh`, and otherwise left alone: the run stops and says so."""
    name = f"regiondesk_bench_{label(cases).lower()}_data"
    url = _db_url(name)
    marker = MARKER.format(cases=cases, seed=seed)
    current = asyncio.run(
        _admin(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
            name,
        )
    )
    env = _app_env(url, REGIONDESK_ENV="dev")
    # (the bare words: how runs before this check marked it)
    if current in (MODIFIED.format(marker=marker), "modified by a run") and not fresh:
        if not modified_ok:
            raise SystemExit(
                f"{name} holds what an earlier --no-copy run wrote. Rebuild it with --fresh "
                f"({cases:,} cases: minutes at 1M, about an hour at 10M), or run on it as it "
                "is with --no-copy (its figures then include that run's writes)."
            )
        log(f"running on {name} as an earlier --no-copy run left it")
        if migrate:
            _check([PY, "-m", "app", "migrate"], env, "migrate")
        return name
    if current == marker and not fresh:
        if migrate:
            log(f"reusing {name} ({marker}); applying any new migrations")
            _check([PY, "-m", "app", "migrate"], env, "migrate")
        else:
            log(f"reusing {name} ({marker}) as it is; the copy gets any new migrations")
        return name
    log(f"building {name}: {cases:,} cases")
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    _check([PY, "-m", "app", "migrate"], env, "migrate")
    # Imports every table first: the seed-demo command alone misses the deadline_policy table
    # routing_rule refers to (reported to the lead).
    seed_code = (
        "import sys, app.models; from app.__main__ import main; sys.exit(main(['seed-demo']))"
    )
    _check([PY, "-c", seed_code], env, "seed-demo")
    started = time.monotonic()
    subprocess.run(
        [PY, "-m", "bench.generate", "--cases", str(cases), "--database-url", url,
         "--seed", str(seed), "--jobs", str(jobs)],
        cwd=ROOT,
        env=env,
        check=True,
    )  # fmt: skip
    log(f"generated {cases:,} cases in {time.monotonic() - started:.0f} s")
    asyncio.run(_admin(f"COMMENT ON DATABASE \"{name}\" IS '{marker}'"))
    return name


def ensure_database(
    cases: int, seed: int, jobs: int, fresh: bool, copy: bool = True, tag: str = ""
) -> str:
    """A pristine copy of the dataset for this run (the scenarios write: created cases,
    events, outbox rows), so every run starts from the same data; returns its URL.
    Without `copy` the run works on the dataset itself (saves the disk space of a copy).
    With a `tag` the copy is named after it and migrated itself, the dataset left as it is, so
    runs of several branches (each with its own migrations) can share one dataset at once."""
    template = ensure_dataset(cases, seed, jobs, fresh, migrate=not tag, modified_ok=not copy)
    if not copy:
        marker = MODIFIED.format(marker=MARKER.format(cases=cases, seed=seed))
        asyncio.run(_admin(f"COMMENT ON DATABASE \"{template}\" IS '{marker}'"))
        return _db_url(template)
    name = template.removesuffix("_data") + (f"_{tag}" if tag else "")
    started = time.monotonic()
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    # FILE_COPY (PostgreSQL 15+) copies the files instead of writing every page to the WAL.
    major = int(str(asyncio.run(_admin("SHOW server_version_num"))) or 0) // 10000
    strategy = " STRATEGY FILE_COPY" if major >= 15 else ""
    asyncio.run(_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"{strategy}'))
    log(f"copied {template} to {name} in {time.monotonic() - started:.0f} s")
    if tag:
        env = _app_env(_db_url(name), REGIONDESK_ENV="dev")
        _check([PY, "-m", "app", "migrate"], env, "migrate")
    return _db_url(name)


# --------------------------------------------------------------------------- processes


class Server:
    """A process we started, its log, and a way to wait until it answers."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], ready_url: str | None):
        RESULTS.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = RESULTS / f"{name}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._log, stderr=self._log)
        if ready_url:
            self._wait(ready_url)

    def _wait(self, url: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited; see {self.log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code < 500:
                    return
            time.sleep(0.2)
        raise SystemExit(f"{self.name} did not answer at {url}; see {self.log_path}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class RssSampler:
    """Peak resident memory of one process while a scenario runs (VmRSS every 50 ms)."""

    def __init__(self, pid: int):
        self.pid, self.peak_kb = pid, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _read(self) -> int:
        """The process's RSS plus its children's (uvicorn's worker processes)."""
        total = 0
        for pid in tree(self.pid):
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
            except OSError:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, self._read())
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return self.peak_kb / 1024


# --------------------------------------------------------------------------- wrk


@dataclass
class Load:
    connections: int
    threads: int
    duration: float
    warmup: float
    timeout: float = 10.0


def run_wrk(base_url: str, script: str, load: Load, seconds: float, name: str) -> dict:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.lua"
    path.write_text(script)
    cmd = [
        "wrk",
        f"-t{load.threads}",
        f"-c{load.connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={load.timeout:g}s",
        "-s",
        str(path),
        base_url,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    match = re.search(r"^BENCH_JSON (.*)$", result.stdout, re.M)
    if result.returncode != 0 or not match:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stdout}\n{result.stderr}")
    data = json.loads(match.group(1))
    data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
    return data


# --------------------------------------------------------------------------- scenarios


@dataclass
class Target:
    share: float | None = None  # of the bare endpoint's requests/s
    p95_ms: float | None = None
    p99_ms: float | None = None
    per_second: float | None = None  # cases or deliveries per second
    text: str = ""


@dataclass
class Result:
    name: str
    title: str
    available: bool = True
    note: str = ""
    rps: float | None = None
    share: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    requests: int = 0
    errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    per_second: float | None = None
    per_second_unit: str = ""
    peak_rss_mb: float | None = None
    target: str = ""
    verdict: str = "—"
    misses: list[str] = field(default_factory=list)
    connections: int | None = None
    # CPU ms per request over the measured run, by process group (bench/cpu.py), and the
    # machine's idle share and share spent by other work meanwhile
    cpu_ms: dict[str, float] | None = None
    idle_share: float | None = None
    other_share: float | None = None
    target_share: float | None = None  # the target's share of bare, where it sets one
    kb_per_answer: float | None = None  # bytes wrk read per request (headers included) / 1000


def _short_of(share: float, target: float) -> str:
    """A share below its target, with the digits that show it below (29.97 %, never 30.0 %)."""
    for digits in (1, 2, 3):
        text = f"{share:.{digits}%}"
        if float(text[:-1]) < target * 100:
            return text
    return f"{share:.4%}"


def judge(result: Result, target: Target) -> None:
    result.target = target.text
    result.target_share = target.share
    if not result.available:
        result.verdict = "n/a"
        return
    misses = []
    if target.share is not None and (result.share or 0) < target.share:
        misses.append(f"share {_short_of(result.share or 0, target.share)} < {target.share:.0%}")
    if target.p95_ms is not None and (result.p95_ms or 1e9) > target.p95_ms:
        misses.append(f"p95 {result.p95_ms:.1f} ms > {target.p95_ms:g} ms")
    if target.p99_ms is not None and (result.p99_ms or 1e9) > target.p99_ms:
        misses.append(f"p99 {result.p99_ms:.1f} ms > {target.p99_ms:g} ms")
    if target.per_second is not None and (result.per_second or 0) < target.per_second:
        misses.append(f"{result.per_second or 0:,.0f}/s < {target.per_second:,.0f}/s")
    if result.requests and result.errors > 0.01 * result.requests:
        misses.append(f"errors {result.errors} of {result.requests}")
    result.misses = misses
    result.verdict = "miss" if misses else "pass"


def _fill(
    result: Result, data: dict, bare_rps: float | None, rss: float, cpu: CpuSplit | None = None
) -> None:
    errors = data["errors"]
    result.rps = data["rps"]
    result.requests = data["requests"]
    result.errors = sum(errors.values())
    result.statuses = data.get("statuses") or {}
    lat = data["latency_us"]
    result.p50_ms, result.p95_ms, result.p99_ms = (lat[k] / 1000 for k in ("p50", "p95", "p99"))
    result.share = data["rps"] / bare_rps if bare_rps else None
    result.peak_rss_mb = rss
    if data.get("bytes") and data["requests"]:
        result.kb_per_answer = data["bytes"] / data["requests"] / 1000
    if cpu is not None:
        result.cpu_ms = cpu.per_request_ms(data["requests"])
        shares = cpu.shares()
        result.idle_share, result.other_share = shares["idle"], shares["other"]


# The create scenario's incidents: six categories in four territories, routed and unrouted.
INCIDENT_CATEGORIES = (
    "roads.potholes",
    "healthcare.polyclinics",
    "energy.power_outages",
    "housing_utilities.heating",
    "public_amenities.yards",
    "solid_waste.collection",
)
INCIDENT_TERRITORIES = ("krasnodar", "sochi", "anapa", "dinskoy")
SOURCE_ID = "@@ID@@"


def incident_bodies(categories: dict[str, int], territories: list[int]) -> list[tuple[str, str]]:
    """Incidents to create, as the JSON before and after their unique source id (post_id):
    eight varied Russian texts for each category (its code to its id) and territory, like the
    generated ones, so that search stays fair."""
    published = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    rng = random.Random(11)
    bodies = []
    for i, (code, category_id) in enumerate(sorted(categories.items())):
        sector = code.split(".")[0]
        for territory_id in territories:
            for _ in range(8):
                where = f"по ул. {rng.choice(texts.STREETS)}, {rng.randint(1, 150)}"
                parts = [rng.choice(texts.PROBLEMS[sector]).replace("{где}", where) + "."]
                parts += [
                    rng.choice(texts.DETAILS).replace("{когда}", rng.choice(texts.WHEN))
                    for _ in range(rng.choice((0, 1, 2, 3)))
                ]
                parts.append(rng.choice(texts.CLOSERS))
                item = {
                    "network": rng.choice(("vk", "telegram", "ok")),
                    "post_url": f"https://vk.com/wall-{i}_{territory_id}",
                    "post_id": SOURCE_ID,
                    "author_handle": "bench_user",
                    "published_at": published,
                    "text": " ".join(p for p in parts if p),
                    "category_id": category_id,
                    "territory_id": territory_id,
                    "reach": rng.randint(10, 50_000),
                }
                prefix, suffix = json.dumps(item, ensure_ascii=False).split(SOURCE_ID)
                bodies.append((prefix, suffix))
    return bodies


class Bench:
    def __init__(self, opts: argparse.Namespace, url: str):
        self.opts = opts
        self.url = url
        self.cases = opts.cases
        self.load = Load(opts.connections, opts.threads, opts.duration, opts.warmup)
        self.port, self.bare_port, self.receiver_port = opts.port, opts.port + 1, opts.port + 2
        self.base = f"http://127.0.0.1:{self.port}"
        self.run_id = f"b{int(time.time())}"
        self.results: list[Result] = []
        self.bare_rps: float | None = None
        self.server_env = _app_env(
            url,
            REGIONDESK_ENV="production",
            REGIONDESK_SECRET_KEY=secrets.token_urlsafe(48),
            REGIONDESK_METRICS_TOKEN=secrets.token_urlsafe(24),
            # Intake rate limits would turn the create and batch scenarios into 429s.
            REGIONDESK_RATE_LIMIT_ENABLED="false",
            REGIONDESK_ACCESS_TOKEN_MINUTES="600",
            REGIONDESK_CLIENT_TOKEN_MINUTES="600",
        )
        self.app: Server | None = None
        self.tokens: dict[str, str] = {}

    # --- plumbing -------------------------------------------------------------------------

    def start_app(self) -> Server:
        cmd = [PY, "-m", "app", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--workers", str(self.opts.workers)]
        self.app = Server("app", cmd, self.server_env, f"{self.base}/health/live")
        return self.app

    def token(self, role: str) -> str:
        if role in self.tokens:
            return self.tokens[role]
        if role == "integration":
            client = next(
                c for c in demo_data.DEMO_CLIENTS if c.source_system == "incident-management"
            )
            form = {
                "grant_type": "client_credentials",
                "client_id": client.client_id,
                "client_secret": client.secret,
            }
        else:
            user = next(
                u
                for u in demo_data.DEMO_USERS
                if u.role == role and (role != "agency" or u.agency_code == "adm-krasnodar")
            )
            form = {"grant_type": "password", "username": user.username, "password": user.password}
        response = httpx.post(f"{self.base}/api/v1/auth/token", data=form, timeout=30)
        response.raise_for_status()
        self.tokens[role] = response.json()["access_token"]
        return self.tokens[role]

    def probe(self, method: str, path: str, role: str, body: Any = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(role)}"}
        return httpx.request(method, self.base + path, json=body, headers=headers, timeout=120)

    async def _sql(self, sql: str, *args: Any) -> list:
        conn = await asyncpg.connect(asyncpg_dsn(self.url))
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    def sql(self, sql: str, *args: Any) -> list:
        return asyncio.run(self._sql(sql, *args))

    def measure(
        self,
        result: Result,
        script: str,
        pid: int,
        base: str | None = None,
        load: Load | None = None,
    ) -> dict:
        load = load or self.load
        result.connections = load.connections
        base = base or self.base
        if load.warmup:
            warm = run_wrk(base, script, load, load.warmup, f"{result.name}-warmup")
            # wrk abandons its in-flight requests; let the server finish them first.
            time.sleep(min(warm["latency_us"]["max"] / 1e6, 10.0))
        with RssSampler(pid) as rss, CpuMeter(pid) as meter:
            data = run_wrk(base, script, load, load.duration, result.name)
        _fill(result, data, self.bare_rps, rss.peak_mb, meter.split)
        cpu = result.cpu_ms
        log(
            f"{result.name}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.1f} ms, "
            f"p99 {result.p99_ms:.1f} ms, errors {result.errors}, RSS {result.peak_rss_mb:.0f} MB"
            + (
                f"; CPU per request: server {cpu['server']:.3f} ms (waited for a core "
                f"{cpu['server_waited']:.3f} ms), PostgreSQL "
                f"{cpu['postgres']:.3f} ms, wrk {cpu['wrk']:.3f} ms, idle {result.idle_share:.0%}"
                if cpu
                else ""
            )
        )
        if self.opts.profile and result.name in self.opts.profile:
            self.profile(result.name, base, script, pid, load)
        return data

    def profile(self, name: str, base: str, script: str, pid: int, load: Load) -> None:
        """A separate pass under py-spy (so the measured figures carry no profiler cost)."""
        spy = shutil.which("py-spy", path=str(Path(PY).parent)) or shutil.which("py-spy")
        if spy is None:
            log("py-spy not installed (pip install -e '.[bench]'); no profile")
            return
        raw = RESULTS / f"profile-{name}.txt"
        seconds = max(5, round(load.duration))
        proc = subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(seconds),
                "--rate",
                "250",
                "--nonblocking",
                "--format",
                "raw",
                "--output",
                str(raw),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        run_wrk(base, script, load, seconds, f"{name}-profile")
        proc.wait(timeout=60)
        summary = summarize_profile(raw)
        (RESULTS / f"profile-{name}-summary.txt").write_text(summary)
        log(f"profile of {name}: {RESULTS / f'profile-{name}-summary.txt'}")

    # --- the scenarios --------------------------------------------------------------------

    def bare(self) -> None:
        result = Result("bare", "bare FastAPI endpoint (the ceiling)")
        env = _app_env("", REGIONDESK_ENV="production")
        cmd = [PY, "-m", "uvicorn", "bench.bare:app", "--host", "127.0.0.1"]
        cmd += ["--port", str(self.bare_port), "--workers", "1", "--no-access-log"]
        cmd += ["--no-server-header", "--log-level", "warning"]
        base = f"http://127.0.0.1:{self.bare_port}"
        server = Server("bare", cmd, env, f"{base}/bare")
        try:
            self.measure(result, lua.bare(), server.pid, base=base)
        finally:
            server.stop()
        self.bare_rps = result.rps
        result.share = 1.0
        judge(result, Target(text="the reference (100 %)"))
        self.results.append(result)

    def get_one(self) -> None:
        result = Result("get", "get one case by id (agency token, access check)")
        agency = self.sql("SELECT id FROM agency WHERE code = 'adm-krasnodar'")[0]["id"]
        ids = [
            r["case_id"]
            for r in self.sql(
                "SELECT case_id FROM case_agency WHERE agency_id = $1 ORDER BY random() LIMIT 2000",
                agency,
            )
        ]
        if not ids:
            result.available, result.note = False, "no cases for adm-krasnodar"
        else:
            self.measure(result, lua.get_one(self.token("agency"), ids), self.app.pid)
        judge(result, Target(share=0.30, p99_ms=25, text="≥ 30 % of bare; p99 ≤ 25 ms"))
        self.results.append(result)

    def _incident_bodies(self) -> list[tuple[str, str]]:
        categories = self.sql(
            "SELECT code, id FROM category WHERE code = ANY($1)", list(INCIDENT_CATEGORIES)
        )
        territories = self.sql(
            "SELECT id FROM territory WHERE code = ANY($1)", list(INCIDENT_TERRITORIES)
        )
        return incident_bodies(
            {r["code"]: r["id"] for r in categories}, [r["id"] for r in territories]
        )

    def create(self) -> None:
        result = Result("create", "create an incident (routing, event, outbox)")
        bodies = self._incident_bodies()
        script = lua.create(self.token("integration"), "/api/v1/incidents", bodies, self.run_id)
        data = self.measure(result, script, self.app.pid)
        unexpected = {k: v for k, v in data["statuses"].items() if k != "201"}
        if unexpected:
            result.note = f"statuses other than 201: {unexpected}"
        judge(result, Target(share=0.15, p99_ms=40, text="≥ 15 % of bare; p99 ≤ 40 ms"))
        self.results.append(result)

    def queue(self) -> None:
        result = Result("queue", "triage queue: filtered, sorted, 50 per page, cursor pages")
        ids = {
            r["code"]: r["id"]
            for r in self.sql(
                "SELECT code, id FROM territory WHERE code IN ('krasnodar', 'sochi') UNION ALL "
                "SELECT code, id FROM category WHERE code IN ('roads', 'housing_utilities')"
            )
        }
        open_statuses = "status=new&status=assigned&status=in_progress&status=returned"
        base = f"/api/v1/cases?{open_statuses}&limit=50"
        krasnodar, sochi = ids.get("krasnodar", 1), ids.get("sochi", 1)
        roads, housing = ids.get("roads", 1), ids.get("housing_utilities", 1)
        filters = [
            (f"{base}&sort=-created_at", "-created_at"),
            (f"{base}&sort=due_at", "due_at"),
            (f"{base}&sort=-created_at&territory_id={krasnodar}", "-created_at"),
            (f"{base}&sort=-created_at&category_id={roads}", "-created_at"),
            (f"{base}&sort=due_at&overdue=true", "due_at"),
            (f"{base}&sort=-created_at&kind=incident&priority=high", "-created_at"),
            ("/api/v1/cases?status=new&status=returned&limit=50&sort=-created_at", "-created_at"),
            (f"{base}&sort=-updated_at&territory_id={sochi}&category_id={housing}", "-updated_at"),
        ]
        script = lua.queue(self.token("operator"), filters, pages=5)
        self.measure(result, script, self.app.pid)
        judge(result, Target(share=0.12, p99_ms=50, text="≥ 12 % of bare; p99 ≤ 50 ms"))
        self.results.append(result)

    def search(self) -> None:
        result = Result("search", "full-text search in Russian, 20 per page")
        urls = [
            "/api/v1/cases?limit=20&q=" + urllib.parse.quote(word) for word in texts.SEARCH_WORDS
        ]
        self.measure(result, lua.paths(self.token("operator"), urls), self.app.pid)
        judge(result, Target(p95_ms=100, text="p95 ≤ 100 ms"))
        self.results.append(result)

    def batch(self) -> None:
        size = self.opts.batch_size
        result = Result("batch", f"batch intake, {size:,} incidents per request")
        result.per_second_unit = "cases/s"
        target = Target(per_second=10_000, text="≥ 10,000 cases/s")
        bodies = self._incident_bodies()
        prefix, suffix = bodies[0]
        probe_item = json.loads(prefix + f"{self.run_id}-probe" + suffix)
        response = self.probe(
            "POST", "/api/v1/incidents/batch", "integration", {"items": [probe_item]}
        )
        if response.status_code in (404, 405):
            result.available, result.note = False, "POST /api/v1/incidents/batch not available"
        elif response.status_code >= 400:
            result.available = False
            result.note = f"probe answered {response.status_code}: {response.text[:200]}"
        else:
            # No wrk warm-up (the probe warmed the route), and cases counted in the database:
            # wrk drops the requests still in flight at its end, which are many seconds of
            # work here. Rate = new cases / (start .. the server's last insert).
            load = Load(
                self.opts.batch_connections,
                self.load.threads,
                max(self.load.duration, 15.0),
                warmup=0,
                timeout=120,
            )
            script = lua.batch(
                self.token("integration"), "/api/v1/incidents/batch", bodies, self.run_id, size
            )
            before = self.sql("SELECT coalesce(max(id), 0) AS id FROM case_file")[0]["id"]
            started = time.monotonic()
            self.measure(result, script, self.app.pid, load=load)
            count, last_change = 0, time.monotonic()
            while time.monotonic() - last_change < 3 and time.monotonic() - started < 300:
                now = self.sql("SELECT count(*) AS n FROM case_file WHERE id > $1", before)[0]["n"]
                if now != count:
                    count, last_change = now, time.monotonic()
                time.sleep(0.5)
            result.per_second = count / (last_change - started)
            result.share = None  # not comparable: one request carries a thousand cases
            result.note = f"{count:,} cases in {last_change - started:.1f} s"
            log(f"batch: {result.per_second:,.0f} cases/s")
        judge(result, target)
        self.results.append(result)

    def stats(self) -> None:
        """wrk on the route as dashboards use it (answers from stored snapshots, younger than
        REGIONDESK_STATS_MAX_AGE_SECONDS); before it, the exact computation itself: requests
        alone with `Cache-Control: no-cache`, which always compute afresh."""
        result = Result("stats", "stats summary over all cases grouped by territory")
        limit = 500 if self.cases >= 10_000_000 else 100
        target = Target(p95_ms=limit, text=f"p95 ≤ {limit} ms")
        path = "/api/v1/stats/summary?group_by=territory"
        headers = {"Authorization": f"Bearer {self.token('analyst')}", "Cache-Control": "no-cache"}
        cold: list[float] = []
        for _ in range(3):
            started = time.monotonic()
            response = httpx.get(self.base + path, headers=headers, timeout=600)
            cold.append((time.monotonic() - started) * 1000)
            if response.status_code >= 400:
                break
        if response.status_code in (404, 405):
            result.available, result.note = False, f"GET {path} not available"
        elif response.status_code >= 400:
            result.available = False
            result.note = f"probe answered {response.status_code}: {response.text[:200]}"
        else:
            self.measure(result, lua.paths(self.token("analyst"), [path]), self.app.pid)
            alone = ", ".join(f"{ms:,.0f}" for ms in cold)
            result.note = (
                f"one request alone, computed afresh (cold, `Cache-Control: no-cache`): "
                f"median {sorted(cold)[len(cold) // 2]:,.0f} ms ({alone} ms); under load the "
                "answers come from the stored snapshot"
            )
            log(f"stats cold (no-cache), 3 requests alone: {alone} ms")
        judge(result, target)
        self.results.append(result)

    def webhooks(self) -> None:
        result = Result("webhooks", "webhook worker deliveries to a local receiver")
        result.per_second_unit = "deliveries/s"
        target = Target(per_second=2_000, text="≥ 2,000 deliveries/s")
        check = subprocess.run(
            [PY, "-m", "app", "worker", "--help"],
            cwd=ROOT,
            env=self.server_env,
            capture_output=True,
            check=False,
        )
        if check.returncode != 0:
            result.available, result.note = False, "no `python -m app worker` command"
            judge(result, target)
            self.results.append(result)
            return
        try:
            self._webhooks(result)
        except Exception as exc:  # report, do not lose the other scenarios' figures
            result.available, result.note = False, f"failed: {exc}"[:300]
        judge(result, target)
        self.results.append(result)

    def _webhooks(self, result: Result) -> None:
        receiver_base = f"http://127.0.0.1:{self.receiver_port}"
        receiver = Server(
            "receiver",
            [
                PY,
                "-m",
                "uvicorn",
                "bench.receiver:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.receiver_port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            _app_env(""),
            f"{receiver_base}/count",
        )
        worker = None
        try:
            allow = self.probe(
                "POST", "/api/v1/webhooks/allowlist", "admin", {"entry": "127.0.0.1"}
            )
            if allow.status_code >= 400 and allow.status_code != 409:
                log(f"allowlist answered {allow.status_code}: {allow.text[:200]}")
            # Earlier runs' subscriptions point at receivers long gone.
            with contextlib.suppress(asyncpg.PostgresError):
                self.sql(
                    "UPDATE webhook_subscription SET is_active = false WHERE description = $1",
                    SUBSCRIPTION_NOTE,
                )
            sub = self.probe(
                "POST",
                "/api/v1/webhooks",
                "admin",
                {
                    "url": f"{receiver_base}/hook",
                    "description": SUBSCRIPTION_NOTE,
                    "event_types": ["case.created"],
                },
            )
            if sub.status_code >= 400:
                raise RuntimeError(f"subscription answered {sub.status_code}: {sub.text[:200]}")
            # Enqueue: a burst of new incidents (through batch intake when there is one).
            bodies = self._incident_bodies()
            wanted = self.opts.webhook_events
            made = 0
            while made < wanted:
                n = min(1000, wanted - made)
                items = [
                    json.loads(
                        bodies[i % len(bodies)][0]
                        + f"{self.run_id}-wh-{made + i}"
                        + bodies[i % len(bodies)][1]
                    )
                    for i in range(n)
                ]
                response = self.probe(
                    "POST", "/api/v1/incidents/batch", "integration", {"items": items}
                )
                if response.status_code in (404, 405):
                    for item in items:
                        self.probe("POST", "/api/v1/incidents", "integration", item)
                elif response.status_code >= 400:
                    raise RuntimeError(f"enqueue answered {response.status_code}")
                made += n
            worker = Server("worker", [PY, "-m", "app", "worker"], self.server_env, None)
            first = last = None
            count_first = count_last = 0
            # CPU from the first delivery seen to the last: the worker's and PostgreSQL's, and
            # the receiver's (it shares the machine's cores with them)
            cpu_first = cpu_last = None
            received_first = received_last = 0.0
            deadline = time.monotonic() + 60 + wanted / 100
            quiet_since = time.monotonic()
            with RssSampler(worker.pid) as rss:
                while time.monotonic() < deadline:
                    count = httpx.get(f"{receiver_base}/count", timeout=5).json()["received"]
                    now = time.monotonic()
                    if count and first is None:
                        first, count_first = now, count
                        cpu_first = processes_seconds(worker.pid)
                        received_first = processes_seconds(receiver.pid)[0]
                    if count != count_last:
                        last, count_last, quiet_since = now, count, now
                        cpu_last = processes_seconds(worker.pid)
                        received_last = processes_seconds(receiver.pid)[0]
                    if count_last >= wanted or (first and now - quiet_since > 5):
                        break
                    time.sleep(0.1)
            if first is None or last is None or last <= first:
                raise RuntimeError(f"the receiver got {count_last} deliveries")
            result.per_second = (count_last - count_first) / (last - first)
            result.requests = count_last
            result.peak_rss_mb = rss.peak_mb
            result.note = f"{count_last:,} of {wanted:,} events delivered; RSS is the worker's"
            if cpu_first is not None and cpu_last is not None and count_last > count_first:
                worker_s, postgres_s = spent_since(cpu_first, cpu_last)
                per = 1000 / (count_last - count_first)
                receiver_s = received_last - received_first
                result.note += (
                    f"; CPU per delivery: worker {worker_s * per:.3f} ms, "
                    f"PostgreSQL {postgres_s * per:.3f} ms, receiver {receiver_s * per:.3f} ms"
                )
            log(f"webhooks: {result.per_second:,.0f} deliveries/s ({result.note})")
        finally:
            if worker:
                worker.stop()
            receiver.stop()

    def memory(self) -> None:
        measured = [r.peak_rss_mb for r in self.results if r.name not in ("bare", "webhooks")]
        peak = max((m for m in measured if m), default=None)
        result = Result("memory", "server RSS under load (peak over the app's scenarios)")
        result.peak_rss_mb = peak
        result.available = peak is not None
        target = Target(text="≤ 150 MB")
        judge(result, target)
        if peak is not None and peak > 150:
            result.verdict, result.misses = "miss", [f"{peak:.0f} MB > 150 MB"]
        self.results.append(result)


# --------------------------------------------------------------------------- growth


def growth(opts: argparse.Namespace, big: list[Result]) -> list[Result]:
    """get, queue and search on the 100k database, compared with this run's big figures."""
    # always a copy: --no-copy saves the disk space of a big dataset, 100k needs half a GB
    small_url = ensure_database(100_000, opts.seed, opts.jobs, fresh=False, tag=opts.tag)
    bench = Bench(opts, small_url)
    bench.bare_rps = next((r.rps for r in big if r.name == "bare"), None)
    bench.start_app()
    try:
        bench.get_one()
        bench.queue()
        bench.search()
    finally:
        bench.app.stop()
    out = []
    for small in bench.results:
        large = next((r for r in big if r.name == small.name), None)
        result = Result(
            f"growth-{small.name}", f"growth: {small.name} at {label(opts.cases)} vs 100k"
        )
        if not large or not small.p99_ms or not large.p99_ms:
            result.available = False
        else:
            ratio = large.p99_ms / small.p99_ms
            result.p50_ms, result.p99_ms = large.p50_ms, large.p99_ms
            result.note = (
                f"p99 {large.p99_ms:.1f} vs {small.p99_ms:.1f} ms (× {ratio:.2f}); "
                f"p50 × {large.p50_ms / small.p50_ms:.2f}"
            )
            if large.kb_per_answer and small.kb_per_answer:
                # a filter with fewer matches at 100k answers shorter pages: not the same work
                result.note += (
                    f"; {large.kb_per_answer:.1f} vs {small.kb_per_answer:.1f} kB an answer"
                )
            result.verdict = "pass" if ratio <= 1.5 else "miss"
        result.target = "p99 within 1.5 × the 100k figure"
        out.append(result)
    return out


# --------------------------------------------------------------------------- the profile


def summarize_profile(raw: Path, top: int = 50) -> str:
    """Inclusive and self shares per function from py-spy's collapsed stacks."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    if not raw.exists():
        return "no samples\n"
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n
        own[frames[-1]] = own.get(frames[-1], 0) + n
    if not total:
        return "no samples\n"

    def table(values: dict[str, int]) -> list[str]:
        rows = sorted(values.items(), key=lambda kv: -kv[1])[:top]
        return [f"{100 * n / total:6.1f} %  {frame}" for frame, n in rows]

    return "\n".join(
        [
            f"{total} samples (busy threads only)",
            "",
            "inclusive:",
            *table(inclusive),
            "",
            "self:",
            *table(own),
            "",
        ]
    )


# --------------------------------------------------------------------------- the report


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        ram = f"{kb / 1024 / 1024:.1f} GiB"
    versions = {"python": platform.python_version()}
    for name in KEY_PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    pg = asyncio.run(_admin("SHOW server_version"))
    changed = asyncio.run(_server_settings())
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": ram,
        "os": platform.platform(),
        "postgresql": pg,
        "postgresql_settings": (
            "default settings" if not changed else "default settings but " + ", ".join(changed)
        ),
        "wrk": (wrk_version.stdout or wrk_version.stderr).split("\n")[0].strip(),
        "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
    }


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def markdown(
    opts: argparse.Namespace, results: list[Result], info: dict[str, str], cmd: str
) -> str:
    size = label(opts.cases)
    lines = [
        f"## {size} cases{' (quick)' if opts.quick else ''}",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; `{cmd}`. "
        f"{'One uvicorn worker' if opts.workers == 1 else f'{opts.workers} uvicorn workers'}, "
        f"{opts.connections} connections ({opts.batch_connections} for batch), "
        f"{opts.duration:g} s per scenario after a {opts.warmup:g} s warm-up, wrk with "
        f"{opts.threads} thread(s) on the same machine.",
        "",
        "| scenario | req/s | share of bare | p50 ms | p95 ms | p99 ms | errors | peak RSS MB "
        "| target | result |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        if not r.available:
            lines.append(
                f"| {r.title} | — | — | — | — | — | — | — | {r.target} | not available: {r.note} |"
            )
            continue
        rate = "—" if r.rps is None else f"{r.rps:,.0f}"
        if r.per_second is not None:
            rate = f"{r.per_second:,.0f} {r.per_second_unit}" + (
                f" ({r.rps:,.1f} req/s)" if r.rps else ""
            )
        share = "—" if r.share is None else f"{r.share:.1%}"
        verdict = r.verdict + (f" ({'; '.join(r.misses)})" if r.misses else "")
        if r.note and r.verdict != "n/a":
            verdict += f" — {r.note}"
        errors = str(r.errors) if r.requests else "—"
        rss = "—" if r.peak_rss_mb is None else f"{r.peak_rss_mb:.0f}"
        lines.append(
            f"| {r.title} | {rate} | {share} | {_ms(r.p50_ms)} | {_ms(r.p95_ms)} | "
            f"{_ms(r.p99_ms)} | {errors} | {rss} | {r.target} | {verdict} |"
        )
    lines += cpu_table(results, os.cpu_count() or 1, opts.workers)
    lines += [
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram']} RAM; {info['os']}. "
        f"PostgreSQL {info['postgresql']} (local, {info['postgresql_settings']}). {info['wrk']}.",
        "",
        f"Versions: {info['versions']}. Commit {info['commit']}.",
        "",
    ]
    lines += [
        f"Load average (1/5/15 min) at the start: {info['load_start']}; at the end: "
        f"{info['load_end']} — anything well above 1 means other work shared the 2 CPUs "
        "and the figures are noisy.",
        "",
    ]
    if opts.note:
        lines += [f"Note: {opts.note}", ""]
    return "\n".join(lines)


def cpu_table(results: list[Result], cores: int, workers: int = 1) -> list[str]:
    """Where the CPU went during each measured run (bench/cpu.py), per request; and what that
    CPU allows: the share of bare that the scenario could reach at most, if the server's
    workers (one core each, at most the machine's cores) or the whole machine (server,
    PostgreSQL and wrk on the same cores) were busy all the time; and, for a target set as a
    share, the CPU per request it leaves them."""
    measured = [r for r in results if r.cpu_ms]
    if not measured:
        return []
    server_cores = min(workers, cores)
    lines = [
        "",
        "Where the CPU went during each measured run, in CPU milliseconds per request: the "
        "server's process, every PostgreSQL process, wrk; and the share of the machine's CPU "
        "time left idle or spent by other work (bench/cpu.py). The three share the same cores; "
        "*server waited* is the time the server was ready to run but waited for a core (the "
        "kernel's run delay), in milliseconds per request: what sharing them cost it. "
        "*kB an answer* is what wrk read per request, headers included. "
        f"*CPU allows* is the share of bare that this CPU per request permits at most: "
        f"{server_cores} core(s) for the server's {workers} worker(s), {cores} for all three "
        "together, whichever is reached first (named). *Target's budget* is the CPU per "
        "request a share target leaves: server, then all three.",
        "",
        "| scenario | kB an answer | server ms | server waited ms | PostgreSQL ms | wrk ms | idle "
        "| other work | CPU allows | target's budget ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in measured:
        cpu = r.cpu_ms or {}
        name = r.title if r.per_second is not None else r.name  # batch: says its request size
        allows = budget = "—"
        bare_rps = r.rps / r.share if r.rps and r.share else None
        total = cpu["server"] + cpu["postgres"] + cpu["wrk"]
        if bare_rps and cpu["server"] > 0:
            by_server = server_cores * 1000 / cpu["server"]
            by_machine = cores * 1000 / total
            limit, which = (
                (by_server, "server") if by_server <= by_machine else (by_machine, "machine")
            )
            allows = f"{limit / bare_rps:.0%} ({which})"
            if r.target_share:
                wanted = r.target_share * bare_rps
                budget = f"{server_cores * 1000 / wanted:.3f} / {cores * 1000 / wanted:.3f}"
        size = "—" if r.kb_per_answer is None else f"{r.kb_per_answer:.1f}"
        waited = cpu.get("server_waited")  # not in results written before it was measured
        waited_text = "—" if waited is None else f"{waited:.3f}"
        lines.append(
            f"| {name} | {size} | {cpu['server']:.3f} | {waited_text} | {cpu['postgres']:.3f} | "
            f"{cpu['wrk']:.3f} | {r.idle_share or 0:.0%} | {r.other_share or 0:.0%} | "
            f"{allows} | {budget} |"
        )
    return lines


HEADER = """# Benchmarks

Written by `python -m bench.run` (`make bench`, `make bench-quick`): the figures of the last run
of each size, misses included. How to run and what each scenario does: `bench/README.md`.

Scenarios are reported as a share of a bare FastAPI endpoint measured in the same run, the same
way, so the ratios compare across machines; absolute figures depend on the machine, and a run
taken while other work shares the CPU (the load generator and PostgreSQL run on the same
machine too) is noisy.
"""


def write_doc(size: str, section: str) -> None:
    start, end = f"<!-- bench:{size}:start -->", f"<!-- bench:{size}:end -->"
    text = DOC.read_text() if DOC.exists() else HEADER
    block = f"{start}\n{section}\n{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)


# --------------------------------------------------------------------------- main

SCENARIOS = ("bare", "get", "queue", "search", "stats", "create", "batch", "webhooks")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument("--cases", type=int, default=1_000_000, help="database size (100k, 1M, 10M)")
    p.add_argument("--quick", action="store_true", help="short durations (5 s, 1 s warm-up)")
    p.add_argument("--duration", type=float, help="seconds per scenario (default 20, quick 5)")
    p.add_argument("--warmup", type=float, help="warm-up seconds (default 3, quick 1)")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--workers", type=int, default=1, help="uvicorn workers for the app")
    p.add_argument("--batch-connections", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1, help="wrk threads (the CPU is shared)")
    p.add_argument("--port", type=int, default=18080, help="app port; bare +1, receiver +2")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--jobs", type=int, default=2, help="generator processes")
    p.add_argument("--fresh", action="store_true", help="rebuild the database even if present")
    p.add_argument("--growth", action="store_true", help="also get/queue/search at 100k")
    p.add_argument(
        "--no-copy",
        dest="copy",
        action="store_false",
        help="run on the dataset itself, not a copy (less disk; later runs need --no-copy "
        "again, or --fresh to rebuild it)",
    )
    p.add_argument(
        "--tag",
        default="",
        help="name the copy regiondesk_bench_<size>_<tag> and migrate it, not the dataset "
        "(for runs of several branches at once; give each its own --port too)",
    )
    p.add_argument("--webhook-events", type=int, default=10_000)
    p.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help=f"comma list of {', '.join(SCENARIOS)}"
    )
    p.add_argument("--profile", default="", help="comma list of scenarios to profile (py-spy)")
    p.add_argument("--note", default="", help="a line added under the table")
    p.add_argument("--no-doc", action="store_true", help="do not write docs/benchmarks.md")
    opts = p.parse_args(argv)
    opts.duration = opts.duration or (5.0 if opts.quick else 20.0)
    opts.warmup = opts.warmup if opts.warmup is not None else (1.0 if opts.quick else 3.0)
    opts.scenarios = [s for s in opts.scenarios.split(",") if s]
    opts.profile = [s for s in opts.profile.split(",") if s]
    unknown = set(opts.scenarios) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if "bare" not in opts.scenarios:
        opts.scenarios.insert(0, "bare")  # every share needs it
    return opts


def main(argv: list[str] | None = None) -> int:
    opts = parse(argv)
    if shutil.which("wrk") is None:
        print("error: wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    cmd = "python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:])
    load_start = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    url = ensure_database(opts.cases, opts.seed, opts.jobs, opts.fresh, opts.copy, opts.tag)
    bench = Bench(opts, url)
    bench.bare()
    bench.start_app()
    try:
        # Reads first, on the pristine data; then the scenarios that write.
        for name in ("get", "queue", "search", "stats", "create", "batch", "webhooks"):
            if name in opts.scenarios:
                getattr(bench, {"get": "get_one"}.get(name, name))()
    finally:
        bench.app.stop()
    bench.memory()
    results = bench.results
    if opts.growth:
        results += growth(opts, results)
    info = machine()
    info["load_start"] = load_start
    info["load_end"] = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{label(opts.cases)}.json").write_text(
        json.dumps(
            {"machine": info, "command": cmd, "results": [asdict(r) for r in results]},
            indent=2,
            ensure_ascii=False,
        )
    )
    section = markdown(opts, results, info, cmd)
    if not opts.no_doc:
        write_doc(label(opts.cases) + ("-quick" if opts.quick else ""), section)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
