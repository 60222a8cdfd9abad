"""Writing messages into a store, in durable batches.

Write order (the store's one promise): message files first; then, once a
batch is durable (fsync, or one syncfs), its catalog rows, re-keyed rows, folder
cursors and problems in one transaction. A crash can leave files without
rows (removed by `recover` on the next write), never a row without its
file, never a cursor ahead of the rows it covers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from pstkit.catalog import FolderRow, NewMessage, path_to_text
from pstkit.filepool import FilePool
from pstkit.fsutil import sync_tree, write_error
from pstkit.headers import summary
from pstkit.mboxfmt import frame
from pstkit.model import Fetched, Flag, Skipped
from pstkit.names import flags_text, flags_to_info
from pstkit.store import MARKER, Layout, Store

log = logging.getLogger("pstkit")

FAT32_MAX_FILE = 4 * 1024**3 - 1
OnCommit = Callable[[int, list[str]], None]


def file_key(source_key: str, epoch: str, source_id: str) -> str:
    """Deterministic file name: a re-run after a crash rewrites the same file
    instead of leaving a second copy next to the first."""
    digest = hashlib.sha256(f"{source_key}\0{epoch}\0{source_id}".encode()).hexdigest()
    return digest[:32]


@dataclass
class _Batch:
    rows: list[NewMessage] = field(default_factory=list)
    keys: set[tuple[int, str, str]] = field(default_factory=set)
    files: list[str] = field(default_factory=list)
    dirs: set[str] = field(default_factory=set)
    rekeys: list[tuple[int, str, str]] = field(default_factory=list)
    cursors: dict[tuple[str, int], str] = field(default_factory=dict)
    problems: list[tuple[str, str, str, str]] = field(default_factory=list)
    done: dict[int, list[str]] = field(default_factory=dict)
    items: int = 0
    nbytes: int = 0
    started: float = field(default_factory=time.monotonic)


@dataclass
class _InFlight:
    batch: _Batch
    thread: threading.Thread = field(default_factory=threading.Thread)
    error: BaseException | None = None


class StoreWriter:
    """Adds fetched messages to a store. Not thread-safe: one writer thread."""

    def __init__(
        self,
        store: Store,
        run_id: int,
        source_key: str,
        on_commit: OnCommit | None = None,
        max_items: int = 2000,
        max_bytes: int = 256 * 1024 * 1024,
        max_seconds: float = 5.0,
    ) -> None:
        self.store, self.run_id, self.source_key = store, run_id, source_key
        self.on_commit = on_commit
        # PSTKIT_BATCH_ITEMS tunes the batch size (smaller: less to re-fetch after a crash).
        max_items = int(os.environ.get("PSTKIT_BATCH_ITEMS", max_items))
        self.limits = (max_items, max_bytes, max_seconds)
        self._batch = _Batch()
        self._inflight: _InFlight | None = None
        self._failed: _InFlight | None = None
        self._claimed: set[int] = set()
        self._epoch_cache: dict[int, set[str]] = {}
        self._mbox: dict[str, BinaryIO] = {}
        self._files = FilePool()  # Maildir files, written on a thread of their own
        # Per message, these were a third of the writer's own Python time (issue 19):
        # folder paths joined once per folder, flag texts once per set of flags.
        self._paths: dict[int, tuple[str, str, str, str]] = {}
        self._flag_texts: dict[frozenset[Flag], tuple[str, str]] = {}

    # --- adding ------------------------------------------------------------

    def _epochs(self, folder_id: int) -> set[str]:
        """Epochs stored before this run, per folder: a folder this source never
        wrote to needs no look-ups at all (the common first export)."""
        if folder_id not in self._epoch_cache:
            self._epoch_cache[folder_id] = self.store.catalog.epochs(folder_id, self.source_key)
        return self._epoch_cache[folder_id]

    def _pending(self, key: tuple[int, str, str]) -> bool:
        """Written in this run but maybe not committed yet."""
        flight = self._inflight
        return key in self._batch.keys or (flight is not None and key in flight.batch.keys)

    def add(self, folder: FolderRow, item: Fetched) -> str:
        """Store one message. Returns "stored", "known" (already in the store
        under this id) or "matched" (same bytes from an older source epoch,
        re-keyed instead of stored twice)."""
        meta = item.meta
        key = (folder.id, meta.source_epoch, meta.source_id)
        if self._known(folder.id, key):
            self.advance(folder, item.cursor)
            return "known"
        digest = item.sha256 or hashlib.sha256(item.raw).hexdigest()
        stale = self._stale_copy(folder.id, meta.source_epoch, digest)
        if stale is not None:
            self._claimed.add(stale)
            self._batch.rekeys.append((stale, meta.source_epoch, meta.source_id))
            outcome, nbytes = "matched", 0
        else:
            self._batch.rows.append(self._new_row(folder, item, digest))
            outcome, nbytes = "stored", len(item.raw)
        self._batch.keys.add(key)
        self._finish_item(folder, meta.source_id, item.cursor, nbytes)
        return outcome

    def _known(self, folder_id: int, key: tuple[int, str, str]) -> bool:
        _, epoch, source_id = key
        if self._pending(key):
            return True
        return epoch in self._epochs(folder_id) and self.store.catalog.has_source_id(
            folder_id, self.source_key, epoch, source_id
        )

    def _stale_copy(self, folder_id: int, epoch: str, digest: str) -> int | None:
        """A row of an older epoch with these bytes (only looked up when the
        folder holds rows of another epoch at all)."""
        epochs = self._epochs(folder_id)
        if not epochs or (len(epochs) == 1 and epoch in epochs):
            return None
        return self.store.catalog.stale_copy(
            folder_id, self.source_key, epoch, digest, self._claimed
        )

    def _new_row(self, folder: FolderRow, item: Fetched, digest: str) -> NewMessage:
        meta = item.meta
        file, offset, length = self._write_file(folder, item, digest)
        message_id, subject = summary(item.raw)
        keywords = json.dumps(sorted(meta.keywords), ensure_ascii=False) if meta.keywords else "[]"
        return NewMessage(
            folder_id=folder.id,
            file=file,
            offset=offset,
            length=length,
            size=len(item.raw),
            sha256=digest,
            flags=self._flag_text(meta.flags)[0],
            keywords=keywords,
            received=meta.received.isoformat() if meta.received else None,
            message_id=message_id,
            subject=meta.subject or subject,
            kind=meta.kind.value,
            source_key=self.source_key,
            source_epoch=meta.source_epoch,
            source_id=meta.source_id,
        )

    def skip(self, folder: FolderRow, item: Skipped) -> None:
        self.problem(folder, item.meta.source_id, item.reason)
        self.advance(folder, item.cursor)
        self._maybe_flush()

    def problem(self, folder: FolderRow, item: str, reason: str) -> None:
        self._batch.problems.append(("export", path_to_text(folder.info.path), item, reason))

    def _finish_item(self, folder: FolderRow, source_id: str, cursor: str | None, n: int) -> None:
        self._batch.done.setdefault(folder.id, []).append(source_id)
        self._batch.items += 1
        self._batch.nbytes += n
        self.advance(folder, cursor)
        self._maybe_flush()

    def advance(self, folder: FolderRow, cursor: str | None) -> None:
        if cursor is not None:
            self._batch.cursors[(self.source_key, folder.id)] = cursor

    def _write_file(
        self, folder: FolderRow, item: Fetched, digest: str
    ) -> tuple[str, int | None, int | None]:
        if len(item.raw) > FAT32_MAX_FILE:
            raise write_error(Path(folder.dirname), OSError(27, "message over 4 GiB"))
        name = file_key(self.source_key, item.meta.source_epoch, item.meta.source_id)
        if self.store.layout is Layout.MAILDIR:
            # Paths as text: pathlib cost more per message than the write itself.
            cur, final_cur, tmp, cur_dir = self._folder_paths(folder)
            leaf = f"{name}!{self._flag_text(item.meta.flags)[1]}"
            final = final_cur + leaf
            self._files.submit(final, tmp + name, item.raw, item.origin)
            self._batch.files.append(final)
            self._batch.dirs.add(cur_dir)
            return cur + leaf, None, None
        handle = self._mbox_handle(folder.dirname)
        offset = handle.tell()
        chunk = frame(item.raw, "-", item.meta.received)
        try:
            handle.write(chunk)
        except OSError as e:
            raise write_error(self.store.mail / folder.dirname, e) from e
        self._batch.files.append(os.path.join(self.store.mail, folder.dirname))
        return folder.dirname, offset, len(chunk)

    def _folder_paths(self, folder: FolderRow) -> tuple[str, str, str, str]:
        """(cur/ in the catalog, cur/ and tmp/ on disk, cur itself) of a Maildir folder;
        each a prefix a file name is appended to, as os.path.join would join it."""
        if folder.id not in self._paths:
            base = os.path.join(self.store.mail, folder.dirname)
            self._paths[folder.id] = (os.path.join(folder.dirname, "cur", ""),
                                      os.path.join(base, "cur", ""),
                                      os.path.join(base, "tmp", ""), os.path.join(base, "cur"))
        return self._paths[folder.id]

    def _flag_text(self, flags: frozenset[Flag]) -> tuple[str, str]:
        """(the catalog's flags, the Maildir info "2,…") of a set of flags."""
        key = flags if isinstance(flags, frozenset) else frozenset(flags)  # a source's set
        if key not in self._flag_texts:
            self._flag_texts[key] = (flags_text(key), flags_to_info(key))
        return self._flag_texts[key]

    def _mbox_handle(self, dirname: str) -> BinaryIO:
        if dirname not in self._mbox:
            path = self.store.mail / dirname
            try:
                handle = open(path, "r+b")  # noqa: SIM115 - kept open for the run
                handle.seek(self.store.catalog.max_mbox_end(dirname))
                handle.truncate()  # drop any uncommitted tail of a crashed run
            except OSError as e:
                raise write_error(path, e) from e
            self._mbox[dirname] = handle
        return self._mbox[dirname]

    # --- committing --------------------------------------------------------

    def _maybe_flush(self) -> None:
        b, (max_items, max_bytes, max_seconds) = self._batch, self.limits
        if (
            b.items >= max_items
            or b.nbytes >= max_bytes
            or time.monotonic() - b.started >= max_seconds
        ):
            self.flush()

    def flush(self) -> None:
        """Hand the batch to a committer thread (sync, then commit), after
        waiting for the previous one: the next batch's files are written while
        this one syncs, and batches still commit strictly in order."""
        self._files.wait()  # files first: none of this batch may still be in the air
        self._settle()
        batch, self._batch = self._batch, _Batch()
        if not (batch.rows or batch.rekeys or batch.cursors or batch.problems):
            return
        for handle in self._mbox.values():
            try:
                handle.flush()
            except OSError as e:
                raise write_error(Path(handle.name), e) from e
        flight = _InFlight(batch)
        flight.thread = threading.Thread(target=self._commit, args=(flight,), daemon=True)
        self._inflight = flight
        flight.thread.start()

    def _commit(self, flight: _InFlight) -> None:
        batch = flight.batch
        try:
            if batch.files:
                # The marker too: a new store's marker is made durable here (by
                # syncfs, or by the fsync of it and of the root).
                marker = os.path.join(self.store.root, MARKER)
                sync_tree(self.store.root, [*batch.files, marker], batch.dirs)
            self.store.catalog.commit_batch(
                self.run_id, batch.rows, batch.rekeys, batch.cursors, batch.problems
            )
            log.debug("committed a batch: %d messages, %d bytes, %d problems",
                      len(batch.rows), batch.nbytes, len(batch.problems))  # fmt: skip
        except BaseException as e:  # re-raised on the writer's thread by _settle
            flight.error = e

    def _settle(self) -> None:
        """Wait for the batch in flight; tell the source, or raise its error."""
        flight, self._inflight = self._inflight, None
        if flight is None:
            return
        flight.thread.join()
        if flight.error is not None:
            self._failed = flight
            raise flight.error
        if self.on_commit:
            for folder_id, ids in flight.batch.done.items():
                self.on_commit(folder_id, ids)

    def close(self) -> None:
        try:
            self.flush()
            self._settle()
        finally:
            self._close_handles()
        copier = self._files.copier
        if copier.copied or copier.written:
            log.debug("message files: %d copied in the kernel, %d written",
                      copier.copied, copier.written)  # fmt: skip

    def abort(self) -> None:
        """Undo every uncommitted batch (after a failed write or commit), so a
        failed run leaves no file the catalog does not know."""
        flight, self._inflight = self._inflight, None
        if flight is not None:
            flight.thread.join()
        with contextlib.suppress(Exception):  # the run has failed already
            self._files.wait()  # no write may land after its file is undone
        pending = [self._batch]
        # A batch that committed stays; one whose sync or commit failed is undone.
        failed = {id(f): f for f in (flight, self._failed) if f is not None and f.error}
        pending += [f.batch for f in failed.values()]
        self._batch = _Batch()
        self._close_handles()
        for batch in pending:
            self._undo(batch)

    def _undo(self, batch: _Batch) -> None:
        if self.store.layout is Layout.MAILDIR:
            for path in batch.files:
                Path(path).unlink(missing_ok=True)
            return
        for row in batch.rows:
            end = self.store.catalog.max_mbox_end(row.file)
            try:
                with open(self.store.mail / row.file, "r+b") as f:
                    f.truncate(end)
            except OSError:
                log.warning("could not truncate %s; `pstkit check` will report it", row.file)

    def _close_handles(self) -> None:
        with contextlib.suppress(Exception):
            self._files.close()
        for handle in self._mbox.values():
            try:
                handle.close()
            except OSError:
                log.warning("could not close %s", handle.name)
        self._mbox.clear()
