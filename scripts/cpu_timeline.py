"""Where a pipeline stalls: run a command and print, every interval, the CPU its own process
and its child processes used (percent of one CPU), from /proc. Linux only.

    python scripts/cpu_timeline.py [--every 0.2] -- pstkit --quiet import STORE pst:OUT.pst

Two processes that both stay near 100 % are CPU-bound together (only less CPU helps);
one near 100 % and one idle is a bottleneck in the first; both well below with idle
cores is a pipeline that waits on itself. The PST writer's translating child is the
usual child (PSTKIT_PST_TRANSLATE=child forces it).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float | None:
    """CPU seconds (user + system) of `pid` so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--every", type=float, default=0.2, help="seconds between samples")
    ap.add_argument("command", nargs="+")
    args = ap.parse_args()
    proc = subprocess.Popen(args.command, stdout=subprocess.DEVNULL)
    start, last = time.monotonic(), {}
    while proc.poll() is None:
        time.sleep(args.every)
        used = {}
        for pid in (proc.pid, *_children(proc.pid)):
            now = _cpu(pid)
            if now is not None:
                used[pid], last[pid] = now - last.get(pid, 0.0), now
        own = used.pop(proc.pid, 0.0) / args.every * 100
        kids = sum(used.values()) / args.every * 100
        print(f"{time.monotonic() - start:6.1f} s  process {own:4.0f} %  children {kids:4.0f} %"
              f"  {'#' * round(own / 5)}|{'*' * round(kids / 5)}")
    print(f"CPU s: process {last.get(proc.pid, 0.0):.2f}, children "
          f"{sum(v for p, v in last.items() if p != proc.pid):.2f}")


if __name__ == "__main__":
    main()
