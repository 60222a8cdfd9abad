"""What a migration report says, read from a store's catalog (no connections)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pstkit.catalog import text_to_path
from pstkit.errors import BadLocation
from pstkit.importing import store_folders
from pstkit.location import FILE_SCHEMES, parse_location
from pstkit.mapping import path_text
from pstkit.runs import is_note
from pstkit.store import Store, read_marker


@dataclass(frozen=True)
class RunInfo:
    id: int
    kind: str
    peer: str
    started: str
    finished: str
    status: str
    stats: dict[str, object]

    @property
    def seconds(self) -> float:
        value = self.stats.get("seconds")
        if isinstance(value, int | float):
            return float(value)
        try:  # runs recorded before the stats block: from the times
            start, end = datetime.fromisoformat(self.started), datetime.fromisoformat(self.finished)
            return (end - start).total_seconds()
        except ValueError:
            return 0.0

    def count(self, key: str) -> int:
        value = self.stats.get(key, 0)
        return int(value) if isinstance(value, int | float) else 0


@dataclass
class FolderLine:
    """One store folder: source -> store -> target."""

    path: str
    role: str
    source: int  # items the source offered: stored + skipped
    stored: int
    size: int
    skipped: int = 0
    delivered: int = 0
    failed: int = 0


@dataclass(frozen=True)
class ProblemLine:
    run: int
    stage: str
    folder: str
    date: str
    subject: str
    item: str
    reason: str
    warning: bool


@dataclass
class Report:
    store: str
    store_id: str
    layout: str
    created: str
    sources: list[str]
    targets: list[str]
    runs: list[RunInfo]
    folders: list[FolderLine]
    problems: list[ProblemLine]
    #: the newest verify run per target: its totals and per target folder counts
    verify: dict[str, RunInfo] = field(default_factory=dict)


def gather(store: Store, target: str | None = None) -> Report:
    runs = [_run(r) for r in store.catalog.runs()]
    if target:
        key = _target_key(target)
        runs = [r for r in runs if r.kind == "export" or _is_target(r.peer, key)]
    targets = list(dict.fromkeys(r.peer for r in runs if r.kind in ("import", "verify")))
    marker = read_marker(store.root)
    return Report(
        store=str(store.root.resolve()), store_id=store.id, layout=store.layout.value,
        created=str(marker.get("created", "")),
        sources=list(dict.fromkeys(r.peer for r in runs if r.kind == "export")),
        targets=targets, runs=runs, folders=_folders(store, targets, runs),
        problems=_problems(store, {r.id for r in runs}),
        # only a verify that finished has counts: a killed, stopped or failed one has
        # none, and its zeros read as "everything matches"
        verify={r.peer: r for r in runs if r.kind == "verify" and r.status in ("ok", "problems")},
    )  # fmt: skip


def shown(peer: str) -> str:
    """A run's source or target as the customer reads it: a PST target's ledger key ends
    in `#` and the file's record key (a new file is a new ledger), which says nothing to a
    reader of the report (the CSV keeps the key as it is)."""
    head, sep, tail = peer.rpartition("#")
    if peer.startswith("pst:") and sep and len(tail) == 32 and all(
            c in "0123456789abcdef" for c in tail):
        return head
    return peer


def _target_key(target: str) -> str:
    """`--target` as written to import, as the sinks name it in the runs: a file target
    by its absolute path (`maildir:out/` is `maildir:/cwd/out`), a URL with its default
    port. A name that cannot be parsed (its file is gone) is taken as written."""
    try:
        loc = parse_location(target)
    except BadLocation:
        return target
    if loc.scheme in FILE_SCHEMES:
        return f"{loc.scheme}:{Path(loc.path).absolute()}"
    return loc.display()


def _is_target(peer: str, key: str) -> bool:
    """Whole names only: `maildir:/x/out` is not `maildir:/x/out2`. A PST target's
    ledger key goes on with `#<record key>`, an EWS one with `?mailbox=`; server names
    are compared without case (graph keys are lower case)."""
    if "://" in key:
        peer, key = peer.lower(), key.lower()
    return peer == key or peer.startswith((key + "#", key + "?"))


def _run(r: tuple[object, ...]) -> RunInfo:
    stats = json.loads(str(r[6])) if r[6] else {}
    return RunInfo(int(str(r[0])), str(r[1]), str(r[2]), str(r[3]), str(r[4] or ""),
                   str(r[5]), stats if isinstance(stats, dict) else {})  # fmt: skip


def _folders(store: Store, targets: list[str], runs: list[RunInfo]) -> list[FolderLine]:
    skipped: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    # An item is skipped once however many export runs skipped it again, and not at all
    # once a later run stored it: source = stored + skipped counts items, not problem rows.
    unstored: dict[tuple[str, str], set[str]] = {}  # (folder, source) -> its items
    # A stored item's export problem (read damaged, or a repair that failed) is a failure
    # of its folder: for good when read damaged ("stored, but …"), else while the newest
    # export of its source recorded it (every export repairs what it can first).
    lasting: set[tuple[str, str, str]] = set()  # (folder, source, item)
    newest = {r.peer: r.id for r in runs if r.kind == "export"}
    # Likewise a message fails once however many imports failed it (a re-run fails it
    # again), in the runs shown only (`--target`), and not once the ledger of each target
    # it failed for has it.
    peers = {r.id: r.peer for r in runs}
    undelivered: dict[tuple[str, str], set[str]] = {}
    for run, stage, folder, item, reason, _ in store.catalog.problems():
        if is_note(str(reason)):
            continue
        peer = peers.get(int(str(run)))
        if peer is None:  # a run `--target` leaves out
            continue
        if stage == "export":
            unstored.setdefault((str(folder), peer), set()).add(str(item))
            if str(reason).startswith("stored, but") or newest.get(peer) == int(str(run)):
                lasting.add((str(folder), peer, str(item)))
        else:
            undelivered.setdefault((str(folder), str(item)), set()).add(peer)
    for (folder, source), items in unstored.items():
        now = store.catalog.stored_source_ids(folder, source, sorted(items))
        skipped[path_text(text_to_path(folder))] += len(items - now)
        failed[path_text(text_to_path(folder))] += sum((folder, source, i) in lasting for i in now)
    for (folder, item), failed_for in undelivered.items():
        rows = [store.catalog.delivery(p, int(item)) if item.isdigit() else None
                for p in failed_for]  # fmt: skip
        failed[path_text(text_to_path(folder))] += any(r is None or r[2] == "sending"
                                                       for r in rows)  # fmt: skip
    delivered = store.catalog.delivered_per_folder(targets)  # in SQL: memory stays flat
    out = []
    for f in sorted(store_folders(store), key=lambda f: f.info.path):  # parents first
        name = path_text(f.info.path)
        out.append(FolderLine(name, f.info.role.value if f.info.role else "",
                              f.count + skipped[name], f.count, f.size, skipped[name],
                              delivered.get(f.id, 0), failed[name]))  # fmt: skip
    return out


def _problems(store: Store, runs: set[int]) -> list[ProblemLine]:
    out = []
    for run, stage, folder, item, reason, _ in store.catalog.problems():
        if int(str(run)) not in runs:
            continue
        path = text_to_path(str(folder))
        subject, date = store.catalog.describe_item(str(stage), path, str(item))
        when = date[:16].replace("T", " ")
        out.append(ProblemLine(int(str(run)), str(stage), path_text(path), when, subject,
                               str(item), str(reason), is_note(str(reason))))  # fmt: skip
    return out
