"""How PostgreSQL runs the queue's statements: the pages whose cost must not grow with the
table are served in order by an index, not by sorting every open case that passes the filters.

The statement is the one the app sends (caught as it goes), explained with its own parameters.
Sorting is priced out (`enable_sort = off`) so that the plan says whether the order *can* come
from an index, whatever the planner would choose on a test table of a few rows.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from tests.cases.conftest import incident, rule

OPEN = "status=new&status=assigned&status=in_progress&status=returned"


@pytest.fixture(autouse=True)
def _postgresql_plans(db) -> None:
    """Every test here reads PostgreSQL's plans; on SQLite there is nothing to read."""
    if db.dialect != "postgresql":
        pytest.skip("the plans are PostgreSQL's")


def _sent_page(client, path: str, headers: dict[str, str]) -> tuple[str, tuple]:
    """The SQL and parameters of the list statement a GET of `path` sends."""
    engine = client.app.state.engine.sync_engine
    sent: list[tuple[str, tuple]] = []

    def record(conn, cursor, statement, parameters, *args):
        if "FROM case_file" in statement or "JOIN case_file" in statement:
            sent.append((statement, tuple(parameters or ())))

    event.listen(engine, "before_cursor_execute", record)
    try:
        answer = client.get(path, headers=headers)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert answer.status_code == 200, answer.text
    assert len(sent) == 1, sent
    return sent[0]


def _plan(client, sql: str, parameters: tuple, *, priced_out: str = "sort") -> dict:
    """The statement's plan with `enable_<priced_out>` off."""

    async def explain():
        async with client.app.state.engine.connect() as connection:
            raw = (await connection.get_raw_connection()).dbapi_connection._connection
            async with raw.transaction():
                await raw.execute(f"SET LOCAL enable_{priced_out} = off")
                return await raw.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *parameters)

    document = client.portal.call(explain)
    return (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]


def _analyzed(client, sql: str, parameters: tuple, *, priced_out=("sort",)) -> dict:
    """The statement's plan as it ran (EXPLAIN ANALYZE), sorting (or `priced_out`: the
    enable_<...> settings turned off) priced out, rolled back."""

    async def explain():
        async with client.app.state.engine.connect() as connection:
            raw = (await connection.get_raw_connection()).dbapi_connection._connection
            transaction = raw.transaction()
            await transaction.start()
            try:
                for setting in priced_out:
                    await raw.execute(f"SET LOCAL enable_{setting} = off")
                return await raw.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *parameters)
            finally:
                await transaction.rollback()

    document = client.portal.call(explain)
    return (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]


def _nodes(plan: dict) -> list[dict]:
    return [plan, *(node for child in plan.get("Plans", ()) for node in _nodes(child))]


def _page_scan(plan: dict) -> tuple[list[str], list[str]]:
    """The sorts and the scans of case_file that take the page's rows: in the CTE `page` when
    the statement records what was shown (the sorts after it, for that record, order the few
    rows already taken), else in the whole statement."""
    nodes = _nodes(plan)
    page = next((n for n in nodes if n.get("Subplan Name") == "CTE page"), plan)
    taking = _nodes(page)
    sorts = [n["Node Type"] for n in taking if n["Node Type"] in ("Sort", "Incremental Sort")]
    scans = [
        n.get("Index Name", n["Node Type"]) for n in taking if n.get("Relation Name") == "case_file"
    ]
    return sorts, scans


def _after_first(client, path: str, headers) -> str:
    """`path` with its first page's cursor: the path of the page after it."""
    first = client.get(path, headers=headers).json()
    assert first["next_cursor"], first
    return f"{path}&cursor={first['next_cursor']}"


def _assigned(client, cases: list[dict], agency_id: int, headers) -> None:
    """The cases assigned to the agency, each given its deadline (new incidents have none)."""
    for case in cases:
        answer = client.post(
            f"/api/v1/cases/{case['id']}/assign", json={"agency_id": agency_id}, headers=headers
        )
        assert answer.status_code == 200 and answer.json()["due_at"], answer.text


