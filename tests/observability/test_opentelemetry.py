"""FastAPI's native OpenTelemetry: off unless REGIONDESK_OPENTELEMETRY asks for it. Off, no
request asks the global providers whether anyone is listening; on, FastAPI asks them and
records through whichever one is configured."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from opentelemetry import _logs, metrics, trace


@pytest.fixture
def asked(monkeypatch) -> list[str]:
    """The names of the global providers asked for, in order, while the test runs."""
    calls: list[str] = []
    for module, name in (
        (trace, "get_tracer_provider"),
        (metrics, "get_meter_provider"),
        (_logs, "get_logger_provider"),
    ):
        original = getattr(module, name)

        def counted(*args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)
    return calls


def test_off_by_default_no_request_asks_the_providers(bare_app, asked):
    app = bare_app()
    assert app.state.settings.opentelemetry is False
    with TestClient(app) as client:
        asked.clear()  # start-up may look once; requests must not
        for _ in range(3):
            assert client.get("/health/live").status_code == 200
    assert asked == []


def test_on_every_request_asks_the_providers(bare_app, asked):
    with TestClient(bare_app(opentelemetry=True)) as client:
        asked.clear()
        assert client.get("/health/live").status_code == 200
        assert client.get("/health/live").status_code == 200
    # No provider is configured here, so FastAPI asks each of the three on every request.
    assert asked.count("get_tracer_provider") >= 2
    assert asked.count("get_meter_provider") >= 2
