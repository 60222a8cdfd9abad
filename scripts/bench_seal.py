"""Benchmark: seal and unseal a store vs `tar | age` of the same store.

    python scripts/bench_seal.py [--messages 5000] [--runs 3] [--work /tmp/pstkit-bench-seal]
                                 [--stages seal,unseal] [--out DIR [--out DIR2]]
                                 [--baseline DIR]

Generates the mailbox with ../shared/bench/genmail.py (cached by size and
seed), exports it into a store once, makes keys, then in the same run, tools
taking turns, medians of --runs rounds (CPU next to wall):

    seal     pstkit seal STORE BUNDLE            vs  tar -cf - STORE | age -r R > F; sync F
                                                 and the same without sync ("no sync")
                                                 and the same | tee F | sha256sum ("+sha256")
    unseal   pstkit unseal BUNDLE DIR            vs  age -d -i ID F | tar -x -C DIR; sync -f DIR
                                                 and the same without sync ("no sync")

The goal's peer is "tar|age": both sides end durable (pstkit fsyncs each
volume and syncs the unsealed tree, the peer runs sync). pstkit also hashes
every ciphertext for the manifest and signs it (the "+sha256" row does the
hashing too), and unseal hashes every file against the index; `tar | age`
does none of that. Unsealed trees go to a fresh directory per round under each
--out (default: the work directory; e.g. also /dev/shm for tmpfs) and are removed
only at the very end, not between tools or rounds (see `commands`); pstkit runs
from bytecode, as installed (see `prepare`).
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
    """(wall seconds, CPU seconds, peak RSS MiB) of a command and its children.
    A first word NAME=VALUE is put into its environment (the baseline's PYTHONPATH)."""
    env = None
    if "=" in cmd[0]:
        name, _, value = cmd[0].partition("=")
        env, cmd = {**os.environ, name: value}, cmd[1:]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
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
    # bytecode, as an installed pstkit has it (pip compiles at install); without this, where
    # PYTHONDONTWRITEBYTECODE is set (as here) every run compiles each changed module again
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "pstkit"),
                    str(REPO / "converters")], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    keys = work / "keys"
    if not (keys / "sign.key").exists():
        subprocess.run([*PSTKIT, "keygen", "--out", str(keys)], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
    size = sum(p.stat().st_size for p in store.rglob("*") if p.is_file() and p.name != "lock")
    return store, keys, size


def commands(
    work: Path, store: Path, keys: Path, i: int, outs: list[Path], base: Path | None = None
) -> dict[str, dict[str, list[str]]]:
    """Round `i`'s commands. Unsealed trees go to new directories each round and
    are removed only at the end: creating files right after removing thousands
    costs ext4 without a journal (as here) seconds of CPU in its inode allocator
    (it skips inodes freed in the last minutes), whichever tool comes next."""
    recipient = (keys / "recipient.txt").read_text().strip()
    tar_age, bundle = work / "peer.tar.age", work / "bundle"
    age_to = f"age -r {recipient}"
    tar_c = f"tar -C '{store}' -cf - ."
    ident = f"{keys}/identity.age"
    unseal: dict[str, list[str]] = {}
    for o in outs:
        tag = "" if o == work else f" {o}"
        out, out_ns = o / f"untarred-{RUN}-{i}", o / f"untarred-nosync-{RUN}-{i}"
        if base is not None:  # the same command from another checkout's code
            unseal[f"base{tag}"] = [f"PYTHONPATH={base}", *PSTKIT, "unseal", str(bundle),
                                    str(o / f"based-{RUN}-{i}"), "--identity", ident]  # fmt: skip
        # the opt-in two-process way (spliced.py), for comparison
        unseal[f"2proc{tag}"] = ["PSTKIT_UNSEAL_FORK=1", *PSTKIT, "unseal", str(bundle),
                                 str(o / f"twoproc-{RUN}-{i}"), "--identity", ident]  # fmt: skip
        unseal |= {
            f"pstkit{tag}": [*PSTKIT, "unseal", str(bundle), str(o / f"unsealed-{RUN}-{i}"),
                             "--identity", ident],
            f"tar|age{tag}": ["sh", "-c", f"mkdir '{out}' && age -d -i '{ident}' '{tar_age}'"
                                          f" | tar -x -C '{out}' && sync -f '{out}'"],
            f"no sync{tag}": ["sh", "-c", f"mkdir '{out_ns}' && age -d -i '{ident}'"
                                          f" '{tar_age}' | tar -x -C '{out_ns}'"],
        }
    return {
        "seal": {
            "pstkit": [*PSTKIT, "seal", str(store), str(bundle), "--recipient", recipient,
                       "--sign-key", str(keys / "sign.key")],
            "tar|age": ["sh", "-c", f"{tar_c} | {age_to} -o '{tar_age}' && sync '{tar_age}'"],
            # the peer without durability, for comparison
            "no sync": ["sh", "-c", f"{tar_c} | {age_to} -o '{work}/peer3.age'"],
            # the same plus the ciphertext's SHA-256 a signed manifest needs
            "+sha256": ["sh", "-c", f"{tar_c} | {age_to} | tee '{work}/peer2.age'"
                                    f" | sha256sum >/dev/null && sync '{work}/peer2.age'"],
        },
        "unseal": unseal,
    }  # fmt: skip


SEAL_OUTPUTS = {"pstkit": "bundle", "tar|age": "peer.tar.age", "no sync": "peer3.age",
                "+sha256": "peer2.age"}  # fmt: skip


def clean(work: Path, names: list[str]) -> None:
    for name in names:
        for path in work.glob(name):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)


