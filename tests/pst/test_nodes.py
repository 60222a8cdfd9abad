"""The node reader (pst_btree/pst_nodes) against libpff on the corpus, and on damage."""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

import pytest

pytest.importorskip("pypff")

import pypff

from pstkit.converters.pst.btree import Ndb, NdbError
from pstkit.converters.pst.nodes import NodeReader, children
from pstkit.converters.pst.source import PstSource
from pstkit.errors import UsageError
from pstkit.location import Location
from pstkit.model import Fetched
from pstkit.options import ConnectOptions, FetchFilter

CORPUS = ["SampleOstFile.ost", "aspose_PersonalStorage.pst", "aspose_SampleContacts.pst",
          "aspose_source.pst", "attachAndInline.pst", "dist-list.pst", "msgInMsg.pst",
          "pstsdk_sample1.pst", "pstsdk_sample2.pst", "pstsdk_submessage.pst", "testPST.pst",
          "testPST_variousBodyTypes.pst"]


def export(path: Path, reader: str) -> list[tuple[object, ...]]:
    """Every folder and every result, with a digest of the bytes, in order."""
    src = PstSource(Location("pst", str(path)), ConnectOptions(extra={"pst_reader": reader}))
    out: list[tuple[object, ...]] = []
    try:
        for f in src.folders():
            out.append((f.path, f.role, f.message_count, f.container_class))
            for r in src.fetch(f, None, FetchFilter(), set()):
                raw = hashlib.sha256(r.raw).hexdigest() if isinstance(r, Fetched) else ""
                out.append((r.meta, getattr(r, "reason", ""), getattr(r, "notes", ()), raw))
    finally:
        src.close()
    return out


@pytest.mark.parametrize("name", CORPUS)
def test_node_reader_gives_what_libpff_gives(corpus: Path, name: str) -> None:
    """Same folders, items, skips, notes and bytes as reading every item through pypff."""
    nodes = export(corpus / "pst" / name, "nodes")
    assert nodes == export(corpus / "pst" / name, "libpff")
    assert len(nodes) > 1


@pytest.mark.parametrize("name", CORPUS)
def test_children_in_libpff_order(corpus: Path, name: str) -> None:
    """Sub-folders and items in the order libpff lists them: an export cursor is an index.
    And every child's place among libpff's sub-items (how a large RTF body is found)."""
    f = pypff.file()
    f.open(str(corpus / "pst" / name))
    with (corpus / "pst" / name).open("rb") as raw:
        kids = children(Ndb.open(raw))
    stack, seen = [f.root_folder], 0
    while stack:
        folder = stack.pop()
        nid = folder.identifier
        subs = [folder.get_sub_folder(i) for i in range(folder.number_of_sub_folders)]
        items = [folder.get_sub_message(i).identifier
                 for i in range(folder.number_of_sub_messages)]
        assert kids.folders.get(nid, []) == [s.identifier for s in subs], folder.name
        assert list(kids.messages.get(nid, ())) == items, folder.name
        every = [folder.get_sub_item(i).identifier for i in range(folder.number_of_sub_items)]
        assert list(kids.nodes.get(nid, ())) == every, folder.name  # libpff's sub-items
        assert all(kids.position(nid, n) == i for i, n in enumerate(every))
        stack += subs
        seen += 1
    f.close()
    assert seen >= 5


def _block_offset(path: Path, nid: int) -> tuple[int, int]:
    """File offset and size of the first data block of a node."""
    with path.open("rb") as raw:
        ndb = Ndb.open(raw)
        bid = ndb.node(nid)[0]
        ib, cb = ndb._lookup(bid, False)
    return ib, cb


