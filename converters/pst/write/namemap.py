"""The name-to-id map (MS-PST 2.4.7) of a new PST: named properties get ids 0x8000 and up
as they are first used; `props` gives the map's property context. Pure.

Names used so far: Keywords (PS_PUBLIC_STRINGS, the categories Outlook shows) and
pstkit's stable source key (its own property set), which a later append can use to
deliver nothing twice.
"""

from __future__ import annotations

import struct
import uuid
import zlib

from pstkit.converters.pst.props import PS_PSTKIT

from .mapi import Prop, binary, long

PS_MAPI = "00020328-0000-0000-c000-000000000046"
PS_PUBLIC_STRINGS = "00020329-0000-0000-c000-000000000046"
KEYWORDS = (PS_PUBLIC_STRINGS, "Keywords")
SOURCE_KEY = (PS_PSTKIT, "SourceKey")
#: the SHA-256 (hex) of a mail without a Message-ID: how an append from another store of
#: the same mail knows it is there (its duplicate key, pstkit.dupindex); allocated on first
#: use, so files without such mail have no such name
CONTENT_KEY = (PS_PSTKIT, "ContentSha256")
#: on the store of every part of a split set: the --max-size it was written with, so that an
#: append without the flag fills parts to the same size (sink.py)
PART_MAX_SIZE = (PS_PSTKIT, "PartMaxSize")
BUCKETS = 251

Name = tuple[str, str | int]  # (property set GUID, name or number)


class NameMap:
    def __init__(self) -> None:
        self.ids: dict[Name, int] = {}
        self.guids: list[str] = []  # beyond PS_MAPI and PS_PUBLIC_STRINGS, in stream order

    def id(self, name: Name) -> int:
        """The property id of a named property (allocated on first use)."""
        if name not in self.ids:
            if len(self.ids) >= 0x7FFE:
                raise ValueError("too many named properties")
            self.ids[name] = 0x8000 + len(self.ids)
            if name[0] not in (PS_MAPI, PS_PUBLIC_STRINGS) and name[0] not in self.guids:
                self.guids.append(name[0])
        return self.ids[name]

    def _wguid(self, guid: str) -> int:
        if guid == PS_MAPI:
            return 1
        if guid == PS_PUBLIC_STRINGS:
            return 2
        return 3 + self.guids.index(guid)

    def props(self) -> list[Prop]:
        """The map's properties: bucket count, GUID/entry/string streams, hash buckets."""
        entries, strings = bytearray(), bytearray()
        buckets: dict[int, bytearray] = {}
        for (guid, key), pid in sorted(self.ids.items(), key=lambda x: x[1]):
            kind = self._wguid(guid) << 1
            if isinstance(key, str):
                text = key.encode("utf-16-le")
                ident, kind = len(strings), kind | 1
                strings += struct.pack("<I", len(text)) + text
                strings += b"\0" * (-len(strings) % 4)
                hashed = zlib.crc32(text, 0xFFFFFFFF) ^ 0xFFFFFFFF  # MS-PST's CRC of the name
            else:
                ident = hashed = key
            entries += struct.pack("<IHH", ident, kind, pid - 0x8000)
            bucket = (hashed ^ kind) % BUCKETS
            buckets.setdefault(bucket, bytearray()).extend(
                struct.pack("<IHH", hashed, kind, pid - 0x8000))
        guids = b"".join(uuid.UUID(g).bytes_le for g in self.guids)
        props = [long(0x0001, BUCKETS), binary(0x0002, guids), binary(0x0003, bytes(entries)),
                 binary(0x0004, bytes(strings))]
        return props + [binary(0x1000 + b, bytes(v)) for b, v in sorted(buckets.items())]
