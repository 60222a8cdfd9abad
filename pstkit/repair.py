"""Fetch again what a store lost: files missing, cut short, or (with
`read_data`) no longer matching their SHA-256.

Export runs this before fetching what is new, for the folders it exports, so
re-running the export of the same source into the store repairs it (what an
admin tries first, as with rsync). Only a file's bytes are put back: the
catalog row, its id and the delivery ledger stay, so nothing is delivered
twice. The source must hand back the very bytes recorded (same SHA-256); if it
does not (the message changed or is gone), the item stays damaged and is
reported, never silently replaced by something else.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from pstkit.catalog import FolderRow, MessageRow, path_to_text
from pstkit.errors import IntegrityError
from pstkit.fsutil import write_error, write_new
from pstkit.mapping import path_text
from pstkit.mboxfmt import frame
from pstkit.model import Fetched, FolderInfo, Problem
from pstkit.options import FetchFilter
from pstkit.protocols import Source
from pstkit.runs import RunResult
from pstkit.store import Store

log = logging.getLogger("pstkit")
Key = tuple[str, str]  # (source epoch, source id)


def damaged_rows(store: Store, folder: FolderRow, source_key: str,
                 read_data: bool) -> dict[Key, MessageRow]:  # fmt: skip
    """This source's rows of `folder` whose file is missing, of the wrong size,
    or (read_data) whose bytes differ from the catalog's digest."""
    ours = store.catalog.source_message_ids(folder.id, source_key)
    bad: dict[Key, MessageRow] = {}
    for row in store.rows(folder.id):
        if row.msg.id in ours and _damaged(store, row, read_data):
            bad[(row.msg.source_epoch, row.msg.source_id)] = row
    return bad


def _damaged(store: Store, row: MessageRow, read_data: bool) -> bool:
    try:
        actual = store.message_path(row).stat().st_size
    except OSError:
        return True
    if row.offset is None and actual != row.msg.size:
        return True
    if row.offset is not None and actual < row.offset + (row.length or 0):
        return True
    if not read_data:
        return False
    try:
        store.read(row, verify=True)
    except IntegrityError:
        return True
    return False


STILL_DAMAGED = ("store file missing or damaged, and the source no longer has the same "
                 "message (gone or changed): not repaired")  # fmt: skip


class _AllBut:
    """`known` for the source: everything except the damaged keys, so the
    source reads only those again."""

    def __init__(self, store: Store, folder_id: int, source_key: str, wanted: set[Key]) -> None:
        self.store, self.folder_id, self.source_key, self.wanted = (
            store, folder_id, source_key, wanted)  # fmt: skip

    def __contains__(self, pair: object) -> bool:
        if pair in self.wanted or not isinstance(pair, tuple) or len(pair) != 2:
            return False
        return self.store.catalog.has_source_id(
            self.folder_id, self.source_key, str(pair[0]), str(pair[1]))  # fmt: skip


def repair(source: Source, store: Store, folders: Iterable[tuple[FolderInfo, FolderRow]],
           result: RunResult, read_data: bool) -> None:  # fmt: skip
    """Re-fetch the damaged items of these (source folder info, store folder) pairs
    (with no date or size filter: the item was stored, so it passed one then)."""
    for info, row in folders:
        bad = damaged_rows(store, row, source.key, read_data)
        if not bad:
            continue
        name = path_text(row.info.path)
        log.warning("%s: %d stored file(s) missing or damaged: fetching them again", name, len(bad))
        known = _AllBut(store, row.id, source.key, set(bad))
        for item in source.fetch(info, None, FetchFilter(), known):
            key = (item.meta.source_epoch, item.meta.source_id)
            if key not in bad or not isinstance(item, Fetched):
                continue
            if _restore(store, bad[key], item):
                del bad[key]
                result.count(name, "repaired")
        for stored in bad.values():
            _still_damaged(result, name, stored)
        # recorded in the catalog as a batch's problems are: `ls` and the report list
        # them (they only went to the screen and the run log, and the report said 0 failed)
        if bad:
            store.catalog.record_problems(result.run_id, [
                ("export", path_to_text(r.msg.folder), r.msg.source_id, STILL_DAMAGED)
                for r in bad.values()])  # fmt: skip


def _restore(store: Store, row: MessageRow, item: Fetched) -> bool:
    """Put the fetched bytes back in place, if they are the bytes recorded."""
    if len(item.raw) != row.msg.size or hashlib.sha256(item.raw).hexdigest() != row.msg.sha256:
        return False
    path = store.message_path(row)
    if row.offset is None:
        tmp = path.parent.parent / "tmp"
        for d in (path.parent, tmp):
            d.mkdir(parents=True, exist_ok=True)
        write_new(path, tmp / f"repair-{row.msg.id}", item.raw)
        return True
    chunk = frame(item.raw, "-", item.meta.received)
    if len(chunk) != row.length:
        return False
    _write_at(path, row.offset, chunk)
    return True


def _write_at(path: Path, offset: int, chunk: bytes) -> None:
    """An mbox frame back at its offset (the file is re-created if it is gone)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, chunk, offset)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        raise write_error(path, e) from e


def _still_damaged(result: RunResult, folder: str, row: MessageRow) -> None:
    msg = row.msg
    result.problems.append(Problem("export", msg.folder, msg.source_id, STILL_DAMAGED,
                                   subject=msg.subject, date=msg.received))  # fmt: skip
    result.count(folder, "failed")
