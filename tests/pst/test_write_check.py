"""The structural checker: Outlook's own files pass it, files pstkit writes pass it (strict),
and every kind of damage to a written file is found."""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import pypff
import pytest

from pstkit.converters.pst.write.check import check
from pstkit.converters.pst.write.mapi import to_mapi
from pstkit.converters.pst.write.messaging import PstWriter
from pstkit.converters.pst.write.ndb import AMAP_AT, DLIST_AT, FMAP_AT, PT_FMAP
from tests.helpers import make_message

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
        root = f2.get_root_folder()
        top = next(root.get_sub_folder(i) for i in range(root.number_of_sub_folders)
                   if root.get_sub_folder(i).name.startswith("Top of"))
        assert top.get_sub_folder(0).number_of_sub_messages == 36
    finally:
        f2.close()
