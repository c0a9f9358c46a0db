"""Prometheus metrics: HTTP requests by route template, plus gauges computed at scrape time.

Request counts and latencies are kept per app (its own registry). Gauges that need the
database come from *collectors*: async functions given a read-only session that return metric
families. They run together at scrape time, at most once per `metrics_cache_seconds`; other
packages add theirs with `register_collector` (the cases collector below is one).

Several worker processes: when PROMETHEUS_MULTIPROC_DIR is set (`python -m app serve
--workers N` sets it), every process writes its request metrics there and a scrape of any one
worker reports the sum over all of them (prometheus-client's multiprocess mode)."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import case as when
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from app.cases.models import Case, CaseKind, CaseStatus
from app.cases.queries import overdue_clause

log = logging.getLogger("regiondesk.metrics")

# Seconds; request latencies of this API are mostly milliseconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # requests no route took (404s): one label, whatever the path

disable_created_metrics()  # no *_created series: they double the output and nobody reads them

Collector = Callable[[AsyncSession], Awaitable[Iterable[Metric]]]
_collectors: list[Collector] = []


def register_collector(collector: Collector) -> Collector:
    """Adds an async `collector(session) -> metric families` to every scrape (idempotent;
    usable as a decorator). It should run one cheap aggregate query."""
    if collector not in _collectors:
        _collectors.append(collector)
    return collector


def route_label(scope) -> str:
    """The route template (`/api/v1/cases/{case_id}`), never the raw path: bounded labels."""
    path = getattr(scope.get("route"), "path", None)
    if path:
        return path
    # A mounted app (the docs' static files) leaves its prefix in root_path.
    mounted = scope.get("root_path", "")[len(scope.get("app_root_path", "")) :]
    if mounted and scope.get("endpoint") is not None:
        return mounted + "/{path}"
    return UNMATCHED


class HttpMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        labels = ("method", "route", "status")
        self.requests = Counter(
            "regiondesk_http_requests",
            "HTTP requests answered, by method, route template and status",
            labels,
            registry=self.registry,
        )
        self.latency = Histogram(
            "regiondesk_http_request_duration_seconds",
            "Time to answer HTTP requests, by method, route template and status",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, int], tuple] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        if method not in KNOWN_METHODS:
            method = "other"
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            labels = (method, route, str(status))
            children = (self.requests.labels(*labels), self.latency.labels(*labels))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def exposition(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


class _Families:
    """A collector over ready-made families, for generate_latest."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


class Scraper:
    """Renders /metrics: the HTTP metrics, then the collectors' families (cached briefly)."""

    def __init__(self, http: HttpMetrics, cache_seconds: float) -> None:
        self.http = http
        self.cache_seconds = cache_seconds
        self._families: list[Metric] = []
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def render(self, sessionmaker: async_sessionmaker[AsyncSession]) -> bytes:
        families = await self._collected(sessionmaker)
        return self.http.exposition() + generate_latest(_Families(families))

    async def _collected(self, sessionmaker: async_sessionmaker[AsyncSession]) -> list[Metric]:
        if time.monotonic() < self._expires:
            return self._families
        async with self._lock:
            if time.monotonic() >= self._expires:
                self._families = await self._collect(sessionmaker)
                self._expires = time.monotonic() + self.cache_seconds
        return self._families

    async def _collect(self, sessionmaker: async_sessionmaker[AsyncSession]) -> list[Metric]:
        families: list[Metric] = []
        up = GaugeMetricFamily(
            "regiondesk_metrics_collector_up",
            "1 if the collector answered at the last scrape, 0 if it failed (see the log)",
            labels=["collector"],
        )
        async with sessionmaker() as session:
            for collector in list(_collectors):
                name = f"{collector.__module__}.{collector.__qualname__}"
                try:
                    families.extend(await collector(session))
                    up.add_metric([name], 1)
                except Exception:
                    log.warning("metrics collector %s failed", name, exc_info=True)
                    up.add_metric([name], 0)
                    await session.rollback()
        families.append(up)
        return families


@register_collector
async def case_metrics(session: AsyncSession) -> list[Metric]:
    """Cases by status and kind, and open cases past their deadline: one GROUP BY."""
    late = func.coalesce(func.sum(when((overdue_clause(), 1), else_=0)), 0)
    rows = await session.execute(
        select(Case.status, Case.kind, func.count(), late).group_by(Case.status, Case.kind)
    )
    counts = {(s.value, k.value): 0 for s in CaseStatus for k in CaseKind}
    overdue = {k.value: 0 for k in CaseKind}
    for status, kind, count, late_count in rows:
        counts[(status, kind)] = count
        overdue[kind] = overdue.get(kind, 0) + int(late_count)
    cases = GaugeMetricFamily(
        "regiondesk_cases", "Cases by status and kind", labels=["status", "kind"]
    )
    for (status, kind), count in sorted(counts.items()):
        cases.add_metric([status, kind], count)
    late_cases = GaugeMetricFamily(
        "regiondesk_cases_overdue", "Open cases past their legal deadline", labels=["kind"]
    )
    for kind, count in sorted(overdue.items()):
        late_cases.add_metric([kind], count)
    return [cases, late_cases]


@contextmanager
def shared_across_workers(workers: int) -> Iterator[None]:
    """With several worker processes, has them share request metrics through a fresh
    PROMETHEUS_MULTIPROC_DIR (unless the operator set one), removed again on exit."""
    if workers <= 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    path = tempfile.mkdtemp(prefix="regiondesk-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    try:
        yield
    finally:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        shutil.rmtree(path, ignore_errors=True)
