"""`pstkit check pst:OUT.pst`: the structural check of PST files before they are shipped
(to Microsoft's PST Import service or New-MailboxImportRequest). One file, the parts of a
split set (`OUT-001.pst`… when `OUT.pst` was written with --max-size) or every .pst in a
directory; one line per file, or one line per finding. Exit 0 clean, 4 findings (as a damaged store), 2 usage."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pstkit.cli.env import Env, TqdmProgress, print_json
from pstkit.converters import open_checker
from pstkit.errors import EXIT_INTEGRITY, EXIT_OK, UsageError
from pstkit.runstats import size_text


def is_pst(text: str) -> bool:
    """A `pst:` location or a name ending in .pst/.ost (not a store, not a bundle)."""
    return text.lower().startswith("pst:") or text.lower().endswith((".pst", ".ost"))


def pst_files(text: str) -> list[Path]:
    """The files `text` names: the file, a split set's parts, or a directory's .pst files."""
    path = Path(text[4:] if text.lower().startswith("pst:") else text).expanduser()
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix.lower() == ".pst" and p.is_file())
        if not found:
            raise UsageError(f"{path}: no .pst files in this directory")
        return found
    if path.is_file():
        return [path]
    stem, suffix = path.stem, path.suffix or ".pst"
    parts = sorted(path.parent.glob(f"{stem}-[0-9][0-9][0-9]*{suffix}"))
    if parts:
        return parts
    raise UsageError(f"{path}: no such file (nor split parts {stem}-001{suffix}…)")


def _kind(path: Path) -> None:
    """A one-line usage error for what is not a Unicode PST (before any check)."""
    with open(path, "rb") as f:
        head = f.read(12)
    if len(head) < 12 or head[:4] != b"!BDN":
        raise UsageError(f"{path}: not a PST file")
    version = int.from_bytes(head[10:12], "little")
    if version != 23:
        what = "an ANSI (Outlook 97-2002)" if version in (14, 15) else f"a version {version}"
        raise UsageError(f"{path}: {what} PST; only Unicode PSTs (what imports take) are checked")


def _one(env: Env, path: Path) -> Any:
    """The checker's report, with a bar in MiB (blocks read) for a big file."""
    _kind(path)
    bar = TqdmProgress(env)
    size = path.stat().st_size
    if size > 64 << 20:  # a bar only for what takes more than a moment
        bar.start(f"check {path.name}", size >> 20)
        if bar.bar is not None:
            bar.bar.unit = "MiB"  # of blocks read (the bar counts messages elsewhere)
    done = [0]

    def progress(n: int) -> None:
        before, done[0] = done[0], done[0] + n
        if done[0] >> 20 != before >> 20:
            bar.advance((done[0] >> 20) - (before >> 20), (done[0] >> 20 << 20) - (before >> 20 << 20))

    report = open_checker("pst")(path, progress)
    bar.done()
    return report


def check_pst_cmd(env: Env, text: str) -> int:
    """Check every file `text` names; print a line per file or per finding."""
    results = []
    for path in pst_files(text):
        started = time.monotonic()
        try:
            report = _one(env, path)
        except OSError as e:
            raise UsageError(f"{path}: cannot be read ({e.strerror or e})") from e
        results.append((path, report, time.monotonic() - started))
    if env.json:
        print_json(env, {"files": [{
            "path": str(p), "ok": not r.findings, "folders": r.folders, "items": r.items,
            "bytes": r.size, "seconds": round(s, 3), "findings": r.findings,
        } for p, r, s in results]})  # fmt: skip
    else:
        for path, report, _s in results:
            if not report.findings:
                env.out(f"{path}: OK, {report.folders} folders, {report.items} items, "
                        f"{report.size} bytes ({size_text(report.size)})")
            for finding in report.findings:
                env.out(f"{path}: {finding}")
    bad = sum(1 for _p, r, _s in results if r.findings)
    if bad and not env.json:
        env.err(f"pstkit: {bad} of {len(results)} files have findings")
    return EXIT_INTEGRITY if bad else EXIT_OK  # as a damaged store: README, Exit codes
