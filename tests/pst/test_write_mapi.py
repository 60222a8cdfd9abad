"""MIME -> MAPI properties for the PST writer (pure, table-tested)."""

from __future__ import annotations

import base64
import struct
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pstkit.converters.pst.rtf import decompress
from pstkit.converters.pst.write.mapi import (
    MAX_DEPTH,
    MSGFLAG_HASATTACH,
    MSGFLAG_READ,
    MSGFLAG_UNSENT,
    Message,
    header_block,
    one_off,
    recover,
    short_name,
    to_mapi,
    unicode,
)

BASE = (b"From: Ann Example <ann@example.com>\r\nTo: Bob <bob@example.com>, carl@example.com\r\n"
        b"Cc: =?utf-8?q?D=C3=B6ra?= <dora@example.com>\r\nBcc: eve@example.com\r\n"
        b"Subject: RE: Hello there\r\nDate: Tue, 01 Oct 2024 10:00:00 +0200\r\n"
        b"Message-ID: <m1@example.com>\r\nIn-Reply-To: <m0@example.com>\r\n")


def props(m: Message) -> dict[int, bytes]:
    return {pid: raw for pid, _t, raw in m.props}


def text(m: Message, pid: int) -> str:
    return props(m)[pid].decode("utf-16-le")


def long(m: Message, pid: int) -> int:
    return int(struct.unpack("<I", props(m)[pid][:4])[0])


def filetime(when: datetime) -> bytes:
    return struct.pack("<Q", int((when - datetime(1601, 1, 1, tzinfo=UTC)).total_seconds()
                                 * 10_000_000))


def test_envelope() -> None:
    m = to_mapi(BASE + b"\r\nbody\r\n")
    assert text(m, 0x001A) == "IPM.Note"
    assert (text(m, 0x0037), text(m, 0x003D), text(m, 0x0E1D)) == (
        "RE: Hello there", "RE: ", "Hello there")
    assert text(m, 0x0070) == "Hello there"  # conversation topic
    assert props(m)[0x0039] == filetime(datetime(2024, 10, 1, 8, 0, tzinfo=UTC))
    assert (text(m, 0x0C1A), text(m, 0x0C1F), text(m, 0x5D01)) == (
        "Ann Example", "ann@example.com", "ann@example.com")
    assert text(m, 0x0042) == "Ann Example" and text(m, 0x0C1E) == "SMTP"
    assert text(m, 0x1035) == "<m1@example.com>" and text(m, 0x1042) == "<m0@example.com>"
    assert text(m, 0x1000).strip() == "body"
    assert text(m, 0x007D) == BASE.decode() + "\r\n"  # the header block as it came


@pytest.mark.parametrize(("flags", "bits", "verb", "status"), [
    ((), 0, None, None),
    (("seen",), MSGFLAG_READ, None, None),
    (("draft",), MSGFLAG_UNSENT, None, None),
    (("seen", "answered"), MSGFLAG_READ, 102, None),
    (("forwarded",), 0, 104, None),
    (("flagged",), 0, None, 2),
])
def test_flags(flags: tuple[str, ...], bits: int, verb: int | None, status: int | None) -> None:
    m = to_mapi(BASE + b"\r\nx\r\n", flags)
    assert long(m, 0x0E07) == bits
    assert (long(m, 0x1081) if 0x1081 in props(m) else None) == verb
    assert (long(m, 0x1090) if 0x1090 in props(m) else None) == status


def test_recipients() -> None:
    m = to_mapi(BASE + b"\r\nx\r\n")
    rows = [{pid: raw for pid, _t, raw in r} for r in m.recipients]
    got = [(int.from_bytes(r[0x0C15], "little"), r[0x3001].decode("utf-16-le"),
            r[0x39FE].decode("utf-16-le")) for r in rows]
    assert got == [(1, "Bob", "bob@example.com"), (1, "carl@example.com", "carl@example.com"),
                   (2, "Döra", "dora@example.com"), (3, "eve@example.com", "eve@example.com")]
    assert text(m, 0x0E04) == "Bob; carl@example.com"
    assert text(m, 0x0E03) == "Döra" and text(m, 0x0E02) == "eve@example.com"


