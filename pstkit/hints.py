"""What to do next, after verify or check found something (one line each).

Pure: the counts and names in, the lines out.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping

from pstkit.check import Finding

#: check findings a re-export puts right (a file of a catalog row is gone or wrong)
REFETCHABLE = frozenset({"missing", "size", "digest"})


def verify_hints(counts: Mapping[str, int], store: str, target: str) -> list[str]:
    out = []
    if counts.get("missing", 0):
        out.append(f"hint: deliver the missing items again (only those, never twice): "
                   f"pstkit import {shlex.quote(store)} {shlex.quote(target)} "
                   f"--redeliver-missing")  # fmt: skip
    if counts.get("errors", 0):
        out.append("hint: the store's own copy is damaged: fetch it again from the source "
                   f"with `pstkit export SOURCE {shlex.quote(store)} --repair`, then verify "
                   "again")  # fmt: skip
    return out


def check_hints(findings: Iterable[Finding], sources: Iterable[str], store: str) -> list[str]:
    codes = {f.code for f in findings if f.damage}
    if not codes & REFETCHABLE:
        return []
    repair = " --repair" if "digest" in codes else ""
    names = sorted(sources) or ["SOURCE"]
    lines = [f"hint: fetch the missing or damaged files again from their source (the rest "
             f"is not fetched twice): pstkit export {shlex.quote(n)} {shlex.quote(store)}"
             f"{repair}" for n in names]  # fmt: skip
    if not repair:
        lines.append("hint: `check --read-data` also finds files whose content changed; "
                     "export --repair fetches those again")  # fmt: skip
    return lines
