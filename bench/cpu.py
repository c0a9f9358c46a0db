"""Where the CPU went during one measured run: the server, PostgreSQL, the load generator, and
the rest of the machine.

wrk, PostgreSQL and the server share the same cores, so a scenario's requests/s depends on
what each of them spends per request. `CpuMeter` reads, at the start and at the end of the
run, the CPU time (user + system, from /proc) of:

- the server: its process and every process below it (uvicorn's workers); and also the time
  their threads were ready to run but waited for a core (/proc's schedstat, the kernel's run
  delay): on a machine that PostgreSQL and wrk share, a server that waits is slowed by them,
  not by its own code;
- PostgreSQL: every process named `postgres` (its connections' backends, and the background
  writer, WAL writer, autovacuum and checkpointer, which work for the same requests; and
  whatever else the same server does meanwhile, for any database: keep it otherwise idle);
- the load generator: the children this process waited for meanwhile (wrk), from getrusage;
- the machine: /proc/stat's busy and idle time of all cores, so what none of the three
  spent is shown too ("other": anything else that ran, and a virtual machine's stolen time).

A process that started during the run counts from zero; one that ended during it is missed
(the server's pool keeps its connections, so PostgreSQL's backends live through a run).
Linux only; elsewhere every figure is None.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_seconds(pid: int) -> float | None:
    """User + system CPU seconds of one process, None when it is gone."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # the command name, field 2, is in parentheses and may hold spaces: split after it
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14 and 15)


def waited_seconds(pid: int) -> float | None:
    """Seconds the threads of one process spent ready to run but waiting for a core (the
    second field of each thread's /proc schedstat), None when it is gone or not told."""
    total, found = 0, False
    try:
        threads = list((PROC / str(pid) / "task").iterdir())
    except OSError:
        return None
    for thread in threads:
        try:
            total += int((thread / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        found = True
    return total / 1e9 if found else None


def tree(pid: int) -> list[int]:
    """The process and all its descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            children = (PROC / str(current) / "task" / str(current) / "children").read_text()
        except OSError:
            continue
        todo.extend(int(child) for child in children.split())
    return found


def named(name: str) -> list[int]:
    """Every process whose command name is `name`."""
    pids = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def machine_seconds() -> tuple[float, float]:
    """(busy, idle) CPU seconds of all cores since boot; iowait counts as idle, steal as busy."""
    with (PROC / "stat").open() as f:
        values = [int(v) for v in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is already in user)
    idle = values[3] + values[4]
    busy = sum(values[:8]) - idle
    return busy / TICK, idle / TICK


def _read(pids: list[int], reading: Callable[[int], float | None]) -> dict[int, float]:
    """A reading of each process that is still there."""
    found = {}
    for pid in pids:
        seconds = reading(pid)
        if seconds is not None:
            found[pid] = seconds
    return found


def _times(pids: list[int]) -> dict[int, float]:
    return _read(pids, process_seconds)


def _spent(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def processes_seconds(pid: int, postgres_name: str = "postgres") -> tuple[float, dict[int, float]]:
    """CPU seconds so far of a process with its descendants, and of each PostgreSQL process:
    two readings' difference (`spent_since`) is what they spent between them, for work that
    is not a wrk run (the webhook worker's deliveries)."""
    return sum(_times(tree(pid)).values()), _times(named(postgres_name))


def spent_since(
    before: tuple[float, dict[int, float]], after: tuple[float, dict[int, float]]
) -> tuple[float, float]:
    """(the process's, PostgreSQL's) CPU seconds between two readings of processes_seconds."""
    return after[0] - before[0], _spent(before[1], after[1])


def _children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class CpuSplit:
    """CPU seconds spent over `wall` seconds of one run, by whom."""

    wall: float
    server: float
    postgres: float
    load: float  # the load generator (wrk)
    busy: float  # the whole machine
    idle: float
    server_waited: float = 0.0  # the server's threads ready to run, waiting for a core

    @property
    def other(self) -> float:
        """What the machine spent that none of the three did."""
        return max(0.0, self.busy - self.server - self.postgres - self.load)

    def per_request_ms(self, requests: int) -> dict[str, float] | None:
        if requests <= 0:
            return None
        return {
            "server": 1000 * self.server / requests,
            "postgres": 1000 * self.postgres / requests,
            "wrk": 1000 * self.load / requests,
            "server_waited": 1000 * self.server_waited / requests,
        }

    def shares(self) -> dict[str, float]:
        """Idle and other work as shares of the machine's CPU time over the run."""
        total = self.busy + self.idle
        if total <= 0:
            return {"idle": 0.0, "other": 0.0}
        return {"idle": self.idle / total, "other": self.other / total}


class CpuMeter:
    """`with CpuMeter(server_pid) as meter: ...` then `meter.split`."""

    def __init__(self, server_pid: int, postgres_name: str = "postgres"):
        self.server_pid = server_pid
        self.postgres_name = postgres_name
        self.split: CpuSplit | None = None

    def _snapshot(
        self,
    ) -> tuple[float, dict[int, float], dict[int, float], float, float, float, dict[int, float]]:
        busy, idle = machine_seconds()
        server = tree(self.server_pid)
        return (
            time.monotonic(),
            _times(server),
            _times(named(self.postgres_name)),
            _children_seconds(),
            busy,
            idle,
            _read(server, waited_seconds),
        )

    def __enter__(self) -> CpuMeter:
        self._start = self._snapshot() if (PROC / "stat").exists() else None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._start is None:
            return
        end = self._snapshot()
        t0, server0, pg0, load0, busy0, idle0, waited0 = self._start
        t1, server1, pg1, load1, busy1, idle1, waited1 = end
        self.split = CpuSplit(
            wall=t1 - t0,
            server=_spent(server0, server1),
            postgres=_spent(pg0, pg1),
            load=load1 - load0,
            busy=busy1 - busy0,
            idle=idle1 - idle0,
            server_waited=_spent(waited0, waited1),
        )
