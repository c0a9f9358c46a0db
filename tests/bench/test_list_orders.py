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
    assert [(shape, sort) for shape, sort, _ in measured] == [
        (shape, sort) for shape in list_orders.FILTERS for sort in list_orders.SORTS
    ]
    for shape, sort, times in measured:
        assert 1 <= len(times) <= 2 and all(ms > 0 for ms in times), (shape, sort, times)
    assert any(len(times) == 2 for *_, times in measured)  # some filters fill a first page
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "| filters | sort | first page ms | next page ms | |"
    assert len(table) == 2 + len(measured)
    assert all(line.endswith("| slow |") for line in table[2:])  # every page over 0 ms
    # The app's own pages record what they showed; the EXPLAIN ANALYZE runs are rolled back.
    assert shown <= sum(len(times) for *_, times in measured)
