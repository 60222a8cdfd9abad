"""Benchmark: appending to a PST pstkit wrote, against writing it fresh.

    python scripts/bench_pst_append.py --messages 2000 --new 100

Generates two mailboxes with ../shared/bench/genmail.py (cached; seeds 1 and 2), exports
each into a store, then times in one run: `import A pst:OUT.pst` (fresh), `import B
pst:OUT.pst` (the append: the earlier file is carried block for block into a new file),
`import A pst:OUT.pst` again (the ledger: nothing to do) and once more with A's ledger
rows deleted (every item found by its stable key in the file). Prints wall and CPU
seconds and peak RSS of each.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_store import GENMAIL, mailbox, stored
from bench_store import run as timed  # (wall s, CPU s, peak RSS MiB) of a command


def store_of(work: Path, n: int, seed: int) -> Path:
    store = stored(mailbox(work, n, seed)[0])
    with sqlite3.connect(store / "catalog.sqlite") as db:  # earlier bench runs' deliveries
        db.execute("DELETE FROM deliveries")
    return store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--new", type=int, default=100)
    ap.add_argument("--work", type=Path, default=Path("/tmp/pstkit-bench-append"))
    ap.add_argument("--genmail", type=Path, default=GENMAIL, help="the generator (worktrees)")
    args = ap.parse_args()
    import bench_store  # noqa: PLC0415 - the generator's path is set per run

    bench_store.GENMAIL = args.genmail
    args.work.mkdir(parents=True, exist_ok=True)
    a, b = store_of(args.work, args.messages, 1), store_of(args.work, args.new, 2)
    pst = args.work / "out.pst"
    pst.unlink(missing_ok=True)

    def imp(store: Path) -> list[str]:
        return [sys.executable, "-m", "pstkit", "--quiet", "import", str(store), f"pst:{pst}"]

    rows = [(f"fresh: {args.messages} messages", timed(imp(a)))]
    size = pst.stat().st_size
    rows.append((f"append: {args.new} messages", timed(imp(b))))
    rows.append(("re-run, ledger: nothing new", timed(imp(a))))
    with sqlite3.connect(a / "catalog.sqlite") as db:
        db.execute("DELETE FROM deliveries")
    rows.append(("re-run, ledger lost: stable keys", timed(imp(a))))
    print(f"PST {size / 1e6:.1f} MB -> {pst.stat().st_size / 1e6:.1f} MB")
    print(f"{'what':36} {'wall s':>8} {'CPU s':>8} {'RSS MiB':>8}")
    for label, (wall, cpu, rss) in rows:
        print(f"{label:36} {wall:8.1f} {cpu:8.1f} {rss:8.0f}")


if __name__ == "__main__":
    main()
