"""Where the writer's B-tree entries wait until `finish` (17-pstbig.md): not in memory,
which would grow with the file (18 bytes a block, ~110 MB at 50 GB), but in two anonymous
temporary files beside the output. I/O.

BBT entries come in BID order (BIDs are handed out increasing, and so are the offsets), so
they are appended and read back as they are. NBT entries come in any order: they are kept
in memory NODE_RUN at a time, each batch sorted and written as a run, and the runs are
merged at `finish` (one small chunk of each in memory). Both streams give exactly what
sorting one list in memory gave, so the file is byte for byte the same."""

from __future__ import annotations

import heapq
import os
import struct
import tempfile
from collections.abc import Iterator
from typing import BinaryIO, cast

Node = tuple[int, int, int, int]  # nid, bidData, bidSub, nidParent
_BLOCK_REC = struct.Struct("<QQH")  # a BBT entry: bid, ib, cb
_NODE_REC = struct.Struct("<QQQI")  # an NBT entry: nid, bidData, bidSub, nidParent
NODE_RUN = 1 << 13  # NBT entries kept in memory before a sorted run goes to the file
SPILL_CHUNK = 1 << 16  # bytes written at a time, and read back from the BBT's file
RUN_CHUNK = 1 << 13  # bytes read at a time from each sorted NBT run while they are merged


def spill_file(f: BinaryIO) -> BinaryIO:
    """An anonymous temporary file (gone when closed or the process dies) in the output's
    directory when `f` has a path: the output's disk has room, the temp dir may not."""
    name = getattr(f, "name", None)
    where = os.path.dirname(os.path.abspath(name)) if isinstance(name, str) else None
    return tempfile.TemporaryFile(dir=where)


def _records(f: BinaryIO, rec: struct.Struct, at: int, count: int, chunk: int = SPILL_CHUNK
             ) -> Iterator[tuple[int, ...]]:
    """`count` records of `rec` from offset `at` of `f`, read `chunk` bytes at a time
    (pread: the runs of one merge each keep their own place)."""
    end, step = at + count * rec.size, chunk // rec.size * rec.size
    for pos in range(at, end, step):
        yield from rec.iter_unpack(os.pread(f.fileno(), min(step, end - pos), pos))


class Blocks:
    """The BBT's entries, (bid, ib, cb), in the order they come."""

    def __init__(self, f: BinaryIO) -> None:
        self.file = spill_file(f)
        self.count = 0
        self._buf = bytearray()  # entries not yet in the file

    def add(self, bid: int, ib: int, cb: int) -> None:
        self._buf += _BLOCK_REC.pack(bid, ib, cb)
        self.count += 1
        if len(self._buf) >= SPILL_CHUNK:
            self.file.write(self._buf)
            self._buf.clear()

    def entries(self) -> Iterator[tuple[int, int, int]]:
        self.file.write(self._buf)
        self._buf.clear()
        self.file.flush()
        yield from cast(Iterator[tuple[int, int, int]],
                        _records(self.file, _BLOCK_REC, 0, self.count))


class Nodes:
    """The NBT's entries, handed back sorted by NID; a NID given twice is refused."""

    def __init__(self, f: BinaryIO) -> None:
        self.file = spill_file(f)
        self.count = 0
        self.run = NODE_RUN
        self.runs: list[tuple[int, int]] = []  # (offset, entries) of each sorted run
        self._buf: list[Node] = []  # entries not yet in a run

    def add(self, node: Node) -> None:
        self._buf.append(node)
        self.count += 1
        if len(self._buf) >= self.run:
            self._spill()

    def _spill(self) -> None:
        self._buf.sort()
        at = self.file.seek(0, os.SEEK_END)
        self.file.write(b"".join(_NODE_REC.pack(*n) for n in self._buf))
        self.runs.append((at, len(self._buf)))
        self._buf.clear()

    def _sorted(self) -> Iterator[Node]:
        if not self.runs:  # a small store: one sort in memory
            self._buf.sort()
            yield from self._buf
            return
        self._spill()
        self.file.flush()
        yield from heapq.merge(*(cast(Iterator[Node], _records(self.file, _NODE_REC, at, n,
                                                               RUN_CHUNK))
                                 for at, n in self.runs))

    def entries(self) -> Iterator[Node]:
        last = -1
        for n in self._sorted():
            if n[0] == last:
                raise ValueError("a NID is used twice")
            last = n[0]
            yield n
