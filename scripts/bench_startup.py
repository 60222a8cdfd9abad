"""Benchmark: start-up of `pstkit --version`, `pstkit --help` and `pstkit export` of a small
PST into a new store, next to `readpst` on the same file (issue 19 goals: --version <= 60 ms,
the 1-item export <= 150 ms). For each: the median wall time and the median CPU time (user +
system of the child, which a loaded machine inflates less) of N runs, and the ratio to readpst.

    nice -n 10 python scripts/bench_startup.py FILE.pst [-n 15]

Each run is a fresh process (and for export a fresh store), as a user would start it. The
commands take turns within each round (pstkit, readpst, pstkit, ...), so a change in the
machine's load hits every row alike. Set PYTHONPATH to another checkout to measure that code
with the same interpreter.

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
from dataclasses import dataclass, field
from pathlib import Path

PSTKIT = str(Path(sys.executable).with_name("pstkit"))


@dataclass
class Row:
    name: str
    argv: list[str]  # `{out}`: a path in a new empty directory
    env: dict[str, str] | None
    mkdir: bool = False  # create {out} first (readpst writes into an existing directory)
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def once(self, keep: bool) -> None:
        with tempfile.TemporaryDirectory(prefix="pstkit-startup-") as tmp:
            out = Path(tmp) / "out"
            if self.mkdir:
                out.mkdir()
            argv = [a.replace("{out}", str(out)) for a in self.argv]
            used = _children_cpu()
            start = time.perf_counter()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env=self.env)  # fmt: skip
            wall = (time.perf_counter() - start) * 1000
            cpu = (_children_cpu() - used) * 1000
        if keep:
            self.wall.append(wall)
            self.cpu.append(cpu)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def rows_for(pst: str, env: dict[str, str]) -> list[Row]:
    rows = [Row("pstkit --version", [PSTKIT, "--version"], env),
            Row("pstkit --help", [PSTKIT, "--help"], env),
            Row("pstkit export PST NEWSTORE", [PSTKIT, "export", "pst:" + pst, "{out}"], env)]
    if shutil.which("readpst"):
        rows.append(Row("readpst -q -o OUT PST", ["readpst", "-q", "-o", "{out}", pst], None,
                        mkdir=True))  # fmt: skip
    return rows


def report(rows: list[Row], runs: int) -> None:
    peer = next((r for r in rows if r.name.startswith("readpst")), None)
    peer_wall = statistics.median(peer.wall) if peer else 0.0
    peer_cpu = statistics.median(peer.cpu) if peer else 0.0
    print(f"{'':28} {'wall ms':>9} {'CPU ms':>9} {'x readpst wall':>15} {'x CPU':>7}"
          f"   (medians of {runs}; CPU = user + sys)")  # fmt: skip
    for r in rows:
        wall, cpu = statistics.median(r.wall), statistics.median(r.cpu)
        ratio = (f"{wall / peer_wall:15.1f} {cpu / peer_cpu:7.1f}"
                 if peer and r is not peer and peer_wall and peer_cpu else "")  # fmt: skip
        spread = (f"  wall {min(r.wall):.0f}-{max(r.wall):.0f},"
                  f" CPU {min(r.cpu):.0f}-{max(r.cpu):.0f}")  # fmt: skip
        print(f"{r.name:28} {wall:9.1f} {cpu:9.1f} {ratio:23}{spread}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pst", type=Path)
    ap.add_argument("-n", type=int, default=15)
    ap.add_argument("--as-is", action="store_true", help="keep PYTHONDONTWRITEBYTECODE")
    args = ap.parse_args()
    env = dict(os.environ)
    if not args.as_is:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    rows = rows_for(str(args.pst), env)
    for round_ in range(args.n + 1):  # round 0 writes the bytecode and warms the caches
        for r in rows:
            r.once(keep=round_ > 0)
    print("bytecode:", "as the environment says" if args.as_is else "yes (.pyc written first)")
    print(f"load average: {os.getloadavg()[0]:.1f} (2 cores here: wall time shows it)")
    report(rows, args.n)


if __name__ == "__main__":
    main()
