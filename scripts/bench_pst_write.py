"""Benchmark: write a store of the generated mailbox into a PST vs `cp -r` + `sync`.

    python scripts/bench_pst_write.py --messages 20000 [--also 5000] [--runs 1]

Generates the mailbox with ../shared/bench/genmail.py (cached), exports it once into a
store, then in the same run times `cp -r MAILDIR DST && sync` and `pstkit --quiet import
STORE pst:OUT.pst` (the writer fsyncs the file before renaming it into place). Prints wall
time, msg/s, MB/s, peak RSS (wait4) and the pstkit/cp throughput ratio; keeps the last PST
(`--keep`) for reader benchmarks (`bench_pst.py`).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_store
from bench_store import GENMAIL, mailbox, run, stored


def bench(
    work: Path, n: int, seed: int, runs: int, keep: bool
) -> list[tuple[str, float, float, float]]:
    src, count, size = mailbox(work, n, seed)
    store = stored(src)
    rows = []
    for label in ("cp -r + sync", "pstkit import pst:"):
        best = (float("inf"), 0.0, 0.0)  # wall s, CPU s, peak RSS MiB
        for i in range(runs):
            dest = work / f"out-{i}.pst" if label.startswith("pstkit") else work / f"cp-{i}"
            shutil.rmtree(dest, ignore_errors=True)
            dest.unlink(missing_ok=True)
            cmd = ([sys.executable, "-m", "pstkit", "--quiet", "import", str(store), f"pst:{dest}"]
                   if label.startswith("pstkit") else
                   ["sh", "-c", f"cp -r '{src}' '{dest}' && sync"])
            best = min(best, run(cmd))
            if dest.is_dir():
                shutil.rmtree(dest)
            elif not keep:
                dest.unlink(missing_ok=True)
        rows.append((label, *best))
        print(f"{label:<18} {count:>8} {best[0]:>8.2f} {count / best[0]:>8.0f} "
              f"{size / best[0] / 1e6:>8.1f} {best[1]:>8.2f} {best[2]:>13.1f}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--also", type=int, nargs="*", default=[5000])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=1, help="best of N per tool")
    ap.add_argument("--work", type=Path, default=Path("/tmp/pstkit-bench"))
    ap.add_argument("--keep", action="store_true", help="keep out-0.pst")
    ap.add_argument("--genmail", type=Path, default=GENMAIL, help="the generator (worktrees)")
    args = ap.parse_args()
    if not args.genmail.exists():
        sys.exit(f"needs {args.genmail}")
    bench_store.GENMAIL = args.genmail
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"{'tool':<18} {'messages':>8} {'wall s':>8} {'msg/s':>8} {'MB/s':>8} "
          f"{'CPU s':>8} {'peak RSS MiB':>13}")
    for n in [*args.also, args.messages]:
        rows = bench(args.work, n, args.seed, args.runs, args.keep)
        print(f"{'ratio':<18} {'':>8} {'':>8} {rows[0][1] / rows[1][1]:>8.2f}  "
              "(pstkit msg/s / cp msg/s)")


if __name__ == "__main__":
    main()
