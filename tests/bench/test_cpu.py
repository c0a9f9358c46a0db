"""bench/cpu.py: the CPU of a measured run, told apart by who spent it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import cpu, run

pytestmark = pytest.mark.skipif(not Path("/proc/stat").exists(), reason="reads Linux's /proc")

BUSY = "import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end: pass"


def _busy(seconds: float) -> list[str]:
    return [sys.executable, "-c", BUSY.format(seconds=seconds)]


def test_a_server_and_its_children_are_counted_as_the_server():
    # a "server" whose work is done by a child process, as uvicorn's workers are
    parent = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess; subprocess.run({_busy(30)!r})"]
    )
    try:
        time.sleep(0.3)  # the worker has started
        with cpu.CpuMeter(parent.pid) as meter:
            time.sleep(1.0)
        workers = cpu.tree(parent.pid)
    finally:
        for pid in reversed(cpu.tree(parent.pid)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        parent.wait()
    assert len(workers) == 2
    split = meter.split
    assert split is not None
    # the parent only waits: what was spent was the child's, on a core shared with others
    assert split.server >= 0.1
    assert split.load == 0  # nothing was waited for in the run


def test_each_group_gets_what_it_spent():
    server = subprocess.Popen(_busy(30))
    try:
        with cpu.CpuMeter(server.pid) as meter:
            subprocess.run(_busy(0.5), check=True)  # the load generator, waited for
        split = meter.split
    finally:
        server.kill()
        server.wait()
    assert split is not None
    assert split.load == pytest.approx(0.5, abs=0.15)
    # the server ran alongside the whole time, on the other core or in turns with the load
    assert split.server >= 0.1
    assert split.wall >= 0.5
    assert split.busy >= split.server + split.load - 0.05
    per_request = split.per_request_ms(100)
    assert per_request["wrk"] == pytest.approx(1000 * split.load / 100)
    assert split.per_request_ms(0) is None


def test_postgresql_processes_are_found_by_name_and_their_work_counted(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's processes")
    if not cpu.named("postgres"):
        pytest.skip("PostgreSQL is not running on this machine (a remote test database)")
    import asyncio

    import asyncpg

    from bench.generate import asyncpg_dsn

    async def work() -> cpu.CpuMeter:
        # connected before and still after the run, as the server's pooled connections are (a
        # backend that ends within the run is missed)
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            with cpu.CpuMeter(0) as meter:  # no server: pid 0 has no /proc entry
                await conn.fetchval("SELECT count(*) FROM generate_series(1, 3000000) AS g(n)")
            return meter
        finally:
            await conn.close()

    meter = asyncio.run(work())
    assert meter.split is not None
    assert meter.split.server == 0
    assert meter.split.postgres >= 0.1


def test_the_report_shows_the_cpu_of_each_measured_scenario():
    split = cpu.CpuSplit(wall=10, server=8.0, postgres=4.0, load=2.0, busy=16.0, idle=4.0)
    get = run.Result("get", "get one case by id")
    data = {
        "rps": 1000.0,
        "requests": 10_000,
        "bytes": 25_000_000,
        "errors": {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0},
        "latency_us": {"p50": 1000, "p95": 2000, "p99": 3000},
    }
    run._fill(get, data, 5000.0, 100.0, split)
    assert get.cpu_ms == {"server": 0.8, "postgres": 0.4, "wrk": 0.2, "server_waited": 0.0}
    assert get.idle_share == pytest.approx(0.2)
    assert get.other_share == pytest.approx(0.1)  # 16 busy - 14 of ours, of 20
    unmeasured = run.Result("webhooks", "webhook worker deliveries")
    lines = run.cpu_table([get, unmeasured], cores=2)
    # 1,000 req/s at 20 % of bare; 0.8 ms of server a request allows 1,250/s on one core, and
    # 1.4 ms of all three allows 1,429/s on two: the server's core is reached first, at 25 %.
    assert "| get | 2.5 | 0.800 | 0.000 | 0.400 | 0.200 | 20% | 10% | 25% (server) | — |" in lines
    assert not any("webhooks" in line for line in lines)
    assert run.cpu_table([unmeasured], cores=2) == []


@pytest.mark.skipif(
    not Path(f"/proc/{os.getpid()}/schedstat").exists(), reason="the kernel's run delay"
)
def test_the_time_the_server_waited_for_a_core_is_measured():
    """A server and a load generator pinned to one core take turns: each waits for it about
    as long as it runs. The server's wait is told apart from its CPU."""
    core = {min(os.sched_getaffinity(0))}

    def pinned() -> None:
        os.sched_setaffinity(0, core)

    server = subprocess.Popen(_busy(30), preexec_fn=pinned)
    try:
        time.sleep(0.2)
        with cpu.CpuMeter(server.pid) as meter:
            subprocess.run(_busy(1.0), check=True, preexec_fn=pinned)
        split = meter.split
    finally:
        server.kill()
        server.wait()
    assert split is not None
    assert split.server_waited >= 0.3  # about 1 s: it ran half the time
    assert split.server_waited + split.server == pytest.approx(split.wall, rel=0.25)
    assert split.per_request_ms(10)["server_waited"] == pytest.approx(100 * split.server_waited)
    with cpu.CpuMeter(os.getpid()) as alone:  # sleeping is not waiting for a core
        time.sleep(0.5)
    assert alone.split is not None and alone.split.server_waited < 0.1
    assert cpu.waited_seconds(2**22 + 12345) is None  # no such process


