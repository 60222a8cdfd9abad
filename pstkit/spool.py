"""A list that keeps a few items in memory and the rest in a temporary file.

A run's problems and verify's differences are usually a handful, but a verify against
the wrong target, or an import into a full mailbox, has one per message: held in a list,
100,000 of verify's lines took ~70 MiB. A `Spool` holds the first `HELD` items and moves
them, pickled, to an unnamed temporary file (gone with the process) each time that many
have come; iterating reads the file back in order, then the items still held. Items are
written once and read any number of times, in order; nothing is ever changed or dropped.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import threading
from collections.abc import Iterable, Iterator
from typing import IO, Generic, TypeVar

from pstkit.fsutil import write_all

_T = TypeVar("_T")


class Spool(Generic[_T]):
    """Thread-safe appends. If the temporary file cannot be written (no space), items
    stay in memory from then on: more memory, never a lost item."""

    HELD = 1000

    def __init__(self, items: Iterable[_T] = ()) -> None:
        self._lock = threading.Lock()
        self._spills = True
        self._held: list[_T] = []
        self._file: IO[bytes] | None = None
        self._chunks: list[tuple[int, int]] = []  # (offset, length) of each pickled chunk
        self._spilled = 0
        self.extend(items)

    def append(self, item: _T) -> None:
        with self._lock:
            self._held.append(item)
            if self._spills and len(self._held) >= self.HELD:
                try:
                    self._spill()
                except OSError:
                    self._spills = False

    def extend(self, items: Iterable[_T]) -> None:
        for item in items:
            self.append(item)

    def _spill(self) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="pstkit-spool-")  # noqa: SIM115 (held)
        data = pickle.dumps(self._held, protocol=pickle.HIGHEST_PROTOCOL)
        offset = self._chunks[-1][0] + self._chunks[-1][1] if self._chunks else 0
        write_all(self._file.fileno(), data)  # at the end: only this writes, reads pread
        self._chunks.append((offset, len(data)))
        self._spilled += len(self._held)
        self._held = []

    def __iter__(self) -> Iterator[_T]:
        """The items in the order they came, as many as there were when it was asked
        for; several iterations may run at once (each reads at its own offsets)."""
        with self._lock:
            return self._read(list(self._chunks), list(self._held))

    def _read(self, chunks: list[tuple[int, int]], held: list[_T]) -> Iterator[_T]:
        for offset, length in chunks:
            assert self._file is not None
            chunk: list[_T] = pickle.loads(_read(self._file.fileno(), offset, length))
            yield from chunk  # our own file, written by this process: trusted
        yield from held

    def __getitem__(self, index: int) -> _T:
        """The item at `index` (reads up to it: for a look at the first few)."""
        if index < 0:
            index += len(self)
        for i, item in enumerate(self):
            if i == index:
                return item
        raise IndexError(index)

    def __len__(self) -> int:
        return self._spilled + len(self._held)

    def __bool__(self) -> bool:
        return len(self) > 0

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
            self._held, self._chunks, self._spilled = [], [], 0


def _read(fd: int, offset: int, length: int) -> bytes:
    parts = []
    while length:
        part = os.pread(fd, length, offset)
        if not part:
            raise OSError(f"spool file cut short at {offset}")
        parts.append(part)
        offset, length = offset + len(part), length - len(part)
    return b"".join(parts)
