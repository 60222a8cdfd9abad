"""Files past 2 GB and 8 GB: where [MS-PST] puts the FPMap pages (the layout as a pure
function, checked against the specification's own arithmetic) and a real, sparse 10.3 GB
file written through the writer, checked by the structural checker and read by libpff.
Only some MB of the file are on disk: the writer leaves a hole of ~10 GB between two
messages, which the AMaps show as free space."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pypff
import pytest

from pstkit.converters.pst.write.check import check
from pstkit.converters.pst.write.mapi import to_mapi
from pstkit.converters.pst.write.messaging import PstWriter
from pstkit.converters.pst.write.ndb import (
    AMAP_SPAN,
    FPMAP_AT,
    MAX_EOF,
    PAGE,
    PT_AMAP,
    PT_FMAP,
    PT_FPMAP,
    PT_PMAP,
    _reserved,
    map_pages,
    next_reserved,
)

from .write_readers import libpff_top

# the specification's numbers, written out rather than taken from the module under test
AMAP = 496 * 8 * 64  # bytes one AMap covers (2.2.2.7.2): 253,952
PMAP = 496 * 8 * 512  # bytes one PMap covers (2.2.2.7.3): 2,031,616
HEADER_FP_PMAPS = 128 * 8  # PMaps the header's rgbFP covers (2.2.2.6)
FPMAP = 496 * 8 * PMAP  # bytes one FPMap page covers (2.2.2.7.6): ~8.06 GB


def test_map_page_layout_past_8_gb() -> None:
    eof = 20 * 10**9
    pages = map_pages(eof)
    where = {ib: kind for ib, kind in pages}
    assert len(where) == len(pages), "two map pages at one offset"
    fpmaps = sorted(ib for ib, kind in pages if kind == PT_FPMAP)
    # the first FPMap page follows the 2 GB the header's rgbFP covers, on the fourth page
    # of its AMap interval (after AMap, PMap and the FMap slot): 0x4A00 + 1024 PMaps
    assert fpmaps[0] == 0x4A00 + HEADER_FP_PMAPS * PMAP == 0x7C004A00
    assert fpmaps == [fpmaps[0] + k * FPMAP for k in range(len(fpmaps))]
    assert fpmaps[1] > 10 * 10**9 and len(fpmaps) == 3
    for ib, kind in pages:
        interval, off = divmod(ib - 0x4400, AMAP)
        if kind == PT_AMAP:
            assert off == 0
        elif kind == PT_PMAP:
            assert off == 0x200 and interval % 8 == 0
        elif kind == PT_FMAP:
            assert off == 0x400 and (interval - 128) % 496 == 0
        else:
            assert off == 0x600 and (interval - 8 * HEADER_FP_PMAPS) % (496 * 8 * 8) == 0
    # the allocator's view agrees: a page is reserved exactly where map_pages puts one, and
    # next_reserved finds the next one from anywhere
    for ib in fpmaps:
        assert _reserved(ib) and not _reserved(ib + PAGE) and not _reserved(ib - PAGE)
        assert next_reserved(ib - 5 * PAGE) == ib - 3 * PAGE  # the interval's AMap first
        assert next_reserved(ib - PAGE + 1) == ib
        assert next_reserved(ib + 1) == ib - 0x600 + AMAP_SPAN
    # up to Outlook's limit an FPMap never shares an interval with an FMap (they first
    # meet ~235 GB in), so the fixed 0x600 offset is free
    assert not any(_reserved(ib - PAGE) for ib in range(FPMAP_AT, MAX_EOF, FPMAP))


def _mail(i: int) -> bytes:
    return (f"From: a@example.org\r\nTo: b@example.org\r\nSubject: far {i}\r\n"
            f"Message-ID: <far{i}@example.org>\r\nDate: Fri, 4 Dec 2026 10:00:00 +0000\r\n"
            f"\r\nbody {i}\r\n").encode()


def test_a_sparse_10_gb_file_has_its_fpmaps_and_is_valid(tmp_path: Path) -> None:
    out = tmp_path / "far.pst"
    with out.open("w+b") as f:
        w = PstWriter(f, "far")
        inbox = w.folder(None, "Inbox", role="inbox")
        w.message(inbox, to_mapi(_mail(0)))
        w.ndb.next_ib = 10_300_000_000  # a hole past the second FPMap page
        w.message(inbox, to_mapi(_mail(1)))
        w.finish()
    st = out.stat()
    if st.st_blocks * 512 > 500 * 2**20:
        pytest.skip("this file system does not keep sparse files sparse")
    assert st.st_size > FPMAP_AT + FPMAP
    with out.open("rb") as f:
        for ib in (FPMAP_AT, FPMAP_AT + FPMAP):
            f.seek(ib)
            page = f.read(PAGE)
            assert page[496] == page[497] == PT_FPMAP
            assert struct.unpack_from("<Q", page, 504)[0] == ib
            assert page[:496] == b"\xff" * 496
        f.seek(0)
        report = check(f)
    assert report.findings == []
    pst = pypff.file()
    pst.open(str(out))
    try:
        top = libpff_top(pst)
        box = top.get_sub_folder(0)
        assert sorted(box.get_sub_message(i).subject for i in range(2)) == ["far 0", "far 1"]
    finally:
        pst.close()
    # damage to an FPMap page is found
    with out.open("r+b") as f:
        f.seek(FPMAP_AT + 3)
        f.write(b"\0")
    with out.open("rb") as f:
        assert any("FPMap" in x for x in check(f).findings)
    os.remove(out)
