"""What a serving process does once at start-up."""

from __future__ import annotations

import gc

import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()  # what a test froze is collectable again


@pytest.mark.parametrize(("env", "frozen"), [("dev", True), ("production", True), ("test", False)])
def test_a_serving_process_moves_its_start_up_objects_out_of_the_collector(
    tmp_path, unfrozen, env, frozen
):
    # Full collections then skip the long-lived objects: the latency tail under load halved
    # (docs/benchmarks.md). Test processes build many apps and keep nothing frozen.
    settings = Settings(
        _env_file=None,
        env=env,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/s.db",
        secret_key="a-secret-long-enough-for-production-checks-0123456789",
        cors_origins=[],
    )
    with TestClient(create_app(settings)):
        assert (gc.get_freeze_count() > 0) is frozen
