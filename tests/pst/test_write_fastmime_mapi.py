"""The fast MIME path gives the PST writer exactly the MAPI properties the stdlib path gives,
property by property: on hypothesis-generated odd mail (encoded words, raw 8-bit headers,
missing or doubled boundaries, nested message/rfc822, base64/quoted-printable parts,
RFC 2231 names, CRLF and LF) and on every message of the stores exported from the corpus
PSTs. (test_write_fastmime.py compares the trees themselves.)"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pstkit.converters.pst.write import fastmime
from pstkit.converters.pst.write.mapi import Message, to_mapi
from tests.helpers import cli

WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
FLAGS = ("seen", "flagged", "answered", "draft", "forwarded")


def _stdlib_mapi(raw: bytes, flags: frozenset[str]) -> Message:
    saved = fastmime.fast
    fastmime.fast = lambda _raw: None  # the stdlib's parser for the whole message
    try:
        return to_mapi(raw, flags, WHEN)
    finally:
        fastmime.fast = saved


def _props(msg: Message, at: str = "message") -> Iterator[tuple[str, int, int, bytes]]:
    for pid, ptype, raw in msg.props:
        yield at, pid, ptype, raw
    for i, rcpt in enumerate(msg.recipients):
        yield from ((f"{at}/recipient {i}", *p) for p in rcpt)
    for i, att in enumerate(msg.attachments):
        yield from ((f"{at}/attachment {i}", *p) for p in att.props)
        if att.embedded is not None:
            yield from _props(att.embedded, f"{at}/attachment {i}/embedded")


def assert_same_mapi(raw: bytes, flags: frozenset[str] = frozenset()) -> bool:
    """Compare the two paths property by property; True when the fast path was taken."""
    fast = to_mapi(raw, flags, WHEN)
    slow = _stdlib_mapi(raw, flags)
    got, want = list(_props(fast)), list(_props(slow))
    for g, w in zip(got, want, strict=False):
        assert g == w, f"{w[0]} 0x{w[1]:04X}: fast {g[3][:80]!r} != stdlib {w[3][:80]!r}"
    assert len(got) == len(want), f"{len(got)} properties (fast) != {len(want)} (stdlib)"
    assert fast == slow
    return fastmime.fast(raw) is not None


# --- generated mail -----------------------------------------------------------------

WORDS = st.sampled_from(["hello", "Grüße", "日本語", "😀", "a=b", "x_y", "?", " ", "--b",
                         "=?", "?=", "\u00a0", "ok"])
TEXT = st.lists(WORDS, max_size=6).map(" ".join)


@st.composite
def encoded(draw: st.DrawFn) -> str:
    """A header value with encoded words (some broken), plain text or both."""
    text = draw(TEXT)
    kind = draw(st.sampled_from(["plain", "b", "q", "bad", "latin"]))
    if kind == "b":
        return f"=?utf-8?b?{base64.b64encode(text.encode()).decode()}?= {draw(TEXT)}"
    if kind == "q":
        q = "".join(c if c.isascii() and c.isalnum() else
                    "".join(f"={b:02X}" for b in c.encode()) for c in text)
        return f"=?UTF-8?Q?{q}?="
    if kind == "bad":
        return f"=?x-unknown?b?{text}?= =?utf-8?q?=ZZ?="
    if kind == "latin":
        return "=?iso-8859-1?q?Gr=FC=DFe?="
    return text.encode("ascii", "replace").decode()


@st.composite
def header_lines(draw: st.DrawFn, eol: bytes) -> bytes:
    lines = [b"From: " + draw(encoded()).encode() + b" <a@x.example>",
             b"To: " + draw(st.sampled_from([b"b@y.example", b'"B, C" <b@y.example>, c@z',
                                             b"undisclosed-recipients:;", b"<>"])),
             b"Subject: " + draw(encoded()).encode()]
    if draw(st.booleans()):
        lines.append(b"Date: " + draw(st.sampled_from(
            [b"Mon, 04 Mar 2024 09:30:00 +0000", b"Feb 31 99999", b"Tue, 5 Mar 2024 1:2:3"])))
    if draw(st.booleans()):  # raw 8-bit bytes: UTF-8 or Windows-1252
        lines.append(b"X-Raw: " + draw(st.sampled_from(["Grüße".encode(),
                                                         "Grüße".encode("cp1252")])))
        lines.append(b"Cc: " + "Zoë <z@x>".encode(draw(st.sampled_from(["utf-8", "cp1252"]))))
    if draw(st.booleans()):
        lines += [b"Message-ID: <m@x>", b"In-Reply-To: <p@x>", b"References: <o@x>\t<p@x>",
                  b"Thread-Topic: t", b"Importance: high", b"Sensitivity: private"]
    if draw(st.booleans()):
        lines.append(b"X-Folded: a" + eol + b"\tb" + eol + b" c")
    return eol.join(lines) + eol


@st.composite
def leaf(draw: st.DrawFn, eol: bytes) -> bytes:
    kind = draw(st.sampled_from(["text", "html", "b64", "qp", "name2231", "8bit"] * 3
                                + ["bare"]))  # the odd kinds rarer: most mail is plain
    body = draw(TEXT).encode()
    if kind == "text":
        cs = draw(st.sampled_from([b"utf-8", b"us-ascii", b"x-bogus", b"iso-8859-1"]))
        return b"Content-Type: text/plain; charset=" + cs + eol + eol + body
    if kind == "html":
        return b"Content-Type: text/html; charset=utf-8" + eol + eol + b"<p>" + body + b"</p>"
    if kind == "b64":
        data = draw(st.binary(max_size=600))
        enc = base64.encodebytes(data).replace(b"\n", eol)
        if draw(st.booleans()):
            enc = enc.rstrip(b"=" + eol)  # padding lost
        return (b'Content-Type: application/pdf; name="' + draw(encoded()).encode() + b'"' + eol
                + b"Content-Disposition: attachment" + eol
                + b"Content-Transfer-Encoding: base64" + eol + eol + enc)
    if kind == "qp":
        return (b"Content-Type: text/plain; charset=utf-8" + eol
                + b"Content-Transfer-Encoding: quoted-printable" + eol + eol
                + b"Gr=C3=BC=C3=9Fe=" + eol + b"x=3D")
    if kind == "name2231":
        return (b"Content-Type: application/octet-stream" + eol
                + b"Content-Disposition: attachment; filename*=UTF-8''Gr%C3%BC%C3%9Fe.txt"
                + eol + b"Content-ID: <c@x>" + eol + eol + body)
    if kind == "8bit":
        return b"Content-Type: text/plain" + eol + eol + "Grüße".encode()
    return b"Content-Type: text/plain" + eol  # headers only, no blank line


@st.composite
def entity(draw: st.DrawFn, eol: bytes, depth: int = 0) -> bytes:
    kind = draw(st.sampled_from(["leaf", "leaf", "multi", "multi", "multi", "rfc822"]
                                if depth < 3 else ["leaf"]))
    if kind == "leaf":
        return draw(leaf(eol))
    if kind == "rfc822":
        inner = draw(header_lines(eol)) + draw(entity(eol, depth + 1))
        return b"Content-Type: message/rfc822" + eol + eol + inner
    b = draw(st.sampled_from([b"b", b"=_x", b"a.b+c", b"q" * 30]))
    sub = draw(st.sampled_from([b"mixed", b"alternative", b"related"] * 3 + [b"digest"]))
    parts = draw(st.lists(entity(eol, depth + 1), max_size=4))
    body = draw(st.sampled_from([b"", b"preamble" + eol]))
    for p in parts:
        body += b"--" + b + eol + p + eol
    ending = draw(st.sampled_from(["close"] * 12 + ["none", "twice", "noboundary"]))
    if ending == "close":
        body += b"--" + b + b"--" + eol + draw(st.sampled_from([b"", b"epilogue" + eol]))
    elif ending == "twice":
        body += b"--" + b + b"--" + eol + b"--" + b + b"--" + eol
    head = b"Content-Type: multipart/" + sub
    if ending != "noboundary":
        head += b'; boundary="' + b + b'"'
    return head + eol + eol + body


@st.composite
def mail(draw: st.DrawFn) -> bytes:
    eol = draw(st.sampled_from([b"\r\n", b"\n"]))
    raw = draw(header_lines(eol)) + b"MIME-Version: 1.0" + eol + draw(entity(eol))
    if draw(st.integers(0, 19)) == 0:
        raw = raw.replace(b"\n", b"\r\n", 1)  # mixed line ends
    return raw


@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(raw=mail(), flags=st.frozensets(st.sampled_from(FLAGS)))
def test_generated_mail_gives_the_same_properties(raw: bytes, flags: frozenset[str]) -> None:
    assert_same_mapi(raw, flags)


def test_the_generator_reaches_the_fast_path() -> None:
    """Most generated messages must take the fast path, or the test above compares the
    stdlib with itself."""
    taken: list[bool] = []

    @settings(max_examples=150, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(raw=mail())
    def run(raw: bytes) -> None:
        taken.append(fastmime.fast(raw) is not None)

    run()
    assert sum(taken) > len(taken) // 4, f"fast path for {sum(taken)} of {len(taken)}"


# --- the corpus PSTs, exported to stores --------------------------------------------

@pytest.fixture(scope="module")
def pst_stores(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = []
    for pst in sorted((corpus / "pst").iterdir()):
        store = tmp_path_factory.mktemp("pststores") / pst.stem
        code = cli("--quiet", "export", f"pst:{pst}", str(store))[0]
        if code in (0, 1):  # 1: items reported as problems, the rest stored
            out.append(store)  # (2: a damaged file the reader refuses in one line)
    assert len(out) >= 10
    return out


def test_messages_exported_from_corpus_psts(pst_stores: list[Path]) -> None:
    raws = [p.read_bytes() for s in pst_stores for p in sorted((s / "mail").rglob("*"))
            if p.is_file() and p.parent.name in ("cur", "new")]
    assert len(raws) > 50
    taken = sum(assert_same_mapi(raw, frozenset({"seen"})) for raw in raws)
    assert taken > len(raws) // 4, f"fast path for {taken} of {len(raws)}"
