"""The soak starts its server through bench/run.py's Bench, with bench/run.py's options."""

from __future__ import annotations

from bench import run, soak


def test_the_soak_gives_the_bench_every_option_a_run_has():
    # A Namespace of its own lacked `workers` once bench/run.py gained it, and `make soak`
    # stopped with an AttributeError before the server started.
    opts = soak.bench_options(18090)
    assert set(vars(run.parse([]))) <= set(vars(opts))
    assert opts.port == 18090 and opts.workers == 1
    assert run.Bench(opts, "postgresql://postgres@127.0.0.1/x").port == 18090
