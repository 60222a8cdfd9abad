"""pst_ndb: heaps, property and table contexts (hand-built), and sub-nodes of corpus files."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from pstkit.converters.pst.ndb import (
    Heap,
    Ndb,
    NdbError,
    Reader,
    SubMessage,
    heap_only,
    read_pc,
    read_tc,
    to_mapi,
)


def page(items: list[bytes], header: bytes) -> bytes:
    """One heap block: `header` (its first 2 bytes become ibHnpm), the items, then the page
    map (MS-PST 2.3.1)."""
    body = b"".join(items)
    offsets, pos = [], len(header)
    for it in items:
        offsets.append(pos)
        pos += len(it)
    offsets.append(pos)
    pagemap = struct.pack("<HH", len(items), 0) + struct.pack(f"<{len(offsets)}H", *offsets)
    ib_map = len(header) + len(body)
    return struct.pack("<H", ib_map) + header[2:] + body + pagemap


def hn_header(client: int, root: int) -> bytes:
    return struct.pack("<HBBI4s", 0, 0xEC, client, root, bytes(4))


def hid(index: int, block: int = 0) -> int:
    return (block << 16) | (index << 5)


def no_subnodes(nid: int) -> bytes:
    raise NdbError(f"no sub-node {nid:#x}")


def test_pc_across_two_heap_blocks_and_a_subnode() -> None:
    # block 0: BTH header, records; block 1 (HNPAGEHDR): the subject's string
    subject = "Zweiter Block".encode("utf-16-le")
    records = (struct.pack("<HHI", 0x0037, 0x001F, hid(1, 1))
               + struct.pack("<HHI", 0x0E07, 0x0003, 9)
               + struct.pack("<HHI", 0x1000, 0x001F, 0x00000044))  # body in sub-node 0x44
    bth = bytes([0xB5, 2, 6, 0]) + struct.pack("<I", hid(2))
    first = page([bth, records], hn_header(0xBC, hid(1)))
    second = page([subject], struct.pack("<H", 0))
    body = "long body".encode("utf-16-le")
    heap = Heap((first, second), lambda nid: body if nid == 0x44 else no_subnodes(nid))
    props = read_pc(heap, "cp1252")
    assert props.text(0x0037) == "Zweiter Block"
    assert props.integer(0x0E07) == 9
    assert props.text(0x1000) == "long body"


def test_pc_missing_subnode_is_an_error() -> None:
    records = struct.pack("<HHI", 0x1000, 0x001F, 0x00000044)
    bth = bytes([0xB5, 2, 6, 0]) + struct.pack("<I", hid(2))
    heap = Heap((page([bth, records], hn_header(0xBC, hid(1))),), no_subnodes)
    with pytest.raises(NdbError):
        read_pc(heap, "cp1252")


def test_table_context_rows_and_empty_cells() -> None:
    # two columns: PR_DISPLAY_NAME (HNID, 4 bytes at 0), PR_RECIPIENT_TYPE (4 bytes at 4)
    cols = [(0x3001001F, 0, 4, 0), (0x0C150003, 4, 4, 1)]
    row_size, ceb = 9, 8
    names = ["Bob".encode("utf-16-le"), "Carol".encode("utf-16-le")]
    rows = (struct.pack("<II", hid(3), 1) + bytes([0b11000000])  # both cells present
            + struct.pack("<II", hid(4), 0) + bytes([0b10000000]))  # no recipient type
    info = (bytes([0x7C, len(cols)]) + struct.pack("<4H", 8, 8, ceb, row_size)
            + struct.pack("<III", 0, hid(2), 0)
            + b"".join(struct.pack("<IHBB", *c) for c in cols))
    heap = Heap((page([info, rows, *names], hn_header(0x7C, hid(1))),), no_subnodes)
    got = read_tc(heap, None, "cp1252")
    assert [(p.text(0x3001), p.integer(0x0C15)) for p in got] == [("Bob", 1), ("Carol", None)]


def test_wrong_heap_kind() -> None:
    heap = Heap((page([b"x"], hn_header(0xB5, hid(1))),), no_subnodes)
    with pytest.raises(NdbError):
        read_pc(heap, "cp1252")


@pytest.mark.parametrize("name", ["pstsdk_sample1.pst", "pstsdk_sample2.pst"])
def test_top_level_message_read_without_pypff_matches_pypff(corpus: Path, name: str) -> None:
    """Unicode and ANSI twins: the whole message read through the B-trees, compared with
    what pypff reads for the same node."""
    pypff = pytest.importorskip("pypff")
    f = pypff.file()
    f.open(str(corpus / "pst" / name))
    msg = f.root_folder.get_sub_folder(1).get_sub_folder(1).get_sub_message(0)
    nid, subject, body = msg.identifier, msg.subject, msg.plain_text_body
    att = msg.get_attachment(0)
    data = att.read_buffer(att.size)
    f.close()
    with (corpus / "pst" / name).open("rb") as raw:
        sub = Reader(Ndb.open(raw), "cp1252", {}).message(Ndb.open(raw).node(nid))
    assert sub.props.text(0x0037)[2:] == subject == "Here is a sample message"
    assert sub.props.text(0x1000).encode("utf-8") == body
    assert [r.text(0x3001) for r in sub.recipients] == ["Terry Mahaffey"]
    (only,) = sub.attachments
    assert only.props.text(0x3707) == "leah_thumper.jpg"
    assert only.props.binary(0x3701) == data and len(data) == 93142


def test_unsupported_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.ost"
    path.write_bytes(b"!BDN" + bytes(6) + struct.pack("<H", 36) + bytes(600))
    with path.open("rb") as f, pytest.raises(NdbError, match="version 36"):
        Ndb.open(f)


def _embedded(corpus: Path, name: str, folder: tuple[int, ...]) -> list[SubMessage]:
    pypff = pytest.importorskip("pypff")
    f = pypff.file()
    f.open(str(corpus / "pst" / name))
    handle = f.root_folder
    for i in folder:
        handle = handle.get_sub_folder(i)
    out = []
    with (corpus / "pst" / name).open("rb") as raw:
        reader = Reader(Ndb.open(raw), "cp1252", {})
        for m in handle.sub_messages:
            for i in range(m.number_of_attachments):
                att = m.get_attachment(i)
                try:
                    out.append(reader.embedded(reader.attachment_of(m.identifier,
                                                                     att.identifier)))
                except NdbError:
                    continue  # a file attachment: it has no embedded message
    f.close()
    return out


def test_embedded_message_with_recipients_headers_and_rtf(corpus: Path) -> None:
    (sub,) = _embedded(corpus, "pstsdk_submessage.pst", (1, 1))
    assert sub.props.text(0x0037) == "\x01\x01This is an embedded message"
    assert [r.text(0x39FE) for r in sub.recipients] == ["terrymah@microsoft.com"]
    assert sub.props.text(0x007D).startswith("Received: ")
    assert sub.props.binary(0x1009)


def test_embedded_message_with_an_attachment(corpus: Path) -> None:
    (sub,) = _embedded(corpus, "testPST.pst", (1,))
    msg = to_mapi(sub, "cp1252")
    assert msg.subject == "First email"
    assert [(a.filename, len(a.data)) for a in msg.attachments] == [("attachment.docx", 11862)]
    assert [b.mime_type for b in msg.bodies] == ["text/plain", "text/html"]


def test_heap_only_fallback(corpus: Path) -> None:
    pypff = pytest.importorskip("pypff")
    f = pypff.file()
    f.open(str(corpus / "pst" / "msgInMsg.pst"))
    att = f.root_folder.get_sub_folder(1).get_sub_message(0).get_attachment(0)
    data = att.read_buffer(att.size)
    f.close()
    notes: list[str] = []
    built, props = heap_only(data, "inner", 0, "cp1252", {}, notes)
    assert built.embedded is not None and props is not None
    assert built.embedded.subject == "Microsoft Outlook テスト メッセージ"
    assert built.embedded.to == ()  # the recipient table is out of reach here ...
    assert "Outlook shows To: xmailuser" in built.embedded.extra_headers[0][1]  # ... but noted
    assert notes and "recipients and attachments not readable" in notes[0]


def test_heap_only_keeps_junk_as_bytes() -> None:
    notes: list[str] = []
    built, props = heap_only(b"not a heap", "x.msg", 2, "cp1252", {}, notes)
    assert props is None and built.data == b"not a heap" and built.embedded is None
    assert notes == ["embedded message 3 (x.msg) unreadable (not a property context heap), "
                     "kept as bytes"]
