"""bench/instructions.py: instructions per request from two callgrind runs of bench.inprocess."""

from __future__ import annotations

import pytest

from bench import instructions


def test_the_two_runs_difference_is_divided_by_their_requests(monkeypatch, capsys):
    runs = []

    def count(url, scenario, requests, out):
        runs.append((scenario, requests))
        return 5_000_000 + 1_100 * requests  # start-up, then 1,100 per request

    monkeypatch.setattr(instructions, "count", count)
    monkeypatch.setattr(instructions.shutil, "which", lambda _: "/usr/bin/valgrind")
    instructions.main(["postgresql://x/y", "--scenario", "queue"])
    assert runs == [("queue", 200), ("queue", 1000)]
    assert capsys.readouterr().out.startswith("queue: 1,100 instructions per request")


def test_creates_are_counted_too(monkeypatch, capsys):
    runs = []

    def count(url, scenario, requests, out):
        runs.append((scenario, requests))
        return 7_000_000 + 2_000 * requests

    monkeypatch.setattr(instructions, "count", count)
    monkeypatch.setattr(instructions.shutil, "which", lambda _: "/usr/bin/valgrind")
    instructions.main(["postgresql://x/y", "--scenario", "create", "--small", "8"])
    assert runs == [("create", 8), ("create", 1000)]
    assert capsys.readouterr().out.startswith("create: 2,000 instructions per request")


@pytest.mark.parametrize("sizes", [["--small", "800", "--large", "800"], ["--small", "100"]])
def test_sizes_that_cannot_be_compared_are_refused(monkeypatch, sizes):
    monkeypatch.setattr(instructions.shutil, "which", lambda _: "/usr/bin/valgrind")
    with pytest.raises(SystemExit, match="multiples of 8"):
        instructions.main(["postgresql://x/y", *sizes])


def test_a_failed_run_says_so(monkeypatch, tmp_path):
    class Failed:
        returncode = 1
        stderr = "valgrind: cannot start"

    monkeypatch.setattr(instructions.subprocess, "run", lambda *a, **k: Failed())
    with pytest.raises(SystemExit, match="cannot start"):
        instructions.count("postgresql://x/y", "get", 8, tmp_path / "out")