def test_damaged_block_fails_its_checksum_and_libpff_reads_the_item(
    corpus: Path, tmp_path: Path
) -> None:
    path = tmp_path / "damaged.pst"
    data = bytearray((corpus / "pst" / "pstsdk_sample1.pst").read_bytes())
    item = 0x200024  # the one message (pypff identifier 2097188)
    ib, cb = _block_offset(corpus / "pst" / "pstsdk_sample1.pst", item)
    data[ib + cb // 2] ^= 0x01  # inside the message's property heap
    path.write_bytes(bytes(data))
    with path.open("rb") as raw, pytest.raises(NdbError, match="checksum"):
        NodeReader(Ndb.open(raw)).item(item)
    # The node reader gives up on the item and libpff reads it, as when it reads everything;
    # but libpff checks no CRC, so the item carries a note that names the damaged part.
    nodes, libpff = export(path, "nodes"), export(path, "libpff")
    assert [getattr(e[0], "subject", e) for e in nodes] == [
        getattr(e[0], "subject", e) for e in libpff]
    notes = [e[2] for e in nodes if hasattr(e[0], "subject") and e[2]]
    assert len(notes) == 1 and notes[0][0].startswith(
        "its property context comes from a damaged block (block 0x")


def _tiny_unicode_file(path: Path, pages: dict[int, bytes], nbt: int) -> None:
    """A Unicode header whose node B-tree root is `nbt`, plus raw pages at their offsets."""
    head = bytearray(0x400)
    head[:4] = b"!BDN"
    head[8:10] = b"SM"
    struct.pack_into("<H", head, 10, 23)
    struct.pack_into("<QQQQ", head, 0xD8, 0, nbt, 0, nbt)
    head[0x201] = 1
    struct.pack_into("<I", head, 4, zlib.crc32(head[8:479], 0xFFFFFFFF) ^ 0xFFFFFFFF)
    size = max(pages) + 512
    body = bytearray(size)
    body[: len(head)] = head
    for ib, page in pages.items():
        body[ib : ib + 512] = page
    path.write_bytes(bytes(body))


def _inner_page(children_: list[tuple[int, int]]) -> bytes:
    """An NBT page one level above the leaves: (key, child page offset) entries."""
    page = bytearray(512)
    for i, (key, ib) in enumerate(children_):
        struct.pack_into("<QQQ", page, 24 * i, key, 0, ib)
    page[488:492] = bytes((len(children_), 20, 24, 1))
    page[496] = page[497] = 0x81
    return bytes(page)


def test_cyclic_node_btree_is_reported_not_a_hang(tmp_path: Path) -> None:
    path = tmp_path / "cyclic.pst"
    _tiny_unicode_file(path, {0x4000: _inner_page([(0x21, 0x4000)])}, 0x4000)
    with path.open("rb") as raw:
        ndb = Ndb.open(raw)
        assert list(ndb.nodes()) == []  # the loop is walked once, then reported
        assert any("cyclic" in lost for lost in ndb.lost)
        with pytest.raises(NdbError, match="not found"):
            ndb.node(0x21)  # every lookup is bounded too


def test_header_checksum_is_checked(corpus: Path) -> None:
    with (corpus / "pst" / "aspose_AddingBulkMessagesWithImprovedPerformance.pst").open(
        "rb"
    ) as raw, pytest.raises(NdbError, match="header checksum"):
        Ndb.open(raw)


def test_unknown_reader_option_is_a_usage_error(corpus: Path) -> None:
    with pytest.raises(UsageError, match="pst_reader"):
        PstSource(Location("pst", str(corpus / "pst" / "testPST.pst")),
                  ConnectOptions(extra={"pst_reader": "fast"}))


def test_leaf_cache_finds_what_the_tree_walk_finds(corpus: Path) -> None:
    """Lookups answered from the cached leaf entries equal those found by walking down
    the B-trees with nothing cached, for every node and every block of its data tree."""
    with (corpus / "pst" / "SampleOstFile.ost").open("rb") as raw:
        warm = Ndb.open(raw)
        nids = [nid for nid, _parent in warm.nodes()]
        refs = {nid: warm.node(nid) for nid in nids}
        assert warm.leaves  # the walk above filled the cache
        cold = Ndb.open(raw)
        for nid in nids:
            cold.drop_caches()
            assert cold.node(nid) == refs[nid]
            if refs[nid][0]:
                cold.drop_caches()
                assert warm.blocks(refs[nid][0]) == cold.blocks(refs[nid][0])
        with pytest.raises(NdbError):
            warm.node(max(nids) + 0x20)  # not in the file, cached leaves or not


@pytest.mark.parametrize("table", [0x692, 0x671])  # recipients, attachments
def test_lenient_read_keeps_the_item_when_a_table_block_is_damaged(
    corpus: Path, tmp_path: Path, table: int
) -> None:
    """A broken recipient or attachment table: the strict read raises (libpff gets the item
    first); the lenient read, the last resort, keeps the item's own properties and the other
    table, and says in `failed` what is missing."""
    data = bytearray((corpus / "pst" / "testPST.pst").read_bytes())
    nid = 0x2000E4  # the item with recipients and an attachment
    with (corpus / "pst" / "testPST.pst").open("rb") as f:
        ndb = Ndb.open(f)
        intact = NodeReader(ndb).item(nid)
        ib, cb = ndb._lookup(ndb.subnodes(ndb.node(nid)[1])[table][0], False)
    data[ib + cb // 2] ^= 0x55  # the block no longer matches its CRC
    path = tmp_path / "damaged.pst"
    path.write_bytes(bytes(data))
    with path.open("rb") as f:
        reader = NodeReader(Ndb.open(f))
        with pytest.raises(NdbError, match="checksum"):
            reader.item(nid)
        kept = reader.item(nid, lenient=True)
    assert kept.entries == intact.entries and len(kept.failed) == 1
    if table == 0x692:
        assert not kept.recipients_read and kept.recipients == []
        assert kept.attachments == intact.attachments and intact.attachments
        assert kept.failed[0][1].startswith("recipient table unreadable (block ")
    else:
        assert kept.recipients_read and kept.recipients == intact.recipients
        assert kept.attachments == [] and intact.recipients
        assert kept.failed[0][1].startswith("attachment table unreadable (block ")
