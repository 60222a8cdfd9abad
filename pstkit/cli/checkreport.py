"""`pstkit check`'s progress bar and closing totals (files and bytes checked)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from pstkit.check import Finding
from pstkit.check import check as check_store
from pstkit.cli.env import Env, TqdmProgress, print_json
from pstkit.runstats import size_text
from pstkit.spool import Spool
from pstkit.store import Store


def run_check(env: Env, st: Store, read_data: bool) -> tuple[Spool[Finding], int, int, float]:
    """check with a progress bar (MB/s) when reading every file; the totals checked. The
    findings are spooled: a store whose files are all gone has one per message."""
    counts = st.catalog.counts().values()
    files, nbytes = sum(n for n, _ in counts), sum(b for _, b in counts)
    bar = TqdmProgress(env)
    started = time.monotonic()
    if read_data:
        bar.start("check", files or None)
    findings = Spool(check_store(st, read_data, lambda n: bar.advance(n) if read_data else None))
    bar.done()
    return findings, files, nbytes, time.monotonic() - started


def print_check(env: Env, findings: Spool[Finding], files: int, nbytes: int, seconds: float,
                read_data: bool, hints: Sequence[str] = ()) -> None:  # fmt: skip
    """Every finding, then totals: files and bytes checked, damage, warnings."""
    damaged = sum(f.damage for f in findings)
    warnings = len(findings) - damaged
    what = "read and hashed" if read_data else "checked (size; --read-data also hashes)"
    if env.json:  # one document: its findings are held to write it
        print_json(env, {"files": files, "bytes": nbytes, "read_data": read_data,
                         "damaged": damaged, "warnings": warnings, "seconds": round(seconds, 3),
                         "findings": [f.__dict__ for f in findings]})  # fmt: skip
    else:
        for f in findings:
            env.out(f"{'DAMAGE' if f.damage else 'warn'}  {f.code:<10} {f.where}  {f.detail}")
        env.out(f"{files} files, {size_text(nbytes)} {what}: {damaged} damaged, {warnings} warnings")
    for hint in hints:
        print(hint, file=env.stderr)
    rate = nbytes / 1e6 / max(seconds, 1e-6)
    print(f"check finished in {seconds:.1f} s ({rate:.2f} MB/s)", file=env.stderr)