def _page_plan(client, path: str, headers, cursor: bool) -> tuple[list[str], list[str]]:
    """The sorts and scans of the page `path` asks for: its first page, or (`cursor`) the page
    after it."""
    if cursor:
        path = _after_first(client, path, headers)
    sql, parameters = _sent_page(client, path, headers)
    return _page_scan(_plan(client, sql, parameters))


def _intake(client, auth, name: str, count: int = 3, **fields) -> list[dict]:
    """`count` incidents from an integration client (`name` tells them apart), as it
    answered."""
    pos = auth.headers("integration", source="vk")
    made = []
    for n in range(count):
        answer = client.post(
            "/api/v1/incidents", json=incident(n=f"{name}-{n}", **fields), headers=pos
        )
        assert answer.status_code == 201, answer.text
        made.append(answer.json())
    return made


@pytest.mark.parametrize("cursor", [False, True])
def test_a_territorys_queue_by_last_change_walks_an_index(client, auth, db, world, cursor):
    rule(db, name="Сочи", territory_ids=[world.sochi.id], agency_id=world.adm_sochi.id)
    _intake(
        client, auth, f"plan-{cursor}", territory_id=world.sochi.id, category_id=world.potholes.id
    )
    operator = auth.headers("operator")
    path = (
        f"/api/v1/cases?{OPEN}&limit=2&sort=-updated_at"
        f"&territory_id={world.sochi.id}&category_id={world.roads.id}"
    )
    sorts, indexes = _page_plan(client, path, operator, cursor)
    # The page's order comes from an index of the open cases by last change, the
    # territory's or (0024) all of them, whichever the planner prices lower: no sort of the
    # open cases (the sorts around a page already taken, for the record of what was shown,
    # read no case_file rows).
    by_change = {"ix_case_file_open_by_territory_updated", "ix_case_file_open_by_updated"}
    assert len(indexes) == 1 and set(indexes) <= by_change, indexes
    assert sorts == [], sorts


@pytest.mark.parametrize("cursor", [False, True])
def test_a_queue_of_a_priority_and_kind_walks_an_index(client, auth, world, cursor):
    _intake(client, auth, f"urgent-{cursor}", territory_id=world.sochi.id, important=True)
    operator = auth.headers("operator")
    path = f"/api/v1/cases?{OPEN}&limit=2&sort=-created_at&kind=incident&priority=high"
    sorts, indexes = _page_plan(client, path, operator, cursor)
    # Only the open cases of that priority and kind are walked, newest first: not every open
    # case back in time, each one's row read to test its priority and kind (0020).
    assert indexes == ["ix_case_file_open_by_priority_created"], indexes
    assert sorts == [], sorts


@pytest.mark.parametrize("cursor", [False, True])
def test_the_centres_inbox_walks_its_own_index(client, auth, world, cursor):
    made = _intake(client, auth, f"inbox-{cursor}", territory_id=world.sochi.id)
    assert {case["status"] for case in made} == {"new"}, made
    operator = auth.headers("operator")
    path = "/api/v1/cases?status=new&status=returned&limit=2&sort=-created_at"
    sorts, indexes = _page_plan(client, path, operator, cursor)
    # Only the cases waiting for triage are walked, newest first: not every open case back in
    # time, each one's row read to test its status, nor every waiting case sorted (0021).
    assert indexes == ["ix_case_file_inbox_by_created"], indexes
    assert sorts == [], sorts


