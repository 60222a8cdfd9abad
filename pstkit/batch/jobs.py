"""One mailbox job: the same function under every engine.

A job is export (source -> store), import (store -> target) or both
(source -> store -> target). Its state is the store itself: export resumes
from the store's cursors, import skips what the store's ledger says was
delivered, so running a job twice (a redelivered broker message, a batch
submitted again) only finishes what is missing. Two runs of one job at the
same time are kept apart by the store's writer lock: `run_job` lets
`StoreLocked` through so that the engine can make the second one wait.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from pstkit.errors import EXIT_CONNECTION, PstkitError, StoreLocked
from pstkit.importing import import_
from pstkit.location import Location
from pstkit.options import ConnectOptions, FetchFilter, MappingOptions, SecretSpec
from pstkit.pipeline import export
from pstkit.protocols import Sink, Source
from pstkit.store import Store

#: an update of a job's state: {"state": "running", "host": ...} or {"progress": n}
Report = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Job:
    """Plain data only (it crosses a broker as JSON; see `records`). No secrets."""

    batch: str
    key: str  # the mailbox's name in its batch (an address), unique there
    store: str  # where the mailbox's store is (a path every worker can reach)
    source: Location | None = None  # export from here first (None: the store is the source)
    target: Location | None = None  # then import into here (None: export only)
    source_options: ConnectOptions = field(default_factory=ConnectOptions)
    target_options: ConnectOptions = field(default_factory=ConnectOptions)
    filt: FetchFilter = field(default_factory=FetchFilter)
    mapping: MappingOptions = field(default_factory=MappingOptions)

    @property
    def kind(self) -> str:
        if self.source is not None and self.target is not None:
            return "export+import"
        return "export" if self.source is not None else "import"


@dataclass(frozen=True)
class JobSecrets:
    """Passwords of a job's CSV row, in memory only (sealed on a broker)."""

    source: str = field(default="", repr=False)
    target: str = field(default="", repr=False)


@dataclass(frozen=True)
class BatchResult:
    """What one mailbox ended with. Counts are the store's totals, not this
    run's, so a job that ran twice reports the same numbers as one that ran once."""

    email: str
    store: str
    folders: int = 0
    messages: int = 0
    bytes: int = 0
    skipped: int = 0
    new: int = 0  # stored (export) or delivered (import) by this run
    delivered: int = 0  # import: the store's messages the target has (ledger)
    error: str = ""
    exit_code: int = 0
    seconds: float = 0.0


class Openers(Protocol):
    """The converter registry, handed in (the core does not import converters)."""

    def open_source(self, loc: Location, options: ConnectOptions) -> Source: ...
    def open_sink(self, loc: Location, options: ConnectOptions) -> Sink: ...


class _Counting:
    """pstkit.runs.Progress that reports the running count at most once a second."""

    def __init__(self, report: Report, stage: str) -> None:
        self.report, self.stage, self.count, self.last = report, stage, 0, 0.0

    def start(self, label: str, total: int | None) -> None:
        self.report({"stage": self.stage, "progress": 0, "total": total})

    def advance(self, items: int = 1, nbytes: int = 0) -> None:
        self.count += items
        if time.monotonic() - self.last >= 1.0:
            self.last = time.monotonic()
            self.report({"progress": self.count})

    def done(self) -> None:
        self.report({"progress": self.count})


def run_job(job: Job, secrets: JobSecrets, openers: Openers, report: Report) -> BatchResult:
    """Run one job to its end; a PstkitError becomes the result's error
    (one mailbox never stops the others). StoreLocked is raised: the engine
    decides (wait for the other run of this mailbox)."""
    start = time.monotonic()
    report({"state": "running", "host": socket.gethostname(), "pid": os.getpid()})
    new = delivered = 0
    try:
        if job.source is not None:
            new = _export(job, secrets, openers, report)
        if job.target is not None:
            new, delivered = _import(job, secrets, openers, report)
        totals = _totals(job)
    except StoreLocked:
        raise
    except PstkitError as e:
        return BatchResult(job.key, job.store, error=e.message, exit_code=e.exit_code,
                           seconds=time.monotonic() - start)  # fmt: skip
    return replace(totals, new=new, delivered=delivered, seconds=time.monotonic() - start)


def _with_secret(options: ConnectOptions, value: str) -> ConnectOptions:
    return replace(options, password=SecretSpec(value=value, prompt=False)) if value else options


def _export(job: Job, secrets: JobSecrets, openers: Openers, report: Report) -> int:
    assert job.source is not None
    source = openers.open_source(job.source, _with_secret(job.source_options, secrets.source))
    try:
        with Store.create(Path(job.store), command=f"export {source.key}") as store:
            result = export(source, store, job.filt, _Counting(report, "export"),
                            job.source_options.connections)  # fmt: skip
    finally:
        source.close()
    return int(result.stats["stored"])


def _import(job: Job, secrets: JobSecrets, openers: Openers, report: Report) -> tuple[int, int]:
    """(delivered by this run, the store's messages the target now has)."""
    assert job.target is not None
    sink = openers.open_sink(job.target, _with_secret(job.target_options, secrets.target))
    try:
        with Store.open(Path(job.store), writable=True, command=f"import {sink.key}") as store:
            result = import_(store, sink, job.mapping, _Counting(report, "import"),
                             job.target_options.connections)  # fmt: skip
            delivered = store.catalog.delivered_count(sink.key)
    finally:
        sink.close()
    return int(result.stats["imported"]), delivered


def _totals(job: Job) -> BatchResult:
    """The store's own totals (read-only open: no lock needed)."""
    with Store.open(Path(job.store)) as store:
        counts = store.catalog.counts()
        skipped = len(store.catalog.problems())
        return BatchResult(
            job.key, job.store, folders=len(store.folders()),
            messages=sum(n for n, _ in counts.values()), bytes=sum(b for _, b in counts.values()),
            skipped=skipped, exit_code=1 if skipped else 0,
        )  # fmt: skip


def retry_delay(result: BatchResult, attempt: int, max_attempts: int) -> float | None:
    """Seconds to wait before trying a failed job again, or None: give up.
    Only connection trouble is worth another try; a wrong password or a bad
    location fails the same way every time."""
    if result.exit_code != EXIT_CONNECTION or attempt >= max_attempts:
        return None
    return float(min(60, 2**attempt))
