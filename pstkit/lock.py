"""The store's writer lock: a file created with O_EXCL (works on FAT too).

It holds who took it. A lock from this host whose process is gone is stale
and taken over with a log line; one from another host is never guessed at:
the user removes it with `pstkit unlock`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from pstkit.catalog import now_text
from pstkit.errors import StoreLocked, StoreWriteError

log = logging.getLogger("pstkit")


@dataclass(frozen=True)
class LockInfo:
    pid: int
    host: str
    started: str
    command: str

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} since {self.started} ({self.command})"

    def is_stale(self) -> bool:
        return self.host == socket.gethostname() and not _pid_alive(self.pid)


def read_lock(path: Path) -> LockInfo | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return LockInfo(
            int(data["pid"]), str(data["host"]), str(data["started"]), str(data["command"])
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return LockInfo(0, "?", "?", "unreadable lock file")


UNREADABLE_GRACE = 1.0  # seconds a lock may stay unwritten before it counts as abandoned


def _settled(path: Path) -> LockInfo | None:
    """The lock's holder. A lock file that stays unreadable (empty) for
    UNREADABLE_GRACE was left by a process killed between creating it and writing it
    (a writer does both within microseconds): it is reported as held by nobody alive."""
    held = read_lock(path)
    deadline = time.monotonic() + UNREADABLE_GRACE
    while held is not None and held.pid == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
        held = read_lock(path)
    if held is not None and held.pid == 0:
        return LockInfo(0, socket.gethostname(), "?", "a lock file left empty by a killed run")
    return held


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def acquire(path: Path, store_name: str, command: str) -> None:
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": now_text(),
        "command": command,
    }
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            held = _settled(path)
            if held is not None and held.is_stale():
                log.warning("removing stale lock of %s", held.describe())
                path.unlink(missing_ok=True)
                continue
            raise StoreLocked(store_name, held.describe() if held else "another process") from None
        except OSError as e:
            raise StoreWriteError(path, e.strerror or str(e)) from e
        # No fsync: the lock only matters while its process lives. After a
        # crash it is gone, empty, cut short or whole with a dead pid: each is
        # taken over as stale (`_settled`, `is_stale`), so durability buys nothing.
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(info, f)
        return
    raise StoreLocked(store_name, "another process")


def release(path: Path) -> None:
    held = read_lock(path)
    if held is not None and held.pid == os.getpid() and held.host == socket.gethostname():
        path.unlink(missing_ok=True)
