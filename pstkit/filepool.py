"""Message files written on a thread of their own while the store writer goes on.

Creating a file is the most expensive step of a Maildir store on ext4 (inode
allocation, in the kernel, with the GIL released), so a thread writes while the
writer's thread handles the next messages. One thread, not two: since local files
are copied in the kernel (filecopy.py), a second one only competes for the two cores
with the read-ahead and the writer (issue 19, 5,000-message bench mailbox on a fresh
ext4, five alternating runs: wall 1.19 s / CPU 1.41 s with one, 1.22 / 1.45 with two).
The write order promise is kept by the writer: it calls `wait` before a batch is
synced and committed, and before it undoes a failed batch.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from pstkit.filecopy import FileCopier
from pstkit.model import LocalFile

_Job = tuple[str | Path, str | Path, bytes, LocalFile | None]


class FilePool:
    """temp -> rename writes on `threads` threads, bounded in items and bytes in flight.
    Files go to the threads in groups (up to `group_items` or `group_bytes`): one
    hand-off per small file cost about as much as writing it."""

    def __init__(self, threads: int = 1, max_items: int = 32,
                 max_bytes: int = 32 * 1024 * 1024, group_items: int = 16,
                 group_bytes: int = 1024 * 1024) -> None:  # fmt: skip
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="pstkit-write")
        self._pending: deque[tuple[Future[None], int, int]] = deque()
        self._group: list[_Job] = []
        self.copier = FileCopier()  # a file read from a local disk is copied in the kernel
        self._limits = (max_items, max_bytes, max(1, min(group_items, max_items)), group_bytes)
        self._items = self._bytes = self._group_bytes = 0

    def submit(self, final: str | Path, tmp: str | Path, data: bytes,
               origin: LocalFile | None = None) -> None:  # fmt: skip
        """Queue a write of `data` (or a copy of `origin`, see FileCopier); an earlier
        write's error is raised here or by `wait`."""
        max_items, max_bytes, group_items, group_bytes = self._limits
        self._group.append((final, tmp, data, origin))
        self._group_bytes += len(data)
        if len(self._group) < group_items and self._group_bytes < group_bytes:
            return
        while self._pending and (
            self._items + len(self._group) > max_items
            or self._bytes + self._group_bytes > max_bytes
        ):
            self._take()
        self._dispatch()

    def _dispatch(self) -> None:
        if self._group:
            n, nbytes = len(self._group), self._group_bytes
            future = self._pool.submit(_write_all, self.copier, self._group)
            self._pending.append((future, n, nbytes))
            self._items, self._bytes = self._items + n, self._bytes + nbytes
            self._group, self._group_bytes = [], 0

    def _take(self) -> None:
        future, n, nbytes = self._pending.popleft()
        self._items, self._bytes = self._items - n, self._bytes - nbytes
        future.result()

    def wait(self) -> None:
        """Every queued write done; then the first error, if any, is raised."""
        self._dispatch()
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


def _write_all(copier: FileCopier, group: list[_Job]) -> None:
    """Write a group; the first error is raised after the rest are written (as with
    one file per hand-off: nothing of the group is still in the air after it)."""
    error: BaseException | None = None
    for final, tmp, data, origin in group:
        try:
            copier.write(final, tmp, data, origin)
        except BaseException as e:
            error = error or e
    if error is not None:
        raise error
