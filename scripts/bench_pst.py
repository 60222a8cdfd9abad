#!/usr/bin/env python3
"""Benchmark: pstkit PST -> MIME vs `readpst -j 0 -D -M` over the whole PST corpus.

Each tool runs in its own worker process, which repeats the whole corpus until
at least --seconds of work are done (same number of passes for both tools), so
each tool's peak RSS is measured apart (pstkit: the worker itself; readpst: the
largest readpst process, from the worker's getrusage(RUSAGE_CHILDREN)).
pstkit is also run for 1 pass and for N passes separately: if peak RSS does
not grow with the passes, memory is flat in the number of items. The "pypff"
row reads every property of every item with libpff and builds nothing: the
floor for a reader built on pypff's objects (pstkit reads through its own node
reader, pypff being its fallback). "pstkit-py" is pstkit with its optional C
twins turned off (PSTKIT_PURE_PYTHON=1): what runs where no C compiler was found.
("items" counts messages for pstkit/pypff, output files for readpst.) The
machine may be shared: tools take turns for --rounds rounds and each row shows
its best round.

What is timed: for pstkit, everything its worker does, its imports included
(from byte-compiled modules, as pip installs them); for readpst, its runs, one
process per file as readpst works, without the harness around them.

    python scripts/bench_pst.py [--corpus ../shared/corpus/pst] [--seconds 3] [--rounds 3]
    python scripts/bench_pst.py --large 20000 [--rounds 1]

`--large N` reads one big PST instead of the corpus (whose files are all under 4 MB):
the generated mailbox of N messages (../shared/bench/genmail.py; 20,000 make ~2 GB),
exported to a store and written to a PST by pstkit itself, all cached under
/tmp/pstkit-bench/large-N. CPU seconds (user+sys) are printed beside wall time.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CORRUPT = {"aspose_AddingBulkMessagesWithImprovedPerformance.pst"}


def corpus_files(root: Path) -> list[Path]:
    return sorted(
        p for p in root.iterdir() if p.suffix in (".pst", ".ost") and p.name not in CORRUPT
    )


def pstkit_pass(files: list[Path]) -> tuple[int, int]:
    # Imported here so the readpst worker does not load pypff into its own memory.
    sys.path.insert(0, str(REPO))
    from pstkit.converters.pst.source import PstSource  # noqa: PLC0415
    from pstkit.location import Location  # noqa: PLC0415
    from pstkit.model import Fetched  # noqa: PLC0415
    from pstkit.options import ConnectOptions, FetchFilter  # noqa: PLC0415

    items = size = 0
    for path in files:
        src = PstSource(Location("pst", str(path)), ConnectOptions())
        for folder in src.folders():
            for r in src.fetch(folder, None, FetchFilter(), set()):
                if isinstance(r, Fetched):
                    items += 1
                    size += len(r.raw)
        src.close()
    return items, size


def pypff_pass(files: list[Path]) -> tuple[int, int]:
    """Only what libpff itself does for pstkit: every property of every item read, no MIME."""
    import pypff  # noqa: PLC0415 - see pstkit_pass

    def props(obj: Any) -> int:
        return sum(len(e.data or b"") for rs in obj.record_sets for e in rs.entries)

    def walk(folder: Any) -> tuple[int, int]:
        items, size = 0, props(folder)
        for i in range(folder.number_of_sub_messages):
            msg = folder.get_sub_message(i)
            items, size = items + 1, size + props(msg)
            for j in range(getattr(msg, "number_of_attachments", 0)):
                att = msg.get_attachment(j)
                size += props(att) + len(att.read_buffer(att.size) if att.size else b"")
            recipients = getattr(msg, "recipients", None)
            size += props(recipients) if recipients is not None else 0
        for i in range(folder.number_of_sub_folders):
            n, s = walk(folder.get_sub_folder(i))
            items, size = items + n, size + s
        return items, size

    items = size = 0
    for path in files:
        f = pypff.file()
        f.open(str(path))
        n, s = walk(f.root_folder)
        items, size = items + n, size + s
        f.close()
    return items, size


#: readpst's own time: only its runs are timed, not the harness around them (making and
#: removing its output folders, counting its files: about 10% of a pass)
READPST_SECONDS = [0.0]


def readpst_pass(files: list[Path]) -> tuple[int, int]:
    items = size = 0
    for path in files:
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            subprocess.run(["readpst", "-q", "-j", "0", "-D", "-M", "-o", out, str(path)],
                           check=False, capture_output=True)
            READPST_SECONDS[0] += time.perf_counter() - start
            for f in Path(out).rglob("*"):
                if f.is_file():
                    items += 1
                    size += f.stat().st_size
    return items, size


def worker(tool: str, passes: int, root: Path) -> None:
    files = corpus_files(root)
    run = {"pstkit": pstkit_pass, "pstkit-py": pstkit_pass, "pypff": pypff_pass,
           "readpst": readpst_pass}[tool]
    start = time.perf_counter()
    items = size = 0
    for _ in range(passes):
        n, s = run(files)
        items, size = items + n, size + s
    wall = READPST_SECONDS[0] if tool == "readpst" else time.perf_counter() - start
    # pstkit: this process; readpst: the largest of the readpst processes it ran (KiB).
    who = resource.RUSAGE_CHILDREN if tool == "readpst" else resource.RUSAGE_SELF
    usage = resource.getrusage(who)
    rss, cpu = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
    print(json.dumps({"wall": wall, "cpu": cpu, "items": items, "bytes": size,
                      "rss_mib": rss}))


def measure(tool: str, passes: int, root: Path) -> dict[str, float]:
    """Run one worker process and return what it measured."""
    cmd = [sys.executable, __file__, "--worker", tool, "--passes", str(passes),
           "--corpus", str(root)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if tool == "pstkit-py":
        env["PSTKIT_PURE_PYTHON"] = "1"
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    result: dict[str, float] = json.loads(out.stdout)
    return result


def large_pst(n: int) -> Path:
    """A folder holding one PST of n generated messages, written by pstkit (cached)."""
    work = Path("/tmp/pstkit-bench") / f"large-{n}"
    pst = work / "pst" / "large.pst"
    if pst.exists():
        return pst.parent
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_store import mailbox  # noqa: PLC0415 - only for --large

    src, _count, _size = mailbox(work, n, 1)
    store = work / "store"
    shutil.rmtree(store, ignore_errors=True)
    shutil.rmtree(pst.parent, ignore_errors=True)
    pst.parent.mkdir(parents=True)
    for cmd in (["export", str(src), str(store)], ["import", str(store), f"pst:{pst}"]):
        subprocess.run([sys.executable, "-m", "pstkit", "--quiet", *cmd], check=True,
                       stdout=subprocess.DEVNULL, cwd=REPO)
    return pst.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus" / "pst")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--worker", choices=("pstkit", "pstkit-py", "pypff", "readpst"))
    ap.add_argument("--passes", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; best is shown")
    ap.add_argument("--large", type=int, metavar="N", help="one PST of N generated messages")
    args = ap.parse_args()
    if args.large:
        args.corpus, args.seconds = large_pst(args.large), 0.0
    if args.worker:
        worker(args.worker, args.passes, args.corpus)
        return 0
    if shutil.which("readpst") is None:
        print("readpst not found (apt-get install pst-utils)", file=sys.stderr)
        return 2
    # As installed by pip (which byte-compiles): with PYTHONDONTWRITEBYTECODE set, as on
    # some build machines, pstkit would otherwise compile its sources on every start.
    compileall.compile_dir(REPO / "converters", quiet=1)
    compileall.compile_dir(REPO / "pstkit", quiet=1)
    one = measure("pstkit", 1, args.corpus)
    passes = max(1, int(args.seconds / max(one["wall"], 1e-3)) + 1)
    runs = [("pstkit", 1), ("pstkit", passes), ("pstkit-py", passes), ("pypff", passes),
            ("readpst", passes)]
    # The machine may be shared: tools take turns, round after round, and each row shows
    # its best round, so that a burst of load elsewhere does not land on one tool only.
    best: dict[tuple[str, int], dict[str, float]] = {}
    for _ in range(args.rounds):
        for tool, n in runs:
            r = measure(tool, n, args.corpus)
            if (tool, n) not in best or r["wall"] < best[(tool, n)]["wall"]:
                best[(tool, n)] = r
    files = len(corpus_files(args.corpus))
    print(f"corpus: {files} PST/OST files in {args.corpus}; readpst -j 0 -D -M; "
          f"best of {args.rounds} interleaved rounds")
    sys.path.insert(0, str(REPO))
    from pstkit.converters.pst import speedups  # noqa: PLC0415 - after the workers: not in their memory

    print(f"C twins (converters/pst/_pstspeed.c): {'built' if speedups.C else 'NOT built'}")
    print(f"{'tool':9} {'passes':>6} {'items':>7} {'MiB out':>8} {'wall s':>8} {'CPU s':>7} "
          f"{'ms/pass':>8} {'items/s':>8} {'peak RSS MiB':>12}")
    for tool, n in runs:
        r = best[(tool, n)]
        print(f"{tool:9} {n:6d} {int(r['items']):7d} {r['bytes'] / 2**20:8.1f} {r['wall']:8.2f} "
              f"{r['cpu']:7.2f} {1000 * r['wall'] / n:8.1f} {r['items'] / r['wall']:8.0f} "
              f"{r['rss_mib']:12.1f}")
    ratio = best[("pstkit", passes)]["wall"] / best[("readpst", passes)]["wall"]
    print(f"pstkit / readpst wall time: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
