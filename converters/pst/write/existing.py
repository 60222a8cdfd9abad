"""What a PST that pstkit wrote holds, for `plan` and `verify` against it: the store's
record key (part of the sink's ledger key), its folders with roles, and the items of one
folder. Read with pstkit's own node reader. I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pstkit.converters.pst.btree import READ_ERRORS, Ndb
from pstkit.converters.pst.nodes import NodeReader, children
from pstkit.converters.pst.props import parse_name_map
from pstkit.errors import TargetWriteError
from pstkit.model import FolderPath
from pstkit.protocols import TargetItem

from .messaging import NID_NAME_MAP, NID_STORE, NID_SUBTREE
from .namemap import SOURCE_KEY

Entries = list[tuple[int, int, bytes]]


def _text(entries: Entries, pid: int) -> str:
    raw = next((r for p, t, r in entries if p == pid and t == 0x001F), b"")
    return raw.decode("utf-16-le", "replace")


@dataclass
class Existing:
    """An open PST written earlier: its record key, folder paths and items."""

    uid: bytes
    paths: dict[FolderPath, int]  # path below the IPM subtree -> folder NID
    reader: NodeReader
    key_id: int  # property id of pstkit's stable key in this file (0: none)

    @classmethod
    def open(cls, path: Path) -> Existing:
        try:
            f = path.open("rb")
            ndb = Ndb.open(f)
            reader = NodeReader(ndb)
            store = reader.entries(NID_STORE)
            uid = next((r for p, _t, r in store if p == 0x0FF9), b"")
            kids = children(ndb)
            paths: dict[FolderPath, int] = {}
            todo: list[tuple[FolderPath, int]] = [((), NID_SUBTREE)]
            while todo:
                base, nid = todo.pop()
                for kid in kids.folders.get(nid, []):
                    name = _text(reader.entries(kid), 0x3001)
                    paths[(*base, name)] = kid
                    todo.append(((*base, name), kid))
            return cls(uid, paths, reader, _key_id(reader))
        except READ_ERRORS as e:
            raise TargetWriteError(path, f"not a PST pstkit can read ({e})") from e

    def close(self) -> None:
        self.reader.ndb.f.close()

    def items(self, folder: FolderPath) -> Iterator[TargetItem]:
        nid = self.paths.get(folder)
        if nid is None:
            return
        kids = children(self.reader.ndb)
        for m in kids.messages.get(nid, []):
            entries = self.reader.entries(m)
            size = next((int.from_bytes(r[:4], "little") for p, _t, r in entries
                         if p == 0x0E08), None)
            yield TargetItem(f"{m:#x}", size, _text(entries, 0x0037), _text(entries, 0x1035),
                             _text(entries, self.key_id) if self.key_id else "")


def _key_id(reader: NodeReader) -> int:
    """Where pstkit's stable key lives in this file, from its name-to-id map."""
    streams = {p: r for p, _t, r in reader.entries(NID_NAME_MAP)}
    names = parse_name_map(streams.get(2, b""), streams.get(3, b""), streams.get(4, b""),
                           {SOURCE_KEY})
    return names.get(SOURCE_KEY, 0)


__all__ = ["Existing", "struct"]
