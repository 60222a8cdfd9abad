"""SHA-256 in a thread beside the work that produces or consumes the bytes.

hashlib releases the GIL on buffers of 2 KiB and more, so a hash computed in a
thread runs on the second core while the main thread encrypts, decrypts,
reads or writes: a third of a seal's or unseal's CPU leaves the critical path.
Bytes are handed over in batches of about a megabyte (a thread switch per 64
KiB chunk would cost more than it saves), as immutable `bytes` or views into
them, so nothing is copied and nothing handed over can change afterwards.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable, Sequence

BATCH = 1 << 20
Piece = bytes | memoryview  # a view only into immutable bytes


class _Worker:
    """A thread running the functions given to `run`, in order."""

    def __init__(self) -> None:
        # at most 8 batches (~8 MiB) waiting: memory stays flat
        self._queue: queue.Queue[Callable[[], object] | None] = queue.Queue(maxsize=8)
        self._thread = threading.Thread(target=self._loop, name="pstkit-sha256", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while (function := self._queue.get()) is not None:
            function()

    def run(self, function: Callable[[], object]) -> None:
        if not self._thread.is_alive():
            raise RuntimeError("the hashing thread was stopped")
        self._queue.put(function)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


def _hash_all(digest: hashlib._Hash, batch: Sequence[Piece]) -> Callable[[], None]:
    def run() -> None:
        for piece in batch:
            digest.update(piece)

    return run


class BackgroundHash:
    """One SHA-256 of everything given to `update`, in order."""

    def __init__(self) -> None:
        self._worker = _Worker()
        self._digest = hashlib.sha256()
        self._batch: list[Piece] = []
        self._batched = 0

    def update(self, data: Piece) -> None:
        self._batch.append(data)
        self._batched += len(data)
        if self._batched >= BATCH:
            self._hand_over()

    def feed(self, batch: Sequence[Piece]) -> None:
        """Hand over a whole batch at once (after what `update` gathered); the
        caller does not change it afterwards."""
        self._hand_over()
        self._worker.run(_hash_all(self._digest, batch))

    def _hand_over(self) -> None:
        if self._batch:
            self._worker.run(_hash_all(self._digest, self._batch))
            self._batch, self._batched = [], 0

    def hexdigest(self) -> str:
        """The digest of everything so far; no `update` after this."""
        self._hand_over()
        self.stop()
        return self._digest.hexdigest()

    def stop(self) -> None:
        """Wait for the thread to finish what it was given and end it."""
        self._worker.stop()


class MemberHashes:
    """The SHA-256 of each member of a stream, computed in a thread and held to
    the expected size and digest; `failures()` waits for the thread and names
    the members that differ. Work is handed over about once per `BATCH` bytes,
    across members (a mailbox's messages are ~100 kB: one hand-over per
    message cost two lock round trips each)."""

    def __init__(self) -> None:
        self._worker = _Worker()
        self._failed: list[str] = []
        self._digest = hashlib.sha256()
        self._size = 0
        self._jobs: list[Callable[[], None]] = []
        self._pending = 0

    def start(self) -> None:
        self._digest = hashlib.sha256()
        self._size = 0

    def feed(self, batch: Sequence[Piece]) -> None:
        """More of the current member (immutable: the thread reads it later)."""
        n = sum(map(len, batch))
        self._size += n
        self._jobs.append(_hash_all(self._digest, batch))
        self._pending += n
        if self._pending >= BATCH:
            self._hand_over()

    def end(self, name: str, size: int, sha256: str) -> None:
        digest, got = self._digest, self._size

        def check() -> None:
            if got != size or digest.hexdigest() != sha256:
                self._failed.append(name)

        self._jobs.append(check)

    def _hand_over(self) -> None:
        jobs, self._jobs, self._pending = self._jobs, [], 0

        def run() -> None:
            for job in jobs:
                job()

        self._worker.run(run)

    def failures(self) -> list[str]:
        self._hand_over()
        self._worker.stop()
        return self._failed
