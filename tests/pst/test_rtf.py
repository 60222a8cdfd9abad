"""Compressed RTF (MS-OXRTFCP) and HTML de-encapsulation (MS-OXRTFEX): tables."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from pstkit.converters.pst.rtf import RtfError, decompress, deencapsulate_html, is_html_rtf

# MS-OXRTFCP 3.1.1.1 / 3.1.1.2: the specification's own examples.
SPEC_EXAMPLES = [
    ("2d0000002b0000004c5a4675f1c5c7a703000a007263706731323542320af32068656c0900206277"
     "05b06c647d0a800fa0", b"{\\rtf1\\ansi\\ansicpg1252\\pard hello world}\r\n"),
    ("1a0000001c0000004c5a4675e2d44b51410004205758595a0d6e7d010eb0",
     b"{\\rtf1 WXYZWXYZWXYZWXYZWXYZ}"),  # a reference that overlaps its own output
]


@pytest.mark.parametrize(("hexdata", "expected"), SPEC_EXAMPLES)
def test_decompress_spec_examples(hexdata: str, expected: bytes) -> None:
    assert decompress(bytes.fromhex(hexdata)) == expected


def test_uncompressed_mela() -> None:
    body = b"{\\rtf1 plain}"
    data = struct.pack("<IIII", len(body) + 12, len(body), 0x414C454D, 0) + body
    assert decompress(data) == body


@pytest.mark.parametrize("data", [b"", b"short", struct.pack("<IIII", 12, 0, 0x12345678, 0)])
def test_bad_compressed_rtf(data: bytes) -> None:
    with pytest.raises(RtfError):
        decompress(data)


def test_truncated_reference_is_an_error() -> None:
    # control byte says "reference" but only one byte follows
    data = struct.pack("<IIII", 14, 10, 0x75465A4C, 0) + b"\x01\xff"
    with pytest.raises(RtfError):
        decompress(data)


def test_decompress_matches_libpff(corpus: Path) -> None:
    pypff = pytest.importorskip("pypff")
    f = pypff.file()
    f.open(str(corpus / "pst" / "msgInMsg.pst"))
    msg = f.root_folder.sub_folders[1].sub_messages[0]
    packed = next(e.data for e in msg.record_sets[0].entries if e.entry_type == 0x1009)
    assert decompress(packed) == msg.rtf_body.rstrip(b"\0")
    f.close()


def _rtf(body: str, cp: int = 1252) -> bytes:
    head = f"{{\\rtf1\\ansi\\ansicpg{cp}\\fromhtml1 \\deff0{{\\fonttbl{{\\f0 Arial;}}}}"
    return (head + body + "}").encode("latin-1")


DEENCAPSULATE = [
    ("{\\*\\htmltag19 <html>}{\\*\\htmltag2 \\par }", "<html>\r\n"),
    ("\\htmlrtf {\\b bold}\\htmlrtf0 x", "x"),  # rtf-only formatting is dropped
    ("\\htmlrtf {\\htmlrtf0 shown}hidden\\htmlrtf0 !", "shown!"),  # \htmlrtf is group-scoped
    ("{\\*\\htmltag84 <p>}text\\tab more{\\*\\htmltag92 </p>}", "<p>text\tmore</p>"),
    ("\\'e9t\\'e9", "été"),
    ("\\u8364?\\u-4064?", "€\uf020"),  # \uN then one fallback char skipped (uc1)
    ("\\uc2\\u8364\\'80\\'80x", "€x"),  # uc2: two \'hh fallbacks skipped
    ("\\{ \\} \\\\", "{ } \\"),
    ("{\\*\\mhtmltag84 <img src=\"cid:x\">}{\\*\\htmltag84 <img src=\"a.png\">}",
     "<img src=\"a.png\">"),
    ("{\\*\\unknowndest ignored}kept", "kept"),
    ("{\\colortbl;\\red0\\green0\\blue0;}ok", "ok"),
]


@pytest.mark.parametrize(("body", "html"), DEENCAPSULATE)
def test_deencapsulate(body: str, html: str) -> None:
    assert deencapsulate_html(_rtf(body)) == html


def test_deencapsulate_double_byte_code_page() -> None:
    # "日本" in cp932, written as \'hh pairs, must decode as one sequence
    assert deencapsulate_html(_rtf("\\'93\\'fa\\'96\\'7b", 932)) == "日本"


def test_not_html_rtf() -> None:
    plain = b"{\\rtf1\\ansi\\fromtext hello}"
    assert not is_html_rtf(plain)
    with pytest.raises(RtfError):
        deencapsulate_html(plain)
