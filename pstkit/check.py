"""`pstkit check`: every finding about a store, not just the first.

Damage (exit 4): a catalog row whose file is missing, shorter/longer than
recorded, or (with read_data) whose SHA-256 differs; a file in the mail tree
that no row knows (orphan); a damaged catalog. Warnings: temp-file
leftovers, a stale lock, an uncommitted mbox tail. `recover` removes what an
interrupted writer left behind, before the next write.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pstkit import lock
from pstkit.catalog import FolderRow, MessageRow
from pstkit.errors import IntegrityError
from pstkit.store import LOCK, Layout, Store

log = logging.getLogger("pstkit")
IGNORED_NAMES = {".gitkeep"}


@dataclass(frozen=True)
class Finding:
    code: str  # missing|size|digest|orphan|unknown|catalog|leftover|tail|stale-lock|locked
    where: str
    detail: str
    damage: bool


def check(
    store: Store, read_data: bool = False, progress: Callable[[int], None] | None = None
) -> Iterator[Finding]:
    yield from _check_lock(store)
    result = store.catalog.integrity_check()
    if result != "ok":
        yield Finding("catalog", "catalog.sqlite", result, True)
    folders = store.folders()
    for folder in folders:
        yield from _check_folder(store, folder, read_data, progress)
    yield from _unknown_entries(store, folders)


def _check_lock(store: Store) -> Iterator[Finding]:
    held = lock.read_lock(store.root / LOCK)
    if held is None or store.writable:
        return
    if held.is_stale():
        yield Finding("stale-lock", LOCK, held.describe(), False)
    else:
        yield Finding("locked", LOCK, f"a writer is running: {held.describe()}", False)


def _check_folder(
    store: Store, folder: FolderRow, read_data: bool, progress: Callable[[int], None] | None
) -> Iterator[Finding]:
    referenced: set[str] = set()
    for row in store.rows(folder.id):
        referenced.add(row.file)
        path = store.message_path(row)
        try:
            actual = path.stat().st_size
        except FileNotFoundError:
            yield Finding("missing", row.file, f"message {row.msg.id} ({row.msg.subject!r})", True)
            continue
        expected = row.msg.size if row.offset is None else (row.offset or 0) + (row.length or 0)
        if (row.offset is None and actual != expected) or actual < expected:
            yield Finding(
                "size", row.file, f"{actual} bytes on disk, catalog says {expected}", True
            )
            continue
        if read_data:
            yield from _check_digest(store, row)
        if progress:
            progress(1)
    yield from _unreferenced(store, folder, referenced)


def _check_digest(store: Store, row: MessageRow) -> Iterator[Finding]:
    try:
        store.read(row, verify=True)
    except IntegrityError as e:
        yield Finding("digest", row.file, str(e).split(": ", 1)[-1], True)


def _unreferenced(store: Store, folder: FolderRow, referenced: set[str]) -> Iterator[Finding]:
    if store.layout is Layout.MBOX:
        path = store.mail / folder.dirname
        end = store.catalog.max_mbox_end(folder.dirname)
        size = path.stat().st_size if path.exists() else 0
        if size > end:
            yield Finding(
                "tail",
                folder.dirname,
                f"{size - end} bytes after the last committed message",
                False,
            )
        return
    base = store.mail / folder.dirname
    for sub in ("cur", "new"):
        for name in _files(base / sub):
            rel = str(Path(folder.dirname, sub, name))
            if rel not in referenced:
                yield Finding("orphan", rel, "file not in the catalog", True)
    for name in _files(base / "tmp"):
        yield Finding("leftover", str(Path(folder.dirname, "tmp", name)), "temporary file", False)


def _files(directory: Path) -> list[str]:
    try:
        return sorted(
            e.name for e in os.scandir(directory) if e.is_file() and e.name not in IGNORED_NAMES
        )
    except FileNotFoundError:
        return []


def _unknown_entries(store: Store, folders: list[FolderRow]) -> Iterator[Finding]:
    """Directories/files in mail/ that belong to no folder."""
    known = {f.dirname for f in folders}
    if store.layout is Layout.MAILDIR:
        for entry in sorted(os.scandir(store.mail), key=lambda e: e.name):
            if entry.name in ("cur", "new", "tmp") and "" in known:
                continue
            if entry.name not in known and entry.name not in IGNORED_NAMES:
                yield Finding("unknown", entry.name, "not a folder of this store", True)
        return
    for path in sorted(store.mail.rglob("*")):
        rel = str(path.relative_to(store.mail))
        if path.is_file() and rel not in known:
            yield Finding("unknown", rel, "not a folder of this store", True)


def recover(store: Store) -> int:
    """Remove files an interrupted writer left without catalog rows.

    Only called with the lock held, after a run that never finished: those
    files were never committed, so the next run fetches them again.
    """
    removed = 0
    for finding in check(store):
        if finding.code in ("orphan", "leftover"):
            (store.mail / finding.where).unlink(missing_ok=True)
            removed += 1
    if removed:
        log.warning("removed %d uncommitted file(s) left by an interrupted run", removed)
    return removed
