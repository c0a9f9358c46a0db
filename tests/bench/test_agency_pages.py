"""bench/agency_pages.py: agency staff's list pages, timed in process, for agencies from the
smallest to the largest."""

from __future__ import annotations

from bench import agency_pages


def test_each_page_of_agencies_small_to_large_is_timed(generated, database_url, capsys):
    timings = agency_pages.main([database_url, "--rounds", "2"])
    agencies = {}
    for timing in timings:
        agencies.setdefault(timing.agency, timing.cases)
    sizes = list(agencies.values())
    assert 2 <= len(agencies) <= len(agency_pages.QUANTILES)
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    # Every page of each, but the third of an agency with no more than two pages (of its list,
    # or of its cases with the common word: a few at most of 500 generated).
    timed = [(t.agency, t.page) for t in timings]
    assert [(code, page) for code, page in timed if page != "search, third page"] == [
        (code, page)
        for code, cases in agencies.items()
        for page in agency_pages.PAGES
        if (page != "third page" or cases > 100) and page != "search, third page"
    ]
    assert all(0 < t.median_ms <= t.slowest_ms for t in timings)
    # A page holds 50 cases, or all the agency has; the third page what is left after two.
    for t in timings:
        if t.page in ("first page", "with total"):
            assert t.items == min(50, t.cases), t
        if t.page == "third page":
            assert t.items == min(50, t.cases - 100), t
        if t.page.startswith("search"):
            assert t.items <= 20, t
        if t.page == "search, a word in no case":
            assert t.items == 0, t
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| agency | cases given | page |")
    assert len(table) == 2 + len(timings)
