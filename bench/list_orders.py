"""What PostgreSQL spends on a list's page in each order the API offers, under common filters:
every sort (created_at, updated_at, due_at, either way) with each of twelve filters (none, the
open queue, the centre's inbox, a territory's and a sector's open cases, a territory, an agency,
the closed cases, the overdue ones, a priority, a search for a common word and for a word in no
case), its first page and the page after its cursor, as the operator (or, with `--as agency`,
the demo district user of adm-krasnodar) asks for them in process. Each page's statement is
caught as the app sends it and run again under EXPLAIN ANALYZE with the same parameters, in a
transaction rolled back after (a page writes its record of the personal data shown); the best of
`--repeat` execution times is printed, and pages over `--slow` ms are marked. With `--generic`,
each page's statement is also prepared and run seven times with the same values, as a connection
of the app runs it (PostgreSQL's default `plan_cache_mode`: after five runs it keeps the plan
made without the values, the generic plan, if that looks no dearer), and is marked `generic` if
PostgreSQL switched; then timed with its generic plan (`force_generic_plan`,
bench.queue_statements.run_prepared: ms a run, a dash past half a second), which is slow for
most of them: what matters is which it switches to.

    python -m bench.list_orders postgresql://postgres@127.0.0.1:5432/regiondesk_bench_1m_x

It finds the orders that have no index to walk: their pages sort every case that passes the
filters, and cost what the table holds, not what the page shows. Run it on a copy, never a
dataset template.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
from urllib.parse import quote

import asyncpg

from app.core.db import SERVER_SETTINGS
from app.main import create_app
from bench.generate import asyncpg_dsn
from bench.inprocess import OPEN, case_statements, in_process_settings, list_page, logged_in
from bench.queue_statements import run_prepared

SORTS = ("-created_at", "created_at", "-updated_at", "updated_at", "due_at", "-due_at")
FILTERS = (
    "",
    OPEN,
    "status=new&status=returned",
    OPEN + "&territory_id={krasnodar}",
    OPEN + "&category_id={roads}",
    "territory_id={krasnodar}",
    "agency_id={agency}",
    "status=closed",
    OPEN + "&overdue=true",
    "priority=high",
    "q={common}",
    "q={absent}",
)
WORDS = {"common": "лифт", "absent": "абракадабра"}
"""The searches: a word in about 1 of 20 generated cases (bench/texts.py), and one in none."""
WHO = {"operator": "queue", "agency": "get"}  # bench.inprocess.LOGINS


Measured = list[tuple[str, str, list[float], list[tuple[bool, float | None]]]]


async def _explained(conn: asyncpg.Connection, statement: str, parameters: tuple) -> float:
    """Execution ms of the statement as sent (its plan made for these values), rolled back."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        plan = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", *parameters)
    finally:
        await transaction.rollback()
    return json.loads(plan)[0]["Execution Time"]


async def _switches(conn: asyncpg.Connection, statement: str, parameters: tuple) -> bool:
    """Whether PostgreSQL ran the statement, prepared on a connection, with its generic plan
    on the sixth and seventh runs (pg_prepared_statements), rolled back."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        prepared = await conn.prepare(statement)
        for _ in range(7):
            await prepared.fetch(*parameters)
        generic = await conn.fetchval(
            "SELECT generic_plans FROM pg_prepared_statements WHERE name = $1",
            prepared.get_name(),
        )
    finally:
        await transaction.rollback()
    return generic > 0


async def measure(database_url: str, who: str, repeat: int, generic: bool = False) -> Measured:
    settings = in_process_settings(database_url)
    conn = await asyncpg.connect(
        asyncpg_dsn(settings.database_url), server_settings=SERVER_SETTINGS
    )  # as the app's (no JIT)
    try:
        names = {
            "krasnodar": await conn.fetchval("SELECT id FROM territory WHERE code = 'krasnodar'"),
            "roads": await conn.fetchval("SELECT id FROM category WHERE code = 'roads'"),
            "agency": await conn.fetchval("SELECT id FROM agency WHERE code = 'adm-krasnodar'"),
        } | {name: quote(word) for name, word in WORDS.items()}
        app = create_app(settings)
        measured: Measured = []
        runs = range(repeat)
        async with app.router.lifespan_context(app):
            headers = await logged_in(app, WHO[who])
            with case_statements(app) as sent:
                for shape, sort in itertools.product(FILTERS, SORTS):
                    query, cursor = f"{shape.format(**names)}&limit=50&sort={sort}", None
                    times: list[float] = []
                    generic_times: list[tuple[bool, float | None]] = []
                    for _ in range(2):
                        path = query + (f"&cursor={cursor}" if cursor else "")
                        body, (statement, parameters) = await list_page(app, headers, path, sent)
                        times.append(
                            min([await _explained(conn, statement, parameters) for _ in runs])
                        )
                        if generic:
                            switches = await _switches(conn, statement, parameters)
                            ms = await run_prepared(
                                conn, statement, parameters, "force_generic_plan", repeat
                            )
                            generic_times.append((switches, ms))
                        cursor = body["next_cursor"]
                        if cursor is None:
                            break
                    measured.append((shape, sort, times, generic_times))
    finally:
        await conn.close()
    return measured


def main(argv: list[str] | None = None) -> Measured:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("database_url", help="a copy of a bench dataset (never the template)")
    p.add_argument("--as", dest="who", choices=tuple(WHO), default="operator")
    p.add_argument("--repeat", type=int, default=2, help="EXPLAIN ANALYZE runs of each page")
    p.add_argument("--slow", type=float, default=25.0, help="mark pages over this many ms")
    p.add_argument("--generic", action="store_true", help="also with PostgreSQL's generic plans")
    opts = p.parse_args(argv)
    logging.disable(logging.INFO)  # the request log lines, not what this prints
    measured = asyncio.run(measure(opts.database_url, opts.who, opts.repeat, opts.generic))
    heads = ["first page ms", "next page ms"]
    if opts.generic:
        heads += ["first page, generic plan, ms a run", "next page, generic plan, ms a run"]
    print(f"| filters | sort | {' | '.join(heads)} | |")
    print(f"|---|---|{'---:|' * len(heads)}---|")
    for shape, sort, times, generic_times in measured:
        cells = [f"{ms:.2f}" for ms in times] + ["—"] * (2 - len(times))
        marks = ["slow"] if max(times) > opts.slow else []
        if opts.generic:
            cells += ["—" if ms is None else f"{ms:.2f}" for _, ms in generic_times]
            cells += ["—"] * (2 - len(generic_times))
            switched = [ms for switches, ms in generic_times if switches]
            marks += ["generic"] if switched else []
            if any(ms is None or ms > opts.slow for ms in switched):
                marks.append("slow generic")
        print(f"| `{shape or '(none)'}` | {sort} | {' | '.join(cells)} | {', '.join(marks)} |")
    return measured


if __name__ == "__main__":
    main()
