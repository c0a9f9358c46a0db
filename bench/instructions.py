"""Instructions per request of one route, in process, counted by valgrind's callgrind: far
steadier than CPU time on a shared machine, though not blind to load (a slower PostgreSQL sends
the event loop round more often for the same requests: 1.00 and 1.07 million a get for the same
commit, with one and with two other jobs beside it). Compare two branches counted under the
same conditions: one after the other, or both at once.

    python -m bench.instructions postgresql://postgres@127.0.0.1:5432/regiondesk_bench_1m_x
    python -m bench.instructions --scenario queue postgresql://…
    python -m bench.instructions --scenario create postgresql://…   (writes: on a copy)

It runs `bench.inprocess` (the same requests, the same app settings) twice under
`valgrind --tool=callgrind`, with `--small` and with `--large` requests, and divides the
difference of the two totals by the difference of the requests: start-up, the log-in and the
warm-up cancel out. It counts user-space instructions (the kernel's part of a system call is
not in it) and takes about a minute per thousand gets. Needs valgrind (Debian's package)."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_TOTAL = re.compile(r"Collected\s*:\s*(\d+)")


def count(database_url: str, scenario: str, requests: int, out: Path) -> int:
    """The instructions callgrind counted over one whole run of bench.inprocess."""
    cmd = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        "-m",
        "bench.inprocess",
        database_url,
        "--scenario",
        scenario,
        "--rounds",
        "1",
        "--requests",
        str(requests),
        "--concurrency",
        "8",
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
    found = _TOTAL.search(run.stderr)
    if run.returncode != 0 or found is None:
        raise SystemExit(f"callgrind run failed ({run.returncode}):\n{run.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("database_url", help="a copy of a bench dataset (never the template)")
    p.add_argument("--scenario", choices=("get", "queue", "create"), default="get")
    p.add_argument("--small", type=int, default=200, help="requests of the first run")
    p.add_argument("--large", type=int, default=1000, help="requests of the second run")
    p.add_argument("--keep", type=Path, help="keep the two callgrind files in this folder")
    opts = p.parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    if opts.large <= opts.small or opts.small % 8 or opts.large % 8:
        raise SystemExit("--large must exceed --small, and both be multiples of 8 (concurrency)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = opts.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        totals = [
            count(opts.database_url, opts.scenario, n, folder / f"callgrind.{opts.scenario}.{n}")
            for n in (opts.small, opts.large)
        ]
    per_request = (totals[1] - totals[0]) / (opts.large - opts.small)
    print(
        f"{opts.scenario}: {per_request:,.0f} instructions per request "
        f"({totals[0]:,} for {opts.small}, {totals[1]:,} for {opts.large} requests)"
    )


if __name__ == "__main__":
    main()
