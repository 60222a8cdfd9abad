"""What a run reports while it works and when it is done, and its record in the catalog."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from pstkit.catalog import Catalog
from pstkit.errors import EXIT_OK, EXIT_PROBLEMS, Interrupted, StoreWriteError
from pstkit.model import Problem

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


@dataclass
class RunResult:
    run_id: int
    kind: str
    stats: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_PROBLEMS if self.problems else EXIT_OK


@contextmanager
def recorded_run(catalog: Catalog, kind: str, peer: str, progress: Progress) -> Iterator[RunResult]:
    """A run row from start to end: ok, problems, failed or interrupted."""
    result = RunResult(catalog.begin_run(kind, peer), kind)
    status = "failed"
    try:
        yield result
        status = "ok" if not result.problems else "problems"
    except KeyboardInterrupt:
        status = "interrupted"
        raise Interrupted() from None
    finally:
        progress.done()
        try:
            catalog.finish_run(result.run_id, status, dict(result.stats))
        except StoreWriteError:
            # The disk is full or gone: the run stays "running", and the next
            # writer treats it as interrupted. The original error is what matters.
            log.warning("could not record the end of run %d", result.run_id)
