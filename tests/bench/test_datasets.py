"""bench/run.py's datasets: a dataset a --no-copy run wrote into is never dropped unasked, and
the growth comparison always runs on a copy of 100k."""

from __future__ import annotations

import argparse

import pytest

from bench import run

MARKER = run.MARKER.format(cases=10_000_000, seed=1)


@pytest.fixture
def admin(monkeypatch):
    """run._admin and run._check recorded instead of run; the dataset's comment is `comment`."""
    calls: list[str] = []
    state = {"comment": None}

    async def fake_admin(sql: str, *args):
        calls.append(sql)
        if sql.startswith("SELECT shobj_description"):
            return state["comment"]
        if sql.startswith("SHOW server_version_num"):
            return "150000"
        return None

    monkeypatch.setattr(run, "_admin", fake_admin)
    monkeypatch.setattr(run, "_check", lambda cmd, env, what: calls.append(f"check {what}"))
    monkeypatch.setattr(run.subprocess, "run", lambda *a, **kw: calls.append("generate") or None)
    return calls, state


def _drops(calls: list[str]) -> list[str]:
    return [sql for sql in calls if sql.startswith("DROP DATABASE")]


@pytest.mark.parametrize(
    "comment", [run.MODIFIED.format(marker=MARKER), "modified by a run"], ids=["now", "before"]
)
def test_a_dataset_a_run_wrote_into_is_not_dropped_by_a_run_with_a_copy(admin, comment):
    calls, state = admin
    state["comment"] = comment
    with pytest.raises(SystemExit, match="--fresh") as stop:
        run.ensure_database(10_000_000, 1, 2, fresh=False)
    assert "--no-copy" in str(stop.value)
    assert _drops(calls) == []
    assert "generate" not in calls


def test_another_no_copy_run_uses_it_as_it_is(admin):
    calls, state = admin
    state["comment"] = run.MODIFIED.format(marker=MARKER)
    url = run.ensure_database(10_000_000, 1, 2, fresh=False, copy=False)
    assert url.endswith("/regiondesk_bench_10m_data")
    assert _drops(calls) == [] and "generate" not in calls
    assert "check migrate" in calls
    # and it stays marked as written into, with what it was made as
    modified = run.MODIFIED.format(marker=MARKER)
    assert calls[-1] == f"COMMENT ON DATABASE \"regiondesk_bench_10m_data\" IS '{modified}'"


def test_fresh_rebuilds_it(admin):
    calls, state = admin
    state["comment"] = run.MODIFIED.format(marker=MARKER)
    run.ensure_database(10_000_000, 1, 2, fresh=True, copy=False)
    assert _drops(calls) == ['DROP DATABASE IF EXISTS "regiondesk_bench_10m_data" WITH (FORCE)']
    assert "generate" in calls


def test_a_pristine_dataset_is_copied_and_kept(admin):
    calls, state = admin
    state["comment"] = MARKER
    url = run.ensure_database(10_000_000, 1, 2, fresh=False)
    assert url.endswith("/regiondesk_bench_10m")
    assert _drops(calls) == ['DROP DATABASE IF EXISTS "regiondesk_bench_10m" WITH (FORCE)']
    assert not any(sql.startswith("COMMENT") for sql in calls)


def test_growth_compares_against_a_copy_even_in_a_no_copy_run(monkeypatch):
    asked = {}

    class Asked(Exception):
        pass

    def fake_ensure_database(cases, seed, jobs, fresh, copy=True, tag=""):
        asked.update(cases=cases, copy=copy)
        raise Asked

    monkeypatch.setattr(run, "ensure_database", fake_ensure_database)
    opts = argparse.Namespace(**{**vars(run.parse(["--cases", "10000000", "--no-copy"]))})
    assert opts.copy is False
    with pytest.raises(Asked):
        run.growth(opts, [])
    assert asked == {"cases": 100_000, "copy": True}


def test_growth_says_how_large_the_answers_were_at_each_size(monkeypatch):
    """The queue's pages at 100k may hold fewer cases (filters with few matches): the growth
    line says the size of an answer at both sizes, so a reader sees whether like was compared
    with like."""

    def measured(name, p50, p99, kb):
        result = run.Result(name, name, p50_ms=p50, p99_ms=p99)
        result.kb_per_answer = kb
        return result

    class SmallBench:
        def __init__(self, opts, url):
            self.results = []
            self.app = argparse.Namespace(stop=lambda: None)

        def start_app(self):
            pass

        def get_one(self):
            self.results.append(measured("get", 10.0, 20.0, 2.5))

        def queue(self):
            self.results.append(measured("queue", 40.0, 80.0, 41.0))

        def search(self):
            self.results.append(measured("search", 30.0, 60.0, None))

    monkeypatch.setattr(run, "ensure_database", lambda *a, **k: "postgresql://small")
    monkeypatch.setattr(run, "Bench", SmallBench)
    opts = run.parse(["--cases", "10000000", "--no-copy"])
    big = [
        measured("get", 11.0, 21.0, 2.5),
        measured("queue", 64.0, 160.0, 75.3),
        measured("search", 33.0, 66.0, 20.0),
    ]
    get, queue, search = run.growth(opts, big)
    assert get.verdict == "pass" and get.note.endswith("; 2.5 vs 2.5 kB an answer")
    assert queue.verdict == "miss"
    assert queue.note == "p99 160.0 vs 80.0 ms (× 2.00); p50 × 1.60; 75.3 vs 41.0 kB an answer"
    assert search.verdict == "pass" and "kB" not in search.note  # not known at 100k
