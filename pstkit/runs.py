"""What a run reports while it works and when it is done (no I/O)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from pstkit.errors import EXIT_OK, EXIT_PROBLEMS
from pstkit.model import Problem


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
