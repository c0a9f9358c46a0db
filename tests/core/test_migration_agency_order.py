"""Migration 0022: every access row gets its case's registration time, and the index of each
agency's cases in that order replaces the one of agency_id alone; down again, the column goes and
the old index comes back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect, text

from tests.conftest import run_migrations
from tests.core.conftest import new_case, run_on

BEFORE = "0021"
FIRST = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


def _seed(conn) -> None:
    """Three cases a day apart; two agencies given some of them."""
    for code in ("a", "b"):
        conn.execute(
            text(
                "INSERT INTO agency (code, name, kind, is_active, created_at, updated_at) "
                "VALUES (:code, :code, 'municipality', true, :now, :now)"
            ),
            {"code": code, "now": FIRST},
        )
    agencies = dict(conn.execute(text("SELECT code, id FROM agency")).all())
    cases = [new_case(conn, f"c{n}", FIRST + timedelta(days=n)) for n in range(3)]
    for case_id, code in ((cases[0], "a"), (cases[1], "a"), (cases[1], "b"), (cases[2], "b")):
        conn.execute(
            text("INSERT INTO case_agency (case_id, agency_id) VALUES (:case, :agency)"),
            {"case": case_id, "agency": agencies[code]},
        )


def _state(conn) -> dict:
    insp = inspect(conn)
    columns = {c["name"]: c for c in insp.get_columns("case_agency")}
    state = {
        "indexes": {ix["name"]: ix["column_names"] for ix in insp.get_indexes("case_agency")},
        "column": columns.get("case_created_at"),
    }
    if state["column"] is not None:
        state["copied"] = conn.execute(
            text(
                "SELECT count(*), sum(CASE WHEN a.case_created_at = c.created_at THEN 1 ELSE 0 "
                "END) FROM case_agency a JOIN case_file c ON c.id = a.case_id"
            )
        ).one()
    return state


def test_0022_copies_each_cases_time_and_replaces_the_agency_index(fresh_url):
    run_migrations(fresh_url, BEFORE)
    run_on(fresh_url, _seed)
    before = run_on(fresh_url, _state)
    assert before["column"] is None
    assert before["indexes"] == {"ix_case_agency_agency_id": ["agency_id"]}

    run_migrations(fresh_url)
    after = run_on(fresh_url, _state)
    assert after["column"]["nullable"] is False
    assert tuple(after["copied"]) == (4, 4)  # every row, each its own case's time
    assert after["indexes"] == {
        "ix_case_agency_agency_created": ["agency_id", "case_created_at", "case_id"]
    }

    run_migrations(fresh_url, BEFORE, downgrade=True)
    assert run_on(fresh_url, _state) == before
