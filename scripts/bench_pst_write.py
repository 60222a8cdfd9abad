"""Benchmark: write a store of the generated mailbox into a PST vs `cp -r` + `sync`.

    python scripts/bench_pst_write.py --messages 20000 [--also 5000] [--runs 3]
        [--modes auto here child] [--baseline DIR]

Generates the mailbox with ../shared/bench/genmail.py (cached), exports it once into a
store, then times `cp -r MAILDIR DST && sync` and `pstkit --quiet import STORE
pst:OUT.pst` (the writer fsyncs the file before renaming it into place), the tools
alternating run by run so all see the same load. pstkit runs once per mode
(PSTKIT_PST_TRANSLATE: `auto` lets the writer decide, `here` translates MIME -> MAPI in
its own process, `child` in a second one) and once per `--baseline` source tree (e.g. a
`git archive` of main, through PYTHONPATH). Prints the MEDIAN of N runs: wall s, CPU s
(user+sys of the process and its children, wait4), msg/s, MB/s, peak RSS of the process
tree (its own and its children's RSS summed, sampled every 20 ms: wait4 reports only the
largest single process; memory both share, like the writer's ring with its child, counts
twice), peak PSS of the tree (shared pages split between the processes sharing them) and
the throughput ratio to cp. Every run writes into a new
directory, kept until the size is done (ext4 without a journal makes file creation slow
right after mass deletes); `--keep` keeps the last PST for reader benchmarks.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_store
from bench_store import GENMAIL, SETTLE_S, mailbox, stored

Tool = tuple[str, list[str], dict[str, str]]  # label, command (OUT at the end), env


def _tree_memory(pid: int) -> tuple[int, int]:
    """KiB resident in `pid` and its children, now: RSS summed (memory the processes
    share, such as the PST writer's ring with its child, counted in each) and PSS summed
    (shared pages split between them: the tree's real footprint)."""
    rss = pss = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            rss += next((int(line.split()[1]) for line in status.splitlines()
                         if line.startswith("VmRSS:")), 0)
            rollup = Path(f"/proc/{p}/smaps_rollup").read_text()
            pss += next((int(line.split()[1]) for line in rollup.splitlines()
                         if line.startswith("Pss:")), 0)
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return rss, pss


def run(cmd: list[str], env: dict[str, str], cwd: Path
        ) -> tuple[float, float, float, float]:
    """(wall s, CPU s of the process and its children, peak RSS and PSS MiB of the
    tree)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, **env}, cwd=cwd)  # fmt: skip
    peak, done = [0, 0], threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            rss, pss = _tree_memory(proc.pid)
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        err = proc.stderr.read().decode() if proc.stderr else ""
        sys.exit(f"failed: {' '.join(cmd)}\n{err}")
    rss = max(peak[0] / 1024, usage.ru_maxrss / 1024)
    return wall, usage.ru_utime + usage.ru_stime, rss, peak[1] / 1024


def tools(src: Path, store: Path, modes: list[str], baselines: list[Path]) -> list[Tool]:
    pstkit = [sys.executable, "-m", "pstkit", "--quiet", "import", str(store)]
    out: list[Tool] = [("cp -r + sync", ["sh", "-c", f"cp -r '{src}' \"$0\" && sync"], {})]
    for mode in modes:
        env = {} if mode == "auto" else {"PSTKIT_PST_TRANSLATE": mode}
        out.append((f"pstkit {mode}", pstkit, env))
    for base in baselines:
        out.append((f"pstkit {base.name}", pstkit, {"PYTHONPATH": str(bench_store.built(base))}))
    return out


def bench(work: Path, n: int, seed: int, runs: int, modes: list[str], baselines: list[Path],
          keep: bool) -> list[tuple[str, float, float, float, float]]:
    src, count, size = mailbox(work, n, seed)
    store = stored(src)
    todo = tools(src, store, modes, baselines)
    outs = work / f"outs-{n}-{time.strftime('%H%M%S')}"  # new: no deletes just before
    outs.mkdir()
    got: list[list[tuple[float, float, float, float]]] = [[] for _ in todo]
    for i in range(runs):  # cp, pstkit, cp, pstkit...: all see the same load
        for t, (label, cmd, env) in enumerate(todo):
            subprocess.run(["sync"], check=True)  # none pays another's dirty pages
            dest = outs / f"{t}-{i}" if label.startswith("cp") else outs / f"{t}-{i}.pst"
            target = f"pst:{dest}" if label.startswith("pstkit") else str(dest)
            got[t].append(run([*cmd, target], env, work))
    rows = []
    for (label, _c, _e), samples in zip(todo, got, strict=True):
        wall = statistics.median(s[0] for s in samples)
        cpu = statistics.median(s[1] for s in samples)
        rss = max(s[2] for s in samples)
        pss = max(s[3] for s in samples)
        rows.append((label, wall, cpu, rss, pss))
        print(f"{label:<18} {count:>8} {wall:>8.2f} {cpu:>8.2f} {count / wall:>8.0f} "
              f"{size / wall / 1e6:>8.1f} {rss:>13.1f} {pss:>13.1f}", flush=True)
    if keep:
        shutil.copyfile(outs / f"1-{runs - 1}.pst", work / "out-0.pst")
    shutil.rmtree(outs)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--also", type=int, nargs="*", default=[5000])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=1, help="median of N runs per tool")
    ap.add_argument("--modes", nargs="+", default=["auto"], choices=["auto", "here", "child"],
                    help="where MIME -> MAPI runs (PSTKIT_PST_TRANSLATE)")
    ap.add_argument("--baseline", type=Path, action="append", default=[],
                    help="also time pstkit from this source tree (e.g. `git archive` of "
                         "main; repeatable)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/pstkit-bench"))
    ap.add_argument("--keep", action="store_true", help="keep a PST as WORK/out-0.pst")
    ap.add_argument("--genmail", type=Path, default=GENMAIL, help="the generator (worktrees)")
    args = ap.parse_args()
    if not args.genmail.exists():
        sys.exit(f"needs {args.genmail}")
    bench_store.GENMAIL = args.genmail
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"medians of {args.runs} runs, storage: {args.work}, load {os.getloadavg()[0]:.1f}")
    print(f"{'tool':<18} {'messages':>8} {'wall s':>8} {'CPU s':>8} {'msg/s':>8} {'MB/s':>8} "
          f"{'peak RSS MiB':>13} {'peak PSS MiB':>13}")
    for k, n in enumerate([*args.also, args.messages]):
        if k:
            time.sleep(SETTLE_S)  # the last size's outputs were just removed
        rows = bench(args.work, n, args.seed, args.runs, args.modes, args.baseline, args.keep)
        for label, wall, cpu, _rss, _pss in rows[1:]:
            print(f"{'ratio':<18} {'':>8} {rows[0][1] / wall:>8.2f} {cpu / rows[0][2]:>8.1f}"
                  f"  ({label}: cp wall / its wall, >= 0.5 is the goal; its CPU / cp CPU)")


if __name__ == "__main__":
    main()
