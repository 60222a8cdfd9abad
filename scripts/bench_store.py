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
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GENMAIL = REPO.parent / "shared" / "bench" / "genmail.py"


def run(cmd: list[str], env: dict[str, str] | None = None,
        cwd: Path | None = None) -> tuple[float, float, float]:  # fmt: skip
    """(wall seconds, CPU seconds, peak RSS MiB) of a command and its children."""
    wall, user, system, rss = run_split(cmd, env, cwd)
    return wall, user + system, rss


def run_split(cmd: list[str], env: dict[str, str] | None = None,
              cwd: Path | None = None) -> tuple[float, float, float, float]:  # fmt: skip
    """(wall s, user CPU s, system CPU s, peak RSS MiB): system time is the kernel's
    share (file creation, syncs), user time pstkit's own Python and hashing."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})}, cwd=cwd)  # fmt: skip
    # cwd: `python -m` puts it first on sys.path, ahead of PYTHONPATH (--baseline)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        err = proc.stderr.read().decode() if proc.stderr else ""
        sys.exit(f"failed: {' '.join(cmd)}\n{err}")
    return wall, usage.ru_utime, usage.ru_stime, usage.ru_maxrss / 1024


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


def stored(src: Path) -> Path:
    """The generated mailbox `src` (mail-N-SEED) exported once into store-N-SEED beside it,
    kept for later runs."""
    store = src.with_name(src.name.replace("mail-", "store-", 1))
    if not (store / "catalog.sqlite").exists():
        shutil.rmtree(store, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "pstkit", "--quiet", "export", str(src),
                        str(store)], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    return store


Row = tuple[str, int, float, float, float, float, float]
# ext4 without a journal (this machine's /tmp) skips, on every file it creates, each
# inode freed in the last 5-10 s (fs/ext4/ialloc.c recently_deleted): a run that follows
# the removal of the last run's 5,000 files pays for that scan. So outputs are kept until
# every run of a size is done, and the next size waits out the window after removing them.
SETTLE_S = 12.0


Tool = tuple[str, Callable[[Path], list[str]], dict[str, str]]


def tools(src: Path, baselines: list[Path]) -> list[Tool]:
    export = lambda d: [sys.executable, "-m", "pstkit", "--quiet", "export", str(src), str(d)]  # noqa: E731
    out: list[Tool] = [
        ("cp -r + sync", lambda d: ["sh", "-c", f"cp -r '{src}' '{d}' && sync"], {}),
        ("pstkit export", export, {}),
    ]
    for base in baselines:  # the same command on another checkout's code (PYTHONPATH)
        out.append((f"pstkit {base.name}", export, {"PYTHONPATH": str(built(base))}))
    return out


def built(base: Path) -> Path:
    """`base` with its optional C twins built in place, as this tree's are (a `git
    archive` has none, and its pure-Python twins would make it look slower than it is)."""
    pst = base / "converters" / "pst"
    if (base / "setup.py").exists() and pst.is_dir() and not any(pst.glob("_pstspeed*.so")):
        with tempfile.TemporaryDirectory() as tmp:  # pip's isolated build, as setup.sh's
            subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp,
                            str(base)], capture_output=True, check=False,
                           env={**os.environ, "PYTHONWARNINGS": "ignore"})  # fmt: skip
            for wheel in Path(tmp).glob("*.whl"):
                with zipfile.ZipFile(wheel) as z:
                    for name in z.namelist():
                        if Path(name).match("pstkit/converters/pst/_pstspeed*.so"):
                            (pst / Path(name).name).write_bytes(z.read(name))
        ok = any(pst.glob("_pstspeed*.so"))
        print(f"{base.name}: C twins {'built' if ok else 'NOT built: its figures are pure Python'}",
              file=sys.stderr)
    return base


def bench(
    work: Path, n: int, seed: int, runs: int, baselines: list[Path], delete_each: bool
) -> list[Row]:
    src, count, size = mailbox(work, n, seed)
    todo = tools(src, baselines)
    got: list[list[tuple[float, float, float]]] = [[] for _ in todo]
    outs = work / "outs"
    shutil.rmtree(outs, ignore_errors=True)
    outs.mkdir()
    time.sleep(SETTLE_S)
    for i in range(runs):  # cp, pstkit, cp, pstkit...: both see the same load
        for t, (_, make, env) in enumerate(todo):
            subprocess.run(["sync"], check=True)  # neither pays the other's dirty pages
            got[t].append(run(make(outs / f"{t}-{i}"), env, work))
            if delete_each:  # tmpfs: no such scan, and no room for every copy
                shutil.rmtree(outs / f"{t}-{i}")
    shutil.rmtree(outs, ignore_errors=True)
    rows = []
    for (label, _, _), samples in zip(todo, got, strict=True):
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
    ap.add_argument("--work", type=Path, default=Path("/tmp/pstkit-bench"),
                    help="mailboxes and outputs: the storage both tools write to")
    ap.add_argument("--baseline", type=Path, action="append", default=[],
                    help="also time pstkit from this source tree (e.g. `git archive` of "
                         "main; repeatable)")
    ap.add_argument("--delete-each", action="store_true",
                    help="remove each output after its run (tmpfs; see SETTLE_S)")
    args = ap.parse_args()
    if not GENMAIL.exists():
        sys.exit(f"needs {GENMAIL}")
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"medians of {args.runs} runs, storage: {args.work}")
    print(f"{'tool':<17} {'messages':>8} {'wall s':>8} {'CPU s':>8} {'msg/s':>8} {'MB/s':>8} "
          f"{'peak RSS MiB':>13}")
    for n in [*args.also, args.messages]:
        rows = bench(args.work, n, args.seed, args.runs, args.baseline, args.delete_each)
        for label, count, wall, cpu, rate, mbs, rss in rows:
            print(f"{label:<17} {count:>8} {wall:>8.2f} {cpu:>8.2f} {rate:>8.0f} {mbs:>8.1f} "
                  f"{rss:>13.1f}")
        for row in rows[1:]:
            ratio, cpu_ratio = row[4] / rows[0][4], row[3] / rows[0][3]
            print(f"{'ratio':<17} {'':>8} {'':>8} {cpu_ratio:>8.2f} {ratio:>8.2f}  "
                  f"({row[0]} / cp: msg/s, >= 0.5 is the goal; CPU s)")


if __name__ == "__main__":
    main()
