"""bench/inprocess.py: the create scenario files the bench's incidents through the app itself."""

from __future__ import annotations

import argparse

import asyncpg
import uvloop

from bench import inprocess
from bench.generate import asyncpg_dsn


def test_the_create_scenario_files_incidents_in_process(generated, database_url, capsys):
    settings = inprocess.in_process_settings(database_url)
    opts = argparse.Namespace(
        database_url=settings.database_url,
        scenario="create",
        requests=8,
        rounds=2,
        concurrency=4,
    )
    uvloop.run(inprocess.measure(opts, settings))
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["round 1", "round 2", "best"]

    async def filed() -> list:
        conn = await asyncpg.connect(asyncpg_dsn(settings.database_url))
        try:
            return await conn.fetch(
                "SELECT external_id, status, agency_id FROM case_file "
                "WHERE source_system = 'incident-management' AND external_id LIKE '%inprocess-%'"
            )
        finally:
            await conn.close()

    rows = uvloop.run(filed())
    # the warm-up's 400 (8 clients of 200 // 4) and the two rounds' 8 each, each its own case
    assert len(rows) == len({r["external_id"] for r in rows}) == 416
    assert any(r["status"] == "assigned" and r["agency_id"] for r in rows)  # routed ones too
