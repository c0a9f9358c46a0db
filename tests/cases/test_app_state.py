"""`app.state` (app.main.AppState): read on every request, found without a failed look-up, and
still a Starlette State for everything else."""

from __future__ import annotations

import pytest
from starlette.datastructures import State

from app.core.config import Settings
from app.main import AppState, create_app
from tests.cases.conftest import appeal


@pytest.fixture
def failed_lookups(monkeypatch):
    """Every read of a State that its ordinary look-up missed (State.__getattr__)."""
    seen: list[str] = []
    original = State.__getattr__

    def counted(self, key):
        seen.append(key)
        return original(self, key)

    monkeypatch.setattr(State, "__getattr__", counted)
    return seen


def test_requests_read_the_app_state_without_a_failed_look_up(client, auth, world, failed_lookups):
    pos = auth.headers("integration", source="pos")
    created = client.post("/api/v1/appeals", json=appeal(territory_id=world.sochi.id), headers=pos)
    assert created.status_code == 201
    failed_lookups.clear()  # what the first request sets up once (the token checks, the cache)
    operator = auth.headers("operator")
    assert client.get(f"/api/v1/cases/{created.json()['id']}", headers=operator).status_code == 200
    assert client.get("/api/v1/cases?limit=5", headers=operator).status_code == 200
    # Before, each of these requests raised and caught an AttributeError per read of app.state
    # (seven on a get: the settings three times, both sessionmakers, the token checks).
    assert failed_lookups == []


def test_the_app_state_is_still_a_state(tmp_path):
    app = create_app(
        Settings(_env_file=None, env="test", database_url=f"sqlite+aiosqlite:///{tmp_path}/s.db")
    )
    state = app.state
    assert isinstance(state, AppState) and isinstance(state, State)
    assert state.settings is app.state["settings"]
    state.gate = 1
    state["other"] = 2
    assert state.gate == state["gate"] == 1 and state.other == state["other"] == 2
    assert {"settings", "gate", "other"} <= set(state) and len(state) == len(list(state))
    state.gate = 3  # replaced: both ways of reading see the new value
    assert state.gate == state["gate"] == 3
    del state.gate
    del state["other"]
    for gone in ("gate", "other"):
        with pytest.raises(AttributeError):
            getattr(state, gone)
        with pytest.raises(KeyError):
            state[gone]
        assert gone not in set(state)
