"""pst_props: raw MAPI values -> Python values; name map; heap-on-node PC. Tables."""

from __future__ import annotations

import struct
import uuid
from datetime import UTC, datetime

import pytest

from pstkit.converters.pst.heap import HeapError, read_heap_pc
from pstkit.converters.pst.props import (
    PS_MAPI,
    PS_PUBLIC_STRINGS,
    codepage_name,
    decode_props,
    decode_value,
    entryid_nid,
    filetime,
    parse_name_map,
    password_set,
    strip_subject_prefix,
)

_T = datetime(2020, 5, 12, 5, 45, 17, tzinfo=UTC)
FT_2020 = struct.pack("<Q", int((_T - datetime(1601, 1, 1, tzinfo=UTC)).total_seconds()) * 10**7)


@pytest.mark.parametrize(("ptype", "raw", "value"), [
    (0x0002, b"\xff\xff", -1),
    (0x0003, b"\x01\x00\x00\x00", 1),
    (0x0003, b"\xff\xff\xff\xff", 0xFFFFFFFF),  # PT_LONG kept unsigned (flags, CRCs)
    (0x0014, struct.pack("<q", -5), -5),
    (0x000B, b"\x01", True),
    (0x000B, b"\x00", False),
    (0x0005, struct.pack("<d", 0.5), 0.5),
    (0x001F, "Grüße\0".encode("utf-16-le"), "Grüße"),
    (0x001E, b"caf\xe9", "café"),
    (0x0040, FT_2020, datetime(2020, 5, 12, 5, 45, 17, tzinfo=UTC)),
    (0x0040, bytes(8), None),
    (0x0102, b"\x00\x01", b"\x00\x01"),
    (0x1003, struct.pack("<3I", 1, 2, 3), (1, 2, 3)),
    (0x101F, struct.pack("<3I", 2, 12, 16) + "ab".encode("utf-16-le") + "c".encode("utf-16-le"),
     ("ab", "c")),
    (0x1102, struct.pack("<3I", 2, 12, 14) + b"\x01\x02\x03", (b"\x01\x02", b"\x03")),
    (0x1102, b"\x05\x00\x00\x00", ()),  # count larger than the data: nothing, no crash
])
def test_decode_value(ptype: int, raw: bytes, value: object) -> None:
    assert decode_value(ptype, raw, "cp1252") == value


def test_filetime_edges() -> None:
    assert filetime(b"\x00") is None
    assert filetime(b"\xff" * 8) is None


def test_decode_props_first_wins_and_getters() -> None:
    p = decode_props([(0x0037, 0x001F, "a".encode("utf-16-le")),
                      (0x0037, 0x001F, "b".encode("utf-16-le")),
                      (0x0E07, 0x0003, b"\x01\x00\x00\x00")], "cp1252")
    assert p.text(0x0037) == "a"
    assert p.integer(0x0E07) == 1 and p.integer(0x0037) is None
    assert p.text(0x0E07) == "" and p.time(0x0E07) is None and p.binary(0x0037) is None
    assert p.strings(0x0037) == () and p.binaries(0x0037) == ()


@pytest.mark.parametrize(("subject", "stripped"), [
    ("\x01\x01Hello", "Hello"), ("\x01\x05RE: x", "RE: x"), ("Plain", "Plain"), ("", ""),
])
def test_strip_subject_prefix(subject: str, stripped: str) -> None:
    assert strip_subject_prefix(subject) == stripped


def test_entryid_nid() -> None:
    assert entryid_nid(bytes(20) + struct.pack("<I", 0x8082)) == 0x8082
    assert entryid_nid(bytes(46)) is None
    assert entryid_nid(None) is None


@pytest.mark.parametrize(("cp", "codec"), [
    (1252, "cp1252"), (65001, "utf-8"), (50220, "iso2022_jp"), (28592, "iso8859_2"),
    (1251, "cp1251"), (932, "cp932"), (None, "cp1252"), (0, "cp1252"), (99999, "cp1252"),
])
def test_codepage_name(cp: int | None, codec: str) -> None:
    assert codepage_name(cp) == codec