@pytest.mark.parametrize("cursor", [False, True])
def test_an_agencys_list_walks_its_own_cases_in_order(client, auth, db, world, cursor):
    rule(db, name="Сочи", territory_ids=[world.sochi.id], agency_id=world.adm_sochi.id)
    _intake(client, auth, f"agency-{cursor}", territory_id=world.sochi.id)
    sochi = auth.headers("agency", agency_id=world.adm_sochi.id)
    path = "/api/v1/cases?limit=2"  # the agency's first screen: everything, newest first
    if cursor:
        path = _after_first(client, path, sochi)
    plan = _plan(client, *_sent_page(client, path, sochi))
    page = next(n for n in _nodes(plan) if n.get("Subplan Name") == "CTE page")
    taking = _nodes(page)
    # The agency's own cases in order from its index, each read by its key; not the region's
    # cases walked back in time, each tested for the agency's access (0022).
    # (On a test table of a few rows the cases may be read whole, as a hash join's inner side,
    # which keeps the agency list's order.)
    scans = {n["Relation Name"]: n.get("Index Name") for n in taking if "Relation Name" in n}
    assert scans["case_agency"] == "ix_case_agency_agency_created", scans
    assert scans["case_file"] in ("pk_case_file", None), scans
    assert not [n for n in taking if n["Node Type"] in ("Sort", "Incremental Sort")]


@pytest.mark.parametrize("cursor", [False, True])
def test_an_agencys_search_walks_its_own_list(client, auth, db, world, cursor):
    """An agency's search page in time order walks the agency's list, each case's words read
    from case_search by key (reads._searched); reaching the list's end, it has every match and
    asks the GIN index nothing. Through the region's walk a district found a common word's
    page short and tested every match in the region against its list (115-215 ms at 1M)."""
    rule(db, name="Сочи", territory_ids=[world.sochi.id], agency_id=world.adm_sochi.id)
    name = f"search-{cursor}"
    monitor = auth.headers("integration", source="monitor")
    for n in range(6):  # not Sochi's, and older than its
        answer = client.post(
            "/api/v1/incidents", json=incident(n=f"{name}-{n}-", text="Яма"), headers=monitor
        )
        assert answer.status_code == 201, answer.text
    _intake(client, auth, name, territory_id=world.sochi.id, text="Яма на дороге")
    sochi = auth.headers("agency", agency_id=world.adm_sochi.id)
    # The first page holds all three of the agency's; the second, one after the cursor.
    path = "/api/v1/cases?q=яма&limit=2" if cursor else "/api/v1/cases?q=яма&limit=50"
    if cursor:
        path = _after_first(client, path, sochi)
    # (a table of a few rows is read whole unless sequential scans are priced out)
    plan = _analyzed(client, *_sent_page(client, path, sochi), priced_out=("seqscan",))
    ran = [n for n in _nodes(plan) if n.get("Actual Loops", 0) > 0]
    indexes = {n.get("Index Name") for n in ran}
    assert "ix_case_agency_agency_created" in indexes, indexes
    # The cases read by key alone: no match sought among the region's (GIN index or walk).
    cases = {n.get("Index Name") for n in ran if n.get("Relation Name") == "case_file"}
    assert cases == {"pk_case_file"}, cases
    # case_search read by key for the agency's cases (3, or 1 past the cursor), not walked,
    # and case by case (a subplan): as a join, PostgreSQL may read every case's words (its
    # guess of a word's frequency is a constant; 100k cases, generic plan: 32 ms, not 1-3).
    read = [n for n in ran if n.get("Relation Name") == "case_search"]
    assert all(n["Parent Relationship"] == "SubPlan" for n in read), read
    assert read and sum(n["Actual Rows"] * n["Actual Loops"] for n in read) == (
        1 if cursor else 3
    ), read
    assert len(client.get(path, headers=sochi).json()["items"]) == (1 if cursor else 3)


