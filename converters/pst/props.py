"""MAPI property ids and pure decoders for raw PST property values.

pypff exposes every property as (id, type, raw bytes); its high-level getters
miss most of what a faithful export needs (message class, addresses,
recipients' SMTP addresses, attachment MIME types, flags). This module turns
raw values into plain Python values and knows nothing about pypff, so it is
table-tested with bytes alone.
"""

from __future__ import annotations

import codecs
import struct
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pstkit.errors import UsageError

# --- property types (MS-OXCDATA 2.11.1) ------------------------------------
PT_SHORT = 0x0002
PT_LONG = 0x0003
PT_DOUBLE = 0x0005
PT_BOOLEAN = 0x000B
PT_OBJECT = 0x000D
PT_I8 = 0x0014
PT_STRING8 = 0x001E
PT_UNICODE = 0x001F
PT_SYSTIME = 0x0040
PT_CLSID = 0x0048
PT_BINARY = 0x0102
MV_FLAG = 0x1000

# --- property ids ----------------------------------------------------------
PR_MESSAGE_CLASS = 0x001A
PR_IMPORTANCE = 0x0017
PR_PRIORITY = 0x0026
PR_SUBJECT = 0x0037
PR_CLIENT_SUBMIT_TIME = 0x0039
PR_SENT_REPRESENTING_NAME = 0x0042
PR_SENT_REPRESENTING_ADDRTYPE = 0x0064
PR_SENT_REPRESENTING_EMAIL = 0x0065
PR_TRANSPORT_HEADERS = 0x007D
PR_SENDER_NAME = 0x0C1A
PR_SENDER_ADDRTYPE = 0x0C1E
PR_SENDER_EMAIL = 0x0C1F
PR_MESSAGE_DELIVERY_TIME = 0x0E06
PR_MESSAGE_FLAGS = 0x0E07
PR_MESSAGE_SIZE = 0x0E08
PR_BODY = 0x1000
PR_RTF_COMPRESSED = 0x1009
PR_HTML = 0x1013
PR_INTERNET_MESSAGE_ID = 0x1035
PR_IN_REPLY_TO = 0x1042
PR_REFERENCES = 0x1039
PR_LAST_VERB_EXECUTED = 0x1081
PR_FLAG_STATUS = 0x1090
PR_DISPLAY_NAME = 0x3001
PR_ADDRTYPE = 0x3002
PR_EMAIL_ADDRESS = 0x3003
PR_CREATION_TIME = 0x3007
PR_LAST_MODIFICATION_TIME = 0x3008
PR_SMTP_ADDRESS = 0x39FE
PR_RECIPIENT_TYPE = 0x0C15
PR_CONTAINER_CLASS = 0x3613
PR_INTERNET_CPID = 0x3FDE
PR_MESSAGE_CODEPAGE = 0x3FFD
PR_SENDER_SMTP_ADDRESS = 0x5D01
PR_SENT_REPRESENTING_SMTP_ADDRESS = 0x5D02
PR_PST_PASSWORD = 0x67FF
# attachments
PR_ATTACH_DATA = 0x3701
PR_ATTACH_FILENAME = 0x3704
PR_ATTACH_METHOD = 0x3705
PR_ATTACH_LONG_FILENAME = 0x3707
PR_ATTACH_MIME_TAG = 0x370E
PR_ATTACH_CONTENT_ID = 0x3712
PR_ATTACH_FLAGS = 0x3714
PR_ATTACHMENT_HIDDEN = 0x7FFE
# store / folder special entry ids
PR_IPM_SUBTREE_ENTRYID = 0x35E0
PR_IPM_OUTBOX_ENTRYID = 0x35E2
PR_IPM_WASTEBASKET_ENTRYID = 0x35E3
PR_IPM_SENTMAIL_ENTRYID = 0x35E4
PR_IPM_APPOINTMENT_ENTRYID = 0x36D0
PR_IPM_CONTACT_ENTRYID = 0x36D1
PR_IPM_JOURNAL_ENTRYID = 0x36D2
PR_IPM_NOTE_ENTRYID = 0x36D3
PR_IPM_TASK_ENTRYID = 0x36D4
PR_IPM_DRAFTS_ENTRYID = 0x36D7
PR_ADDITIONAL_REN_ENTRYIDS = 0x36D8
PR_SOURCE_KEY = 0x65E0

ATTACH_BY_VALUE = 1
ATTACH_EMBEDDED_MSG = 5
ATTACH_OLE = 6

PS_PUBLIC_STRINGS = "00020329-0000-0000-c000-000000000046"
PS_PSTKIT = "5c0b3a6e-2f5d-4e8a-9a44-7073746b6974"  # pstkit's own named properties
PS_MAPI = "00020328-0000-0000-c000-000000000046"

