"""Benchmark: start-up of `pstkit --version` and `pstkit export` of a small PST, next to
`readpst` on the same file; median wall time of N runs each (issue 19 goals: 60 ms / 150 ms),
and the median CPU time (user + system of the child), which a loaded machine inflates less.

    nice -n 10 python scripts/bench_startup.py FILE.pst [-n 15]

Each run is a fresh process (and for export a fresh store), as a user would start it.
Set PYTHONPATH to another checkout to measure that code with the same interpreter.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PSTKIT = str(Path(sys.executable).with_name("pstkit"))


def median_ms(argv_for: list[str] | None, runs: int, fresh: bool = False) -> tuple[float, float]:
    """Median wall and CPU ms of `argv_for` (`{out}`: a new empty directory)."""
    times, cpu = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="pstkit-startup-") as tmp:
            out = Path(tmp) / "out"
            if not fresh:
                out.mkdir()
            argv = [a.replace("{out}", str(out)) for a in argv_for or []]
            used = _children_cpu()
            start = time.perf_counter()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times.append((time.perf_counter() - start) * 1000)
            cpu.append((_children_cpu() - used) * 1000)
    return statistics.median(times), statistics.median(cpu)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pst", type=Path)
    ap.add_argument("-n", type=int, default=15)
    args = ap.parse_args()
    pst = str(args.pst)
    export = [PSTKIT, "export", "pst:" + pst, "{out}"]
    rows = [("pstkit --version", median_ms([PSTKIT, "--version"], args.n)),
            ("pstkit export PST STORE", median_ms(export, args.n, fresh=True))]
    if shutil.which("readpst"):
        rows.append(("readpst -q -o OUT PST",
                     median_ms(["readpst", "-q", "-o", "{out}", pst], args.n)))
    for name, (ms, cpu) in rows:
        print(f"{name:28} {ms:8.1f} ms wall {cpu:8.1f} ms CPU (medians of {args.n})")


if __name__ == "__main__":
    main()