def test_an_agencys_search_in_order_walks_a_longer_stretch(client, auth, db, world, monkeypatch):
    """An agency's search page by last change or deadline walks AGENCY_ORDERED_WALK of the
    region's cases, not ORDERED_WALK: the agency holds a part of what it walks. Here the
    operator's walk is 3 cases and the agency's 12; the agency's four cases come before eight
    newer ones of others, so a walk of 3 by last change would find none of them and sort every
    match instead."""
    from app.cases import reads

    monkeypatch.setattr(reads, "ORDERED_WALK", 3)
    monkeypatch.setattr(reads, "AGENCY_ORDERED_WALK", 12)
    reads._cached_page.cache_clear()
    rule(db, name="Сочи", territory_ids=[world.sochi.id], agency_id=world.adm_sochi.id)
    _intake(client, auth, "ordered", count=4, territory_id=world.sochi.id, text="Яма")
    monitor = auth.headers("integration", source="monitor")
    others = []
    for n in range(8):  # newer, not Sochi's
        answer = client.post(
            "/api/v1/incidents", json=incident(n=f"ordered-{n}-", text="Яма"), headers=monitor
        )
        assert answer.status_code == 201, answer.text
        others.append(answer.json())
    sochi = auth.headers("agency", agency_id=world.adm_sochi.id)
    path = "/api/v1/cases?q=яма&limit=2&sort=-updated_at"
    try:
        sql, parameters = _sent_page(client, path, sochi)
        page = client.get(path, headers=sochi).json()
    finally:
        reads._cached_page.cache_clear()
    plan = _analyzed(client, sql, parameters, priced_out=("seqscan",))
    ran = [n for n in _nodes(plan) if n.get("Actual Loops", 0) > 0]
    # The page came from the walk: the cases read in the order's index and by key, no match
    # sought otherwise (the GIN index).
    cases = {n.get("Index Name") for n in ran if n.get("Relation Name") == "case_file"}
    assert cases == {"ix_case_file_updated", "pk_case_file"}, cases
    walked = [n for n in ran if n.get("Index Name") == "ix_case_file_updated"]
    assert 3 < sum(n["Actual Rows"] for n in walked) <= 12, walked
    assert len(page["items"]) == 2 and page["next_cursor"], page
    # By deadline too, and the walk is read as the page needs it: its parts (the open and the
    # settled cases) merged as they come, not sorted whole, and the undated part not counted.
    # The agency's four cases have deadlines, and two of others' later ones; a page of 3
    # needs all four of the agency's: the first four cases by deadline, the last six the other
    # way (a walk of 3 falls short; one read whole reads all six either way).
    _assigned(client, others[:2], world.adm_krasnodar.id, auth.headers("operator"))
    for sort, needed in (("due_at", 4), ("-due_at", 6)):
        try:
            sql, parameters = _sent_page(client, f"/api/v1/cases?q=яма&limit=3&sort={sort}", sochi)
        finally:
            reads._cached_page.cache_clear()
        plan = _analyzed(client, sql, parameters, priced_out=("sort", "seqscan"))
        ran = [n for n in _nodes(plan) if n.get("Actual Loops", 0) > 0]
        walks = [
            n
            for n in ran
            if n.get("Index Name") in BOTH_BY_DUE and "IS NOT NULL" in n.get("Index Cond", "")
        ]
        assert sum(n["Actual Rows"] for n in walks) == needed, walks
        cases = {n.get("Index Name") for n in ran if n.get("Relation Name") == "case_file"}
        assert cases <= BOTH_BY_DUE | {"pk_case_file"}, cases  # no match sought otherwise