_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Props:
    """Decoded properties of one PST object: prop id -> Python value.

    Named properties are keyed by a name (see `pst_items.NAMED`), others by id.
    """

    values: Mapping[int | str, object] = field(default_factory=dict)

    def get(self, pid: int | str) -> object:
        return self.values.get(pid)

    def text(self, pid: int | str) -> str:
        v = self.values.get(pid)
        return v if isinstance(v, str) else ""

    def integer(self, pid: int | str) -> int | None:
        v = self.values.get(pid)
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    def flag(self, pid: int | str) -> bool:
        return self.values.get(pid) is True

    def time(self, pid: int | str) -> datetime | None:
        v = self.values.get(pid)
        return v if isinstance(v, datetime) else None

    def binary(self, pid: int | str) -> bytes | None:
        v = self.values.get(pid)
        return v if isinstance(v, bytes) else None

    def strings(self, pid: int | str) -> tuple[str, ...]:
        v = self.values.get(pid)
        if isinstance(v, tuple) and all(isinstance(s, str) for s in v):
            return v
        return ()

    def binaries(self, pid: int | str) -> tuple[bytes, ...]:
        v = self.values.get(pid)
        if isinstance(v, tuple) and all(isinstance(s, bytes) for s in v):
            return v
        return ()


def filetime(raw: bytes) -> datetime | None:
    """A FILETIME (100 ns since 1601, UTC); None for 0 and out-of-range values."""
    if len(raw) < 8:
        return None
    ticks = struct.unpack_from("<Q", raw)[0]
    if ticks == 0 or ticks >= 0x7FFF_FFFF_FFFF_FFFF:
        return None
    try:
        return _FILETIME_EPOCH + timedelta(microseconds=ticks // 10)
    except OverflowError:
        return None


_INTS = {PT_SHORT: (2, True), PT_LONG: (4, False), PT_I8: (8, True)}


def _double(raw: bytes) -> object:
    return struct.unpack_from("<d", raw.ljust(8, b"\0"))[0]


def _unicode(raw: bytes) -> object:
    return raw.decode("utf-16-le", "replace").rstrip("\0")


_SIMPLE: dict[int, Callable[[bytes], object]] = {
    PT_BOOLEAN: lambda r: any(r[:1]),
    PT_DOUBLE: _double,
    PT_SYSTIME: filetime,
    PT_UNICODE: _unicode,
}


def decode_value(ptype: int, raw: bytes, codepage: str) -> object:
    """Decode one raw value; unknown types stay bytes."""
    if ptype == PT_UNICODE:  # most values read are strings: test for them first
        return raw.decode("utf-16-le", "replace").rstrip("\0")
    if ptype & MV_FLAG:
        return _decode_multi(ptype & ~MV_FLAG, raw, codepage)
    if ptype in _INTS:
        size, signed = _INTS[ptype]
        return int.from_bytes(raw[:size].ljust(size, b"\0"), "little", signed=signed)
    if ptype == PT_STRING8:
        return raw.decode(codepage, "replace").rstrip("\0")
    decode = _SIMPLE.get(ptype)
    return raw if decode is None else decode(raw)


def _decode_multi(ptype: int, raw: bytes, codepage: str) -> tuple[object, ...]:
    """MS-PST 2.3.3.4.2: count, offsets, then the values (variable size) or a packed array."""
    if len(raw) < 4:
        return ()
    fixed = {PT_SHORT: 2, PT_LONG: 4, PT_I8: 8, PT_DOUBLE: 8, PT_SYSTIME: 8, PT_CLSID: 16}
    if ptype in fixed:
        size = fixed[ptype]
        starts = range(0, len(raw) - size + 1, size)
        return tuple(decode_value(ptype, raw[i : i + size], codepage) for i in starts)
    count = struct.unpack_from("<I", raw)[0]
    if count == 0 or 4 + 4 * count > len(raw):
        return ()
    offsets = [*struct.unpack_from(f"<{count}I", raw, 4), len(raw)]
    return tuple(
        decode_value(ptype, raw[offsets[i] : offsets[i + 1]], codepage) for i in range(count)
    )


_NOT_YET = object()


class _Lazy(Mapping[int | str, object]):
    """Values decoded on first use: an item has a hundred properties, a mapping reads few."""

    __slots__ = ("_codepage", "_done", "_raw")

    def __init__(self, raw: dict[int | str, tuple[int, bytes]], codepage: str) -> None:
        self._raw, self._codepage = raw, codepage
        self._done: dict[int | str, object] = {}

    def __getitem__(self, key: int | str) -> object:
        if key in self._done:
            return self._done[key]
        ptype, raw = self._raw[key]
        value = self._done[key] = decode_value(ptype, raw, self._codepage)
        return value

    def get(self, key: int | str, default: object = None) -> object:
        value = self._done.get(key, _NOT_YET)
        if value is not _NOT_YET:
            return value
        found = self._raw.get(key)
        if found is None:
            return default
        value = self._done[key] = decode_value(found[0], found[1], self._codepage)
        return value

    def __iter__(self) -> Iterator[int | str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


def decode_props(entries: Iterable[tuple[int | str, int, bytes]], codepage: str) -> Props:
    """(id, type, raw) triples -> Props; the first value of an id wins."""
    raw: dict[int | str, tuple[int, bytes]] = {}
    for pid, ptype, value in entries:
        if pid not in raw:
            raw[pid] = (ptype, value)
    return Props(_Lazy(raw, codepage))


def lazy_props(raw: dict[int | str, tuple[int, bytes]], codepage: str) -> Props:
    """Props over `{id: (type, raw value)}`, each value decoded when first read."""
    return Props(_Lazy(raw, codepage))


def strip_subject_prefix(subject: str) -> str:
    """PR_SUBJECT may start with \\x01 + a length char (the normalized-subject marker)."""
    if subject.startswith("\x01") and len(subject) >= 2:
        return subject[2:]
    return subject


def password_set(value: int | None, content_type: str) -> bool:
    """PidTagPstPassword (a CRC-32 of the password) on the message store of a PST.

    OST files ("o") store 0xFFFFFFFF there, which means nothing."""
    return content_type != "o" and value not in (None, 0, 0xFFFFFFFF)


def entryid_nid(entryid: bytes | None) -> int | None:
    """A PST entry id is 4 flag bytes + 16-byte provider uid + the 4-byte node id."""
    if entryid is None or len(entryid) != 24:
        return None
    return int(struct.unpack_from("<I", entryid, 20)[0])


def codepage_name(cp: int | None, default: str = "cp1252") -> str:
    """A Windows code page number -> a Python codec name (default when unknown)."""
    names = {65001: "utf-8", 20127: "ascii", 28591: "latin-1", 50220: "iso2022_jp",
             50221: "iso2022_jp", 50222: "iso2022_jp", 51932: "euc_jp", 932: "cp932",
             936: "gbk", 949: "cp949", 950: "cp950", 1200: "utf-16-le", 20866: "koi8_r",
             21866: "koi8_u", 52936: "hz", 54936: "gb18030"}
    if cp is None or cp <= 0:
        return default
    if cp in names:
        return names[cp]
    if 28592 <= cp <= 28606:
        return f"iso8859_{cp - 28590}"
    name = f"cp{cp}"
    try:
        "".encode(name)
    except LookupError:
        return default
    return name


_MIME_CHARSETS = {"cp1252": "windows-1252", "ascii": "us-ascii", "latin-1": "iso-8859-1",
                  "iso2022_jp": "iso-2022-jp", "cp932": "shift_jis", "euc_jp": "euc-jp",
                  "cp950": "big5", "koi8_r": "koi8-r", "koi8_u": "koi8-u"}


def mime_charset(codec: str) -> str:
    """A Python codec name -> the charset name mail clients know."""
    if codec in _MIME_CHARSETS:
        return _MIME_CHARSETS[codec]
    if codec.startswith("iso8859_"):
        return "iso-8859-" + codec[8:]
    if codec.startswith("cp125"):
        return "windows-" + codec[2:]
    return codec


def codec_option(text: str, path: str) -> str:
    """--codepage as a number (1251), a Windows name (windows-1251) or a codec (cp1251);
    `path` names the file in the error."""
    if text.isdigit():
        name = codepage_name(int(text), "")
    else:
        try:
            name = codecs.lookup(text).name
        except LookupError:
            name = ""
    if not name:
        raise UsageError(f"unknown code page {text!r} for {path}",
                         hint="give a Windows code page number such as 1251 or 932")
    return name


# --- named properties (MS-PST 2.4.7) ---------------------------------------


def parse_name_map(
    guids: bytes, entries: bytes, strings: bytes,
    want: Collection[tuple[str, str | int]] | None = None,
) -> dict[tuple[str, str | int], int]:
    """The name-to-id map streams -> {(guid, name or number): prop id}; only the names in
    `want` when given (an OST maps thousands: decoding all their strings is the slow part)."""
    out: dict[tuple[str, str | int], int] = {}
    known = {1: PS_MAPI, 2: PS_PUBLIC_STRINGS} | {
        3 + i: str(uuid.UUID(bytes_le=guids[16 * i : 16 * i + 16])) for i in range(len(guids) // 16)
    }
    named_sets = None if want is None else {g for g, k in want if isinstance(k, str)}
    for ident, wguid, widx in struct.iter_unpack("<IHH", entries[: len(entries) // 8 * 8]):
        guid = known.get(wguid >> 1)
        if guid is None:
            continue
        key: str | int = ident
        if wguid & 1:
            if ident + 4 > len(strings) or (named_sets is not None and guid not in named_sets):
                continue
            n = struct.unpack_from("<I", strings, ident)[0]
            key = strings[ident + 4 : ident + 4 + n].decode("utf-16-le", "replace")
        if want is None or (guid, key) in want:
            out[(guid, key)] = 0x8000 + widx
    return out
