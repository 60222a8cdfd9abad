"""The terminal as an object: streams, TTY-ness, output mode (tests replace it)."""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from pstkit.runlog import RunLog, store_log_path
from pstkit.runs import RunResult

if TYPE_CHECKING:  # tqdm (~30 ms) is imported only when a bar is shown
    from tqdm import tqdm


@dataclass
class Env:
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    json: bool = False
    debug: bool = False
    quiet: bool = False
    verbose: bool = False
    log_handler: logging.Handler | None = None
    #: --log-file: a copy of each run's log (the store keeps its own in logs/)
    log_file: Path | None = None
    #: the command line, for run logs (main() sets it)
    argv: list[str] = field(default_factory=list)

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
    """pstkit.runs.Progress on a tqdm bar on stderr (silent when not a TTY), with
    MB/s and the current folder; also the run's log file (pstkit.runs.RunObserver)."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.bar: tqdm[Any] | None = None
        self.log: RunLog | None = None
        self.nbytes = 0
        self.since = time.monotonic()
        self.current = ""

    def start(self, label: str, total: int | None) -> None:
        self.nbytes, self.since = 0, time.monotonic()
        self.bar = None
        if self.env.progress_enabled:
            from tqdm import tqdm  # noqa: PLC0415 - only when a bar is shown

            self.bar = tqdm(total=total, desc=label, unit="msg", file=self.env.stderr,
                            dynamic_ncols=True)  # fmt: skip

    def advance(self, items: int = 1, nbytes: int = 0) -> None:
        self.nbytes += nbytes
        if self.bar is not None:
            self.bar.update(items)
            rate = self.nbytes / 1e6 / max(time.monotonic() - self.since, 1e-3)
            self.bar.set_postfix_str(f"{rate:.2f} MB/s {self.current}", refresh=False)

    def folder(self, name: str) -> None:
        self.current = name or "/"
        logging.getLogger("pstkit").debug("folder %s", self.current)

    def run_started(self, run_id: int, kind: str, peer: str, store_root: Path) -> None:
        paths = [store_log_path(store_root, run_id)]
        if self.env.log_file is not None:
            paths.append(self.env.log_file)
        try:
            self.log = RunLog(paths, self.env.argv, logging.getLogger("pstkit"))
        except OSError as e:  # a read-only store copy: the run goes on without its log
            logging.getLogger("pstkit").warning("cannot write the run log: %s", e)
            return
        self.log.start(run_id, kind, peer, store_root)

    def run_finished(self, result: RunResult, status: str) -> None:
        if self.log is not None:
            self.log.finish(result, status)
            self.log.close()
            self.log = None

    def done(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
