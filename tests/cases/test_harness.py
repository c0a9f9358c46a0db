"""The test harness's own promise: each test starts from empty tables (but the rows the
migrations seed) and from fresh ids, whatever the test before it wrote."""

from __future__ import annotations

from sqlalchemy import text

from tests import factories
from tests.cases.conftest import incident
from tests.conftest import SEEDED_TABLES, _truncate

_TABLES = {
    "postgresql": "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()",
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
}


def _counts(db) -> dict[str, int]:
    """Rows in every table of the database, the models' and those only migrations make
    (case_search on PostgreSQL); not alembic_version."""

    async def work(session):
        names = (await session.execute(text(_TABLES[db.dialect]))).scalars().all()
        return {
            name: (await session.execute(text(f"SELECT count(*) FROM {name}"))).scalar_one()
            for name in names
            if name != "alembic_version"
        }

    return db.run(work)


def test_cleanup_empties_every_table_and_restarts_every_id(client, db, auth, world):
    seeded = _counts(db)
    operator = auth.headers("operator")
    created = client.post("/api/v1/incidents", json=incident(), headers=operator)
    assert created.status_code == 201, created.text
    assigned = client.post(
        f"/api/v1/cases/{created.json()['id']}/assign",
        json={"agency_id": world.adm_krasnodar.id},
        headers=operator,
    )
    assert assigned.status_code == 200, assigned.text
    written = _counts(db)
    assert written["case_event"] > 0  # guarded against DELETE by a trigger on PostgreSQL
    assert written["case_agency"] > 0 and written["agency"] > 0
    if db.dialect == "postgresql":
        assert written["case_search"] == 1  # a migration's table, kept by triggers

    client.portal.call(_truncate, client.app.state.engine)

    after = _counts(db)
    assert after == {name: seeded[name] if name in SEEDED_TABLES else 0 for name in after}
    assert all(seeded[name] > 0 for name in SEEDED_TABLES)
    # Ids start again from the first, as in a new database.
    assert db.add(factories.agency(code="first-again")).id == 1
    assert db.add(factories.user(role="operator")).id == 1
