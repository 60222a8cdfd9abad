"""Check: this tree writes the same PST as another source tree, byte for byte.

    python scripts/pst_write_same.py --baseline DIR STORE [--modes here child] [--work DIR]

DIR is a source tree of pstkit (e.g. `git archive main | tar -x -C DIR`), run through
PYTHONPATH. Both trees import STORE into a new PST, with `os.urandom` fixed so the
store's record key (the one random input of the writer) is the same, and once per
PSTKIT_PST_TRANSLATE mode for this tree. Every PST must equal the baseline's, byte for
byte; `cmp` shows the first difference. Exit 1 when one differs. A speed change of the
writer must pass this on the bench mailbox (scripts/bench_pst_write.py makes its store).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
# the CLI with the record key's randomness fixed: the rest of the file is a function of
# the store's messages
FIXED = ("import os, sys; os.urandom = lambda n: b'Z' * n; from pstkit.cli import main; "
         "sys.exit(main(sys.argv[1:]))")


def write(tree: Path, store: Path, where: Path, mode: str) -> Path:
    where.mkdir()
    out = where / "out.pst"  # one name for all: the file's stem is the store's name
    env = {**os.environ, "PYTHONPATH": str(tree), "PSTKIT_PST_TRANSLATE": mode}
    got = subprocess.run([sys.executable, "-c", FIXED, "--quiet", "import", str(store),
                          f"pst:{out}"], env=env, cwd=out.parent, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, check=False)
    if got.returncode not in (0, 1) or not out.exists():
        sys.exit(f"{tree} ({mode}) wrote no PST: {got.stderr.strip()[-500:]}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("store", type=Path)
    ap.add_argument("--baseline", type=Path, required=True, help="the other source tree")
    ap.add_argument("--modes", nargs="+", default=["here", "child"], choices=["here", "child"])
    ap.add_argument("--work", type=Path, default=None, help="where the PSTs go (removed)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pst-same-", dir=args.work))
    try:
        base = write(args.baseline.resolve(), args.store, work / "baseline", "here")
        print(f"baseline {args.baseline}: {base.stat().st_size:,} bytes")
        bad = 0
        for mode in args.modes:
            mine = write(HERE, args.store, work / mode, mode)
            same = filecmp.cmp(base, mine, shallow=False)
            bad += not same
            print(f"this tree, {mode}: {'identical' if same else 'DIFFERENT'}")
            if not same:
                subprocess.run(["cmp", str(base), str(mine)], check=False)
        sys.exit(1 if bad else 0)
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
