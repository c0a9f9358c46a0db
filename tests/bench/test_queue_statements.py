"""bench/queue_statements.py: each of the queue scenario's statements explained as the app sent
it, page after page by cursor, with how many cases each page held."""

from __future__ import annotations

from bench import queue_statements
from bench.inprocess import QUEUE_FILTERS
from tests.bench.conftest import personal_data_records


def test_each_filters_pages_are_explained_as_sent(generated, database_url, capsys):
    pages = queue_statements.main([database_url, "--pages", "2", "--repeat", "2", "--limit", "2"])
    # Every filter's first page, and its second where the first was full.
    firsts = [p for p in pages if p.number == 1]
    assert [p.filter for p in firsts] == list(QUEUE_FILTERS)
    for page in pages:
        assert page.ms > 0 and page.planning_ms > 0 and 0 <= page.cases <= 2, page
        if page.number == 2:
            first = next(p for p in firsts if p.filter == page.filter)
            assert first.cases == 2, (first, page)
    assert any(p.number == 2 for p in pages)  # the generated open cases fill some first page
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "| filter | page | cases | execution ms | planning ms |"
    assert len(table) == 2 + len(pages)


def test_each_statement_is_timed_planned_each_run_and_with_one_plan(
    generated, database_url, capsys
):
    args = [database_url, "--pages", "1", "--repeat", "1", "--limit", "2"]
    before = personal_data_records(database_url)
    queue_statements.main(args)
    # the pages' records and their EXPLAIN ANALYZEs'
    explained = personal_data_records(database_url) - before
    capsys.readouterr()
    pages = queue_statements.main([*args, "--plans", "--runs", "2"])
    assert len(pages) == len(QUEUE_FILTERS)
    for page in pages:
        assert page.custom_ms is not None and page.custom_ms > 0, page
        assert page.generic_ms is None or page.generic_ms > 0, page
    table = capsys.readouterr().out.splitlines()
    assert table[0].endswith("| planned each run, ms | one plan without values, ms |")
    assert all(line.count("|") == 8 for line in table)
    # The prepared runs are rolled back: they record nothing more.
    assert personal_data_records(database_url) == before + 2 * explained
