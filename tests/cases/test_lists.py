from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import event, update

from app.cases.models import Case
from tests.cases.conftest import appeal, incident, rule


def _submit(client, headers, n, **kw):
    response = client.post("/api/v1/incidents", json=incident(n=n, **kw), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def _assign(client, case_id: int, agency_id: int, headers) -> dict:
    answer = client.post(
        f"/api/v1/cases/{case_id}/assign", json={"agency_id": agency_id}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_cursor_pages_walk_everything_once_in_order(client, auth, world):
    headers = auth.headers("operator")
    ids = [_submit(client, headers, n)["id"] for n in range(7)]
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/cases", params=params, headers=headers).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)
    asc = client.get(
        "/api/v1/cases", params={"sort": "created_at", "limit": 200}, headers=headers
    ).json()
    assert [c["id"] for c in asc["items"]] == sorted(ids)


def test_page_size_is_capped_and_bad_cursor_refused(client, auth, world):
    headers = auth.headers("operator")
    assert client.get("/api/v1/cases?limit=1000", headers=headers).status_code == 422
    bad = client.get("/api/v1/cases?cursor=garbage", headers=headers)
    assert bad.status_code == 422 and "cursor" in bad.text


def test_filters(client, auth, world):
    headers = auth.headers("operator")
    a = _submit(client, headers, 1, category_id=world.potholes.id, territory_id=world.sochi.id)
    b = _submit(client, headers, 2, category_id=world.health.id, network="telegram")
    c = client.post("/api/v1/appeals", json=appeal(n=3), headers=headers).json()

    def ids(**params):
        response = client.get("/api/v1/cases", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return {x["id"] for x in response.json()["items"]}

    assert ids(category_id=world.roads.id) == {a["id"]}  # the sector includes subcategories
    assert ids(territory_id=world.sochi.id) == {a["id"]}
    assert ids(kind="appeal") == {c["id"]}
    assert ids(source="telegram") == {b["id"]}
    assert ids(source="web") == {c["id"]}
    assert ids(status="new") == {a["id"], b["id"], c["id"]}
    assert ids(status="closed") == set()
    assert ids(reopened="true") == set()
    assert ids(overdue="false") == {a["id"], b["id"], c["id"]}
    listed = client.get("/api/v1/incidents", headers=headers).json()["items"]
    assert {x["id"] for x in listed} == {a["id"], b["id"]}
    total = client.get("/api/v1/cases?with_total=true&kind=incident", headers=headers).json()
    assert total["total"] == 2
    assert client.get("/api/v1/cases", headers=headers).json()["total"] is None


def test_full_text_search_with_russian_forms(client, auth, world):
    headers = auth.headers("operator")
    hit = _submit(client, headers, 1, text="Во дворе огромная яма, не пройти")
    _submit(client, headers, 2, text="Не вывозят мусор уже неделю")
    found = client.get("/api/v1/cases", params={"q": "ямы"}, headers=headers).json()["items"]
    assert [c["id"] for c in found] == [hit["id"]]


def test_visibility_in_lists_and_counts(client, auth, world):
    operator = auth.headers("operator")
    mine = auth.headers("integration", source="sys-a")
    other = auth.headers("integration", source="sys-b")
    own = client.post("/api/v1/incidents", json=incident(n=1), headers=mine).json()
    client.post("/api/v1/incidents", json=incident(n=2), headers=other)
    listed = client.get("/api/v1/cases?with_total=true", headers=mine).json()
    assert [c["id"] for c in listed["items"]] == [own["id"]] and listed["total"] == 1
    theirs = client.get("/api/v1/cases", headers=other).json()["items"][0]["id"]
    assert client.get(f"/api/v1/cases/{theirs}", headers=mine).status_code == 404
    assert client.get(f"/api/v1/cases/{theirs}/events", headers=mine).status_code == 404
    agency = auth.headers("agency", agency_id=world.adm_sochi.id)
    assert client.get("/api/v1/cases?with_total=true", headers=agency).json()["total"] == 0
    client.post(
        f"/api/v1/cases/{own['id']}/assign",
        json={"agency_id": world.adm_sochi.id},
        headers=operator,
    )
    assert [c["id"] for c in client.get("/api/v1/cases", headers=agency).json()["items"]] == [
        own["id"]
    ]
    assert client.get(f"/api/v1/appeals/{own['id']}", headers=operator).status_code == 404
    assert client.get(f"/api/v1/incidents/{own['id']}", headers=operator).status_code == 200


def test_list_query_count_does_not_grow_with_page_size(client, auth, world):
    headers = auth.headers("operator")
    for n in range(12):
        _submit(client, headers, n)
    engine = client.app.state.engine.sync_engine
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    def queries_for(limit):
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            assert client.get(f"/api/v1/cases?limit={limit}", headers=headers).status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(statements)

    assert queries_for(2) == queries_for(12)


def test_two_operators_assigning_at_once_exactly_one_wins(client, auth, db, world):
    headers = auth.headers("operator")
    case = client.post("/api/v1/incidents", json=incident(), headers=headers).json()
    tag = {"If-Match": f'"{case["version"]}"'}

    async def race():
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await asyncio.gather(
                *(
                    http.post(
                        f"/api/v1/cases/{case['id']}/assign",
                        json={"agency_id": agency.id},
                        headers={**headers, **tag},
                    )
                    for agency in (world.adm_krasnodar, world.adm_sochi, world.adm_krasnodar)
                )
            )

    results = client.portal.call(race)
    codes = sorted(r.status_code for r in results)
    assert codes.count(200) == 1, codes
    assert all(c in (409, 412) for c in codes if c != 200)
    events = client.get(f"/api/v1/cases/{case['id']}/events", headers=headers).json()
    assert [e["action"] for e in events] == ["create", "assign"]


def test_an_agencys_pages_hold_every_case_it_was_given_in_order(client, auth, world):
    """An agency's pages in created_at order come from its own list of cases (case_agency,
    reads._agency_page): every case it was ever given, those since reassigned elsewhere too,
    once each and in order across cursor pages, filters applied, and nothing else."""
    operator = auth.headers("operator")
    krasnodar = auth.headers("agency", agency_id=world.adm_krasnodar.id)
    ids = [_submit(client, operator, n)["id"] for n in range(7)]

    def act(case_id, action, headers, body=None):
        answer = client.post(f"/api/v1/cases/{case_id}/{action}", json=body, headers=headers)
        assert answer.status_code == 200, answer.text

    for case_id in ids[:6]:
        act(case_id, "assign", operator, {"agency_id": world.adm_krasnodar.id})
    for case_id in (ids[1], ids[4], ids[6]):  # two passed on, one never Krasnodar's
        act(case_id, "assign", operator, {"agency_id": world.adm_sochi.id})
    act(ids[2], "accept", krasnodar)
    act(ids[5], "accept", krasnodar)

    def walk(**params) -> list[int]:
        """Every page's cases, having checked that the first page's total counts them."""
        seen, cursor, total = [], None, None
        while True:
            query = {"limit": 2, **params, **({"cursor": cursor} if cursor else {})}
            if total is None:
                query["with_total"] = "true"
            answer = client.get("/api/v1/cases", params=query, headers=krasnodar)
            assert answer.status_code == 200, answer.text
            total = answer.json()["total"] if total is None else total
            seen += [case["id"] for case in answer.json()["items"]]
            cursor = answer.json()["next_cursor"]
            if cursor is None:
                assert total == len(seen), (params, total, seen)  # reads._agency_count
                return seen

    given = ids[:6]
    # Pages that may hold closed cases walk the agency's list (reads._agency_page)...
    assert walk() == given[::-1]
    assert walk(sort="created_at") == given
    assert walk(kind="incident", status=["assigned", "closed"]) == [ids[4], ids[3], ids[1], ids[0]]
    assert walk(status=["in_progress", "closed"], sort="created_at") == [ids[2], ids[5]]
    assert walk(reopened="false", overdue="false") == given[::-1]  # none is, yet
    assert walk(reopened="true") == []
    # ...pages of open cases alone keep the access rule's EXISTS: the same rows either way.
    assert walk(status=["assigned", "in_progress"]) == given[::-1]
    assert walk(status="in_progress") == [ids[5], ids[2]]
    assert walk(status="in_progress", sort="created_at") == [ids[2], ids[5]]
    assert walk(status="assigned") == [ids[4], ids[3], ids[1], ids[0]]
    total = client.get(
        "/api/v1/cases", params={"status": "assigned", "with_total": "true"}, headers=krasnodar
    )
    assert total.json()["total"] == 4
    # The other agency: only what it was given, the same way.
    sochi = auth.headers("agency", agency_id=world.adm_sochi.id)
    answer = client.get("/api/v1/cases", params={"limit": 10}, headers=sochi).json()
    assert [case["id"] for case in answer["items"]] == [ids[6], ids[4], ids[1]]


def test_every_access_row_carries_its_cases_registration_time(client, auth, db, world):
    """case_agency.case_created_at, the order of an agency's pages, is its case's created_at,
    whichever way the row was written: intake one by one, intake in a batch (routed, and a
    missing person's case given to the partner too), assignment."""
    from sqlmodel import select

    from app.cases.models import Case, CaseAgency
    from app.core.db import COPY_MIN_ROWS

    rule(db, name="Пропавшие", position=1, missing_person=True, stop=False,
         notify_agency_ids=[world.lizaalert.id])  # fmt: skip
    rule(db, name="Сочи", territory_ids=[world.sochi.id], agency_id=world.adm_sochi.id)
    operator = auth.headers("operator")
    one = _submit(client, operator, 1)
    routed = _submit(client, operator, 2, territory_id=world.sochi.id, missing_person=True)
    # Enough for PostgreSQL's COPY.
    items = [
        incident(n=f"batch-{n}", territory_id=world.sochi.id, missing_person=n == 0)
        for n in range(COPY_MIN_ROWS + 1)
    ]
    batch = client.post(
        "/api/v1/incidents/batch",
        json={"items": items},
        headers=auth.headers("integration", source="vk"),
    )
    assert batch.status_code == 200, batch.text
    batched = [item["id"] for item in batch.json()["items"]]
    _assign(client, one["id"], world.adm_krasnodar.id, operator)

    async def rows(session):
        stmt = select(CaseAgency.case_id, CaseAgency.case_created_at, Case.created_at).join(
            Case, Case.id == CaseAgency.case_id
        )
        return list(await session.execute(stmt))

    found = db.run(rows)
    assert {case_id for case_id, _, _ in found} == {one["id"], routed["id"], *batched}, found
    assert len(found) == 2 + 2 + len(batched)  # two cases given to the partner as well
    assert all(copied == created for _, copied, created in found), found


@pytest.mark.parametrize("sort", ["due_at", "-due_at", "updated_at", "-updated_at"])
def test_deadline_pages_walk_every_case_once_in_order(client, auth, db, world, sort):
    """Pages by due_at, either way: the cases with a deadline in its order (ties by id), then
    those without (nulls last both ways, by id), each once across cursor pages, whether a
    page ends among the dated cases, among the undated, or crosses from one to the other
    (reads._by_deadline reads the two parts apart), and whether the list holds open cases,
    closed or rejected ones, or both (each read apart, in the order of its own index); the
    same for an agency, which sees its own alone; and the same for a search (a walk of the
    order, else its matches sorted: reads._searched_in_order, unless the list keeps to open
    cases). Pages by updated_at (ties, never null) the same way."""
    operator = auth.headers("operator")
    bench = {"text": "Во дворе сломана скамейка"}  # not found by the search below
    ids = [_submit(client, operator, n, **({} if n % 3 else bench))["id"] for n in range(11)]
    found = {case_id for n, case_id in enumerate(ids) if n % 3}
    base = datetime(2027, 1, 1, tzinfo=UTC)
    day = timedelta(days=1)
    deadlines = dict(  # two ties, three without a deadline; the last two stay the centre's
        zip(ids, [3, 1, None, 1, 5, None, 3, 2, None, 2, None], strict=True)
    )
    # Ties and undated cases on both sides of open and settled.
    statuses = dict(
        zip(ids, ["assigned", "closed", "closed", "assigned", "rejected", "rejected",
                  "closed", "in_progress", "assigned", "new", "new"], strict=True)
    )  # fmt: skip
    given = ids[:9]
    for case_id in given:
        _assign(client, case_id, world.adm_krasnodar.id, operator)

    changes = dict(zip(ids, [2, 1, 4, 1, 5, 3, 3, 2, 6, 2, 0], strict=True))  # ties too

    async def set_deadlines(session):
        for case_id, days in deadlines.items():
            due_at = None if days is None else base + days * day
            changed = {"due_at": due_at, "status": statuses[case_id]}
            changed["updated_at"] = base + changes[case_id] * day
            await session.execute(update(Case).where(Case.id == case_id).values(**changed))

    db.run(set_deadlines)

    def expected(cases: list[int], among: list[str] | None = None, q: bool = False) -> list[int]:
        cases = [i for i in cases if among is None or statuses[i] in among]
        cases = [i for i in cases if not q or i in found]
        key = deadlines if sort.lstrip("-") == "due_at" else changes
        dated = sorted((key[i], i) for i in cases if key[i] is not None)
        undated = sorted(i for i in cases if key[i] is None)
        if sort.startswith("-"):
            dated, undated = dated[::-1], undated[::-1]
        return [i for _, i in dated] + undated

    def walk(headers, limit: int, **params) -> list[int]:
        seen, cursor = [], None
        while len(seen) <= len(ids):  # (a page repeated would go round for ever)
            query = {"sort": sort, "limit": limit, **params}
            if cursor:
                query["cursor"] = cursor
            answer = client.get("/api/v1/cases", params=query, headers=headers)
            assert answer.status_code == 200, answer.text
            seen += [case["id"] for case in answer.json()["items"]]
            cursor = answer.json()["next_cursor"]
            if cursor is None:
                return seen
        raise AssertionError(f"more cases than there are: {seen}")

    open_ = ["new", "assigned", "in_progress", "returned"]
    settled = ["closed", "rejected"]
    krasnodar = auth.headers("agency", agency_id=world.adm_krasnodar.id)
    for limit in (1, 2, 4, 5, 6, 50):
        assert walk(operator, limit) == expected(ids), limit
        for among in (open_, settled, ["closed"], ["new", "closed"], ["rejected", "assigned"]):
            assert walk(operator, limit, status=among) == expected(ids, among), (limit, among)
        assert walk(krasnodar, limit) == expected(given), limit
        for among in (open_, settled, ["closed", "assigned"]):
            assert walk(krasnodar, limit, status=among) == expected(given, among), (limit, among)
        for among in (None, open_, ["closed"], ["new", "closed"]):
            searched = {"q": "яма"} | ({} if among is None else {"status": among})
            assert walk(operator, limit, **searched) == expected(ids, among, q=True), searched
            assert walk(krasnodar, limit, **searched) == expected(given, among, q=True), searched