def test_a_report_written_before_the_wait_was_measured_shows_a_dash():
    get = run.Result("get", "get one case by id")
    run._fill(get, wrk_answer(rps=1000.0, requests=10_000), 5000.0, 100.0)
    get.cpu_ms = {"server": 0.8, "postgres": 0.4, "wrk": 0.2}  # an earlier run's JSON
    lines = run.cpu_table([get], cores=2)
    assert any(line.startswith("| get | — | 0.800 | — | 0.400 |") for line in lines)


def wrk_answer(rps: float, requests: int) -> dict:
    """What bench/lua.py's done() prints for a run without errors."""
    return {
        "rps": rps,
        "requests": requests,
        "errors": {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0},
        "latency_us": {"p50": 1000, "p95": 2000, "p99": 3000},
    }


def test_the_report_says_what_the_cpu_allows_and_what_a_target_leaves():
    """Against a bare endpoint of 5,000 req/s: queue's PostgreSQL fills the machine before its
    server fills its core; the target (30 %, 1,500 req/s) leaves 0.667 ms of server a
    request and 1.333 ms of all three on two cores; two workers get two cores' worth."""
    split = cpu.CpuSplit(wall=10, server=3.0, postgres=15.0, load=2.0, busy=20.0, idle=0.0)
    queue = run.Result("queue", "triage queue")
    data = wrk_answer(rps=1000.0, requests=10_000)
    run._fill(queue, data, 5000.0, 100.0, split)
    run.judge(queue, run.Target(share=0.30, text="≥ 30 %"))
    one = run.cpu_table([queue], cores=2, workers=1)
    # 0.3 ms of server allows 3,333/s; 0.3 + 1.5 + 0.2 = 2.0 ms of all allows 1,000/s: 20 %.
    assert (
        "| queue | — | 0.300 | 0.000 | 1.500 | 0.200 | 0% | 0% | 20% (machine) | 0.667 / 1.333 |"
        in one
    )
    split = cpu.CpuSplit(wall=10, server=8.0, postgres=1.0, load=1.0, busy=10.0, idle=10.0)
    run._fill(queue, data, 5000.0, 100.0, split)
    two = run.cpu_table([queue], cores=2, workers=2)
    # 0.8 ms of server on two cores allows 2,500/s; 1.0 ms of all allows 2,000/s: 40 %.
    assert any("| 40% (machine) | 1.333 / 1.333 |" in line for line in two)


def test_a_missed_share_is_written_with_the_digits_that_show_it_missed():
    result = run.Result("get", "get one case")
    data = wrk_answer(rps=1226.0, requests=6_130)
    run._fill(result, data, 4090.0, 100.0)  # 29.976 %: "30.0 %" would read as a pass
    run.judge(result, run.Target(share=0.30, text="≥ 30 %"))
    assert result.misses == ["share 29.98% < 30%"]
    run._fill(result, {**data, "rps": 1000.0}, 4090.0, 100.0)
    run.judge(result, run.Target(share=0.30, text="≥ 30 %"))
    assert result.misses == ["share 24.4% < 30%"]
