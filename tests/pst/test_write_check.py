"""The structural checker: Outlook's own files pass it, files pstkit writes pass it (strict),
and every kind of damage to a written file is found."""

from __future__ import annotations

import base64
import random
import struct
from pathlib import Path

import pypff
import pytest

from pstkit.converters.pst.btree import Ndb
from pstkit.converters.pst.nodes import NodeReader
from pstkit.converters.pst.write.check import check
from pstkit.converters.pst.write.mapi import to_mapi
from pstkit.converters.pst.write.messaging import PstWriter
from pstkit.converters.pst.write.ndb import (
    AMAP_AT,
    DLIST_AT,
    FMAP_AT,
    PAGE,
    PT_FMAP,
    _reserved,
    next_reserved,
)
from tests.helpers import make_message

from .write_readers import libpff_top

#: written by Outlook (pstsdk's and Tika's samples): the checker's rules are Outlook's
OUTLOOK_MADE = ["pstsdk_sample1.pst", "testPST.pst", "testPST_variousBodyTypes.pst"]


@pytest.mark.parametrize("name", OUTLOOK_MADE)
def test_outlook_files_pass(corpus: Path, name: str) -> None:
    with (corpus / "pst" / name).open("rb") as f:
        report = check(f, strict=False)  # Outlook shares blocks of identical empty tables
    assert report.findings == []
    assert report.nodes > 40 and report.pages > 10


def _written(tmp_path: Path) -> Path:
    out = tmp_path / "w.pst"
    with out.open("w+b") as f:
        w = PstWriter(f, "check")
        inbox = w.folder(None, "Inbox", role="inbox")
        sub = w.folder(inbox, "Sub")
        for i in range(30):
            raw = make_message(i, size=20_000 if i % 5 == 0 else 0)
            w.message(inbox if i % 2 else sub, to_mapi(raw, ("seen",)))
        w.finish()
    return out


def _damaged(path: Path, at: int, xor: int = 0xFF) -> list[str]:
    data = bytearray(path.read_bytes())
    data[at] ^= xor
    path.write_bytes(bytes(data))
    with path.open("rb") as f:
        return check(f).findings


def test_written_file_passes(tmp_path: Path) -> None:
    with _written(tmp_path).open("rb") as f:
        report = check(f)
    assert report.findings == []
    assert report.blocks > 100


def test_header_damage_found(tmp_path: Path) -> None:
    path = _written(tmp_path)
    found = _damaged(path, 0x20)  # inside bidNextP: both CRCs cover it
    assert "header dwCRCPartial wrong" in found and "header dwCRCFull wrong" in found


def test_amap_and_density_list_damage_found(tmp_path: Path) -> None:
    path = _written(tmp_path)
    assert any("AMap page" in x for x in _damaged(path, AMAP_AT + 100, 0x01))
    path = _written(tmp_path)
    assert any("density list" in x for x in _damaged(path, DLIST_AT + 8))


def test_block_and_page_damage_found(tmp_path: Path) -> None:
    path = _written(tmp_path)
    head = path.read_bytes()
    nbt_root = struct.unpack_from("<Q", head, 224)[0]
    assert any("B-tree page" in x for x in _damaged(path, nbt_root + 3))
    path = _written(tmp_path)
    assert any("trailer" in x for x in _damaged(path, 0x4800 + 5))  # the first block's data


def test_file_over_32_mb_has_its_fmap(tmp_path: Path) -> None:
    """Past the 128 AMaps the header's FMap covers, [MS-PST] wants FMap pages at their
    places: written (longest free run per AMap), allocated, and found by readers."""
    out = tmp_path / "big.pst"
    blob = bytes(range(256)) * 4096  # 1 MiB
    with out.open("w+b") as f:
        w = PstWriter(f, "big")
        inbox = w.folder(None, "Inbox", role="inbox")
        for i in range(36):
            raw = (f"Subject: blob {i}\r\nContent-Type: application/octet-stream\r\n"
                   "Content-Disposition: attachment; filename=b.bin\r\n"
                   "Content-Transfer-Encoding: base64\r\n\r\n").encode()
            w.message(inbox, to_mapi(raw + base64.encodebytes(blob)))
        w.finish()
    data = out.read_bytes()
    assert len(data) > FMAP_AT
    assert data[FMAP_AT + 496] == data[FMAP_AT + 497] == PT_FMAP
    assert struct.unpack_from("<Q", data, FMAP_AT + 504)[0] == FMAP_AT  # bid = ib
    with out.open("rb") as f:
        assert check(f).findings == []
    assert _damaged(out, FMAP_AT + 1) != []
    f2 = pypff.file()
    f2.open(str(out))
    try:
        top = libpff_top(f2)
        assert top.get_sub_folder(0).number_of_sub_messages == 36
    finally:
        f2.close()


#: nodes of pstsdk's Outlook-made sample1.pst the writer leaves out: the search gatherer's
#: domain object, queue and descriptor (0x261, 0x281, 0x2A1), a heap of unknown use (0xE01),
#: and the ItemProcSearch folder (0x80023 and its queue, criteria and contents table)
NOT_WRITTEN = {0x261, 0x281, 0x2A1, 0xE01, 0x80023, 0x80026, 0x80027, 0x80030}


def _columns(reader: NodeReader, nid: int) -> list[int]:
    heap, _subs = reader.heap(reader.ndb.node(nid))
    info = heap.item(heap.root(0x7C))
    return sorted(struct.unpack_from("<I", info, 22 + 8 * i)[0] for i in range(info[1]))


def test_same_infrastructure_as_an_outlook_store(corpus: Path, tmp_path: Path) -> None:
    """Node for node and column for column, a written store has what Outlook's has."""
    with (corpus / "pst" / "pstsdk_sample1.pst").open("rb") as f1, \
            _written(tmp_path).open("rb") as f2:
        outlook, ours = NodeReader(Ndb.open(f1)), NodeReader(Ndb.open(f2))
        user = 0x8082 >> 5  # the sample's own mail folder, and its messages, are content
        theirs = {n for n, _p in outlook.ndb.nodes() if n & 0x1F != 4 and n >> 5 != user}
        mine = {n for n, _p in ours.ndb.nodes()}
        assert theirs - mine == NOT_WRITTEN
        for table in (0x60D, 0x60E, 0x60F, 0x610, 0x671, 0x692, 0x6B6, 0x6D7, 0x6F8, 0x62B,
                      0x64C):
            assert _columns(ours, table) == _columns(outlook, table), hex(table)
        for nid in (0x122, 0x8022, 0x8042, 0x2223, 0x2227):
            assert ({p for p, _t, _r in ours.entries(nid)}
                    == {p for p, _t, _r in outlook.entries(nid)}), hex(nid)
        store = {p for p, _t, _r in ours.entries(0x21)}
        assert {p for p, _t, _r in outlook.entries(0x21)} - store == {0x3416}  # ItemProcSearch


def test_next_reserved_page_counts_as_the_page_walk_finds() -> None:
    """The writer skips map pages by arithmetic; a walk over every page agrees."""
    rng = random.Random(3)
    starts = [AMAP_AT, AMAP_AT + PAGE, 0x4600, 0x4800] + [
        AMAP_AT + rng.randrange(0, 1 << 31) // PAGE * PAGE for _ in range(300)]
    for ib in starts:
        walked = next(p for p in range(ib, ib + (1 << 40), PAGE) if _reserved(p))
        assert next_reserved(ib) == walked, hex(ib)
