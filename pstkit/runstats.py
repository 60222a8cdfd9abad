"""The closing block of a run, for people (stderr, the run log) and scripts (`--json`).

    export finished in 2.4 s: 0 new, 2000 already stored
      done       0 messages, 0.0 MB  (0.0 msg/s, 0.00 MB/s)
      skipped    1  (1 larger than --max-size)
      warnings   2  (2 stored, but an OLE attachment kept as bytes)

Pure functions of a `RunResult`; the CLI prints them, `pstkit.runlog` writes them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from pstkit.mapping import path_text
from pstkit.model import Problem
from pstkit.runs import NOT_ITEMS, RunResult, is_note

#: per run kind: (what counts as done, what "already" means)
DONE = {"export": ("stored", "already stored"), "import": ("delivered", "already delivered")}


def size_text(n: float) -> str:
    """28 KB, 1.4 MB, 3.2 GB: never "0.0 MB" for a small folder."""
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{int(n)} B"


def item_text(p: Problem) -> str:
    """A problem item for people: folder, date, subject (the id last, for support)."""
    date = p.date.strftime("%Y-%m-%d %H:%M") if p.date else ""
    subject = repr(p.subject) if p.subject else ""
    named = " ".join(x for x in (path_text(p.folder), date, subject) if x)
    return f"{named} [{p.item}]"


#: numbers are a reason's particulars ("attachment 3", "12.5 MB", a file name's digits),
#: except in the names of standards and charsets, which stay (the summary said "not an
#: RFC N message")
_NAMES = r"RFC \d+|UTF-\d+|ISO-\d+(?:-\d+)*|[Bb]ase64|[Ww]indows-\d+|cp\d+|MS-OX\w+"
_NUMBER = re.compile(rf"({_NAMES})|0x[0-9a-fA-F]+|\d+(?:[.,]\d+)*")


def reason_kind(reason: str) -> str:
    """A reason without its particulars (parenthesised names, numbers), so
    equal causes count together: "stored, but attachment N is an OLE object…"."""
    text, previous = reason, ""
    while text != previous:  # nested parentheses, innermost first
        previous, text = text, re.sub(r"\s*\([^()]*\)", "", text)
    text = " ".join(_NUMBER.sub(lambda m: m.group(1) or "N", text).split())
    return text if len(text) <= 80 else text[:79] + "…"


def reason_counts(problems: Iterable[Problem]) -> tuple[Counter[str], Counter[str]]:
    """Problems counted by the kind of their reason: (failures, warnings), in one pass
    (a run's problems may be a spooled file's worth)."""
    failures: Counter[str] = Counter()
    warnings: Counter[str] = Counter()
    for p in problems:
        (warnings if is_note(p.reason) else failures)[reason_kind(p.reason)] += 1
    return failures, warnings


def summary(result: RunResult) -> dict[str, object]:
    """The stats block as data (`--json`'s "summary")."""
    return _summary(result, *reason_counts(result.problems))


def _summary(result: RunResult, failures: Counter[str], warnings: Counter[str]
             ) -> dict[str, object]:  # fmt: skip
    done_key, _ = DONE.get(result.kind, ("done", "already"))
    nbytes = result.stats.get("bytes", 0)
    seconds = max(result.elapsed, 1e-6)
    done = result.stats.get(done_key, 0)
    return {
        "seconds": round(result.elapsed, 3),
        "done": done, "bytes": nbytes, "already": result.already,
        "skipped": result.stats.get("skipped", 0), "failed": result.stats.get("failed", 0),
        "warnings": warnings.total(),
        "msg_per_s": round(done / seconds, 2), "mb_per_s": round(nbytes / 1e6 / seconds, 3),
        "reasons": dict(failures),
        "warning_reasons": dict(warnings),
        "folders": {f: dict(c) for f, c in sorted(result.folders.items())},
    }  # fmt: skip


def block(result: RunResult, verbose: bool = False) -> list[str]:
    """The stats block as lines of text."""
    failures, warnings = reason_counts(result.problems)
    s = _summary(result, failures, warnings)
    done_key, already = DONE.get(result.kind, ("done", "already"))
    lines = [
        f"{result.kind} finished in {_duration(result.elapsed)}: {s['done']} new, "
        f"{s['already']} {already}",
        f"  done       {s['done']} messages, {size_text(int(str(s['bytes'])))}  "
        f"({s['msg_per_s']} msg/s, {float(str(s['mb_per_s'])):.2f} MB/s)",
    ]
    bad = "skipped" if result.kind == "export" else "failed"
    for label, counts in ((bad, failures), ("warnings", warnings)):
        if counts:
            why = ", ".join(f"{n} {r}" for r, n in counts.most_common())
            lines.append(f"  {label:<10} {counts.total()}  ({why})")
    if verbose and result.folders:
        lines.extend(folder_table(result, done_key))
    return lines


def folder_table(result: RunResult, done_key: str) -> list[str]:
    names = sorted({k for c in result.folders.values() for k in c} - NOT_ITEMS - {done_key})
    head = f"  {'folder':<30} {done_key:>9} {'size':>9}" + "".join(f" {n:>9}" for n in names)
    out = [head]
    for folder, c in sorted(result.folders.items()):
        row = f"  {folder or '/':<30} {c[done_key]:>9} {size_text(c['bytes']):>9}"
        out.append(row + "".join(f" {c[n]:>9}" for n in names))
    return out


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{sec:02d}"