def test_an_agencys_open_cases_are_chosen_by_id_before_their_rows_are_read(client, auth, db, world):
    rule(db, name="Сочи", territory_ids=[world.sochi.id], agency_id=world.adm_sochi.id)
    _intake(client, auth, "agency-open", territory_id=world.sochi.id)
    sochi = auth.headers("agency", agency_id=world.adm_sochi.id)
    path = "/api/v1/cases?status=assigned&status=in_progress&limit=2"
    # (Sequential scans priced out: a table of a few rows is read whole whatever is asked.)
    plan = _plan(client, *_sent_page(client, path, sochi), priced_out="seqscan")
    page = next(n for n in _nodes(plan) if n.get("Subplan Name") == "CTE page")
    scans = [
        (n["Node Type"], n.get("Index Name"))
        for n in _nodes(page)
        if n.get("Relation Name") == "case_file"
    ]
    # Twice: the page's ids from an index that holds the filtered columns (no row read), then
    # the page's rows by key. Read whole before the join to the agency's list, the region's
    # open cases cost a district 20-30 ms a page at 1M (bench/agency_pages.py).
    assert len(scans) == 2, scans
    assert ("Index Scan", "pk_case_file") in scans, scans


def test_an_agencys_total_of_all_its_cases_reads_its_list_alone(client, auth, db, world):
    rule(db, name="Сочи", territory_ids=[world.sochi.id], agency_id=world.adm_sochi.id)
    _intake(client, auth, "agency-total", territory_id=world.sochi.id)
    sochi = auth.headers("agency", agency_id=world.adm_sochi.id)
    engine = client.app.state.engine.sync_engine
    counts: list[tuple[str, tuple]] = []

    def record(conn, cursor, statement, parameters, *args):
        # (the page's own statement counts too: the cases its record names)
        if "count(" in statement.lower() and "personal_data_access" not in statement:
            counts.append((statement, tuple(parameters or ())))

    event.listen(engine, "before_cursor_execute", record)
    try:
        answer = client.get("/api/v1/cases?with_total=true", headers=sochi)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert answer.status_code == 200 and answer.json()["total"] == 3, answer.text
    assert len(counts) == 1, counts
    # (Sequential scans priced out: a table of a few rows is read whole whatever is asked.)
    plan = _plan(client, *counts[0], priced_out="seqscan")
    scans = {n["Relation Name"]: n.get("Index Name") for n in _nodes(plan) if "Relation Name" in n}
    # The agency's list by its index, no case read: through the access rule's EXISTS the count
    # walked every case of the region: 83-84 ms a first page with its total for the largest
    # agency at 1M, 11-13 ms this way (reads._agency_count).
    assert scans == {"case_agency": "ix_case_agency_agency_created"}, scans


@pytest.mark.parametrize(
    ("query", "column"),
    [
        ("status=new&status=returned&limit=2&sort=-created_at", "created_at"),
        (f"{OPEN}&limit=2&sort=created_at", "created_at"),
        (f"{OPEN}&limit=2&sort=-updated_at&territory_id={{sochi}}", "updated_at"),
    ],
)
def test_a_page_after_a_cursor_starts_at_the_cursor_in_the_index(
    client, auth, world, query, column
):
    _intake(client, auth, f"seek-{column}-{len(query)}", territory_id=world.sochi.id)
    operator = auth.headers("operator")
    path = "/api/v1/cases?" + query.format(sochi=world.sochi.id)
    sql, parameters = _sent_page(client, _after_first(client, path, operator), operator)
    plan = _plan(client, sql, parameters)
    page = next((n for n in _nodes(plan) if n.get("Subplan Name") == "CTE page"), plan)
    (scan,) = [n for n in _nodes(page) if n.get("Relation Name") == "case_file"]
    # The index is entered at the cursor: its bound is an index condition. As a filter only
    # (the seek's OR), each page walked the index from its first entry, past every case of
    # the pages before, and the fifth page of a filter read five pages' cases.
    bound = "<=" if "sort=-" in query else ">="
    assert f"{column} {bound}" in scan.get("Index Cond", ""), scan


def _scans_under_limits(plan: dict, ancestors: tuple = ()) -> list[tuple[dict, list[str]]]:
    """Each scan of case_file with the node types between it and the nearest Limit above it."""
    found = []
    if plan.get("Relation Name") == "case_file":
        above = [node["Node Type"] for node in ancestors]
        cut = max((i for i, kind in enumerate(above) if kind == "Limit"), default=-1)
        found.append((plan, above[cut + 1 :]))
    for child in plan.get("Plans", ()):
        found += _scans_under_limits(child, (*ancestors, plan))
    return found


