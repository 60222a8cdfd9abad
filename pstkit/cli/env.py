"""The terminal as an object: streams, TTY-ness, output mode (tests replace it)."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from tqdm import tqdm


@dataclass
class Env:
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    json: bool = False
    debug: bool = False
    quiet: bool = False
    log_handler: logging.Handler | None = None

    @property
    def progress_enabled(self) -> bool:
        return not self.quiet and self.stderr.isatty()

    def out(self, line: str = "") -> None:
        print(line, file=self.stdout)

    def err(self, line: str) -> None:
        """A message for the person at the terminal (stderr)."""
        print(line, file=self.stderr)


def print_json(env: Env, data: Any) -> None:
    json.dump(data, env.stdout, ensure_ascii=False, indent=2, default=str)
    env.stdout.write("\n")


class TqdmProgress:
    """pstkit.runs.Progress on a tqdm bar on stderr; silent when not a TTY."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.bar: tqdm[Any] | None = None

    def start(self, label: str, total: int | None) -> None:
        self.bar = tqdm(
            total=total, desc=label, unit="msg", file=self.env.stderr,
            disable=not self.env.progress_enabled, dynamic_ncols=True,
        )  # fmt: skip

    def advance(self, items: int = 1, nbytes: int = 0) -> None:
        if self.bar is not None:
            self.bar.update(items)

    def done(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
