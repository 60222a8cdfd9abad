"""Benchmark: does pstkit stay flat from 10,000 to 100,000 messages?

    python scripts/bench_scale.py [--sizes 10000 50000 100000] [--work /tmp/pstkit-scale]

For each size, a seeded Maildir of small messages (~2 KB, 10 folders) is made once (cached),
then, one after the other, each step runs as its own process: `export` (Maildir -> store),
`check --read-data`, `ls`, `plan` and `import` into a Maildir target, and `verify`. `cp -r`
of the same Maildir runs beside export and import as the I/O floor. Per step it prints wall
and CPU (user, sys) seconds, microseconds per message and peak RSS (wait4), and last a table of
each step's wall and CPU time per message and peak RSS at the largest size divided by the
smallest: the goal is within 0.8-1.2. Wall figures vary with the machine's load and its page
cache (see the cp -r floor); CPU time per message shows pstkit's own growth. Compare ratios
from one run.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_store import run_split

FOLDERS = ["", ".Sent", ".Archive", ".Archive.2023", ".Projects", ".Projects.Alpha",
           ".Lists", ".Lists.python", ".Drafts", ".Trash"]  # fmt: skip
WORDS = " ".join([
    "mail store folder message migrate server import export check",
    "verify plan report archive project meeting budget review draft",
    "thanks please",
]).split()


def make_maildir(root: Path, n: int, seed: int) -> None:
    """n messages of ~2 KB over FOLDERS, deterministic for (n, seed)."""
    rng = random.Random(seed)
    for f in FOLDERS:
        for sub in ("cur", "new", "tmp"):
            (root / f / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        folder = FOLDERS[rng.randrange(len(FOLDERS))]
        body = "\r\n".join(" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(24))
        raw = (f"From: Sender {i % 97} <s{i % 97}@example.com>\r\n"
               f"To: rcpt@example.com\r\nSubject: message {i} {rng.choice(WORDS)}\r\n"
               f"Date: Mon, 04 Mar 2024 09:{i % 60:02d}:00 +0000\r\n"
               f"Message-ID: <{seed}.{i}@scale.example>\r\n\r\n{body}\r\n").encode()
        flags = "S" if rng.random() < 0.7 else ""
        (root / folder / "cur" / f"{1700000000 + i}.M{i}P{seed}.scale:2,{flags}").write_bytes(raw)


def steps(src: Path, work: Path) -> list[tuple[str, list[str]]]:
    store, out, floor = work / "store", work / "out", work / "cp"
    pstkit = [sys.executable, "-m", "pstkit", "--quiet"]
    return [
        ("cp -r (floor)", ["cp", "-r", str(src), str(floor)]),
        ("export", [*pstkit, "export", f"maildir:{src}", str(store)]),
        ("check --read-data", [*pstkit, "check", "--read-data", str(store)]),
        ("ls", [*pstkit, "ls", str(store)]),
        ("plan", [*pstkit, "plan", str(store), f"maildir:{out}"]),
        ("import", [*pstkit, "import", str(store), f"maildir:{out}"]),
        ("verify", [*pstkit, "verify", str(store), f"maildir:{out}"]),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--work", type=Path, default=Path("/tmp/pstkit-scale"))
    args = ap.parse_args()
    results: dict[int, dict[str, tuple[float, float, float, float]]] = {}
    print(f"{'messages':>8} {'step':<18} {'wall s':>8} {'user s':>8} {'sys s':>8}"
          f" {'us/msg':>8} {'RSS MiB':>8}")  # fmt: skip
    # Outputs of every size are kept until the end, in directories new to this run: on
    # ext4 without a journal, creating files right after mass deletes is slower (freed
    # inodes are scanned), which made the larger sizes look worse than they are.
    stamp = time.strftime("%H%M%S")
    runs = []
    try:
        for n in args.sizes:
            src = args.work / f"maildir-{n}-{args.seed}"
            if not (src / "cur").is_dir():
                shutil.rmtree(src, ignore_errors=True)
                make_maildir(src, n, args.seed)
            runs.append(args.work / f"run-{n}-{stamp}")
            runs[-1].mkdir(parents=True)
            results[n] = {}
            for label, cmd in steps(src, runs[-1]):
                wall, user, system, rss = results[n][label] = run_split(cmd)
                print(f"{n:>8} {label:<18} {wall:>8.2f} {user:>8.2f} {system:>8.2f}"
                      f" {wall / n * 1e6:>8.0f} {rss:>8.1f}", flush=True)  # fmt: skip
    finally:
        for d in runs:
            shutil.rmtree(d, ignore_errors=True)
    flatness(results, min(args.sizes), max(args.sizes))


def flatness(results: dict[int, dict[str, tuple[float, float, float, float]]],
             small: int, large: int) -> None:  # fmt: skip
    if small == large:
        return
    print(f"\nflatness, {large} vs {small} messages (goal 0.8-1.2):")
    print(f"{'step':<18} {'time/msg':>9} {'CPU/msg':>9} {'user/msg':>9} {'sys/msg':>9}"
          f" {'peak RSS':>9}")  # fmt: skip
    for label in results[small]:
        (w0, u0, s0, r0), (w1, u1, s1, r1) = results[small][label], results[large][label]

        def per(a: float, b: float) -> float:
            return (b / large) / (a / small) if a else float("nan")

        print(f"{label:<18} {per(w0, w1):>9.2f} {per(u0 + s0, u1 + s1):>9.2f}"
              f" {per(u0, u1):>9.2f} {per(s0, s1):>9.2f} {r1 / r0:>9.2f}")


if __name__ == "__main__":
    main()
