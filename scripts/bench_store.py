"""Benchmark: export a generated Maildir into a store vs `cp -r` + `sync`.

    python scripts/bench_store.py --messages 20000 [--also 5000] [--runs 2]

Generates the mailbox with ../shared/bench/genmail.py (cached by size and
seed), then in the same run times `sh -c 'cp -r SRC DST && sync'` and
`python -m pstkit --quiet export SRC STORE` (durability on: every batch is
synced before its catalog rows commit), alternating the two tools run by run
so both see the same load on the same storage (`--work`). Prints the MEDIAN
of N runs of wall seconds and CPU seconds (user+sys of the process and its
children, from wait4), msg/s, MB/s and peak RSS side by side, and the
pstkit/cp ratios of throughput (wall) and of CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GENMAIL = REPO.parent / "shared" / "bench" / "genmail.py"


def run(cmd: list[str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS MiB) of a command and its children."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        err = proc.stderr.read().decode() if proc.stderr else ""
        sys.exit(f"failed: {' '.join(cmd)}\n{err}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def mailbox(work: Path, n: int, seed: int) -> tuple[Path, int, int]:
    src = work / f"mail-{n}-{seed}"
    manifest = work / f"mail-{n}-{seed}.manifest.json"
    if not manifest.exists():
        subprocess.run([sys.executable, str(GENMAIL), "-n", str(n), "-s", str(seed),
                        "--out", str(src), "--manifest", str(manifest), "--force"],
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    size = sum(p.stat().st_size for p in src.rglob("*") if p.is_file())
    count = int(json.loads(manifest.read_text())["messages"])
    return src, count, size


Row = tuple[str, int, float, float, float, float, float]
TOOLS = ("cp -r + sync", "pstkit export")


def commands(src: Path, dest: Path) -> list[list[str]]:
    return [
        ["sh", "-c", f"cp -r '{src}' '{dest}' && sync"],
        [sys.executable, "-m", "pstkit", "--quiet", "export", str(src), str(dest)],
    ]


def bench(work: Path, n: int, seed: int, runs: int) -> list[Row]:
    src, count, size = mailbox(work, n, seed)
    got: list[list[tuple[float, float, float]]] = [[] for _ in TOOLS]
    for _ in range(runs):  # cp, pstkit, cp, pstkit...: both see the same load
        for t, cmd in enumerate(commands(src, work / "out")):
            shutil.rmtree(work / "out", ignore_errors=True)
            subprocess.run(["sync"], check=True)  # neither pays the other's dirty pages
            got[t].append(run(cmd))
            shutil.rmtree(work / "out", ignore_errors=True)
    rows = []
    for label, samples in zip(TOOLS, got, strict=True):
        wall = statistics.median(s[0] for s in samples)
        cpu = statistics.median(s[1] for s in samples)
        rss = max(s[2] for s in samples)
        rows.append((label, count, wall, cpu, count / wall, size / wall / 1e6, rss))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--also", type=int, nargs="*", default=[5000],
                    help="more sizes, for RSS vs size")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3, help="median of N runs per tool")
    ap.add_argument("--work", type=Path, default=Path("/tmp/pstkit-bench"))
    args = ap.parse_args()
    if not GENMAIL.exists():
        sys.exit(f"needs {GENMAIL}")
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"medians of {args.runs} runs, storage: {args.work}")
    print(f"{'tool':<15} {'messages':>8} {'wall s':>8} {'CPU s':>8} {'msg/s':>8} {'MB/s':>8} "
          f"{'peak RSS MiB':>13}")
    for n in [*args.also, args.messages]:
        rows = bench(args.work, n, args.seed, args.runs)
        for label, count, wall, cpu, rate, mbs, rss in rows:
            print(f"{label:<15} {count:>8} {wall:>8.2f} {cpu:>8.2f} {rate:>8.0f} {mbs:>8.1f} "
                  f"{rss:>13.1f}")
        ratio, cpu_ratio = rows[1][4] / rows[0][4], rows[1][3] / rows[0][3]
        print(f"{'ratio':<15} {'':>8} {'':>8} {cpu_ratio:>8.2f} {ratio:>8.2f}  "
              "(msg/s: pstkit / cp, >= 0.5 is the goal; CPU s: pstkit / cp)")


if __name__ == "__main__":
    main()
