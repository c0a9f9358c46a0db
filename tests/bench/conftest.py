"""What the benchmark tools' tests share: a small generated dataset."""

from __future__ import annotations

import pytest

from app.reference.demo import seed_demo
from bench.generate import generate

CASES = 500


@pytest.fixture
def generated(client, db, database_url):
    """500 generated cases on top of the demo region; the client fixture empties it after."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the generator bulk-loads with PostgreSQL COPY; there is no SQLite path")
    db.run(seed_demo)
    report = client.portal.call(lambda: generate(database_url, CASES, seed=3, chunk=200))
    return report
