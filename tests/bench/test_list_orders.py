"""bench/list_orders.py: every order the list offers under each common filter, first page and
the page after its cursor, explained as the app sent them, as the operator and as a district's
user, without a record of what EXPLAIN ANALYZE showed."""

from __future__ import annotations

import pytest

from bench import list_orders
from tests.bench.conftest import personal_data_records


@pytest.mark.parametrize("who", ["operator", "agency"])
def test_every_order_under_every_filter_is_explained(generated, database_url, capsys, who):
    before = personal_data_records(database_url)
    measured = list_orders.main([database_url, "--as", who, "--repeat", "1", "--slow", "0"])
    shown = personal_data_records(database_url) - before
    assert [(shape, sort) for shape, sort, *_ in measured] == [
        (shape, sort) for shape in list_orders.FILTERS for sort in list_orders.SORTS
    ]
    for shape, sort, times, generic in measured:
        assert 1 <= len(times) <= 2 and all(ms > 0 for ms in times), (shape, sort, times)
        assert generic == [], (shape, sort, generic)  # not asked for
    assert any(len(times) == 2 for _, _, times, _ in measured)  # some filters fill a first page
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "| filters | sort | first page ms | next page ms | |"
    assert len(table) == 2 + len(measured)
    assert all(line.endswith("| slow |") for line in table[2:])  # every page over 0 ms
    # The app's own pages record what they showed; the EXPLAIN ANALYZE runs are rolled back.
    assert shown <= sum(len(times) for _, _, times, _ in measured)


def test_generic_plans_are_explained_and_a_switch_to_them_is_marked(
    generated, database_url, capsys, monkeypatch
):
    """With --generic each page is also run prepared, seven times, in PostgreSQL's default
    plan mode (whether it switched to the plan made without the values is marked), and
    timed with that generic plan, all rolled back."""
    import asyncpg

    from app.core.db import SERVER_SETTINGS

    connected = []

    async def connect(*args, **kwargs):
        connected.append(kwargs.get("server_settings"))
        return await real_connect(*args, **kwargs)

    real_connect = asyncpg.connect
    before = personal_data_records(database_url)
    monkeypatch.setattr(asyncpg, "connect", connect)
    measured = list_orders.main([database_url, "--generic", "--repeat", "1", "--slow", "1e9"])
    monkeypatch.undo()
    # Explained on a connection set as the app's (no JIT: a plan priced over jit_above_cost
    # would count tens of ms of compiling the app never spends): the tool's, then the app's.
    assert len(connected) >= 2 and all(s == SERVER_SETTINGS for s in connected), connected
    assert personal_data_records(database_url) - before <= sum(
        len(times) for _, _, times, _ in measured
    )
    for shape, sort, times, generic in measured:
        assert len(generic) == len(times), (shape, sort, generic)
        assert all(
            isinstance(switched, bool) and (ms is None or ms > 0) for switched, ms in generic
        )
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| filters | sort | first page ms | next page ms | first page, ")
    rows = {(line.split(" | ")[0][3:-1], line.split(" | ")[1]): line for line in table[2:]}
    for shape, sort, _, generic in measured:
        marked = rows[(shape or "(none)", sort)].endswith("| generic |")
        assert marked == any(switched for switched, _ in generic), rows[(shape or "(none)", sort)]
