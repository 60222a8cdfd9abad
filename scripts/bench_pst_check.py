"""Peak RSS and time of the PST checker (`pstkit check pst:`) on PSTs of different sizes:
its memory should stay flat as the file grows (blocks, nodes and reference counts live in
a temporary SQLite database, the AMaps are compared a page at a time).

    nice -n 10 .venv/bin/python scripts/bench_pst_check.py STORE_SMALL STORE_BIG [--out DIR]
    nice -n 10 .venv/bin/python scripts/bench_pst_check.py --pst A.pst B.pst

A STORE is first written as a PST with `pstkit --quiet import STORE pst:DIR/NAME.pst` (a
store of genmail's mail: /work/shared/bench/genmail.py, then `pstkit export`). Each check
runs in a child process; its peak RSS is the child's ru_maxrss (os.wait4).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import sys
from pathlib import Path
from pstkit.converters.pst.write.check import check_path
r = check_path(Path(sys.argv[1]))
print(len(r.findings), r.nodes, r.blocks, r.folders, r.items)
"""


def write_pst(store: Path, out: Path) -> Path:
    pst = out / f"{store.name}.pst"
    if not pst.exists():
        cmd = [sys.executable, "-m", "pstkit", "--quiet", "import", str(store), f"pst:{pst}"]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode:
            raise SystemExit(f"writing {pst} failed: {done.stderr.strip()}")
    return pst


def measure(pst: Path) -> tuple[str, float, int]:
    """(the checker's counts, wall seconds, peak RSS in KiB) of one child process."""
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(pst)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    counts = proc.stdout.read().strip()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"checker failed on {pst}: exit {proc.returncode}")
    return counts, time.monotonic() - started, usage.ru_maxrss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+", type=Path, help="stores (or PSTs with --pst)")
    ap.add_argument("--pst", action="store_true", help="the paths are PST files already")
    ap.add_argument("--out", type=Path, help="where the PSTs are written (kept)")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-pst-check-"))
    out.mkdir(parents=True, exist_ok=True)
    print("file                          bytes  findings nodes blocks folders items"
          "   seconds  peak RSS")
    for path in args.paths:
        pst = path if args.pst else write_pst(path, out)
        counts, seconds, rss = measure(pst)
        print(f"{pst.name:<22} {pst.stat().st_size:>13,}  {counts:<32} {seconds:8.1f}"
              f"  {rss / 1024:6.1f} MiB")


if __name__ == "__main__":
    main()
