"""What PostgreSQL spends on each of the queue scenario's statements, apart from everything
around them: for each of its eight filters (bench.inprocess.QUEUE_FILTERS), the first `--pages`
pages by cursor, as the operator asks for them in process; each page's statement is caught as
the app sends it, then run again under EXPLAIN ANALYZE with the same parameters, and the best
of `--repeat` execution and planning times are printed, with how many cases the page held.

    python -m bench.queue_statements postgresql://postgres@127.0.0.1:5432/regiondesk_bench_1m_x

It tells the statements' own growth from the scenario's: two datasets' queues differ in what
their filters find, not only in what a page costs. Run it on a copy, never a dataset template:
like any page, each one it explains writes its record of the personal data shown.

With `--plans`, each page's statement is also prepared and run `--runs` times as the app's
connections run it, once planned for its values at every run (`plan_cache_mode =
force_custom_plan`: what the app pays now, planning included) and once with the plan
PostgreSQL makes without them (`force_generic_plan`, the plan it would keep after five runs
if that looked no dearer), in a transaction rolled back after; a run past PLAN_TIMEOUT_MS is
cancelled and shown as a dash. It tells whether a statement could keep one plan.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from dataclasses import dataclass

import asyncpg

from app.core.db import SERVER_SETTINGS
from app.main import create_app
from bench.generate import asyncpg_dsn
from bench.inprocess import (
    QUEUE_FILTERS,
    case_statements,
    in_process_settings,
    list_page,
    logged_in,
    queue_queries,
)

PLAN_TIMEOUT_MS = 500  # a run of a prepared statement (--plans) longer than this is cancelled


@dataclass
class Page:
    filter: str
    number: int
    cases: int
    ms: float
    planning_ms: float
    # --plans: ms a run, planned for its values each time / with the plan made without them;
    # None: not measured, or cancelled after PLAN_TIMEOUT_MS
    custom_ms: float | None = None
    generic_ms: float | None = None


async def run_prepared(
    conn: asyncpg.Connection, statement: str, parameters: tuple, mode: str, runs: int
) -> float | None:
    """Milliseconds a run of `statement` prepared once and run `runs` times (after one run
    not counted) under `plan_cache_mode = mode`, in a transaction rolled back after; None
    when a run took longer than PLAN_TIMEOUT_MS."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute(f"SET LOCAL plan_cache_mode = {mode}")
        await conn.execute(f"SET LOCAL statement_timeout = {PLAN_TIMEOUT_MS}")
        prepared = await conn.prepare(statement)
        await prepared.fetch(*parameters)
        started = time.perf_counter()
        for _ in range(runs):
            await prepared.fetch(*parameters)
        return (time.perf_counter() - started) / runs * 1000
    except asyncpg.QueryCanceledError:
        return None
    finally:
        await transaction.rollback()


async def measure(
    database_url: str, pages: int, repeat: int, limit: int = 50, plan_runs: int = 0
) -> list[Page]:
    settings = in_process_settings(database_url)
    conn = await asyncpg.connect(
        asyncpg_dsn(settings.database_url), server_settings=SERVER_SETTINGS
    )  # as the app's (no JIT)
    try:
        queries = await queue_queries(conn)
        app = create_app(settings)
        measured = []
        async with app.router.lifespan_context(app):
            headers = await logged_in(app, "queue")
            with case_statements(app) as sent:
                for shape, full_query in zip(QUEUE_FILTERS, queries, strict=True):
                    query, cursor = full_query.replace("limit=50", f"limit={limit}"), None
                    for number in range(1, pages + 1):
                        path = query + (f"&cursor={cursor}" if cursor else "")
                        body, (statement, parameters) = await list_page(app, headers, path, sent)
                        times, planning = [], []
                        for _ in range(repeat):
                            plan = await conn.fetchval(
                                f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", *parameters
                            )
                            times.append(json.loads(plan)[0]["Execution Time"])
                            planning.append(json.loads(plan)[0]["Planning Time"])
                        shown = len(body["items"])
                        page = Page(shape, number, shown, min(times), min(planning))
                        if plan_runs:
                            page.custom_ms, page.generic_ms = [
                                await run_prepared(conn, statement, parameters, mode, plan_runs)
                                for mode in ("force_custom_plan", "force_generic_plan")
                            ]
                        measured.append(page)
                        cursor = body["next_cursor"]
                        if cursor is None:
                            break
    finally:
        await conn.close()
    return measured


def main(argv: list[str] | None = None) -> list[Page]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("database_url", help="a copy of a bench dataset (never the template)")
    p.add_argument("--pages", type=int, default=5, help="pages of each filter (the scenario's)")
    p.add_argument("--repeat", type=int, default=3, help="EXPLAIN ANALYZE runs of each page")
    p.add_argument("--limit", type=int, default=50, help="cases a page (the scenario's 50)")
    p.add_argument(
        "--plans", action="store_true", help="also time each statement planned each run / once"
    )
    p.add_argument("--runs", type=int, default=20, help="runs of each prepared statement")
    opts = p.parse_args(argv)
    logging.disable(logging.INFO)  # the request log lines, not what this prints
    runs = opts.runs if opts.plans else 0
    pages = asyncio.run(measure(opts.database_url, opts.pages, opts.repeat, opts.limit, runs))
    head = "| filter | page | cases | execution ms | planning ms |"
    rule = "|---|---:|---:|---:|---:|"
    if opts.plans:
        head += " planned each run, ms | one plan without values, ms |"
        rule += "---:|---:|"
    print(head)
    print(rule)
    for page in pages:
        line = (
            f"| `{page.filter}` | {page.number} | {page.cases} | {page.ms:.2f} "
            f"| {page.planning_ms:.2f} |"
        )
        if opts.plans:
            line += "".join(
                " — |" if ms is None else f" {ms:.2f} |" for ms in (page.custom_ms, page.generic_ms)
            )
        print(line)
    return pages


if __name__ == "__main__":
    main()
