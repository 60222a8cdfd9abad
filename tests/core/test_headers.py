"""pstkit.headers: header_block and summary's field scan (bytes.find, no regex) give
what the regexes they replaced gave, on fixed cases, a seeded fuzz and the corpus."""

from __future__ import annotations

import base64
import email.header
import quopri
import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from pstkit import headers
from pstkit.headers import _decoded, header_block, message_id, summary

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus"

# The implementations before issue 19's CPU work, kept as the reference.
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_FIELD = re.compile(
    rb"^(message-id|subject)[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE
)


def _block_reference(raw: bytes) -> bytes:
    m = _BLANK_LINE.search(raw)
    return raw[: m.end()] if m else raw


def _summary_reference(raw: bytes) -> tuple[str, str]:
    found: dict[bytes, bytes] = {}
    for name, value in _FIELD.findall(_block_reference(raw)):
        found.setdefault(name.lower(), value)
    message_id = found.get(b"message-id", b"").decode("ascii", "replace")
    subject = found.get(b"subject", b"").decode("utf-8", "replace")
    return " ".join(message_id.split()), _decoded(subject.strip()) if subject else ""


@pytest.mark.parametrize(("raw", "block"), [
    (b"A: 1\r\n\r\nbody", b"A: 1\r\n\r\n"),
    (b"A: 1\n\nbody\r\n\r\n", b"A: 1\n\n"),
    (b"A: 1\n\r\nbody", b"A: 1\n\r\n"),
    (b"A: 1\r\n\nbody", b"A: 1\r\n\n"),
    (b"A: 1\r\r\n\r\nbody", b"A: 1\r\r\n\r\n"),
    (b"A: 1\r\n", b"A: 1\r\n"),
    (b"\n\nbody", b"\n\n"),
    (b"", b""),
    (b"A: 1\r\nB: 2\n\r\n\n", b"A: 1\r\nB: 2\n\r\n"),
])
def test_header_block_ends_at_the_first_empty_line(raw: bytes, block: bytes) -> None:
    assert header_block(raw) == block == _block_reference(raw)


@pytest.mark.parametrize(("raw", "expected"), [
    (b"Subject: Hi\r\nMessage-ID: <a@b>\r\n\r\n", ("<a@b>", "Hi")),
    (b"SUBJECT :  Hi \r\n there\r\n\r\n", ("", "Hi there")),
    (b"Subjects: no\r\nSubject-X: no\r\nX-Subject: no\r\nSubject\t: yes\r\n\r\n", ("", "yes")),
    (b"Subject: first\r\nSubject: second\r\n\r\n", ("", "first")),
    (b"To: x\r\n Subject: folded, not a field\r\n\r\n", ("", "")),
    (b"Subject: =?utf-8?B?w6k=?=\r\n\r\nSubject: body\r\n", ("", "\u00e9")),
    (b"Subject: in body only\r\n", ("", "in body only")),
    (b"Subject:", ("", "")),
    (b"Message-Id:\r\n\t<x@y>\r\n\r\n", ("<x@y>", "")),
])
def test_summary_fields(raw: bytes, expected: tuple[str, str]) -> None:
    assert summary(raw) == expected == _summary_reference(raw)


_NAMES = [b"Subject", b"SUBJECT", b"subject", b"Subjects", b"Subject-X", b"X-Subject",
          b"Message-ID", b"message-id", b"Message-Id", b"Message-IDs", b"From", b"Sub", b""]
_PIECES = [b"\r\n", b"\n", b"\r", b" ", b"\t", b":", b" :", b"\t:", b"x", b"=?utf-8?q?a_b?=",
           b"\r\n ", b"\n\t", b"\r\n\r\n", b"\n\n", b"\n\r\n", b"\xc3\xa9", b"\xff", b"<id@h>"]


def _random_message(rng: random.Random) -> bytes:
    out = []
    for _ in range(rng.randrange(0, 12)):
        if rng.random() < 0.6:
            out.append(rng.choice(_NAMES) + rng.choice([b":", b" :", b"\t:", b"", b" "]))
        out.extend(rng.choice(_PIECES) for _ in range(rng.randrange(0, 5)))
        out.append(rng.choice([b"\r\n", b"\n", b""]))
    return b"".join(out)


