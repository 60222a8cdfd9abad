"""What a run reports while it works and when it is done, and its record in the catalog."""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from pstkit.catalog import Catalog
from pstkit.errors import EXIT_OK, EXIT_PROBLEMS, Interrupted, StoreWriteError
from pstkit.model import Problem
from pstkit.spool import Spool

log = logging.getLogger("pstkit")


class Progress(Protocol):
    def start(self, label: str, total: int | None) -> None: ...
    def advance(self, items: int = 1, nbytes: int = 0) -> None: ...
    def done(self) -> None: ...


class NullProgress:
    def start(self, label: str, total: int | None) -> None:
        pass

    def advance(self, items: int = 1, nbytes: int = 0) -> None:
        pass

    def done(self) -> None:
        pass


@runtime_checkable
class RunObserver(Protocol):
    """Optional for a Progress: told when a run starts and ends (the CLI opens
    the run's log file then) and which folder is being worked on."""

    def run_started(self, run_id: int, kind: str, peer: str, store_root: Path) -> None: ...
    def run_finished(self, result: RunResult, status: str) -> None: ...
    def folder(self, name: str) -> None: ...


def tell_folder(progress: Progress, name: str) -> None:
    if isinstance(progress, RunObserver):
        progress.folder(name)


#: stats keys that are not counts of items
NOT_ITEMS = frozenset({"bytes"})
#: outcomes that are a success with a note, not a failure (exit 0, counted as warnings)
NOTED = frozenset({"changed"})


@dataclass
class RunResult:
    run_id: int
    kind: str
    stats: Counter[str] = field(default_factory=Counter)
    #: held in memory up to a point, then in a temporary file (one per message is possible)
    problems: Spool[Problem] = field(default_factory=Spool)
    #: per folder ("/"-joined): the same counts as `stats`
    folders: dict[str, Counter[str]] = field(default_factory=dict)
    #: items that were already there before this run (stored, or delivered)
    already: int = 0
    started: float = field(default_factory=time.monotonic)
    elapsed: float = 0.0
    current: str | None = None  # the folder being worked on (for progress)
    error: str = ""  # why the run failed, kept in the store's run row

    def count(self, folder: str, outcome: str, n: int = 1) -> None:
        self.stats[outcome] += n
        counts = self.folders.get(folder)
        if counts is None:  # not setdefault: that built a Counter at every call
            counts = self.folders[folder] = Counter()
        counts[outcome] += n

    @property
    def exit_code(self) -> int:
        """0 also when items arrived with a note ("stored, but …"): that is a
        warning, counted, not a failure. 1 when an item was skipped or failed."""
        return EXIT_PROBLEMS if self.failed else EXIT_OK

    @property
    def failed(self) -> bool:
        """Whether any problem cost an item."""
        return any(not is_note(p.reason) for p in self.problems)

    def record(self) -> dict[str, object]:
        """What the catalog's runs row keeps: the counts, and the run's shape."""
        return {**dict(self.stats), "already": self.already,
                "seconds": round(self.elapsed, 3),
                "folders": {f: dict(c) for f, c in self.folders.items()},
                **({"error": self.error} if self.error else {})}  # fmt: skip


#: words of a note that says the item itself may be incomplete or altered (read from a
#: damaged file): such an item arrived, but it still counts as a failure (exit 1)
_DAMAGE = re.compile(r"damaged|unreadable|\blost\b|may be changed|truncated", re.IGNORECASE)


def is_note(reason: str) -> bool:
    """A problem recorded next to an item that still arrived whole: a warning (exit 0),
    e.g. "stored, but attachment 1 is an OLE object, kept as raw bytes"."""
    return reason.startswith(("stored, but", "delivered, but")) and not _DAMAGE.search(reason)


def end_dead_runs(catalog: Catalog) -> bool:
    """Rows still "running" belong to a process that died (kill -9, power loss): every
    recorded run holds the store's lock, and this one has it now. Export did this for
    itself only, so after a killed import or verify `ls` and the report said "running"
    for good, and with no items: what it committed is counted from its rows. True if
    there were any."""
    stale = [r for r in catalog.runs() if r[5] == "running"]
    for r in stale:
        run_id = int(str(r[0]))
        stats = {**catalog.dead_run_counts(run_id, str(r[1])),
                 **_dead_run_seconds(catalog, run_id, str(r[3]))}  # fmt: skip
        catalog.finish_run(run_id, "interrupted", stats)
    return bool(stale)


def _dead_run_seconds(catalog: Catalog, run_id: int, started: str) -> dict[str, object]:
    """How long a dead run ran: until its log's last write (the log is written as the
    run goes). Its end is found only by the next run, maybe days later: that moment as
    its end made the report say a killed run took days. Nothing when there is no log."""
    log = catalog.path.parent / "logs" / f"run-{run_id}.log"  # runlog.store_log_path
    try:
        last = datetime.fromtimestamp(log.stat().st_mtime, UTC)
        seconds = (last - datetime.fromisoformat(started)).total_seconds()
    except (OSError, ValueError, TypeError):
        return {}
    return {"seconds": round(max(seconds, 0.0), 3)}


@contextmanager
def recorded_run(catalog: Catalog, kind: str, peer: str, progress: Progress) -> Iterator[RunResult]:
    """A run row from start to end: ok, problems, failed or interrupted."""
    end_dead_runs(catalog)
    result = RunResult(catalog.begin_run(kind, peer), kind)
    status = "failed"
    observer = progress if isinstance(progress, RunObserver) else None
    if observer is not None:
        observer.run_started(result.run_id, kind, peer, catalog.path.parent)
    try:
        yield result
        status = "problems" if result.failed else "ok"
    except KeyboardInterrupt:
        status = "interrupted"
        raise Interrupted() from None
    except Exception as e:
        result.error = str(getattr(e, "message", "") or e)
        raise
    finally:
        result.elapsed = time.monotonic() - result.started
        progress.done()
        if observer is not None:
            observer.run_finished(result, status)
        try:
            catalog.finish_run(result.run_id, status, result.record())
        except StoreWriteError:
            # The disk is full or gone: the run stays "running", and the next
            # writer treats it as interrupted. The original error is what matters.
            log.warning("could not record the end of run %d", result.run_id)
