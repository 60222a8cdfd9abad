"""Benchmark: start-up of `pstkit --version` and `pstkit export` of a small PST, next to
`readpst` on the same file; median wall time of N runs each (issue 19 goals: 60 ms / 150 ms),
and the median CPU time (user + system of the child), which a loaded machine inflates less.

    nice -n 10 python scripts/bench_startup.py FILE.pst [-n 15]

Each run is a fresh process (and for export a fresh store), as a user would start it.
Set PYTHONPATH to another checkout to measure that code with the same interpreter.

Like an installed pstkit (pip writes .pyc files at install), the runs use bytecode: a
first untimed run of each command writes it, even where PYTHONDONTWRITEBYTECODE is set
(as on the CI machines: then every run compiled ~200 modules, ~100 ms). `--as-is` keeps
the environment as it is.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PSTKIT = str(Path(sys.executable).with_name("pstkit"))


def median_ms(argv_for: list[str] | None, runs: int, fresh: bool = False,
              env: dict[str, str] | None = None) -> tuple[float, float]:  # fmt: skip
    """Median wall and CPU ms of `argv_for` (`{out}`: a new empty directory), after
    one untimed run."""
    times, cpu = [], []
    for _ in range(runs + 1):
        with tempfile.TemporaryDirectory(prefix="pstkit-startup-") as tmp:
            out = Path(tmp) / "out"
            if not fresh:
                out.mkdir()
            argv = [a.replace("{out}", str(out)) for a in argv_for or []]
            used = _children_cpu()
            start = time.perf_counter()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=env)  # fmt: skip
            times.append((time.perf_counter() - start) * 1000)
            cpu.append((_children_cpu() - used) * 1000)
    return statistics.median(times[1:]), statistics.median(cpu[1:])


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pst", type=Path)
    ap.add_argument("-n", type=int, default=15)
    ap.add_argument("--as-is", action="store_true", help="keep PYTHONDONTWRITEBYTECODE")
    args = ap.parse_args()
    pst = str(args.pst)
    env = dict(os.environ)
    if not args.as_is:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    export = [PSTKIT, "export", "pst:" + pst, "{out}"]
    rows = [("pstkit --version", median_ms([PSTKIT, "--version"], args.n, env=env)),
            ("pstkit export PST STORE", median_ms(export, args.n, fresh=True, env=env))]
    if shutil.which("readpst"):
        rows.append(("readpst -q -o OUT PST",
                     median_ms(["readpst", "-q", "-o", "{out}", pst], args.n)))
    print("bytecode:", "as the environment says" if args.as_is else "yes (.pyc written first)")
    for name, (ms, cpu) in rows:
        print(f"{name:28} {ms:8.1f} ms wall {cpu:8.1f} ms CPU (medians of {args.n})")


if __name__ == "__main__":
    main()
