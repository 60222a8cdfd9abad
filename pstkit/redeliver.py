"""`import --redeliver-missing`: deliver again what the ledger says was
delivered but the target no longer has (deleted by a user, lost by a server
restore, a folder removed).

The target is looked up per target folder by the same comparison as `verify`
(ids the ledger keeps, the key stamped on each item, Message-ID and size).
Each item found missing gets its ledger row turned back into "sending" with no
target id, in one transaction, before anything is sent: from then on it is an
ordinary item of a batch in flight, which the import (this run or, after a
crash, the next one with or without the option) looks for in the target first
and sends only if it is not there. So a re-delivered item replaces its ledger
row, and a run cut off half-way never delivers anything twice.
"""

from __future__ import annotations

import logging

from pstkit.catalog import text_to_path
from pstkit.model import FolderPath, Problem
from pstkit.options import MappingOptions
from pstkit.protocols import KnowsItems, Sink
from pstkit.runs import RunResult
from pstkit.store import Store

log = logging.getLogger("pstkit")


def reopen_missing(store: Store, sink: Sink, opts: MappingOptions, run_id: int) -> int:
    """Mark the delivered items the target lacks as in flight again; how many."""
    from pstkit.verify import verify  # noqa: PLC0415 - verify imports importing, which imports us

    missing: list[tuple[int, FolderPath, str, str]] = []
    for line in verify(store, sink, opts):
        if line.mark != "-" or not line.item.isdigit():
            continue
        entry = store.catalog.delivery(sink.key, int(line.item))  # not the whole ledger
        if entry is not None and entry[2] in ("delivered", "duplicate"):
            missing.append((int(line.item), line.folder, "", "sending"))
    if missing:
        store.catalog.record_deliveries(run_id, sink.key, missing)
        log.warning("%d delivered item(s) are no longer in %s: delivering them again",
                    len(missing), sink.key)  # fmt: skip
    return len(missing)


GONE = ("delivered earlier, but no longer in the target (an older copy of the file, or "
        "deleted from it): `pstkit import --redeliver-missing` writes it again")


def report_gone(store: Store, sink: Sink, result: RunResult, page: int = 5000) -> int:
    """Without --redeliver-missing: a problem for each item the ledger delivered that a
    target which knows its items at once (`KnowsItems`: a PST pstkit wrote) no longer
    holds, so the run exits 1 and names them instead of "0 new, N already delivered".
    They are not sent again: items deleted on purpose stay deleted, as on a server."""
    if not isinstance(sink, KnowsItems):
        return 0
    gone = 0
    after = 0
    while rows := store.catalog.delivered_page(sink.key, after, page):
        after = rows[-1][0]
        lost = set(sink.missing([t for _m, _f, _s, t in rows]))
        problems = [(m, f, s) for m, f, s, t in rows if t in lost]
        for message, folder, subject in problems:
            result.problems.append(Problem("import", text_to_path(folder), str(message), GONE,
                                           subject=subject))
        if problems:
            store.catalog.record_problems(
                result.run_id, [("import", f, str(m), GONE) for m, f, _s in problems])
        gone += len(problems)
    if gone:
        log.warning("%d delivered item(s) are no longer in %s: `pstkit verify` lists them, "
                    "`pstkit import --redeliver-missing` writes them again", gone, sink.key)
    return gone
