"""GET /metrics: request counts and latencies by route template, cases by status and overdue,
collectors from other packages, the optional token, and several worker processes."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from app.cases.models import Case
from app.core.config import Settings
from app.core.types import utcnow
from app.observability import metrics as metrics_module
from app.observability.metrics import register_collector
from tests.observability.conftest import assert_problem

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "metrics-" + "t" * 24


def samples(response) -> dict[tuple[str, frozenset], float]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(found, name, **labels) -> float | None:
    return found.get((name, frozenset(labels.items())))


def _case(status: str, kind: str = "incident", due_in: timedelta | None = None) -> Case:
    return Case(
        kind=kind,
        status=status,
        source_system="metrics-test",
        submitted_by="test",
        text="…",
        due_at=utcnow() + due_in if due_in is not None else None,
    )


def test_requests_are_counted_by_route_template_not_path(client):
    for case_id in (101, 202, 303):
        client.get(f"/api/v1/cases/{case_id}")
    client.get("/no/such/path/42")
    client.get("/another/unknown")
    client.request("BREW", "/health/live")
    found = samples(client.get("/metrics"))
    route = "/api/v1/cases/{case_id}"
    assert (
        value(found, "regiondesk_http_requests_total", method="GET", route=route, status="401") == 3
    )
    assert (
        value(
            found,
            "regiondesk_http_request_duration_seconds_count",
            method="GET",
            route=route,
            status="401",
        )
        == 3
    )
    assert (
        value(
            found, "regiondesk_http_requests_total", method="GET", route="unmatched", status="404"
        )
        == 2
    )
    assert not any("/api/v1/cases/101" in str(labels) for _, labels in found)
    assert any(dict(labels).get("method") == "other" for _, labels in found)
    buckets = [
        dict(labels)["le"]
        for name, labels in found
        if name == "regiondesk_http_request_duration_seconds_bucket"
        and dict(labels)["route"] == route
    ]
    assert "0.005" in buckets and "+Inf" in buckets


def test_cases_by_status_and_overdue(client, db):
    db.add(
        _case("new"),
        _case("assigned", due_in=timedelta(hours=-2)),  # overdue
        _case("in_progress", due_in=timedelta(hours=-1)),  # overdue
        _case("in_progress", due_in=timedelta(hours=5)),
        _case("closed", due_in=timedelta(hours=-9)),  # closed: not overdue
        _case("assigned", kind="appeal", due_in=timedelta(days=-1)),  # overdue
    )
    found = samples(client.get("/metrics"))
    assert value(found, "regiondesk_cases", status="in_progress", kind="incident") == 2
    assert value(found, "regiondesk_cases", status="new", kind="incident") == 1
    assert value(found, "regiondesk_cases", status="closed", kind="incident") == 1
    assert value(found, "regiondesk_cases", status="rejected", kind="appeal") == 0
    assert value(found, "regiondesk_cases_overdue", kind="incident") == 2
    assert value(found, "regiondesk_cases_overdue", kind="appeal") == 1
    up = value(
        found,
        "regiondesk_metrics_collector_up",
        collector="app.observability.metrics.case_metrics",
    )
    assert up == 1


def test_database_gauges_are_cached_between_scrapes(make_client, db):
    cached = make_client(metrics_cache_seconds=300)
    fresh = make_client(metrics_cache_seconds=0)
    for http in (cached, fresh):
        assert (
            value(samples(http.get("/metrics")), "regiondesk_cases", status="new", kind="incident")
            == 0
        )
    db.add(_case("new"))
    assert (
        value(samples(cached.get("/metrics")), "regiondesk_cases", status="new", kind="incident")
        == 0
    )
    assert (
        value(samples(fresh.get("/metrics")), "regiondesk_cases", status="new", kind="incident")
        == 1
    )


@pytest.fixture
def own_collectors(monkeypatch):
    monkeypatch.setattr(metrics_module, "_collectors", list(metrics_module._collectors))


def test_other_packages_add_collectors_and_a_failing_one_is_reported(client, own_collectors):
    async def outbox_backlog(session):
        family = GaugeMetricFamily("regiondesk_test_backlog", "Test backlog")
        family.add_metric([], 7)
        return [family]

    async def broken(session):
        raise RuntimeError("no such table")

    assert register_collector(outbox_backlog) is outbox_backlog
    register_collector(outbox_backlog)  # twice is once
    register_collector(broken)
    found = samples(client.get("/metrics"))
    assert value(found, "regiondesk_test_backlog") == 7
    assert value(found, "regiondesk_cases", status="new", kind="incident") == 0
    name = f"{__name__}.test_other_packages_add_collectors_and_a_failing_one_is_reported"
    assert value(found, "regiondesk_metrics_collector_up", collector=f"{name}.<locals>.broken") == 0
    assert (
        value(
            found,
            "regiondesk_metrics_collector_up",
            collector=f"{name}.<locals>.outbox_backlog",
        )
        == 1
    )


# --- access -------------------------------------------------------------------------------


def test_a_configured_token_is_required(make_client, auth):
    http = make_client(metrics_token=TOKEN)
    missing = http.get("/metrics")
    assert_problem(missing, 401)
    assert missing.headers["www-authenticate"] == "Bearer"
    assert http.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    # An API access token is not the metrics token.
    assert http.get("/metrics", headers=auth.headers("admin")).status_code == 401
    assert http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    basic = base64.b64encode(f"prometheus:{TOKEN}".encode()).decode()
    assert http.get("/metrics", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    assert http.get("/metrics", headers={"Authorization": "Basic %%%"}).status_code == 401


def test_metrics_can_be_switched_off(bare_app):
    with TestClient(bare_app(metrics_enabled=False), raise_server_exceptions=False) as http:
        http.get("/health/live")
        assert_problem(http.get("/metrics"), 404)


PRODUCTION = {"env": "production", "secret_key": "p" * 40}


def test_production_serves_metrics_only_behind_a_token(bare_app):
    with TestClient(bare_app(**PRODUCTION), raise_server_exceptions=False) as http:
        assert_problem(http.get("/metrics"), 404)
    with TestClient(bare_app(**PRODUCTION, metrics_token=TOKEN)) as http:
        assert http.get("/metrics").status_code == 401
        ok = http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200


def test_production_refuses_metrics_without_a_token_or_with_a_short_one():
    with pytest.raises(ValidationError, match="REGIONDESK_METRICS_TOKEN must be set"):
        Settings(_env_file=None, **PRODUCTION, metrics_enabled=True)
    with pytest.raises(ValidationError, match="at least 16 characters"):
        Settings(_env_file=None, **PRODUCTION, metrics_token="short")
    assert Settings(_env_file=None, **PRODUCTION, metrics_enabled=False).metrics_served is False
    assert Settings(_env_file=None, **PRODUCTION, metrics_token=TOKEN).metrics_served is True
    assert Settings(_env_file=None, metrics_token="").metrics_secret is None
    assert "t" * 24 not in repr(Settings(_env_file=None, metrics_token=TOKEN))


# --- several worker processes ---------------------------------------------------------------

_WORKER = textwrap.dedent(
    """
    import sys
    from fastapi.testclient import TestClient
    from app.core.config import Settings
    from app.main import create_app

    app = create_app(Settings(_env_file=None, env="test", database_url=sys.argv[1]))
    with TestClient(app) as http:
        for _ in range(int(sys.argv[2])):
            http.get("/health/live")
        if sys.argv[3] == "scrape":
            print(http.get("/metrics").text)
    """
)


def test_worker_processes_share_request_metrics(tmp_path, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("processes, not databases, are under test")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    run = [sys.executable, "-c", _WORKER, database_url]
    subprocess.run([*run, "3", "-"], env=env, cwd=ROOT, check=True, timeout=120)
    scraped = subprocess.run(
        [*run, "2", "scrape"], env=env, cwd=ROOT, check=True, timeout=120, capture_output=True
    ).stdout.decode()
    line = 'regiondesk_http_requests_total{method="GET",route="/health/live",status="200"} 5.0'
    assert line in scraped
    assert "regiondesk_cases{" in scraped


def test_serve_with_workers_shares_metrics_through_a_directory(monkeypatch):
    import uvicorn

    from app.__main__ import main
    from app.core.config import get_settings

    seen = {}

    def fake_run(*args, **kwargs):
        seen["dir"] = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        seen["existed"] = seen["dir"] is not None and Path(seen["dir"]).is_dir()

    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    get_settings.cache_clear()
    try:
        assert main(["serve", "--workers", "3"]) == 0
        assert seen["existed"] is True
        assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
        assert not Path(seen["dir"]).exists()
        assert main(["serve"]) == 0
        assert seen["dir"] is None  # one process: nothing to share
    finally:
        get_settings.cache_clear()
