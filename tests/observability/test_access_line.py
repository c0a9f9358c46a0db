"""The access-log line written straight to the service's own handler (DirectLine) when nothing
else would see the record, and through `logging` whenever anything else is configured."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from app.observability.logging import DirectLine, TextFormatter
from tests.observability.conftest import json_handler

ACCESS = "regiondesk.access"


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def service_logging() -> Iterator[logging.StreamHandler]:
    """The root's handlers as the service sets them up (logging_config: one StreamHandler,
    the JSON formatter, the request-id filter), writing to a StringIO; pytest's own handlers
    are set aside meanwhile (it adds them around each phase of a test, so this is entered in
    the test's body), and everything is put back after."""
    root, access = logging.getLogger(), logging.getLogger(ACCESS)
    root_handlers, root_level = root.handlers[:], root.level
    access_handlers, access_filters = access.handlers[:], access.filters[:]
    propagate = access.propagate
    handler = json_handler(io.StringIO())
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.handlers[:], access.handlers[:], access.filters[:] = (
            root_handlers,
            access_handlers,
            access_filters,
        )
        root.setLevel(root_level)
        access.propagate = propagate


def _lines(handler: logging.StreamHandler, logger: str = ACCESS) -> list[dict]:
    lines = [json.loads(text) for text in handler.stream.getvalue().splitlines()]
    return [line for line in lines if line["logger"] == logger]


@pytest.fixture
def records_made() -> Iterator[list[str]]:
    """The name of the logger of every LogRecord made meanwhile."""
    made: list[str] = []
    factory = logging.getLogRecordFactory()

    def counted(name, *args, **kwargs):
        made.append(name)
        return factory(name, *args, **kwargs)

    logging.setLogRecordFactory(counted)
    try:
        yield made
    finally:
        logging.setLogRecordFactory(factory)


def test_with_the_services_setup_a_request_is_logged_without_a_record(bare_app, records_made):
    with service_logging() as handler, TestClient(bare_app()) as http:
        answer = http.get("/health/live", headers={"X-Request-ID": "direct-1"})
    assert answer.status_code == 200
    assert ACCESS not in records_made  # logging made no record of it
    (line,) = _lines(handler)
    assert list(line) == [
        *("ts", "level", "logger", "message", "request_id"),
        *("method", "path", "route", "status", "duration_ms"),
    ]
    assert line["request_id"] == "direct-1" and line["level"] == "INFO"
    assert line["message"] == f"GET /health/live 200 {line['duration_ms']}ms"
    assert (line["path"], line["route"], line["status"]) == ("/health/live", "/health/live", 200)


def test_the_line_written_straight_is_the_line_logging_writes(monkeypatch):
    monkeypatch.setattr(time, "time", lambda: 1796675877.8056)  # logging reads time.time too
    fields = {
        "method": "GET",
        "path": "/api/v1/cases/Дом 5",
        "route": "/api/v1/cases/{case_id}",
        "status": 404,
        "duration_ms": 0.3,
        "subject": "user:7",
    }
    access = logging.getLogger(ACCESS)
    with service_logging() as handler:
        assert DirectLine(access).line("GET /api/v1/cases/Дом 5 404 0.3ms", "rid-9", fields)
        access.info(
            "%s %s %s %sms",
            *("GET", "/api/v1/cases/Дом 5", 404, 0.3),
            extra={**fields, "request_id": "rid-9"},
        )
    straight, logged = handler.stream.getvalue().splitlines()
    assert straight == logged
    assert json.loads(straight)["ts"] == "2026-12-07T20:37:57.805+00:00"


def _another_handler(handler: logging.StreamHandler) -> Captured:
    captured = Captured()
    logging.getLogger().addHandler(captured)
    return captured


def _a_handler_of_the_access_log(handler: logging.StreamHandler) -> Captured:
    captured = Captured()
    logging.getLogger(ACCESS).addHandler(captured)
    return captured


def _a_filter_on_the_access_log(handler: logging.StreamHandler) -> None:
    logging.getLogger(ACCESS).addFilter(lambda record: False)


def _the_text_format(handler: logging.StreamHandler) -> None:
    handler.setFormatter(TextFormatter())


def _warnings_only(handler: logging.StreamHandler) -> None:
    handler.setLevel(logging.WARNING)


def _a_filter_of_its_own(handler: logging.StreamHandler) -> None:
    handler.addFilter(lambda record: record.name != ACCESS)


def _not_propagated(handler: logging.StreamHandler) -> None:
    logging.getLogger(ACCESS).propagate = False


@pytest.mark.parametrize(
    ("configure", "written"),
    [
        (_another_handler, "json"),
        (_a_handler_of_the_access_log, "json"),
        (_a_filter_on_the_access_log, None),
        (_the_text_format, "text"),
        (_warnings_only, None),
        (_a_filter_of_its_own, None),
        (_not_propagated, None),
    ],
)
def test_anything_else_configured_sees_the_record_through_logging(
    bare_app, records_made, configure, written
):
    with service_logging() as handler:
        captured = configure(handler)
        with TestClient(bare_app()) as http:
            answer = http.get("/health/live", headers={"X-Request-ID": "via-logging"})
    assert answer.status_code == 200
    assert ACCESS in records_made  # the request went through logging
    text = handler.stream.getvalue()
    if written == "json":
        (line,) = _lines(handler)
        assert line["request_id"] == "via-logging" and line["route"] == "/health/live"
    elif written == "text":
        (line,) = [t for t in text.splitlines() if ACCESS in t]
        assert "[via-logging] GET /health/live 200" in line and "route=/health/live" in line
    else:
        assert ACCESS not in text
    if captured is not None:
        (record,) = [r for r in captured.records if r.name == ACCESS]
        assert record.request_id == "via-logging" and record.status == 200


def test_a_failed_write_is_reported_as_the_handler_reports_it(bare_app, monkeypatch):
    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError("disk full")

    reported: list[logging.LogRecord] = []
    with service_logging() as handler:
        handler.setStream(Broken())
        monkeypatch.setattr(handler, "handleError", reported.append)
        with TestClient(bare_app()) as http:
            answer = http.get("/health/live", headers={"X-Request-ID": "broken"})
    assert answer.status_code == 200  # the answer is not the log's casualty
    (record,) = [r for r in reported if r.name == ACCESS]
    assert record.getMessage().startswith("GET /health/live 200 ")
    assert record.request_id == "broken" and record.route == "/health/live"
