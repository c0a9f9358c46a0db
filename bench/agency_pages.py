"""How long agency staff wait for their lists, one request at a time, in process (bench.inprocess's
raw ASGI calls, no server): for agencies from the smallest to the largest, the first page (no
filter), the same with its total (`with_total=true`), the archive (`status=closed`), the open
cases (`status=assigned&status=in_progress`) and the third page of the first by cursor (if the
agency has one), 50 cases a page; and searches, 20 a page: for a common word (its first and
third pages, and by last change) and for a word in no case. Prints the median and the slowest
of `--rounds` requests of each.

    python -m bench.agency_pages postgresql://postgres@127.0.0.1:5432/regiondesk_bench_1m_x

For comparing two commits on one database copy, never a dataset template: run it from each
commit in turn. It adds a user per agency measured (`bench-pages-<agency code>`, a password no
one knows; the tokens are signed here) and, like any list, the records of personal data shown.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

import asyncpg
import orjson

from app.auth.permissions import ROLE_SCOPES, Role
from app.core.config import Settings
from app.core.tokens import issue_access_token
from app.main import create_app
from bench.generate import asyncpg_dsn
from bench.inprocess import call, in_process_settings

SEARCH = f"q={quote('лифт')}&limit=20"  # a word in about 1 of 20 cases (bench/texts.py)
PAGES = {
    "first page": "limit=50",
    "with total": "limit=50&with_total=true",
    "archive": "status=closed&limit=50",
    "open": "status=assigned&status=in_progress&limit=50",
    "third page": "limit=50",  # reached by the cursors of the two before it
    "search": SEARCH,
    "search, third page": SEARCH,
    "search, a word in no case": f"q={quote('абракадабра')}&limit=20",
    "search by last change": f"{SEARCH}&sort=-updated_at",
}
QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass
class Timing:
    agency: str
    cases: int
    page: str
    median_ms: float
    slowest_ms: float
    items: int


async def agencies(database_url: str) -> list[tuple[int, str, int]]:
    """(id, code, cases given) of the agencies at QUANTILES of their number of cases, smallest
    first; each with a user of its own."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        counted = await conn.fetch(
            "SELECT a.id, a.code, count(*) AS cases FROM case_agency ca "
            "JOIN agency a ON a.id = ca.agency_id GROUP BY a.id, a.code ORDER BY 3, 2"
        )
        if not counted:
            raise SystemExit("no agency has been given a case: generate the data first")
        picked = dict.fromkeys(round(q * (len(counted) - 1)) for q in QUANTILES)
        chosen = [tuple(counted[i]) for i in picked]
        for agency_id, code, _ in chosen:
            await conn.execute(
                "INSERT INTO user_account (username, full_name, password_hash, role, agency_id, "
                "is_active, created_at, updated_at, password_changed_at) VALUES ($1, $1, '!', "
                "'agency', $2, true, now(), now(), now() - interval '1 day') "
                "ON CONFLICT (username) DO UPDATE SET agency_id = EXCLUDED.agency_id",
                f"bench-pages-{code}",
                agency_id,
            )
        return chosen
    finally:
        await conn.close()


async def measure(settings: Settings, rounds: int) -> list[Timing]:
    chosen = await agencies(settings.database_url)
    conn = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    try:
        users = dict(
            await conn.fetch(
                "SELECT username, id FROM user_account WHERE username = ANY($1::text[])",
                [f"bench-pages-{code}" for _, code, _ in chosen],
            )
        )
    finally:
        await conn.close()
    scopes = sorted(ROLE_SCOPES[Role.agency])
    app = create_app(settings)
    timings = []
    async with app.router.lifespan_context(app):
        for _, code, cases in chosen:
            token = issue_access_token(
                settings,
                subject=f"user:{users[f'bench-pages-{code}']}",
                role=Role.agency.value,
                scopes=scopes,
                lifetime=timedelta(hours=1),
            )
            headers = [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())]

            async def get(query: str, headers: list = headers) -> dict:
                answer = await call(app, "GET", "/api/v1/cases", headers, query=query.encode())
                if answer["status"] != 200:
                    raise SystemExit(f"{query} answered {answer['status']}: {answer['body']!r}")
                return orjson.loads(answer["body"])

            for page, query in PAGES.items():
                spent = []
                for _ in range(rounds):
                    if page.endswith("third page"):
                        query = await third_page(get, query)
                        if query is None:  # the agency has two pages at most
                            break
                    started = time.perf_counter()
                    body = await get(query)
                    spent.append((time.perf_counter() - started) * 1000)
                    query = PAGES[page]
                if not spent:
                    continue
                timings.append(
                    Timing(
                        code,
                        cases,
                        page,
                        statistics.median(spent),
                        max(spent),
                        len(body["items"]),
                    )
                )
    return timings


async def third_page(get, query: str) -> str | None:
    """The query of the page after the next two of `query`, or None if there is none."""
    for _ in range(2):
        cursor = (await get(query))["next_cursor"]
        if cursor is None:
            return None
        query = f"{query.split('&cursor=')[0]}&cursor={cursor}"
    return query


def main(argv: list[str] | None = None) -> list[Timing]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("database_url", help="a copy of a bench dataset (never the template)")
    p.add_argument("--rounds", type=int, default=5, help="requests of each page per agency")
    opts = p.parse_args(argv)
    settings = in_process_settings(opts.database_url)
    logging.disable(logging.INFO)  # the request log lines, not what this prints
    timings = asyncio.run(measure(settings, opts.rounds))
    print("| agency | cases given | page | median ms | slowest ms | cases shown |")
    print("|---|---:|---|---:|---:|---:|")
    for t in timings:
        print(
            f"| {t.agency} | {t.cases:,} | {t.page} | {t.median_ms:.1f} | {t.slowest_ms:.1f} "
            f"| {t.items} |"
        )
    return timings


if __name__ == "__main__":
    main()
