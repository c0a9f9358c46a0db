"""Full-text search pages: on PostgreSQL a walk in time order over case_search (migration
0014), else the GIN index; the same rows in the same order either way, and case_search always
holds exactly what case_file does."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from app.cases import reads
from tests.cases.conftest import appeal, incident

MIRRORED = "SELECT id, created_at, search_vector::text FROM {} ORDER BY id"


def _mirror(db) -> tuple[list, list]:
    async def work(session):
        return [
            [tuple(r) for r in (await session.execute(text(MIRRORED.format(t)))).all()]
            for t in ("case_file", "case_search")
        ]

    return db.run(work)


@pytest.fixture
def postgresql_only(db):
    if db.dialect != "postgresql":
        pytest.skip("case_search exists on PostgreSQL only")


@pytest.fixture
def walk_of(monkeypatch):
    """Search statements rebuilt with walks of n cases (reads.SEARCH_WALK, ORDERED_WALK and
    the agency's AGENCY_SEARCH_WALK and AGENCY_ORDERED_WALK)."""

    def set_walk(n: int) -> None:
        monkeypatch.setattr(reads, "SEARCH_WALK", n)
        monkeypatch.setattr(reads, "AGENCY_SEARCH_WALK", n)
        monkeypatch.setattr(reads, "ORDERED_WALK", n)
        monkeypatch.setattr(reads, "AGENCY_ORDERED_WALK", n)
        reads._cached_page.cache_clear()

    yield set_walk
    reads._cached_page.cache_clear()


def test_case_search_follows_intake_edits_erasure_and_deletion(
    client, auth, db, world, postgresql_only
):
    headers = auth.headers("integration", source="monitor")
    client.post("/api/v1/incidents", json=incident(n=1), headers=headers)
    client.post("/api/v1/appeals", json=appeal(n=2), headers=headers)
    # 40 items: the batch goes in by COPY (app/core/db.py insert_rows), one statement.
    items = [incident(n=f"b{i}", text=f"Сломан светофор номер {i}") for i in range(40)]
    response = client.post("/api/v1/incidents/batch", json={"items": items}, headers=headers)
    assert response.json()["created"] == 40
    cases, mirrored = _mirror(db)
    assert len(cases) == 42 and mirrored == cases

    operator = auth.headers("operator")
    some = cases[0][0]
    edited = client.patch(
        f"/api/v1/cases/{some}", json={"priority": "high"}, headers=operator
    )  # no text: no trigger
    assert edited.status_code == 200, edited.text

    async def change(session):
        await session.execute(
            text("UPDATE case_file SET text = 'Упало дерево на провода' WHERE id = :id"),
            {"id": some},
        )
        await session.execute(
            text(
                "UPDATE case_file SET applicant_name = NULL, personal_data_erased_at = now() "
                "WHERE kind = 'appeal'"
            )
        )
        await session.execute(
            text("UPDATE case_file SET created_at = created_at - interval '1 day' WHERE id = :id"),
            {"id": cases[1][0]},
        )

    db.run(change)
    cases, mirrored = _mirror(db)
    assert mirrored == cases and "'дерев'" in dict((r[0], r[2]) for r in cases)[some]

    # Case events are immutable, so a case with a history is never deleted; a bare row is.
    async def add_and_remove(session):
        added = await session.execute(
            text(
                "INSERT INTO case_file (kind, status, priority, version, source_system, "
                "submitted_by, text, missing_person, important, reopen_count, created_at, "
                "updated_at) VALUES ('incident', 'new', 'normal', 1, 'x', 'x', 'Пожар в лесу', "
                "false, false, 0, now(), now()) RETURNING id"
            )
        )
        bare = added.scalar_one()
        found = await session.execute(
            text("SELECT count(*) FROM case_search WHERE id = :id"), {"id": bare}
        )
        assert found.scalar_one() == 1
        await session.execute(text("DELETE FROM case_file WHERE id = :id"), {"id": bare})

    db.run(add_and_remove)
    assert _mirror(db) == [cases, cases]

    db.run(lambda session: session.execute(text("TRUNCATE case_file CASCADE")))
    assert _mirror(db) == [[], []]


def _pages(client, headers, limit, **params) -> list[int]:
    seen, cursor = [], None
    for _ in range(100):  # a cursor that does not move on fails, not hangs
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        response = client.get("/api/v1/cases", params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError(f"more than 100 pages: {seen[:10]}...")


@pytest.mark.parametrize("walk", [2, 5, 10_000])
def test_search_pages_are_the_same_by_walk_and_by_index(client, auth, world, walk_of, walk):
    # A walk of 2 or 5 cases runs short on nearly every page (the GIN index then answers);
    # 10,000 walks everything. Same pages, both orders, with a filter and an agency's reach.
    walk_of(walk)
    source = auth.headers("integration", source="monitor")
    texts = ["Огромная яма во дворе", "Не вывозят мусор", "Яма и мусор у школы"]
    singles = [
        client.post(
            "/api/v1/incidents", json=incident(n=i, text=texts[i % 3]), headers=source
        ).json()
        for i in range(9)
    ]
    # A batch registers its cases at one instant: the pages must break the tie by id.
    batch = [incident(n=f"b{i}", text=texts[i % 3]) for i in range(6)]
    client.post("/api/v1/incidents/batch", json={"items": batch}, headers=source)
    appeals = [
        client.post(
            "/api/v1/appeals", json=appeal(n=f"a{i}", text=texts[i % 3]), headers=source
        ).json()
        for i in range(3)
    ]
    operator = auth.headers("operator")
    everything = _pages(client, operator, 200, sort="created_at")
    assert len(everything) == 18
    listed = {
        c["id"]: c
        for c in client.get("/api/v1/cases", params={"limit": 200}, headers=operator).json()[
            "items"
        ]
    }

    def matching(word: str, kind: str | None = None) -> list[int]:
        return [
            i
            for i in everything
            if word in listed[i]["text"].lower() and (kind is None or listed[i]["kind"] == kind)
        ]

    for limit in (1, 2, 4, 50):
        assert _pages(client, operator, limit, q="ямы", sort="created_at") == matching("яма")
        assert _pages(client, operator, limit, q="ямы") == matching("яма")[::-1]
        assert _pages(client, operator, limit, q="мусор яма") == [
            i for i in matching("мусор")[::-1] if i in matching("яма")
        ]
        assert (
            _pages(client, operator, limit, q="мусор", kind="appeal")
            == matching("мусор", "appeal")[::-1]
        )
    assert _pages(client, operator, 3, q="светофор") == []

    # An agency's reach: what it was given, also when given on to another since, and nothing
    # of another agency's. Its pages walk its own list (AGENCY_SEARCH_WALK): 2 cases run
    # short of its four before the list ends (the GIN index answers); 5 and 10,000 reach the
    # end (the walk has every match).
    agency = auth.headers("agency", agency_id=world.adm_sochi.id)
    given = [singles[0]["id"], singles[3]["id"], appeals[2]["id"], singles[1]["id"]]
    assignments = [(c, world.adm_sochi.id) for c in given] + [
        (appeals[2]["id"], world.adm_krasnodar.id),
        (singles[6]["id"], world.adm_krasnodar.id),
    ]
    for case_id, agency_id in assignments:
        assigned = client.post(
            f"/api/v1/cases/{case_id}/assign", json={"agency_id": agency_id}, headers=operator
        )
        assert assigned.status_code == 200, assigned.text
    reach = [i for i in matching("яма")[::-1] if i in given]
    assert len(reach) == 3 and singles[6]["id"] in matching("яма")
    for limit in (1, 2, 3, 50):
        assert _pages(client, agency, limit, q="яма") == reach
        assert _pages(client, agency, limit, q="яма", sort="created_at") == reach[::-1]
        assert _pages(client, agency, limit, q="мусор", kind="appeal") == [appeals[2]["id"]]
    assert _pages(client, agency, 2, q="светофор") == []
    for sort in ("-updated_at", "due_at"):  # its walks of the region in those orders
        expected = [i for i in _pages(client, operator, 200, sort=sort) if i in reach]
        for limit in (1, 2, 50):
            assert _pages(client, agency, limit, q="яма", sort=sort) == expected


def _search_shape(**changes) -> reads.PageShape:
    """A search page's shape on PostgreSQL, for a person (recorded), 20 a page."""
    shape = {
        "dialect": "postgresql",
        "rule": "all",
        "given": frozenset({"q"}),
        "overdue": None,
        "reopened": None,
        "statuses_open": False,
        "statuses_settled": False,
        "sort": "-created_at",
        "cursor": None,
        "recorded": True,
        "limit": 20,
    }
    return reads.PageShape(**(shape | changes))


def _sql(stmt) -> Any:
    from sqlalchemy.dialects import postgresql

    return stmt.compile(dialect=postgresql.dialect())


def test_the_search_words_are_parsed_once_per_statement():
    # websearch_to_tsquery(...) is only stable: in a generic plan (a prepared statement's,
    # after five runs) PostgreSQL called it again for every case a page tested. As a scalar
    # subquery it runs once (an InitPlan), its result a parameter, also to the GIN index.
    for stmt in reads.page(_search_shape()):  # the page (walk and fallback), and its count
        sql = str(_sql(stmt))
        calls = sql.count("websearch_to_tsquery(")
        assert calls >= 1
        assert sql.count("(SELECT websearch_to_tsquery(") == calls, sql


def test_a_search_page_holds_its_limits_in_its_text():
    # Bound, `LIMIT $1` is priced as a tenth of the rows in a generic plan: every search page
    # was planned anew for its parameters. Written in, the page's generic plan is the walk.
    page, _ = reads.page(_search_shape(statuses_open=True, cursor="value"))
    compiled = _sql(page)
    assert "LIMIT 21" in compiled.string and f"LIMIT {reads.SEARCH_WALK}" in compiled.string
    assert not {"page_limit", "search_walk"} & set(compiled.binds), sorted(compiled.binds)
    assert "LIMIT 51" in str(_sql(reads.page(_search_shape(limit=50))[0]))