@pytest.mark.parametrize("seed", range(5))
def test_fuzz_same_as_the_regexes(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(4000):
        raw = _random_message(rng)
        assert header_block(raw) == _block_reference(raw), raw
        assert summary(raw) == _summary_reference(raw), raw
        assert message_id(raw) == _summary_reference(raw)[0], raw


def test_corpus_same_as_the_regexes() -> None:
    files = [p for p in CORPUS.rglob("*") if p.is_file() and p.suffix != ".pst"]
    if not files:
        pytest.skip(f"no corpus at {CORPUS}")
    raws = [p.read_bytes() for p in files]
    # Every message of the mbox files too, not only their first.
    raws += [part for r in list(raws) for part in r.split(b"\nFrom ")]
    for raw in raws:
        assert header_block(raw) == _block_reference(raw)
        assert summary(raw) == _summary_reference(raw)
        assert message_id(raw) == _summary_reference(raw)[0]


@pytest.mark.parametrize("window", [1, 2, 3, 5, 16])
def test_window_edges(window: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small windows put the end of the header on a window's edge (straddling it)."""
    monkeypatch.setattr(headers, "HEADER_WINDOW", window)
    rng = random.Random(window)
    for _ in range(3000):
        raw = _random_message(rng)
        assert header_block(raw) == _block_reference(raw), raw


# --- encoded words: decode_words against the stdlib's decode_header ------------------

_CHARSETS = ["utf-8", "UTF-8", "iso-8859-1", "latin1", "shift_jis", "koi8-r", "us-ascii",
             "none", "bogus-x", "", "unknown-8bit", "iso-2022-jp"]
_Q_TEXT = "ab=_?= 0F9fAZ-.\t\u00fc\u4e2d\r\n=3D=5F=C3=BC==4~!<>"


def _encoded_word(rng: random.Random) -> str:
    how = rng.choice("qQbB")
    if rng.random() < 0.5:  # well-formed words of real text, sometimes cut short
        text = "".join(rng.choice("abc \u00fc\u4e2d_=?") for _ in range(rng.randrange(9)))
        data = text.encode(rng.choice(["utf-8", "utf-16-le"]))
        body = (base64.b64encode(data).decode() if how in "bB"
                else quopri.encodestring(data, header=True).decode().replace("=\n", ""))
        body = body[: rng.randrange(len(body) + 1)] if rng.random() < 0.3 else body
    else:  # anything at all between the "?"s
        body = "".join(rng.choice(_Q_TEXT) for _ in range(rng.randrange(12)))
    return f"=?{rng.choice(_CHARSETS)}?{how}?{body}?="


def _outcome(fn: Callable[[str], object], header: str) -> object:
    try:
        return fn(header)
    except Exception as e:  # the same error is part of the contract
        return type(e)


@pytest.mark.parametrize("seed", range(4))
def test_decode_words_is_the_stdlibs_decode_header(seed: int) -> None:
    """Random runs of encoded words (any charset name, Q and B, broken padding, stray
    "=" and "?", line breaks) and plain text: the same list, or the same error."""
    rng = random.Random(seed)
    for _ in range(5000):
        header = "".join(
            _encoded_word(rng) if rng.random() < 0.6 else
            "".join(rng.choice(" \t\r\nRe:ab\u00fc=?()") for _ in range(rng.randrange(6)))
            for _ in range(rng.randrange(1, 6)))
        want = _outcome(email.header.decode_header, header)
        assert _outcome(headers.decode_words, header) == want, header
    # the subject as the catalog keeps it is the same too
    for value in ("=?utf-8?q?Gr=C3=BC=C3=9Fe?= =?utf-8?b?w7w=?=", "Re:=?koi8-r?q?=F0?=x"):
        assert _decoded(value) == " ".join(str(email.header.make_header(
            email.header.decode_header(value))).split())
