"""Stage 2: store -> sink, with the delivery ledger; and `verify`.

The ledger (catalog table `deliveries`) is written only after the sink said
a batch is durable, so a killed import re-sends at most the one batch that
was in flight, and sinks de-duplicate that by the key stamped on each item.
Sinks that create and then finish an item (`TwoStepSink`) report the ids
they created; the ledger keeps them on the "sending" rows so a later run
finishes those items instead of sending them again.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from pstkit.bwlimit import TokenBucket
from pstkit.catalog import MessageRow, path_to_text
from pstkit.errors import IntegrityError
from pstkit.interrupt import StopNow, Stopper, stop_on_signal
from pstkit.mapping import PlanEntry, StoreFolder, path_text, plan
from pstkit.model import Delivered, DuplicatePolicy, FolderPath, Problem, StoredMessage
from pstkit.options import MappingOptions
from pstkit.protocols import AtomicSink, Failed, LookAhead, Sink, TwoStepSink
from pstkit.redeliver import reopen_missing, report_gone
from pstkit.runs import NullProgress, Progress, RunResult, recorded_run, tell_folder
from pstkit.store import Store

log = logging.getLogger("pstkit")
#: bytes of the next batch read while one is delivered: enough for the PST writer's child
#: to start on the next batch (the rest goes to it from the duplicate check); 8 MiB, and
#: a whole batch before that, only cost memory (peak 198-208 MiB at 20,000 messages)
READ_AHEAD_BYTES = 4 << 20


def store_folders(store: Store) -> list[StoreFolder]:
    counts = store.catalog.counts()
    return [StoreFolder(f.id, f.info, *counts.get(f.id, (0, 0))) for f in store.folders()]


def make_plan(store: Store, sink: Sink, opts: MappingOptions) -> list[PlanEntry]:
    return plan(store_folders(store), sink.folders(), opts)


def import_(
    store: Store,
    sink: Sink,
    opts: MappingOptions | None = None,
    progress: Progress | None = None,
    connections: int = 1,
    limit: TokenBucket | None = None,
    redeliver: bool = False,
) -> RunResult:
    """Deliver every planned store folder to `sink`. The first Ctrl-C stops after the
    batch at hand; a batch still waiting on the target after a moment is cut and stays
    marked "sending" (the next run looks for it in the target first). With `redeliver`,
    also what the ledger has but the target lost (`pstkit.redeliver`)."""
    opts = opts or MappingOptions()
    progress = progress or NullProgress()
    with recorded_run(store.catalog, "import", sink.key, progress) as result, \
            stop_on_signal() as stop:
        store.catalog.ensure_indexes()  # `_ImportJob.taken` and the paged folder reads use them
        with stop.waiting():  # the target's folders: nothing is recorded yet
            entries = make_plan(store, sink, opts)
            for entry in entries:  # parents first, on one thread: creation order matters
                if _wanted(entry):
                    sink.ensure_folder(entry.target, entry.role,
                                       entry.source.info.container_class)  # fmt: skip
            if redeliver:
                reopen_missing(store, sink, opts, result.run_id)
            else:
                report_gone(store, sink, result)
        result.already = store.catalog.delivered_count(sink.key)
        progress.start("import", sum(e.source.count for e in entries) - result.already or None)
        job = _ImportJob(
            store, sink, opts.duplicates, result, progress,
            in_flight=store.catalog.in_flight(sink.key), stop=stop, limit=limit,
        )  # fmt: skip
        n = max(1, min(connections, sink.max_connections))
        with contextlib.suppress(StopNow):
            _run_folders(job, entries, n)
        if stop.is_set():
            raise KeyboardInterrupt  # recorded as "interrupted", with what was delivered
    return result


def _run_folders(job: _ImportJob, entries: list[PlanEntry], n: int) -> None:
    """Folders on `n` threads (each takes the next folder). They are daemon threads, so
    after a Ctrl-C's grace one blocked on a silent target is not waited for (nothing is
    recorded while it waits). The first error is raised once every thread is done."""
    if n == 1:
        job.folders(entries)
        return
    todo: queue.SimpleQueue[PlanEntry] = queue.SimpleQueue()
    for entry in entries:
        todo.put(entry)
    errors: list[BaseException] = []

    def work() -> None:
        while True:
            try:
                entry = todo.get_nowait()
            except queue.Empty:
                return
            try:
                job.folder(entry)
            except BaseException as e:  # raised by the caller's thread
                errors.append(e)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    with job.stop.waiting():
        for t in threads:
            t.join()
    if errors:
        raise errors[0]


def _wanted(entry: PlanEntry) -> bool:
    """A folder that was only a name in the source's tree (not selectable, no
    mail) is not created: sinks create parents as their children need them."""
    return entry.source.info.selectable or entry.source.count > 0


@dataclass
class _ImportJob:
    store: Store
    sink: Sink
    policy: DuplicatePolicy
    result: RunResult
    progress: Progress
    #: items of a batch that was in flight when an earlier run died (-> the
    #: target id a two-step sink made, or ""): they are checked for in the
    #: target whatever the policy, so none arrives twice.
    in_flight: dict[int, str] = field(default_factory=dict)
    #: (target folder, target id) this store delivered or claimed as a duplicate: never
    #: taken again, so identical copies in the store are distinct items (two copies in
    #: the store -> two in the target). Keyed by folder because ids need not be unique
    #: across folders (IMAP "UIDVALIDITY:UID": Cyrus gives every folder created in one
    #: second the same UIDVALIDITY). The ledger holds those recorded (asked with an
    #: index: memory does not grow with the mailbox); `pending` those of this run not
    #: yet recorded. An entry leaves `pending` only after the ledger's commit, and
    #: `_taken` looks in `pending` first, so a claim is never in neither.
    pending: set[tuple[str, str]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: Stopper = field(default_factory=Stopper)
    #: --bwlimit: each batch's bytes are taken before it goes to the sink
    limit: TokenBucket | None = None

    @property
    def _atomic(self) -> bool:
        return isinstance(self.sink, AtomicSink) and self.sink.shows_nothing_before_close()

    def folder(self, entry: PlanEntry) -> None:
        self.folders([entry])

    def folders(self, entries: Sequence[PlanEntry]) -> None:
        """The folders' batches in turn, read ahead across folders: the next folder's
        first batch is read (and shown to a LookAhead sink) while the last batch of one
        is delivered, as within a folder. Folder by folder, each folder's first batch was
        read with nothing else running (~20 folders in the bench mailbox)."""
        untold = iter(entries)  # told in order, the empty ones as they are passed

        def tell_up_to(entry: PlanEntry | None) -> None:
            for e in untold:
                tell_folder(self.progress, path_text(e.target))
                if e is entry:
                    return

        current: PlanEntry | None = None
        for entry, batch, read in self._read_ahead(self._each_batch(entries)):
            if entry is not current:
                tell_up_to(entry)
                current = entry
            if self.stop.is_set():
                return
            self._deliver(entry.target, batch, read)
            # its bytes go now, not when the loop takes the next batch: meanwhile the
            # next one is read and the one after it begins (three batches held)
            del batch, read
        if not self.stop.is_set():
            tell_up_to(None)  # the empty folders after the last batch

    def _each_batch(self, entries: Iterable[PlanEntry]
                    ) -> Iterator[tuple[PlanEntry, list[MessageRow]]]:  # fmt: skip
        for entry in entries:
            if self.stop.is_set():  # no next folder's rows asked for after a Ctrl-C
                return
            for batch in self._batches(entry):
                yield entry, batch

    def _read_ahead(self, batches: Iterable[tuple[PlanEntry, list[MessageRow]]]
                    ) -> Iterator[tuple[PlanEntry, list[MessageRow],
                                        Iterable[bytes | IntegrityError]]]:  # fmt: skip
        """Each batch with its messages' bytes (checked against the catalog), all read by
        a thread: the first READ_AHEAD_BYTES of a batch while the one before it is
        delivered (shown to a LookAhead sink as soon as read), the rest while the batch's
        first messages are looked at. Reading and hashing release the GIL; done in line,
        they were a sixth of the PST writer's time (py-spy, 5,000 bench messages). Not a
        whole batch ahead: with a second batch held, the PST writer's peak memory passed
        200 MiB at 20,000 messages."""
        with ThreadPoolExecutor(1, thread_name_prefix="pstkit-store-read") as pool:
            waiting: tuple[PlanEntry, list[MessageRow],
                           Future[list[bytes | IntegrityError]]] | None = None  # fmt: skip
            for entry, batch in batches:
                if waiting is None:
                    waiting = entry, batch, pool.submit(self._read_first, batch)
                    continue
                rest = self._rest(pool, waiting[1], waiting[2])
                reading = pool.submit(self._read_first, batch)  # after that rest: one worker
                yield waiting[0], waiting[1], rest
                waiting = entry, batch, reading
            if waiting is not None:
                yield waiting[0], waiting[1], self._rest(pool, waiting[1], waiting[2])

    def _read_first(self, rows: list[MessageRow]) -> list[bytes | IntegrityError]:
        got: list[bytes | IntegrityError] = []
        size = 0
        for row in rows:
            if got and size + row.msg.size > READ_AHEAD_BYTES:
                break
            got.append(self._read(row))
            size += row.msg.size
        if isinstance(self.sink, LookAhead):
            self.sink.upcoming([(row.msg, raw) for row, raw in zip(rows, got, strict=False)
                                if not isinstance(raw, IntegrityError)])
        return got

    def _rest(self, pool: ThreadPoolExecutor, rows: list[MessageRow],
              first: Future[list[bytes | IntegrityError]]
              ) -> Iterator[bytes | IntegrityError]:  # fmt: skip
        """The batch's bytes in order: those read ahead, then the others, which the pool
        reads from now on."""
        got = first.result()
        rest = pool.submit(lambda: [self._read(row) for row in rows[len(got):]])

        def each() -> Iterator[bytes | IntegrityError]:
            yield from got
            yield from rest.result()

        return each()

    def _read(self, row: MessageRow) -> bytes | IntegrityError:
        try:
            return self.store.read(row)
        except IntegrityError as e:
            return e

    def _batches(self, entry: PlanEntry) -> Iterator[list[MessageRow]]:
        limit = self.sink.batch_limit
        batch: list[MessageRow] = []
        size = 0
        # the ledger is anti-joined in SQL: memory does not grow with what was delivered
        for row in self.store.rows(entry.source.id, undelivered_to=self.sink.key):
            if batch and (len(batch) >= limit.max_items or size + row.msg.size > limit.max_bytes):
                yield batch
                batch, size = [], 0
            batch.append(row)
            size += row.msg.size
        if batch:
            yield batch

    def _deliver(self, target: FolderPath, rows: list[MessageRow],
                 read: Iterable[bytes | IntegrityError]) -> None:  # fmt: skip
        done: list[tuple[int, FolderPath, str, str]] = []
        problems: list[tuple[str, str, str, str]] = []
        send: list[tuple[StoredMessage, bytes]] = []
        with self.stop.waiting():  # looks in the target; nothing is recorded yet
            for row, raw in zip(rows, read, strict=True):
                self._sort_out(target, row, raw, done, problems, send)
        if send and not self._atomic:
            # Mark the batch in flight first: if this process dies before the
            # ledger is written, the next run looks in the target for these.
            marks = [(m.id, target, "", "sending") for m, _ in send]
            self.store.catalog.record_deliveries(self.result.run_id, self.sink.key, marks)
        with self.stop.waiting():
            if self.limit is not None and send:
                self.limit.take(sum(len(raw) for _, raw in send))
            results = self._put(target, send) if send else []
        for (msg, raw), res in zip(send, results, strict=True):
            if isinstance(res, Failed):
                # Stays "sending": the next run retries it (after a look in the target).
                problems.append(self._problem(target, msg, res.reason))
                continue
            done.append((msg.id, target, res.target_id, "delivered"))
            if res.note:
                problems.append(
                    self._problem(target, msg, f"delivered, but {res.note}", failed=False)
                )
            self.result.count(path_text(target), "bytes", len(raw))
            with self.lock:
                self.pending.add((path_to_text(target), res.target_id))
        self.store.catalog.record_deliveries(self.result.run_id, self.sink.key, done, problems)
        self._recorded(done)
        log.debug("%s: batch of %d recorded (%d sent)", path_text(target), len(rows), len(send))
        self._count(target, done, len(rows), sum(len(raw) for _, raw in send))

    def _sort_out(self, target: FolderPath, row: MessageRow, raw: bytes | IntegrityError,
                  done: list[tuple[int, FolderPath, str, str]],
                  problems: list[tuple[str, str, str, str]],
                  send: list[tuple[StoredMessage, bytes]]) -> None:  # fmt: skip
        """One row of a batch (its bytes as read, or why they could not be): damaged, a
        duplicate already there, or to be sent."""
        if isinstance(raw, IntegrityError):
            problems.append(self._problem(target, row.msg, f"store file damaged: {raw}"))
            return
        dups = self._duplicates(row.msg, raw, target)
        if dups and (self.policy is DuplicatePolicy.SKIP or row.msg.id in self.in_flight):
            claimed = self._claim(target, dups)
            if claimed is not None:
                done.append((row.msg.id, target, claimed, "duplicate"))
                return
            dups = []  # another thread took the last one: this copy is sent
        if dups:
            self.sink.delete(target, dups)
            self.result.count(path_text(target), "replaced")
        send.append((row.msg, raw))

    def _put(
        self, target: FolderPath, send: list[tuple[StoredMessage, bytes]]
    ) -> list[Delivered | Failed]:
        if not isinstance(self.sink, TwoStepSink):
            return self.sink.put_batch(target, send)

        def created(made: Sequence[tuple[int, str]]) -> None:
            marks = [(mid, target, tid, "sending") for mid, tid in made]
            with self.stop.shielded():
                self.store.catalog.record_deliveries(self.result.run_id, self.sink.key, marks)

        return self.sink.put_batch_noting(target, send, created)

    def _duplicates(self, msg: StoredMessage, raw: bytes, target: FolderPath) -> list[str]:
        if self.policy is DuplicatePolicy.ALLOW and msg.id not in self.in_flight:
            return []
        if msg.id in self.in_flight and isinstance(self.sink, TwoStepSink):
            found = self.sink.settle(target, msg, raw, self.in_flight[msg.id])
        else:
            found = self.sink.find_duplicates(msg, raw, target)
        folder = path_to_text(target)
        with self.lock:
            taken = self._taken(folder, found)
            return [t for t in found if t not in taken]

    def _claim(self, target: FolderPath, found: list[str]) -> str | None:
        """Take the first of `found` nobody has taken (checked and taken under one lock,
        as two store folders may share a target folder on two threads)."""
        folder = path_to_text(target)
        with self.lock:
            taken = self._taken(folder, found)
            for t in found:
                if t not in taken:
                    self.pending.add((folder, t))  # the next identical copy needs another one
                    return t
        return None

    def _taken(self, folder: str, found: list[str]) -> set[str]:
        """Those of `found` this store took (call with `lock` held): `pending` is read
        before the ledger, as an entry leaves it only once the ledger holds it."""
        mine = {t for t in found if (folder, t) in self.pending}
        rest = [t for t in found if t not in mine]
        return mine | self.store.catalog.taken_target_ids(self.sink.key, folder, rest)

    def _recorded(self, done: Sequence[tuple[int, FolderPath, str, str]]) -> None:
        """The ledger now holds `done`: its claims leave `pending` (one with no target id
        stays, as the ledger is not asked for those)."""
        with self.lock:
            for _, target, target_id, how in done:
                if target_id and how in ("delivered", "duplicate"):
                    self.pending.discard((path_to_text(target), target_id))

    def _problem(
        self, target: FolderPath, msg: StoredMessage, reason: str, failed: bool = True
    ) -> tuple[str, str, str, str]:
        with self.lock:
            problem = Problem("import", msg.folder, str(msg.id), reason,
                              subject=msg.subject, date=msg.received)  # fmt: skip
            self.result.problems.append(problem)
            self.result.count(path_text(target), "failed" if failed else "changed")
        return ("import", path_to_text(msg.folder), str(msg.id), reason)

    def _count(
        self, target: FolderPath, done: Sequence[tuple[int, FolderPath, str, str]], n: int,
        nbytes: int,
    ) -> None:  # fmt: skip
        with self.lock:
            for _, _, _, how in done:
                self.result.count(path_text(target), how)
        self.progress.advance(n, nbytes)
