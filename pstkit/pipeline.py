"""The two stages: export (source -> store) and import (store -> sink).

Neither knows the terminal: progress goes to a `Progress` object the caller
passes in (the CLI gives a tqdm one, tests a silent one).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Container, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from pstkit import writer as writer_mod
from pstkit.bwlimit import TokenBucket
from pstkit.catalog import FolderRow
from pstkit.handoff import Channel
from pstkit.interrupt import StopNow, Stopper, stop_on_signal
from pstkit.mapping import effective_role, path_text, selected
from pstkit.model import Fetched, FetchResult, FolderInfo, Problem, Skipped
from pstkit.options import FetchFilter
from pstkit.protocols import NotExported, Source
from pstkit.rails import refuse_other_source, warn_unmatched
from pstkit.repair import repair
from pstkit.runs import NullProgress, Progress, RunResult, end_dead_runs, recorded_run, tell_folder
from pstkit.store import Store
from pstkit.writer import StoreWriter

if TYPE_CHECKING:
    from pstkit.importing import import_

log = logging.getLogger("pstkit")


class _Known:
    """The (epoch, source id) pairs a folder already holds, asked lazily."""

    def __init__(self, store: Store, folder_id: int, source_key: str) -> None:
        self.store, self.folder_id, self.source_key = store, folder_id, source_key
        self.epochs = store.catalog.epochs(folder_id, source_key)

    def __contains__(self, pair: object) -> bool:
        if not isinstance(pair, tuple) or len(pair) != 2:
            return False
        epoch, source_id = pair
        if str(epoch) not in self.epochs:
            return False  # nothing of that epoch stored: no query per message
        return self.store.catalog.has_source_id(
            self.folder_id, self.source_key, str(epoch), str(source_id)
        )


# --- export ----------------------------------------------------------------


def export(
    source: Source,
    store: Store,
    filt: FetchFilter | None = None,
    progress: Progress | None = None,
    connections: int = 1,
    limit: TokenBucket | None = None,
    add_source: bool = False,
    read_data: bool = False,
) -> RunResult:
    """Copy every selected folder of `source` into `store`; resumable. SIGINT/SIGTERM (in
    the main thread) stop it after the message at hand, with every written file committed;
    a wait for a silent server is cut after a moment (pstkit.interrupt). Stored files of
    this source that are missing or cut short (with `read_data`: whose bytes differ from
    their digest) are fetched again first (`pstkit.repair`)."""
    filt = filt or FetchFilter()
    progress = progress or NullProgress()
    refuse_other_source(store, source.key, add_source)
    if _interrupted_runs(store):
        from pstkit.check import recover  # noqa: PLC0415 - only after an interrupted run

        recover(store)
    _say_resuming(store, source.key)
    with recorded_run(store.catalog, "export", source.key, progress) as result, \
            stop_on_signal() as stop:
        with stop.waiting():  # the source's folder list: nothing is written yet
            listed = source.folders()
        warn_unmatched([f.path for f in listed], filt.include, filt.exclude, source.key)
        folders = [f for f in listed if selected(f.path, filt.include, filt.exclude)]
        # A role known only from the folder's name (Maildir `.Sent`) is written too, so
        # the catalog says what `folders` and `ls` show (the role column exists: no schema change).
        made = store.ensure_folders([replace(f, role=effective_role(f)) for f in folders])
        rows = {f.path: row for f, row in zip(folders, made, strict=True)}
        repair(source, store, [(f, rows[f.path]) for f in folders if f.selectable], result,
               read_data)  # fmt: skip
        by_id = {rows[f.path].id: f for f in folders}
        counts = store.catalog.counts()
        result.already = sum(counts.get(r.id, (0, 0))[0] for r in rows.values())
        writer = StoreWriter(
            store, result.run_id, source.key,
            on_commit=lambda fid, ids: source.committed(by_id[fid], ids),
        )  # fmt: skip
        try:
            work = [(f, rows[f.path]) for f in folders if f.selectable]
            with contextlib.suppress(StopNow):  # a cut wait: what was taken is committed
                for row, item in stop.guard(
                    _stream(source, store, work, filt, progress, connections, stop)
                ):
                    if limit is not None and isinstance(item, Fetched):
                        with stop.waiting():  # --bwlimit: the fetch waits with the loop
                            limit.take(len(item.raw))
                    _take(writer, row, item, filt, result, progress)
                    if stop.is_set():
                        break
            writer.close()
        except BaseException:
            writer.abort()
            raise
        if isinstance(source, NotExported):
            result.stats.update(source.not_exported())
        if stop.is_set():
            raise KeyboardInterrupt  # recorded as "interrupted", with what was committed
    return result


def _stream(source: Source, store: Store, work: list[tuple[FolderInfo, FolderRow]],
            filt: FetchFilter, progress: Progress, connections: int, outer: Stopper,
            ) -> Iterator[tuple[FolderRow, FetchResult]]:  # fmt: skip
    progress.start("export", sum(f.message_count or 0 for f, _ in work) or None)
    n = max(1, min(connections, source.max_connections))
    if n > 1:
        return _parallel(source, store, work, filt, n, outer)
    return _serial(source, store, work, filt)


def _say_resuming(store: Store, source_key: str) -> None:
    """After an interrupted export of this source, say how much is there already."""
    last = [r for r in store.catalog.runs() if r[1] == "export" and r[2] == source_key]
    if last and last[-1][5] in ("interrupted", "failed"):
        log.warning("resuming: %d already stored", store.catalog.count_source(source_key))


def _interrupted_runs(store: Store) -> bool:
    """Runs still marked running: their process died (we hold the lock now)."""
    return end_dead_runs(store.catalog)


def _fetch(
    source: Source, store: Store, info: FolderInfo, row: FolderRow, filt: FetchFilter
) -> Iterator[FetchResult]:
    cursor = store.catalog.cursor(source.key, row.id)
    known: Container[tuple[str, str]] = _Known(store, row.id, source.key)
    return source.fetch(info, cursor, filt, known)


def _serial(
    source: Source, store: Store, work: list[tuple[FolderInfo, FolderRow]], filt: FetchFilter
) -> Iterator[tuple[FolderRow, FetchResult]]:
    for info, row in work:
        for item in _fetch(source, store, info, row, filt):
            yield row, item


_DONE = object()


def _fetch_worker(
    source: Source,
    store: Store,
    todo: queue.Queue[tuple[FolderInfo, FolderRow]],
    out: Channel[object],
    filt: FetchFilter,
    stop: threading.Event,
) -> None:
    try:
        while not stop.is_set():
            try:
                info, row = todo.get_nowait()
            except queue.Empty:
                return
            for item in _fetch(source, store, info, row, filt):
                if stop.is_set():
                    return
                out.put((row, item))
    except BaseException as e:  # handed to the writer thread, which re-raises
        out.put(e)
    finally:
        out.put(_DONE)


def _parallel(
    source: Source,
    store: Store,
    work: list[tuple[FolderInfo, FolderRow]],
    filt: FetchFilter,
    n: int,
    outer: Stopper,
) -> Iterator[tuple[FolderRow, FetchResult]]:
    """Fetch folders on `n` threads; the caller's thread stays the only writer.

    The channel is bounded, so a slow disk holds the fetchers back and memory
    stays flat whatever the mailbox size.
    """
    todo: queue.Queue[tuple[FolderInfo, FolderRow]] = queue.Queue()
    for w in work:
        todo.put(w)
    out: Channel[object] = Channel(4 * n)
    stop = threading.Event()
    args = (source, store, todo, out, filt, stop)
    threads = [threading.Thread(target=_fetch_worker, args=args, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    finished = 0
    try:
        while finished < n:
            for got in out.take():
                if got is _DONE:
                    finished += 1
                elif isinstance(got, BaseException):
                    raise got
                else:
                    yield got  # type: ignore[misc]
                out.done()
    finally:
        stop.set()
        _drain(out, threads, outer)


def _drain(out: Channel[object], threads: list[threading.Thread], outer: Stopper) -> None:
    """Unblock fetchers stuck on a full channel so they can see `stop`. After a Ctrl-C's
    grace, fetchers still blocked on a silent server are left behind (daemon threads
    that write nothing to the store)."""
    out.done(None)  # what the writer took and will not finish
    while any(t.is_alive() for t in threads) and not outer.expired:
        out.done(len(out.take(timeout=0.1)))


def _take(
    writer: StoreWriter,
    row: FolderRow,
    item: FetchResult,
    filt: FetchFilter,
    result: RunResult,
    progress: Progress,
) -> None:
    folder = path_text(row.info.path)
    if folder != result.current:
        result.current = folder
        tell_folder(progress, folder)
    if isinstance(item, Fetched):
        if _outside_dates(item, filt):
            writer.advance(row, item.cursor)  # excluded on purpose: counted, not a problem
            result.count(folder, "filtered")
            return
        if filt.max_size is not None and len(item.raw) > filt.max_size:
            reason = f"larger than --max-size ({len(item.raw)} > {filt.max_size} bytes)"
            item = Skipped(item.meta, reason, item.cursor)
        elif len(item.raw) > writer_mod.FAT32_MAX_FILE:
            # Every store must survive a copy to FAT32 media, whatever disk it is on now.
            reason = f"larger than 4 GiB ({len(item.raw)} bytes): a store file must fit FAT32"
            item = Skipped(item.meta, reason, item.cursor)
    if isinstance(item, Skipped):
        writer.skip(row, item)
        result.count(folder, "skipped")
        meta = item.meta
        result.problems.append(Problem("export", row.info.path, meta.source_id, item.reason,
                                       subject=meta.subject, date=meta.received))  # fmt: skip
    else:
        outcome = writer.add(row, item)
        result.count(folder, outcome)
        if outcome == "stored":
            result.count(folder, "bytes", len(item.raw))
            for note in item.notes:  # stored, but not everything came across
                writer.problem(row, item.meta.source_id, f"stored, but {note}")
                result.problems.append(
                    Problem("export", row.info.path, item.meta.source_id, f"stored, but {note}",
                            subject=item.meta.subject, date=item.meta.received)
                )  # fmt: skip
                result.count(folder, "changed")
    progress.advance(1, len(item.raw) if isinstance(item, Fetched) else 0)


def _outside_dates(item: Fetched, filt: FetchFilter) -> bool:
    """The pipeline re-checks the date filter, so a source that cannot apply
    it server-side stays correct."""
    received = item.meta.received
    if received is None:
        return False
    if filt.since is not None and received < filt.since:
        return True
    return filt.before is not None and received >= filt.before


def __getattr__(name: str) -> object:
    """`pipeline.import_`, loaded when first asked for: an export never needs
    the import stage (pstkit.importing, its plan and ledger code)."""
    if name == "import_":
        from pstkit.importing import import_  # noqa: PLC0415 - see above

        return import_
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["NullProgress", "Progress", "RunResult", "export", "import_"]
