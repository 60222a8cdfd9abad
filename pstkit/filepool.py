"""Message files written on a few threads while the store writer goes on.

Creating a file is the most expensive step of a Maildir store on ext4 (inode
allocation, in the kernel, with the GIL released), so two threads write while
the writer's thread hashes the next messages. The write order promise is kept
by the writer: it calls `wait` before a batch is synced and committed, and
before it undoes a failed batch.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from pstkit.fsutil import write_new


class FilePool:
    """temp -> rename writes on `threads` threads, bounded in items and bytes in flight."""

    def __init__(self, threads: int = 2, max_items: int = 32,
                 max_bytes: int = 32 * 1024 * 1024) -> None:  # fmt: skip
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="pstkit-write")
        self._pending: deque[tuple[Future[None], int]] = deque()
        self._limits = (max_items, max_bytes)
        self._bytes = 0

    def submit(self, final: str | Path, tmp: str | Path, data: bytes) -> None:
        """Queue a write; an earlier write's error is raised here or by `wait`."""
        max_items, max_bytes = self._limits
        while self._pending and (
            len(self._pending) >= max_items or self._bytes + len(data) > max_bytes
        ):
            self._take()
        self._pending.append((self._pool.submit(write_new, final, tmp, data), len(data)))
        self._bytes += len(data)

    def _take(self) -> None:
        future, n = self._pending.popleft()
        self._bytes -= n
        future.result()

    def wait(self) -> None:
        """Every queued write done; then the first error, if any, is raised."""
        error: BaseException | None = None
        while self._pending:
            try:
                self._take()
            except BaseException as e:  # the rest still finish before it is raised
                error = error or e
        if error is not None:
            raise error

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)