def test_html_only_and_attachments() -> None:
    raw = BASE + (b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
                  b"--b\r\nContent-Type: text/html; charset=iso-8859-1\r\n\r\n<p>caf\xe9</p>\r\n"
                  b"--b\r\nContent-Type: image/png\r\nContent-ID: <img1>\r\n"
                  b"Content-Disposition: inline\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                  b"iVBORw0K\r\n--b\r\n"
                  b"Content-Type: application/pdf; name=\"r\xc3\xa9sum\xc3\xa9.pdf\"\r\n"
                  b"Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf\r\n\r\n"
                  b"%PDF\r\n--b--\r\n")
    m = to_mapi(raw)
    assert 0x1000 not in props(m)
    assert props(m)[0x1013].strip() == b"<p>caf\xe9</p>"  # as it came, with its code page
    assert long(m, 0x3FDE) == 28591
    assert long(m, 0x0E07) & MSGFLAG_HASATTACH
    first, second = ({pid: v for pid, _t, v in a.props} for a in m.attachments)
    assert first[0x3701] == b"\x89PNG\r\n\x1a\n"[:6] and first[0x3712] == "img1".encode("utf-16-le")
    assert first[0x7FFE][0] == 1  # inline: hidden
    assert second[0x3707].decode("utf-16-le") == "résumé.pdf"
    assert second[0x3704].decode("utf-16-le") == "RSUM.PDF"
    assert second[0x370E].decode("utf-16-le") == "application/pdf"
    assert int.from_bytes(second[0x0E20], "little") == len(second[0x3701])
    assert second[0x370B] == b"\xff\xff\xff\xff"  # rendering position: none


@pytest.mark.parametrize(("raw", "want"), [
    ("plain", "plain"),
    ("caf\udcc3\udca9", "café"),  # UTF-8 bytes in a header without a charset
    ("caf\udce9", "café"),  # Windows-1252
    ("bad \ud800 surrogate", "bad \ufffd surrogate"),
])
def test_recover(raw: str, want: str) -> None:
    assert recover(raw) == want


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF,
                                      blacklist_categories=()), max_size=40))  # fmt: skip
def test_unicode_values_are_the_recovered_text_in_utf16(text: str) -> None:
    """`unicode` encodes once and recovers only when the strict encoder refuses: the
    bytes are those of recovering first, for any text (surrogates and escapes too)."""
    assert unicode(0x0037, text) == (0x0037, 0x001F,
                                     recover(text).encode("utf-16-le", "replace"))


def test_one_off_and_short_names() -> None:
    eid = one_off("Ann", "ann@example.com")
    assert eid[4:20] == bytes.fromhex("812b1fa4bea310199d6e00dd010f5402")
    assert eid[24:].decode("utf-16-le") == "Ann\0SMTP\0ann@example.com\0"
    assert short_name("Quarterly report 2024.xlsx") == "QUARTERL.XLS"
    assert short_name("noext") == "NOEXT" and short_name("日本.txt") == "ATTACH.TXT"


def test_header_block_normalises_line_ends() -> None:
    assert header_block(b"A: 1\nB: 2\n\nbody\n") == "A: 1\r\nB: 2\r\n\r\n"
    assert header_block(b"A: 1\r\n\r\nbody") == "A: 1\r\n\r\n"
    assert header_block(b"A: 1\r\n folded\r\nnot a header\r\nB: 2\r\n") == "A: 1\r\n folded\r\n\r\n"
    assert header_block(b"1795\nFrom: x\n\n") == ""  # .emlx: a parser sees no header


def _nested(depth: int) -> bytes:
    raw = b"Subject: leaf\r\n\r\nleaf body\r\n"
    for n in range(depth):
        raw = (f"Subject: level {n}\r\nMIME-Version: 1.0\r\n"
               f"Content-Type: multipart/mixed; boundary=z{n}\r\n\r\n--z{n}\r\n"
               "Content-Type: message/rfc822\r\n\r\n").encode() + raw + f"\r\n--z{n}--\r\n".encode()
    return raw