RUN = f"{os.getpid()}"  # this run's trees: new names, never a removed one's


def bench(
    work: Path, store: Path, keys: Path, runs: int, stages: list[str], outs: list[Path],
    base: Path | None = None,
) -> dict[str, dict[str, list[tuple[float, float, float]]]]:  # fmt: skip
    """Every round's (wall, CPU, RSS) per stage and tool, tools taking turns."""
    every: dict[str, dict[str, list[tuple[float, float, float]]]] = {s: {} for s in stages}
    try:
        if "seal" not in stages:  # the inputs of unseal, made once
            for tool in ("pstkit", "tar|age"):
                clean(work, [SEAL_OUTPUTS[tool]])
                run(commands(work, store, keys, 0, outs)["seal"][tool])
        for i in range(runs):
            cmds = commands(work, store, keys, i, outs, base)
            for stage in stages:
                tools = list(cmds[stage])
                for tool in tools[i % len(tools) :] + tools[: i % len(tools)]:  # take turns
                    if stage == "seal":
                        clean(work, [SEAL_OUTPUTS[tool]])  # a few large files: no such cost
                    every[stage].setdefault(tool, []).append(run(cmds[stage][tool]))
    finally:
        clean(work, list(SEAL_OUTPUTS.values()))
        for o in outs:
            clean(o, [f"unsealed-{RUN}-*", f"untarred-*{RUN}-*", f"based-{RUN}-*",
                      f"twoproc-{RUN}-*"])  # fmt: skip
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
        for ours in (t for t in med if t.startswith(("pstkit", "base", "2proc"))):
            tag = ours.removeprefix("pstkit").removeprefix("base").removeprefix("2proc")
            for peer in (f"tar|age{tag}", f"no sync{tag}", "+sha256"):
                if peer in med:
                    wall_x = med[peer][0] / med[ours][0]
                    cpu_x = med[peer][1] / med[ours][1]
                    print(
                        f"{stage:<8} {ours} = {wall_x:.2f}x of {peer} by wall median,"
                        f" {cpu_x:.2f}x by CPU median"
                        + (" (goal >= 0.8x)" if peer.startswith("tar|age") else "")
                    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3, help="rounds; medians reported")
    ap.add_argument("--work", type=Path, default=Path("/tmp/pstkit-bench-seal"))
    ap.add_argument("--stages", default="seal,unseal", help="seal, unseal or both")
    ap.add_argument("--out", type=Path, action="append", default=[],
                    help="where unsealed trees go (repeatable; default --work)")
    ap.add_argument("--baseline", type=Path, help="also unseal with the pstkit package in this"
                    " directory (e.g. `git archive main pstkit converters` unpacked), same run")
    args = ap.parse_args()
    if not (shutil.which("age") and shutil.which("tar")):
        sys.exit("needs Debian's age and tar (scripts/setup.sh --dev)")
    args.work.mkdir(parents=True, exist_ok=True)
    store, keys, size = prepare(args.work, args.messages, args.seed)
    load = os.getloadavg()[0]
    outs = args.out or [args.work]
    if args.baseline:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(args.baseline)], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
    every = bench(args.work, store, keys, args.runs, args.stages.split(","), outs, args.baseline)
    print(f"store: {args.messages} messages, {size / 1e6:.0f} MB; median of {args.runs} rounds;"
          f" load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    report(every, size)


if __name__ == "__main__":
    main()
