"""Helpers for the operations tests: apps with other settings, and the log lines of a test."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app
from app.observability.logging import JsonFormatter, RequestIdFilter
from tests.conftest import _truncate

PROBLEM_JSON = "application/problem+json"


@pytest.fixture
def make_client(settings: Settings) -> Iterator[Callable[..., TestClient]]:
    """make_client(routes=..., client=..., **settings overrides): a started TestClient on the
    migrated test database, with the given settings changed and extra routes added."""
    opened: list[TestClient] = []

    def make(
        *,
        routes: Callable[[FastAPI], None] | None = None,
        client: tuple[str, int] = ("testclient", 50000),
        **overrides,
    ) -> TestClient:
        app = create_app(Settings(_env_file=None, **{**settings.model_dump(), **overrides}))
        if routes is not None:
            routes(app)
        test_client = TestClient(app, raise_server_exceptions=False, client=client)
        test_client.__enter__()
        opened.append(test_client)
        return test_client

    yield make
    for test_client in opened:
        try:
            test_client.portal.call(_truncate, test_client.app.state.engine)
        finally:
            test_client.__exit__(None, None, None)


@pytest.fixture
def bare_app(tmp_path) -> Callable[..., FastAPI]:
    """An app on an empty SQLite file, for what needs no tables (middlewares, pages)."""

    def make(**overrides) -> FastAPI:
        base = {"env": "test", "database_url": f"sqlite+aiosqlite:///{tmp_path}/bare.db"}
        return create_app(Settings(_env_file=None, **{**base, **overrides}))

    return make


class LogLines:
    """Every record logged during the test, as the JSON lines the service would write."""

    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def all(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def of(self, logger: str) -> list[dict]:
        return [line for line in self.all() if line["logger"] == logger]


def json_handler(stream: io.StringIO) -> logging.StreamHandler:
    """A handler as the service's logging_config makes it (JSON lines, the request id), on
    `stream`."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    return handler


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    stream = io.StringIO()
    handler = json_handler(stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield LogLines(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://")
    return body
