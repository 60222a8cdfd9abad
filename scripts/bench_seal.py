"""Benchmark: seal and unseal a store vs `tar | age` of the same store.

    python scripts/bench_seal.py [--messages 5000] [--runs 3] [--work /tmp/pstkit-bench-seal]

Generates the mailbox with ../shared/bench/genmail.py (cached by size and
seed), exports it into a store once, makes keys, then in the same run, tools
taking turns, medians of --runs rounds (CPU next to wall):

    seal     pstkit seal STORE BUNDLE            vs  tar -cf - STORE | age -r R > F; sync F
                                                 and the same | tee F | sha256sum
    unseal   pstkit unseal BUNDLE DIR            vs  age -d -i ID F | tar -x -C DIR; sync -f DIR

Both sides end durable (pstkit fsyncs each volume and syncs the unsealed
tree). pstkit also hashes every ciphertext for the manifest and signs it
(the "+sha256" row does the hashing too), and unseal hashes every file
against the index; `tar | age` does none of that.
Prints wall and CPU seconds (user+sys of the process tree, from wait4),
MB/s of store bytes, peak RSS, and pstkit's throughput as a share of the peer's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# ../shared beside the checkout (or beside the worktrees' folder, for a git worktree)
GENMAIL = next(
    (
        p / "shared" / "bench" / "genmail.py"
        for p in REPO.parents
        if (p / "shared" / "bench" / "genmail.py").exists()
    ),
    Path("genmail.py"),
)
PSTKIT = [sys.executable, "-m", "pstkit", "--quiet"]


def run(cmd: list[str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS MiB) of a command and its children."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        sys.exit(f"failed: {' '.join(cmd)}\n{err}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def prepare(work: Path, n: int, seed: int) -> tuple[Path, Path, int]:
    """(store, keys directory, store bytes), made once and cached."""
    src = work / f"mail-{n}-{seed}"
    manifest = work / f"mail-{n}-{seed}.manifest.json"
    if not manifest.exists():
        subprocess.run([sys.executable, str(GENMAIL), "-n", str(n), "-s", str(seed),
                        "--out", str(src), "--manifest", str(manifest), "--force"],
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    store = work / f"store-{n}-{seed}"
    if not (store / "pstkit-store.json").exists():
        shutil.rmtree(store, ignore_errors=True)
        subprocess.run([*PSTKIT, "export", str(src), str(store)], check=True)
    keys = work / "keys"
    if not (keys / "sign.key").exists():
        subprocess.run([*PSTKIT, "keygen", "--out", str(keys)], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
    size = sum(p.stat().st_size for p in store.rglob("*") if p.is_file() and p.name != "lock")
    return store, keys, size


def commands(work: Path, store: Path, keys: Path) -> dict[str, dict[str, list[str]]]:
    recipient = (keys / "recipient.txt").read_text().strip()
    tar_age = work / "peer.tar.age"
    bundle = work / "bundle"
    out = work / "untarred"
    return {
        "seal": {
            "pstkit": [*PSTKIT, "seal", str(store), str(bundle), "--recipient", recipient,
                       "--sign-key", str(keys / "sign.key")],
            "tar|age": ["sh", "-c", f"tar -C '{store}' -cf - . | age -r {recipient}"
                                    f" -o '{tar_age}' && sync '{tar_age}'"],
            # the same plus the ciphertext's SHA-256 a signed manifest needs
            "+sha256": ["sh", "-c", f"tar -C '{store}' -cf - . | age -r {recipient}"
                                    f" | tee '{work}/peer2.age' | sha256sum >/dev/null"
                                    f" && sync '{work}/peer2.age'"],
        },
        "unseal": {
            "pstkit": [*PSTKIT, "unseal", str(bundle), str(work / "unsealed"), "--identity",
                       str(keys / "identity.age")],
            "tar|age": ["sh", "-c", f"mkdir -p '{out}' && age -d -i '{keys}/identity.age'"
                                    f" '{tar_age}' | tar -x -C '{out}' && sync -f '{out}'"],
        },
    }  # fmt: skip


def clean(work: Path, stage: str, tool: str) -> None:
    """Remove what this stage's tool writes (a seal's output stays for the unseal)."""
    names = {("seal", "pstkit"): "bundle", ("seal", "tar|age"): "peer.tar.age",
             ("seal", "+sha256"): "peer2.age",
             ("unseal", "pstkit"): "unsealed", ("unseal", "tar|age"): "untarred"}  # fmt: skip
    path = work / names[stage, tool]
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def bench(
    work: Path, store: Path, keys: Path, runs: int
) -> dict[str, dict[str, list[tuple[float, float, float]]]]:
    """Every round's (wall, CPU, RSS) per stage and tool, tools taking turns."""
    cmds = commands(work, store, keys)
    every: dict[str, dict[str, list[tuple[float, float, float]]]] = {s: {} for s in cmds}
    for i in range(runs):
        for stage in ("seal", "unseal"):
            tools = list(cmds[stage])
            for tool in tools[i % len(tools) :] + tools[: i % len(tools)]:  # take turns
                clean(work, stage, tool)
                every[stage].setdefault(tool, []).append(run(cmds[stage][tool]))
    for stage, tools in cmds.items():
        for tool in tools:
            clean(work, stage, tool)
    return every


def report(every: dict[str, dict[str, list[tuple[float, float, float]]]], size: int) -> None:
    """Medians of wall and CPU (CPU is the less noisy on a shared machine), and
    each round's pstkit/peer pair, so the noise is visible."""
    print(f"{'stage':<8} {'tool':<8} {'wall s':>7} {'CPU s':>7} {'MB/s':>7} {'RSS MiB':>8}  rounds")
    for stage, rows in every.items():
        med = {t: [statistics.median(col) for col in zip(*r, strict=True)] for t, r in rows.items()}
        for tool, (wall, cpu, rss) in med.items():
            rounds = " ".join(f"{w:.2f}/{c:.2f}" for w, c, _ in rows[tool])
            print(f"{stage:<8} {tool:<8} {wall:7.2f} {cpu:7.2f} {size / wall / 1e6:7.0f}"
                  f" {rss:8.0f}  {rounds}")  # fmt: skip
        for peer in ("tar|age", "+sha256"):
            if peer in med:
                wall_x = med[peer][0] / med["pstkit"][0]
                cpu_x = med[peer][1] / med["pstkit"][1]
                print(
                    f"{stage:<8} pstkit = {wall_x:.2f}x of {peer} by wall median,"
                    f" {cpu_x:.2f}x by CPU median"
                    + (" (goal >= 0.8x)" if peer == "tar|age" else "")
                )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3, help="rounds; medians reported")
    ap.add_argument("--work", type=Path, default=Path("/tmp/pstkit-bench-seal"))
    args = ap.parse_args()
    if not (shutil.which("age") and shutil.which("tar")):
        sys.exit("needs Debian's age and tar (scripts/setup.sh --dev)")
    args.work.mkdir(parents=True, exist_ok=True)
    store, keys, size = prepare(args.work, args.messages, args.seed)
    every = bench(args.work, store, keys, args.runs)
    print(f"store: {args.messages} messages, {size / 1e6:.0f} MB; median of {args.runs} rounds;"
          f" load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    report(every, size)


if __name__ == "__main__":
    main()
