"""Stage 2: store -> sink, with the delivery ledger; and `verify`.

The ledger (catalog table `deliveries`) is written only after the sink said
a batch is durable, so a killed import re-sends at most the one batch that
was in flight, and sinks de-duplicate that by the key stamped on each item.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from pstkit.catalog import MessageRow, path_to_text
from pstkit.errors import IntegrityError
from pstkit.mapping import PlanEntry, StoreFolder, plan
from pstkit.model import DuplicatePolicy, FolderPath, Problem, StoredMessage
from pstkit.options import MappingOptions
from pstkit.protocols import Failed, Sink, TargetItem
from pstkit.runs import NullProgress, Progress, RunResult, recorded_run
from pstkit.store import Store


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
) -> RunResult:
    opts = opts or MappingOptions()
    progress = progress or NullProgress()
    with recorded_run(store.catalog, "import", sink.key, progress) as result:
        entries = make_plan(store, sink, opts)
        for entry in entries:  # parents first, on one thread: creation order matters
            if _wanted(entry):
                sink.ensure_folder(entry.target, entry.role, entry.source.info.container_class)
        delivered = store.catalog.delivered_ids(sink.key)
        progress.start("import", sum(e.source.count for e in entries) - len(delivered) or None)
        job = _ImportJob(
            store, sink, opts.duplicates, result, progress, delivered,
            in_flight=store.catalog.sending_ids(sink.key),
            ours=store.catalog.delivered_target_ids(sink.key),
        )  # fmt: skip
        n = max(1, min(connections, sink.max_connections))
        if n == 1:
            for entry in entries:
                job.folder(entry)
        else:
            with concurrent.futures.ThreadPoolExecutor(n) as pool:
                for fut in [pool.submit(job.folder, e) for e in entries]:
                    fut.result()
    return result


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
    delivered: set[int]
    #: items of a batch that was in flight when an earlier run died: they are
    #: checked for in the target whatever the policy, so none arrives twice.
    in_flight: set[int] = field(default_factory=set)
    #: (target folder, target id) this store delivered or claimed as a duplicate in
    #: this run: never taken again, so identical copies in the store are distinct items
    #: (two copies in the store -> two in the target). Keyed by folder because ids need
    #: not be unique across folders (IMAP "UIDVALIDITY:UID": Cyrus gives every folder
    #: created in one second the same UIDVALIDITY).
    ours: set[tuple[str, str]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def folder(self, entry: PlanEntry) -> None:
        for batch in self._batches(entry):
            self._deliver(entry.target, batch)

    def _batches(self, entry: PlanEntry) -> Iterator[list[MessageRow]]:
        limit = self.sink.batch_limit
        batch: list[MessageRow] = []
        size = 0
        for row in self.store.rows(entry.source.id):
            if row.msg.id in self.delivered:
                continue
            if batch and (len(batch) >= limit.max_items or size + row.msg.size > limit.max_bytes):
                yield batch
                batch, size = [], 0
            batch.append(row)
            size += row.msg.size
        if batch:
            yield batch

    def _deliver(self, target: FolderPath, rows: list[MessageRow]) -> None:
        done: list[tuple[int, FolderPath, str, str]] = []
        problems: list[tuple[str, str, str, str]] = []
        send: list[tuple[StoredMessage, bytes]] = []
        for row in rows:
            try:
                raw = self.store.read(row)
            except IntegrityError as e:
                problems.append(self._problem(row.msg, f"store file damaged: {e}"))
                continue
            dups = self._duplicates(row.msg, raw, target)
            if dups and (self.policy is DuplicatePolicy.SKIP or row.msg.id in self.in_flight):
                claimed = self._claim(target, dups)
                if claimed is not None:
                    done.append((row.msg.id, target, claimed, "duplicate"))
                    continue
                dups = []  # another thread took the last one: this copy is sent
            if dups:
                self.sink.delete(target, dups)
                self.result.stats["replaced"] += 1
            send.append((row.msg, raw))
        if send:
            # Mark the batch in flight first: if this process dies before the
            # ledger is written, the next run looks in the target for these.
            marks = [(m.id, target, "", "sending") for m, _ in send]
            self.store.catalog.record_deliveries(self.result.run_id, self.sink.key, marks)
        results = self.sink.put_batch(target, send) if send else []
        for (msg, raw), res in zip(send, results, strict=True):
            if isinstance(res, Failed):
                # Stays "sending": the next run retries it (after a look in the target).
                problems.append(self._problem(msg, res.reason))
                continue
            done.append((msg.id, target, res.target_id, "delivered"))
            if res.note:
                problems.append(self._problem(msg, f"delivered, but {res.note}", failed=False))
            self.result.stats["bytes"] += len(raw)
            with self.lock:
                self.ours.add((path_to_text(target), res.target_id))
        self.store.catalog.record_deliveries(self.result.run_id, self.sink.key, done, problems)
        self._count(done, len(rows))

    def _duplicates(self, msg: StoredMessage, raw: bytes, target: FolderPath) -> list[str]:
        if self.policy is DuplicatePolicy.ALLOW and msg.id not in self.in_flight:
            return []
        found = self.sink.find_duplicates(msg, raw, target)
        folder = path_to_text(target)
        with self.lock:
            return [t for t in found if (folder, t) not in self.ours]

    def _claim(self, target: FolderPath, found: list[str]) -> str | None:
        """Take the first of `found` nobody has taken (checked and taken under one lock,
        as two store folders may share a target folder on two threads)."""
        folder = path_to_text(target)
        with self.lock:
            for t in found:
                if (folder, t) not in self.ours:
                    self.ours.add((folder, t))  # the next identical copy needs another one
                    return t
        return None

    def _problem(
        self, msg: StoredMessage, reason: str, failed: bool = True
    ) -> tuple[str, str, str, str]:
        self.result.problems.append(Problem("import", msg.folder, str(msg.id), reason))
        self.result.stats["failed" if failed else "changed"] += 1
        return ("import", path_to_text(msg.folder), str(msg.id), reason)

    def _count(self, done: Sequence[tuple[int, FolderPath, str, str]], n: int) -> None:
        for _, _, _, how in done:
            self.result.stats[how] += 1
        self.progress.advance(n)


# --- verify ----------------------------------------------------------------


@dataclass(frozen=True)
class VerifyLine:
    """One `rclone check`-style line: = same, - missing in target,
    + only in target, * differs, ! could not be compared."""

    mark: str
    folder: FolderPath
    item: str
    detail: str = ""


def verify(store: Store, sink: Sink, opts: MappingOptions | None = None) -> Iterator[VerifyLine]:
    opts = opts or MappingOptions()
    ledger = store.catalog.deliveries(sink.key)
    existing = {f.path for f in sink.folders()}
    for entry in make_plan(store, sink, opts):
        if not _wanted(entry):
            continue
        if entry.target not in existing:
            for row in store.rows(entry.source.id):
                yield VerifyLine("-", entry.target, str(row.msg.id), "folder missing in target")
            continue
        yield from _verify_folder(store, sink, entry, ledger)


def _verify_folder(
    store: Store, sink: Sink, entry: PlanEntry, ledger: dict[int, tuple[str, str, str]]
) -> Iterator[VerifyLine]:
    items = list(sink.inventory(entry.target))
    by_id = {i.target_id: i for i in items if i.target_id}
    by_key = {i.stable_key: i for i in items if i.stable_key}
    by_mid = {(i.message_id, i.size): i for i in items if i.message_id}
    used: set[str] = set()
    for row in store.rows(entry.source.id):
        msg = row.msg
        target_id = ledger.get(msg.id, ("", "", ""))[1]
        found = (
            by_id.get(target_id)
            or by_key.get(msg.stable_key)
            or by_mid.get((msg.message_id, msg.size))
        )
        if found is None:
            yield VerifyLine("-", entry.target, str(msg.id), msg.subject)
            continue
        used.add(found.target_id)
        yield _compare(store, row, entry.target, found)
    for item in items:
        if item.target_id not in used:
            yield VerifyLine("+", entry.target, item.target_id, item.subject)


def _compare(store: Store, row: MessageRow, folder: FolderPath, item: TargetItem) -> VerifyLine:
    msg = row.msg
    if item.sha256 and item.sha256 != msg.sha256:
        # IMAP servers store bare LF line ends as CRLF (RFC 5322 requires CRLF):
        # the same message, with its line ends normalised, is not a difference.
        if hashlib.sha256(crlf(store.read(row))).hexdigest() == item.sha256:
            return VerifyLine(
                "=", folder, str(msg.id), f"{msg.subject} (line ends made CRLF by the target)"
            )
        return VerifyLine("*", folder, str(msg.id), "content differs")
    if item.subject and msg.subject and item.subject != msg.subject:
        return VerifyLine("*", folder, str(msg.id), f"subject {item.subject!r} != {msg.subject!r}")
    return VerifyLine("=", folder, str(msg.id), msg.subject)


def crlf(raw: bytes) -> bytes:
    """Every line end as CRLF (bare CR and bare LF included)."""
    return re.sub(rb"\r\n|\r|\n", b"\r\n", raw)
