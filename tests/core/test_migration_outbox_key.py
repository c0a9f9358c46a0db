"""Migration 0017: the outbox's own key to case_file goes, on both databases, and nothing else
does (the deliveries, the outbox trigger, the partial indexes)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import inspect, text

from tests.conftest import run_migrations
from tests.core.conftest import new_case, run_on

KEY = "fk_webhook_event_case_id_case_file"
BEFORE = "0016"
NOW = datetime(2026, 11, 29, 3, tzinfo=UTC)


def _new_case(conn, external_id: str) -> int:
    return new_case(conn, external_id, NOW)


def _created_event(conn, case_id: int) -> None:
    conn.execute(
        text(
            "INSERT INTO case_event (case_id, action, actor, actor_name, actor_role, created_at) "
            "VALUES (:case_id, 'create', 'x', 'x', 'integration', :now)"
        ),
        {"case_id": case_id, "now": NOW},
    )


def _seed(conn) -> None:
    """A case with its event (the trigger writes its outbox row) and a delivery of that row."""
    case_id = _new_case(conn, "before")
    _created_event(conn, case_id)
    conn.execute(
        text(
            "INSERT INTO webhook_subscription (id, url, secret, event_types, agency_ids, "
            "category_ids, kinds, include_personal_data, owner_role, is_active, created_by, "
            "created_at, updated_at, secret_rotated_at) VALUES (1, 'https://example.org/h', 's', "
            "'[]', '[]', '[]', '[]', true, 'admin', true, 'x', :now, :now, :now)"
        ),
        {"now": NOW},
    )
    conn.execute(
        text(
            "INSERT INTO webhook_delivery (subscription_id, event_id, case_id, event_type, "
            "payload, priority, status, attempts, next_attempt_at, created_at) "
            "SELECT 1, id, case_id, event_type, '{}', 5, 'pending', 0, :now, :now "
            "FROM webhook_event"
        ),
        {"now": NOW},
    )


def _state(conn) -> dict:
    insp = inspect(conn)
    counts = {
        table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
        for table in ("case_file", "case_event", "webhook_event", "webhook_delivery")
    }
    return {
        "keys": sorted(fk["name"] for fk in insp.get_foreign_keys("webhook_event")),
        "indexes": sorted(ix["name"] for ix in insp.get_indexes("webhook_event")),
        "counts": counts,
    }


def _add_a_case(conn) -> int:
    """A new case's event still reaches the outbox: its outbox rows."""
    case_id = _new_case(conn, f"probe-{uuid.uuid4().hex[:6]}")
    _created_event(conn, case_id)
    return conn.execute(
        text("SELECT count(*) FROM webhook_event WHERE case_id = :id"), {"id": case_id}
    ).scalar_one()


def test_0017_drops_only_the_outbox_key_to_the_case(fresh_url):
    run_migrations(fresh_url, BEFORE)
    run_on(fresh_url, _seed)
    before = run_on(fresh_url, _state)
    assert KEY in before["keys"]
    kept = {"case_file": 1, "case_event": 1, "webhook_event": 1, "webhook_delivery": 1}
    assert before["counts"] == kept

    run_migrations(fresh_url)
    after = run_on(fresh_url, _state)
    assert after["keys"] == [k for k in before["keys"] if k != KEY]
    assert after["indexes"] == before["indexes"]
    assert after["counts"] == kept  # no delivery lost to SQLite's table copy
    assert run_on(fresh_url, _add_a_case) == 1

    run_migrations(fresh_url, BEFORE, downgrade=True)
    again = run_on(fresh_url, _state)
    assert again["keys"] == before["keys"]
    assert again["indexes"] == before["indexes"]
    more = {table: 2 for table in kept} | {"webhook_delivery": 1}
    assert again["counts"] == more
    assert run_on(fresh_url, _add_a_case) == 1


def test_0017_partial_indexes_keep_their_condition(fresh_url):
    run_migrations(fresh_url)

    def where(conn):
        found = {}
        for ix in inspect(conn).get_indexes("webhook_event"):
            options = ix.get("dialect_options", {})
            found[ix["name"]] = options.get("sqlite_where", options.get("postgresql_where"))
        return found

    if fresh_url.startswith("sqlite"):

        def stored(conn):
            rows = conn.execute(
                text("SELECT name, sql FROM sqlite_master WHERE tbl_name = 'webhook_event'")
            )
            return {name: sql for name, sql in rows if name.startswith("ix_")}

        sql = run_on(fresh_url, stored)
        assert sql["ix_webhook_event_pending"].endswith("WHERE dispatched_at IS NULL")
        assert sql["ix_webhook_event_dispatched"].endswith("WHERE dispatched_at IS NOT NULL")
    else:
        found = run_on(fresh_url, where)
        assert "dispatched_at IS NULL" in str(found["ix_webhook_event_pending"])
        assert "dispatched_at IS NOT NULL" in str(found["ix_webhook_event_dispatched"])
