"""What a PST that pstkit wrote holds, for `plan` and `verify` against it: the store's
record key (part of the sink's ledger key), its folders with roles, and the items of one
folder (with the fields `verify` compares for contacts and events, `pstkit.itemfields`).
Read with pstkit's own node reader. I/O.
"""

from __future__ import annotations

import struct
from array import array
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pstkit.converters.pst.btree import READ_ERRORS, Ndb
from pstkit.converters.pst.nodes import NodeReader, children
from pstkit.converters.pst.props import parse_name_map
from pstkit.errors import TargetReadError
from pstkit.itemfields import emails_text, utc_text
from pstkit.model import FolderPath
from pstkit.protocols import TargetItem

from .messaging import NID_NAME_MAP, NID_STORE, NID_SUBTREE
from .namemap import CONTENT_KEY, PART_MAX_SIZE, SOURCE_KEY
from .values import filetime

PSETID_ADDRESS = "00062004-0000-0000-c000-000000000046"
PSETID_APPOINTMENT = "00062002-0000-0000-c000-000000000046"
#: what verify compares, by name: Email1-3 addresses, StartWhole, EndWhole
_FIELDS = {(PSETID_ADDRESS, 0x8083): "email", (PSETID_ADDRESS, 0x8093): "email",
           (PSETID_ADDRESS, 0x80A3): "email", (PSETID_APPOINTMENT, 0x820D): "start",
           (PSETID_APPOINTMENT, 0x820E): "end"}

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
    sha_id: int  # of the SHA-256 of a mail without a Message-ID (0: none)
    fields: dict[int, str]  # property id -> compared field (see _FIELDS)
    max_size: int | None = None  # the --max-size a split set's part was written with
    #: the NIDs of every item the file holds, sorted (4 bytes an item)
    nids: array[int] = field(default_factory=lambda: array("I"))
    file: Path = Path()  # where it was opened from, to name it in errors

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
            names = _names(reader)
            size_id = names.get(PART_MAX_SIZE)
            size = next((int.from_bytes(r[:8], "little") for p, t, r in store
                         if p == size_id and t == 0x0014 and len(r) >= 8), None)
            nids = array("I", sorted(m for ms in kids.messages.values() for m in ms))
            return cls(uid, paths, reader, names.get(SOURCE_KEY, 0), names.get(CONTENT_KEY, 0),
                       {pid: _FIELDS[name] for name, pid in names.items() if name in _FIELDS},
                       size, file=path, nids=nids)
        except READ_ERRORS as e:
            raise TargetReadError(path, f"not a PST pstkit can read ({e})") from e

    def close(self) -> None:
        self.reader.ndb.f.close()

    def holds(self, nid: int) -> bool:
        """Is an item of this NID in the file?"""
        at = bisect_left(self.nids, nid)
        return at < len(self.nids) and self.nids[at] == nid

    def items(self, folder: FolderPath) -> Iterator[TargetItem]:
        """The items of one folder. A file whose index is damaged (cut short: Outlook does
        not open it) or an item whose blocks fail their checksum is an error naming the
        file: verify said "all matching" of the one and stopped with an internal error
        (exit 70) on the other. An append refuses such a file the same way."""
        nid = self.paths.get(folder)
        if nid is None:
            return
        kids = children(self.reader.ndb)
        if self.reader.ndb.lost:
            raise TargetReadError(self.file, "its index is damaged ("
                                   + "; ".join(self.reader.ndb.lost) + ")")
        for m in kids.messages.get(nid, []):
            try:
                entries = self.reader.entries(m)
            except READ_ERRORS as e:
                raise TargetReadError(self.file, f"item {m:#x} is damaged ({e})") from e
            size = next((int.from_bytes(r[:4], "little") for p, _t, r in entries
                         if p == 0x0E08), None)
            yield TargetItem(f"{m:#x}", size, _text(entries, 0x0037), _text(entries, 0x1035),
                             _text(entries, self.key_id) if self.key_id else "",
                             _text(entries, self.sha_id) if self.sha_id else "",
                             fields=self._fields(entries))

    def _fields(self, entries: Entries) -> tuple[tuple[str, str], ...]:
        """A contact's name and addresses, an event's start and end; () for mail."""
        cls = _text(entries, 0x001A).lower()
        if cls.startswith(("ipm.contact", "ipm.distlist")):
            mails = [_text(entries, p) for p, kind in self.fields.items() if kind == "email"]
            out = [("name", _text(entries, 0x3001))]
            return tuple(out + ([("emails", emails_text(mails))] if any(mails) else []))
        if cls.startswith("ipm.appointment"):
            times = [(self.fields[p], filetime(r)) for p, t, r in entries
                     if t == 0x0040 and self.fields.get(p) in ("start", "end")]
            return tuple((kind, utc_text(when)) for kind, when in times if when is not None)
        return ()


def _names(reader: NodeReader) -> dict[tuple[str, str | int], int]:
    """This file's ids of pstkit's stable key and the compared fields (name-to-id map)."""
    streams = {p: r for p, _t, r in reader.entries(NID_NAME_MAP)}
    return parse_name_map(streams.get(2, b""), streams.get(3, b""), streams.get(4, b""),
                          {SOURCE_KEY, CONTENT_KEY, PART_MAX_SIZE, *_FIELDS})


__all__ = ["Existing", "struct"]
