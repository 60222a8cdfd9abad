"""Read ahead on one thread: a local source's next files are opened and read
while the store writer hashes and writes the last ones.

Reads and writes of files, and hashing, release the GIL, so the two overlap on
a second core (or in the other's I/O wait). Order is kept (one producer), and
the queue is bounded in items and bytes, so memory stays flat whatever the
mailbox size.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class _Queue(Generic[T]):
    """Items in order with their sizes; the producer waits while it is full."""

    def __init__(self, max_items: int, max_bytes: int) -> None:
        self.items: deque[tuple[T, int]] = deque()
        self.cond = threading.Condition()
        self.limits = (max_items, max_bytes)
        self.nbytes = 0
        self.done = self.stop = False
        self.error: BaseException | None = None

    def _full(self, n: int) -> bool:
        # A single item over the byte budget still goes through, alone.
        max_items, max_bytes = self.limits
        return bool(self.items) and (
            len(self.items) >= max_items or self.nbytes + n > max_bytes
        )

    def put(self, item: T, n: int) -> bool:
        """False once the consumer has gone."""
        with self.cond:
            while not self.stop and self._full(n):
                self.cond.wait()
            if self.stop:
                return False
            self.items.append((item, n))
            self.nbytes += n
            self.cond.notify_all()
            return True

    def get(self) -> tuple[bool, T | None]:
        """(True, item), or (False, None) when the producer has finished."""
        with self.cond:
            while not self.items and not self.done:
                self.cond.wait()
            if not self.items:
                return False, None
            item, n = self.items.popleft()
            self.nbytes -= n
            self.cond.notify_all()
            return True, item

    def finish(self, stop: bool = False) -> None:
        with self.cond:
            self.done = True
            self.stop = self.stop or stop
            self.cond.notify_all()


def read_ahead(
    produce: Iterator[T], size: Callable[[T], int], max_items: int = 32,
    max_bytes: int = 64 * 1024 * 1024, chunk_items: int = 16, chunk_bytes: int = 1024 * 1024,
) -> Generator[T, None, None]:  # fmt: skip
    """Yield what `produce` yields, in order, produced on a thread ahead of the
    consumer. An error of `produce` is raised here, after what came before it;
    closing this generator stops the thread after the chunk at hand. Items are
    handed over in lists (up to `chunk_items` or `chunk_bytes`): one lock and
    wake-up per item cost more than reading a small message."""
    chunk_items = max(1, min(chunk_items, max_items))
    queue: _Queue[list[T]] = _Queue(max(1, max_items // chunk_items), max_bytes)

    def work() -> None:
        chunk: list[T] = []
        nbytes = 0
        try:
            for item in produce:
                chunk.append(item)
                nbytes += size(item)
                if len(chunk) >= chunk_items or nbytes >= chunk_bytes:
                    if not queue.put(chunk, nbytes):
                        return
                    chunk, nbytes = [], 0
        except BaseException as e:  # handed to the consumer, which re-raises
            queue.error = e
        finally:
            if chunk:  # what came before an error still arrives, then the error
                queue.put(chunk, nbytes)
            queue.finish()

    thread = threading.Thread(target=work, name="pstkit-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            ok, chunk = queue.get()
            if not ok or chunk is None:
                break
            yield from chunk
        if queue.error is not None:
            raise queue.error
    finally:
        queue.finish(stop=True)
        thread.join()