@pytest.mark.parametrize(
    ("sort", "cursor", "bound"),
    [("due_at", True, "due_at >="), ("-due_at", True, "due_at <="), ("-due_at", False, None)],
)
def test_a_deadline_page_starts_at_its_place_in_the_index(
    client, auth, db, world, sort, cursor, bound
):
    """Pages by due_at take the cases with a deadline and those without apart, each part in
    the order of the open cases' deadline index, limited to the page (reads._by_deadline):
    past a cursor the index is entered at it, and -due_at (nulls last, which the index read
    backwards does not give) sorts no more than the parts' few rows. As one statement, a
    cursor page walked the index from its first entry (the seek's OR is no index condition)
    and each page of -due_at sorted every open case."""
    made = _intake(client, auth, f"deadline-{sort}-{cursor}", territory_id=world.sochi.id)
    operator = auth.headers("operator")
    _assigned(client, made[:2], world.adm_sochi.id, operator)
    path = f"/api/v1/cases?{OPEN}&limit=1&sort={sort}"
    if cursor:
        path = _after_first(client, path, operator)
    # (the whole statement: the parts are CTEs of their own, and no other reads case_file)
    scans = _scans_under_limits(_plan(client, *_sent_page(client, path, operator)))
    assert {scan.get("Index Name") for scan, _ in scans} == {"ix_case_file_open_by_due"}, scans
    # Each part's rows come in the index's order straight into the part's limit.
    assert all("Sort" not in above for _, above in scans), scans
    if bound:
        conditions = [scan.get("Index Cond", "") for scan, _ in scans]
        assert any(bound in condition for condition in conditions), conditions


@pytest.mark.parametrize(
    ("query", "index"),
    [
        ("limit=2&sort=-updated_at", "ix_case_file_updated"),
        ("status=closed&status=new&limit=2&sort=updated_at&cursor", "ix_case_file_updated"),
        (f"{OPEN}&limit=2&sort=-updated_at", "ix_case_file_open_by_updated"),
    ],
)
def test_lists_by_last_change_walk_an_index(client, auth, world, query, index):
    """Any list in order of last change, not the open queue's by territory alone, walks an
    index in that order (0024): without one, each page sorted every case that passed its
    filters (the register by -updated_at at 1M: 1.5 s a page)."""
    _intake(client, auth, f"orders-{len(query)}-{index}", territory_id=world.sochi.id)
    operator = auth.headers("operator")
    path = "/api/v1/cases?" + query.removesuffix("&cursor").format(sochi=world.sochi.id)
    if query.endswith("&cursor"):
        path = _after_first(client, path, operator)
    scans = _scans_under_limits(_plan(client, *_sent_page(client, path, operator)))
    assert {scan.get("Index Name") for scan, _ in scans} == {index}, scans
    assert all("Sort" not in above for _, above in scans), scans


BOTH_BY_DUE = {"ix_case_file_open_by_due", "ix_case_file_settled_by_due"}