def test_parse_name_map() -> None:
    guid = uuid.UUID("00062004-0000-0000-c000-000000000046")
    strings = struct.pack("<I", 16) + "Keywords".encode("utf-16-le")
    entries = (struct.pack("<IHH", 0, (2 << 1) | 1, 5)  # string "Keywords" in PS_PUBLIC_STRINGS
               + struct.pack("<IHH", 0x8083, 3 << 1, 7)  # number 0x8083 in the first stream GUID
               + struct.pack("<IHH", 0x1234, 1 << 1, 9)  # number in PS_MAPI
               + struct.pack("<IHH", 1, 9 << 1, 1))  # GUID index past the stream: ignored
    names = parse_name_map(guid.bytes_le, entries, strings)
    assert names == {(PS_PUBLIC_STRINGS, "Keywords"): 0x8005, (str(guid), 0x8083): 0x8007,
                     (PS_MAPI, 0x1234): 0x8009}
    # Only the wanted names (string names of other property sets are not even decoded).
    want = {(str(guid), 0x8083), (PS_PUBLIC_STRINGS, "Keywords"), (PS_MAPI, 0x9999)}
    assert parse_name_map(guid.bytes_le, entries, strings, want) == {
        (PS_PUBLIC_STRINGS, "Keywords"): 0x8005, (str(guid), 0x8083): 0x8007}
    assert parse_name_map(guid.bytes_le, entries, strings, {(PS_MAPI, 0x1234)}) == {
        (PS_MAPI, 0x1234): 0x8009}


def test_props_decode_on_first_use() -> None:
    """decode_props keeps raw values and decodes each when read: same answers, any order."""
    p = decode_props([(0x0037, 0x001F, "Hi".encode("utf-16-le")), (0x0E07, 0x0003, b"\x01\0\0\0"),
                      (0x0037, 0x001F, "later".encode("utf-16-le"))], "cp1252")
    assert len(p.values) == 2 and sorted(p.values) == [0x0037, 0x0E07]
    assert p.get(0x9999) is None and p.text(0x9999) == "" and p.integer(0x9999) is None
    assert p.text(0x0037) == "Hi" and p.text(0x0037) == "Hi"  # first wins, cached
    assert p.integer(0x0E07) == 1 and dict(p.values) == {0x0037: "Hi", 0x0E07: 1}


def _heap(props: list[tuple[int, int, bytes | int]]) -> bytes:
    """A one-page PC heap: HN header, BTH header, leaf records, variable-size values."""
    items: list[bytes] = [b"", b""]  # BTH header and records, filled in below
    records = b""
    for pid, ptype, value in props:
        if isinstance(value, int):
            records += struct.pack("<HHI", pid, ptype, value)
        else:
            items.append(value)
            records += struct.pack("<HHI", pid, ptype, len(items) << 5)
    items[0] = bytes([0xB5, 2, 6, 0]) + struct.pack("<I", 2 << 5)
    items[1] = records
    body = b"".join(items)
    offsets, pos = [], 12
    for it in items:
        offsets.append(pos)
        pos += len(it)
    offsets.append(pos)
    header = struct.pack("<HBBI4s", 12 + len(body), 0xEC, 0xBC, 1 << 5, bytes(4))
    pagemap = struct.pack("<HH", len(items), 0) + struct.pack(f"<{len(offsets)}H", *offsets)
    return header + body + pagemap


def test_read_heap_pc() -> None:
    data = _heap([(0x0037, 0x001F, "Inner".encode("utf-16-le")), (0x0E07, 0x0003, 1),
                  (0x1000, 0x001F, 0x00200044),  # a sub-node id (low bits = node type)
                  (0x0E06, 0x0040, FT_2020)])
    pc = read_heap_pc(data, "cp1252")
    assert pc.props.text(0x0037) == "Inner"
    assert pc.props.integer(0x0E07) == 1
    assert pc.props.time(0x0E06) == datetime(2020, 5, 12, 5, 45, 17, tzinfo=UTC)
    assert pc.unreadable == (0x1000,)


@pytest.mark.parametrize("data", [b"", b"\x00" * 16, bytes([12, 0, 0xEC, 0xBC]) + bytes(8),
                                  bytes([12, 0, 0xEC, 0x7C]) + bytes(20)])
def test_read_heap_pc_rejects_junk(data: bytes) -> None:
    with pytest.raises(HeapError):
        read_heap_pc(data, "cp1252")


@pytest.mark.parametrize(("value", "kind", "protected"), [
    (0, "p", False), (None, "p", False), (0x1234ABCD, "p", True), (0xFFFFFFFF, "o", False),
    (0x1234ABCD, "o", False),
])
def test_password_set(value: int | None, kind: str, protected: bool) -> None:
    assert password_set(value, kind) is protected
