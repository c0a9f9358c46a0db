"""Structured logs: the formats, the configuration from settings (serve and worker), and one
access-log line per request that names the caller but never a secret, a query string or a
person."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from app.__main__ import main
from app.core.config import Settings
from app.observability.logging import (
    JsonFormatter,
    RequestIdFilter,
    TextFormatter,
    configure_logging,
    logging_config,
)
from app.observability.request_id import request_id_var
from tests.factories import PASSWORD


def _record(msg="hello %s", args=("world",), **extra) -> logging.LogRecord:
    record = logging.LogRecord("regiondesk.x", logging.WARNING, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


@pytest.fixture
def restore_logging():
    names = ["", "uvicorn", "uvicorn.error", "uvicorn.access", "sqlalchemy"]
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level) for n in names}
    yield
    for name, (handlers, level) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)


# --- formats ------------------------------------------------------------------------------


def test_json_lines_carry_the_request_id_and_extras():
    token = request_id_var.set("rid-1")
    try:
        record = _record(route="/api/v1/cases", status=200)
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hello world"
    assert line["level"] == "WARNING"
    assert line["logger"] == "regiondesk.x"
    assert line["request_id"] == "rid-1"
    assert (line["route"], line["status"]) == ("/api/v1/cases", 200)
    assert line["ts"].endswith("+00:00")


def test_json_lines_hold_the_traceback_on_one_line():
    try:
        raise ValueError("bad")
    except ValueError:
        record = _record()
        record.exc_info = sys.exc_info()
    text = JsonFormatter().format(record)
    assert "\n" not in text
    assert "ValueError: bad" in json.loads(text)["exc"]


def test_outside_a_request_there_is_no_request_id():
    record = _record()
    RequestIdFilter().filter(record)
    assert "request_id" not in json.loads(JsonFormatter().format(record))
    assert "[-]" in TextFormatter().format(record)


def test_text_lines_show_the_request_id_and_extras():
    record = _record(status=201)
    record.request_id = "rid-2"
    line = TextFormatter().format(record)
    assert "WARNING" in line and "regiondesk.x [rid-2] hello world" in line
    assert line.endswith(" status=201")


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "formatter"), [("json", JsonFormatter), ("text", TextFormatter)])
def test_settings_choose_format_and_level(restore_logging, fmt, formatter):
    configure_logging(Settings(_env_file=None, log_format=fmt, log_level="warning"))
    root = logging.getLogger()
    assert root.level == logging.WARNING
    (handler,) = root.handlers
    assert isinstance(handler.formatter, formatter)
    assert any(isinstance(f, RequestIdFilter) for f in handler.filters)


def test_sql_is_never_logged_even_at_debug(restore_logging):
    configure_logging(Settings(_env_file=None, log_level="DEBUG"))
    assert not logging.getLogger("sqlalchemy.engine").isEnabledFor(logging.INFO)


def test_unknown_log_level_is_refused():
    with pytest.raises(ValueError, match="unknown log level"):
        Settings(_env_file=None, log_level="LOUD")


def test_serve_hands_our_logging_to_every_uvicorn_worker(monkeypatch):
    import uvicorn

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: seen.update(kw))
    monkeypatch.setenv("REGIONDESK_LOG_FORMAT", "text")
    monkeypatch.setenv("REGIONDESK_TRUSTED_PROXIES", '["10.0.0.0/8"]')
    from app.core.config import get_settings

    get_settings.cache_clear()
    try:
        assert main(["serve"]) == 0
    finally:
        get_settings.cache_clear()
    assert seen["access_log"] is False  # ours replaces uvicorn's
    assert seen["log_config"]["handlers"]["default"]["formatter"] == "text"
    assert seen["forwarded_allow_ips"] == ["10.0.0.0/8"]
    assert seen["log_config"] == logging_config(
        Settings(_env_file=None, log_format="text", trusted_proxies=["10.0.0.0/8"])
    )


def test_worker_logs_the_same_way(monkeypatch, restore_logging):
    import app.webhooks.delivery

    async def idle(settings, once):
        logging.getLogger("regiondesk.worker").warning("worker ran")

    monkeypatch.setattr(app.webhooks.delivery, "serve", idle)
    assert main(["worker", "--once"]) == 0
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler.formatter, JsonFormatter)


# --- the access log -----------------------------------------------------------------------


def _service_lines(log_lines) -> list[dict]:
    # The test client (httpx) logs its own requests; only the service's lines count.
    return [line for line in log_lines.all() if line["logger"].startswith("regiondesk")]


def test_one_access_line_per_request_with_route_and_caller(client, auth, log_lines):
    headers = auth.headers("operator")
    client.get("/api/v1/cases/12345", headers={**headers, "X-Request-ID": "acc-1"})
    (line,) = [x for x in log_lines.of("regiondesk.access") if x["request_id"] == "acc-1"]
    assert line["method"] == "GET"
    assert line["path"] == "/api/v1/cases/12345"
    assert line["route"] == "/api/v1/cases/{case_id}"
    assert line["status"] == 404
    assert isinstance(line["duration_ms"], float)
    assert line["subject"].startswith("user:")


def test_no_token_password_query_or_personal_data_in_any_log_line(client, auth, db, log_lines):
    user = auth.user("operator")
    token = client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": user.username, "password": PASSWORD},
    ).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    client.get("/api/v1/cases", params={"q": "Иванов Пётр"}, headers=bearer)
    client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": user.username, "password": "wrong-Secret9"},
    )
    lines = _service_lines(log_lines)
    access = [line for line in lines if line["logger"] == "regiondesk.access"]
    assert [(a["method"], a["path"], a["status"]) for a in access] == [
        ("POST", "/api/v1/auth/token", 200),
        ("GET", "/api/v1/cases", 200),
        ("POST", "/api/v1/auth/token", 401),
    ]
    assert access[1]["subject"] == f"user:{user.id}"
    text = json.dumps(lines, ensure_ascii=False)
    for secret in (token, PASSWORD, "wrong-Secret9", "Иванов", "q=", "Bearer"):
        assert secret not in text


def test_the_access_log_can_be_switched_off(bare_app, log_lines):
    from fastapi.testclient import TestClient

    with TestClient(bare_app(log_access=False)) as http:
        http.get("/health/live")
    assert log_lines.of("regiondesk.access") == []


def test_the_service_does_not_look_up_frames_threads_or_processes(restore_logging, tmp_path):
    """The service's records skip what no formatter shows; lines keep all they show."""
    from fastapi.testclient import TestClient

    from app.main import create_app

    settings = Settings(
        _env_file=None,
        env="production",
        database_url=f"sqlite:///{tmp_path}/lean.db",
        secret_key="lean-records-" + "x" * 40,
    )
    logging._srcfile, logging.logThreads = __file__, True  # as a process starts
    logging.logProcesses = logging.logMultiprocessing = True
    with TestClient(create_app(settings)):
        assert logging._srcfile is None
        assert not (logging.logThreads or logging.logProcesses or logging.logMultiprocessing)
    record = logging.getLogger("regiondesk.access").makeRecord(
        "regiondesk.access", logging.INFO, "x", 1, "GET / 200", (), None, extra={"status": 200}
    )
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "GET / 200" and line["status"] == 200