def test_attached_messages_become_embedded_messages_to_a_depth() -> None:
    m = to_mapi(_nested(3))
    levels = []
    while m.attachments:
        att = m.attachments[0]
        props_ = {pid: raw for pid, _t, raw in att.props}
        assert props_[0x3705] == struct.pack("<I", 5)  # PR_ATTACH_METHOD: embedded message
        assert att.embedded is not None
        levels.append(props_[0x3001].decode("utf-16-le"))
        m = att.embedded
    assert levels == ["level 1", "level 0", "leaf"] and text(m, 0x1000).strip() == "leaf body"
    deep = to_mapi(_nested(MAX_DEPTH + 2))
    for _ in range(MAX_DEPTH):
        assert deep.attachments[0].embedded is not None
        deep = deep.attachments[0].embedded
    last = deep.attachments[0]  # deeper than pstkit's reader follows: an .eml by value
    assert last.embedded is None
    assert {pid: raw for pid, _t, raw in last.props}[0x3705] == struct.pack("<I", 1)


@pytest.mark.parametrize(("charset", "body", "stored", "cpid"), [
    ("windows-1252", b"<b>\x80</b>", b"<b>\x80</b>", 1252),
    ("shift_jis", "<b>日本</b>".encode("shift_jis"), "<b>日本</b>".encode("shift_jis"), 932),
    ("x-unknown", b"<b>a\xe9</b>", "<b>a\xe9</b>".encode(), 65001),  # latin-1 guess
    ("utf-8", b"<b>\xff</b>", "<b>\ufffd</b>".encode("utf-8"), 65001),  # broken: re-encoded
])
def test_html_code_page(charset: str, body: bytes, stored: bytes, cpid: int) -> None:
    raw = (f"Subject: h\r\nContent-Type: text/html; charset={charset}\r\n"
           "Content-Transfer-Encoding: 8bit\r\n\r\n").encode() + body + b"\r\n"
    m = to_mapi(raw)
    assert props(m)[0x1013].strip() == stored and long(m, 0x3FDE) == cpid


def test_thread_and_sensitivity() -> None:
    index = bytes(range(27))  # a header block and one child block, as Outlook sends it
    raw = (b"Subject: RE: Plan\r\nThread-Topic: The plan\r\nThread-Index: "
           + base64.b64encode(index) + b"\r\nSensitivity: Company-Confidential\r\n\r\nx")
    m = to_mapi(raw)
    assert text(m, 0x0070) == "The plan" and props(m)[0x0071] == index
    assert long(m, 0x0036) == 3 and len(props(m)[0x300B]) == 16
    fresh = props(to_mapi(BASE + b"\r\nx"))[0x0071]
    assert len(fresh) == 22 and fresh[0] == 1  # a new conversation: header block only


def test_rtf_alternative_becomes_the_rtf_body() -> None:
    """A text/rtf alternative (as pstkit's reader writes a real RTF body) is PR_RTF_COMPRESSED
    in its uncompressed form, which the reader's decompressor reads back; an attached .rtf
    file stays an attachment."""
    rtf = b"{\\rtf1\\ansi\\ansicpg1252 Hello {\\b bold}\\par}"
    raw = BASE + (b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n"
                  b"--m\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n"
                  b"--a\r\nContent-Type: text/plain\r\n\r\nHello bold\r\n"
                  b"--a\r\nContent-Type: text/rtf\r\n\r\n" + rtf + b"\r\n--a--\r\n"
                  b"--m\r\nContent-Type: text/rtf; name=x.rtf\r\n"
                  b"Content-Disposition: attachment; filename=x.rtf\r\n\r\n{\\rtf1 x}\r\n--m--\r\n")
    m = to_mapi(raw)
    assert decompress(props(m)[0x1009]).rstrip(b"\r\n") == rtf
    assert props(m)[0x0E1F][0] == 1  # PR_RTF_IN_SYNC
    assert [a.props[2][2].decode("utf-16-le") for a in m.attachments] == ["x.rtf"]


@pytest.mark.parametrize(("subject", "want"), [
    ("Zoë Ämter".encode(), "Zoë Ämter"),  # raw UTF-8
    (b"caf\xe9 cr\xe8me", "café crème"),  # raw Windows-1252
    (b"=?utf-8?q?D=C3=B6ra?= here", "Döra here"),  # an encoded word
])  # fmt: skip
def test_raw_eight_bit_subject(subject: bytes, want: str) -> None:
    m = to_mapi(b"Subject: " + subject + b"\r\n\r\nbody")
    assert text(m, 0x0037) == want and text(m, 0x0E1D) == want