@pytest.mark.parametrize(
    ("query", "indexes"),
    [
        ("limit=1&sort=due_at", BOTH_BY_DUE),
        ("limit=1&sort=-due_at&cursor", BOTH_BY_DUE),
        ("territory_id={sochi}&limit=1&sort=due_at&cursor", BOTH_BY_DUE),
        ("status=closed&status=new&limit=1&sort=-due_at&cursor", BOTH_BY_DUE),
        ("status=closed&limit=1&sort=-due_at", {"ix_case_file_settled_by_due"}),
        (
            "status=closed&status=rejected&limit=1&sort=due_at&cursor",
            {"ix_case_file_settled_by_due"},
        ),
    ],
)
def test_lists_by_deadline_outside_the_open_queue_walk_an_index(
    client, auth, db, world, query, indexes
):
    """A list by deadline that holds more than open cases reads the open ones and the others
    apart, each part in the order of its own index of due_at, limited to the page (0025,
    reads._by_deadline); a list of closed or rejected cases reads their index alone. Without
    it, each page sorted every case that passed the filters (the register by due_at at 1M:
    0.9-1.4 s a page)."""
    from sqlalchemy import update

    from app.cases.models import Case

    made = _intake(client, auth, f"settled-{len(query)}", count=6, territory_id=world.sochi.id)
    operator = auth.headers("operator")
    _assigned(client, made[:4], world.adm_sochi.id, operator)
    # Two closed with a deadline, one rejected without; two assigned, one new.
    settled = {made[0]["id"]: "closed", made[1]["id"]: "closed", made[4]["id"]: "rejected"}

    async def settle(session):
        for case_id, status in settled.items():
            await session.execute(update(Case).where(Case.id == case_id).values(status=status))

    db.run(settle)
    path = "/api/v1/cases?" + query.removesuffix("&cursor").format(sochi=world.sochi.id)
    if query.endswith("&cursor"):
        path = _after_first(client, path, operator)
    scans = _scans_under_limits(_plan(client, *_sent_page(client, path, operator)))
    assert {scan.get("Index Name") for scan, _ in scans} == indexes, scans
    # Each part's rows come in its index's order straight into the part's limit.
    assert all("Sort" not in above for _, above in scans), scans


@pytest.mark.parametrize(
    ("query", "walked"),
    [
        ("q=абракадабра&limit=2&sort=due_at", BOTH_BY_DUE),
        ("q=абракадабра&status=closed&limit=2&sort=-due_at", {"ix_case_file_settled_by_due"}),
        ("q=абракадабра&limit=2&sort=-updated_at", {"ix_case_file_updated"}),
    ],
)
def test_a_search_in_order_walks_a_bounded_stretch(client, auth, db, monkeypatch, query, walked):
    """A search page by deadline or last change of a list holding more than open cases walks
    at most ORDERED_WALK cases of each index of that order it reads, then sorts every match
    instead (reads._searched_in_order): left to choose, PostgreSQL walked the index to its
    end testing each case's words, and a word in no case read every case (1.3-2.5 s a page at
    1M). Here the walk is 3 cases long, and nine cases of each kind have a deadline."""
    from sqlalchemy import update

    from app.cases import reads
    from app.cases.models import Case

    monkeypatch.setattr(reads, "ORDERED_WALK", 3)
    reads._cached_page.cache_clear()
    made = _intake(client, auth, f"walk-{len(query)}", count=18)
    day = timedelta(days=1)

    async def settle(session):
        for n, case in enumerate(made):
            changed = {"due_at": datetime(2027, 1, 1, tzinfo=UTC) + n * day}
            changed["status"] = "closed" if n % 2 else "assigned"
            await session.execute(update(Case).where(Case.id == case["id"]).values(**changed))

    db.run(settle)
    operator = auth.headers("operator")
    path = "/api/v1/cases?" + query
    try:
        sql, parameters = _sent_page(client, path, operator)
    finally:
        reads._cached_page.cache_clear()
    plan = _analyzed(client, sql, parameters)
    # (the walks of the cases with a deadline: those without are none here)
    scans = [
        n
        for n in _nodes(plan)
        if n.get("Index Name") in BOTH_BY_DUE | {"ix_case_file_updated"}
        and "due_at IS NULL" not in n.get("Index Cond", "")
    ]
    assert {n["Index Name"] for n in scans} == walked, scans
    # Each walk read no more than its stretch, not the index's nine entries (rows a scan's
    # filter drops were read too).
    assert all(n["Actual Rows"] + n.get("Rows Removed by Filter", 0) <= 3 for n in scans), scans
    assert client.get(path, headers=operator).json()["items"] == []
