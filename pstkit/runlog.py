"""A log file per run, inside the store: `logs/run-N.log` (N = the catalog's run id).

It holds the command line (secrets never reach argv; anything that looks like
one is masked anyway), the versions, every log line of the run at debug level
(folders opened, batches committed, retries), every problem with the item named,
and the closing stats block. Written as it goes, so a killed run leaves its log.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from pstkit import __version__
from pstkit.runs import RunResult
from pstkit.runstats import block, item_text

LOGS = "logs"
_SECRET_OPTION = re.compile(r"^--?[\w-]*(password|secret|token|passphrase)[\w-]*$", re.I)
_SECRET_SAFE = re.compile(r"-(env|file|command)$")


def _python() -> str:
    return ".".join(str(n) for n in sys.version_info[:3])


def _system() -> str:
    """`Linux-6.1.0-x86_64`: platform.platform() unpacks uname(), whose `processor`
    field runs `uname -p` in a child process (fork + exec in every run)."""
    u = os.uname()
    return f"{u.sysname}-{u.release}-{u.machine}"


def redact(argv: Sequence[str]) -> list[str]:
    """The command line with values of secret-looking options and URL
    passwords masked (`--password-file F` names a file, not a secret: kept)."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append("***")
            hide_next = False
            continue
        name, eq, _ = arg.partition("=")
        if _SECRET_OPTION.match(name) and not _SECRET_SAFE.search(name):
            if eq:
                out.append(f"{name}=***")
            else:
                out.append(arg)
                hide_next = True
            continue
        out.append(re.sub(r"(://[^/:@\s]+):[^/@\s]+@", r"\1:***@", arg))
    return out


class RunLog:
    """Writes one run's log to every given file (the store's, and --log-file)."""

    def __init__(self, paths: Sequence[Path], argv: Sequence[str], verbose_to: logging.Logger):
        self.files: list[TextIO] = []
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.files.append(open(path, "a", encoding="utf-8"))  # noqa: SIM115 (closed in close())
        self.handler = _FilesHandler(self.files)
        self.logger = verbose_to
        self.logger.addHandler(self.handler)
        self.argv = list(argv)

    def start(self, run_id: int, kind: str, peer: str, store_root: Path) -> None:
        self.write(f"pstkit {kind} run {run_id}, started {_now()}")
        self.write(f"command: pstkit {' '.join(redact(self.argv))}")
        self.write(f"store: {store_root.resolve()}")
        self.write(f"peer: {peer}")
        self.write(f"versions: pstkit {__version__}, Python {_python()}, "
                   f"SQLite {sqlite3.sqlite_version}, {_system()}")  # fmt: skip

    def finish(self, result: RunResult, status: str) -> None:
        for p in result.problems:
            self.write(f"problem ({p.stage}): {item_text(p)}: {p.reason}")
        self.write(f"finished {_now()}, status {status}")
        for line in block(result, verbose=True):
            self.write(line)

    def write(self, line: str) -> None:
        for f in self.files:
            f.write(line + "\n")
            f.flush()

    def close(self) -> None:
        self.logger.removeHandler(self.handler)
        for f in self.files:
            f.close()
        self.files = []


class _FilesHandler(logging.Handler):
    def __init__(self, files: list[TextIO]) -> None:
        super().__init__(logging.DEBUG)
        self.files = files
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            for f in self.files:
                f.write(line + "\n")
                f.flush()
        except (OSError, ValueError):
            pass  # a full disk must not end the run over its log


def store_log_path(store_root: Path, run_id: int) -> Path:
    return store_root / LOGS / f"run-{run_id}.log"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def argv_now() -> list[str]:
    return sys.argv[1:]
