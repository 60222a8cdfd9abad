"""Two small thread helpers: sealing and unsealing overlap their reads, hashing,
encryption and writes on two cores (hashlib, OpenSSL's AEAD and file I/O release
the GIL), as `tar | age` overlaps its two processes.

Errors of a helper thread resurface in the caller; a caller that gives up stops
its helpers instead of leaving them blocked.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_END = object()


def prefetch(produce: Iterator[T], depth: int) -> Generator[T, None, None]:
    """The items of `produce`, computed ahead in a helper thread."""
    q: queue.Queue[object] = queue.Queue(depth)
    stop = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            for item in produce:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as e:  # handed to the consumer
            failure.append(e)
        q.put(_END)

    thread = threading.Thread(target=run, daemon=True, name="pstkit-prefetch")
    thread.start()
    try:
        while (item := q.get()) is not _END:
            yield item  # type: ignore[misc]
        if failure:
            raise failure[0]
    finally:
        stop.set()


class Worker(Generic[T]):
    """Hands items to `handle` in a helper thread, in order; `close` waits for it."""

    def __init__(self, handle: Callable[[T], None], depth: int = 64) -> None:
        self._handle = handle
        self._queue: queue.Queue[object] = queue.Queue(depth)
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="pstkit-worker")
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not _END:
            if self._failure is None:
                try:
                    self._handle(item)  # type: ignore[arg-type]
                except BaseException as e:  # resurfaces in put/close
                    self._failure = e

    def put(self, item: T) -> None:
        if self._failure is not None:
            self.close()
        self._queue.put(item)

    def close(self) -> None:
        self._queue.put(_END)
        self._thread.join()
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure


def batched(items: Iterator[T], size: Callable[[T], int], limit: int) -> Iterator[list[T]]:
    """Items grouped up to `limit` bytes: a thread handoff per group, not per item
    (each handoff costs futex calls and GIL switches)."""
    group: list[T] = []
    total = 0
    for item in items:
        group.append(item)
        total += size(item)
        if total >= limit:
            yield group
            group, total = [], 0
    if group:
        yield group


def ahead(items: Iterator[T], size: Callable[[T], int], limit: int = 1 << 20,
          depth: int = 8) -> Iterator[T]:  # fmt: skip
    """`items` computed ahead in a helper thread, handed over in groups."""
    for group in prefetch(batched(items, size, limit), depth):
        yield from group
