"""The PST writer's fast MIME splitter builds the stdlib's tree exactly, or steps aside.

For every message of the corpus (eml, mbox, Maildir) and for seeded fuzzed multiparts
(CRLF and LF, preambles, epilogues, nesting, empty and adjacent parts, missing closes,
odd header blocks), `fastmime.parse` and `email.message_from_bytes` must give trees that
serialise to the same bytes and have the same structure, headers, payloads, preamble and
epilogue. And the fast path must actually be taken for ordinary mail (or it saves nothing).
"""

from __future__ import annotations

import base64
import email
import email.policy
import mailbox
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path

import pytest

from pstkit.converters.pst.write import fastmime
from pstkit.converters.pst.write.mapi import _HEADER_LINE as HEADER_LINE
from pstkit.converters.pst.write.mapi import header_block, to_mapi
from pstkit.converters.pst.write.parts import data_of


def _stdlib(raw: bytes) -> Message:
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def _shape(msg: Message) -> object:
    payload = msg.get_payload()
    kids = [_shape(p) for p in payload] if isinstance(payload, list) else payload
    params = [(msg.get_params(), msg.get_params(header="content-disposition"),
               msg.get_filename(), msg.get_content_charset(), msg.get_boundary())
              for _twice in range(2)]  # the fast tree's are parsed once per value, then kept
    names = {k.lower() for k in msg} | {"x-none", "To", "CONTENT-TYPE"}
    lookups = [(n, msg.get(n), msg.get_all(n), msg[n], n in msg) for n in sorted(names)]
    return (msg.items(), msg.get_content_type(), msg.get_default_type(), msg.preamble,
            msg.epilogue, msg.get_unixfrom(), params, lookups, kids)


def _same(raw: bytes) -> bool:
    """Assert the fast tree equals the stdlib's; True when the fast path was taken."""
    got = fastmime.fast(raw)
    if got is None:
        return False
    want = _stdlib(raw)
    assert _shape(got) == _shape(want), raw[:300]
    assert got.as_bytes() == want.as_bytes(), raw[:300]
    return True


def _corpus_messages(root: Path) -> Iterator[bytes]:
    for p in sorted((root / "eml").iterdir()):
        yield p.read_bytes()
    for p in sorted((root / "mbox").iterdir()):
        for m in mailbox.mbox(str(p), create=False):
            yield m.as_bytes()
    for p in sorted((root / "maildir").rglob("*")):
        if p.is_file() and p.parent.name in ("cur", "new"):
            yield p.read_bytes()


def test_corpus_messages(corpus: Path) -> None:
    raws = list(_corpus_messages(corpus))
    assert len(raws) > 50
    taken = sum(_same(raw) for raw in raws)
    assert taken > len(raws) // 3, f"fast path for {taken} of {len(raws)}"
    when = datetime(2024, 5, 1, tzinfo=UTC)
    for raw in raws:  # the writer's whole translation is the same either way
        assert to_mapi(raw, received=when) == _stdlib_mapi(raw, when)


def _stdlib_mapi(raw: bytes, when: datetime) -> object:
    saved = fastmime.fast
    fastmime.fast = lambda _raw: None  # the stdlib path, as before this module existed
    try:
        return to_mapi(raw, received=when)
    finally:
        fastmime.fast = saved


def _leaf(rng: random.Random, eol: str) -> str:
    kind = rng.choice(["plain", "b64", "bare", "nohead", "qp", "weird"])
    body = eol.join(rng.choice(["hello", "", " ", "--x", "-- b", "Grüße", "a:b", "\t"])
                    for _ in range(rng.randrange(0, 5)))
    if kind == "plain":
        return f"Content-Type: text/plain; charset=utf-8{eol}{eol}{body}"
    if kind == "b64":
        data = rng.randbytes(rng.randrange(0, 300))
        enc = email.base64mime.body_encode(data, maxlinelen=76, eol=eol)
        return (f'Content-Type: application/octet-stream; name="f.bin"{eol}'
                f"Content-Transfer-Encoding: base64{eol}{eol}{enc}")
    if kind == "bare":
        return f"Content-Type: text/plain{eol}"  # headers, no blank line, no body
    if kind == "nohead":
        return f"{eol}{body}"
    if kind == "qp":
        return f"Content-Transfer-Encoding: quoted-printable{eol}{eol}a=3Db={eol}c"
    return f"X-Odd : value{eol}Subject x: y{eol}{eol}{body}"


def _multipart(rng: random.Random, eol: str, depth: int, used: list[str]) -> str:
    b = rng.choice(["b", "bb", "=_x", "a.b+c", "b-1", "b" * 30])
    used.append(b)
    head = f'Content-Type: multipart/{rng.choice(["mixed", "alternative"])}; boundary="{b}"'
    parts = []
    for _ in range(rng.randrange(0, 4)):
        if depth < 3 and rng.random() < 0.3:
            parts.append(_multipart(rng, eol, depth + 1, used))
        else:
            parts.append(_leaf(rng, eol))
    pre = rng.choice(["", "preamble", f"pre{eol}amble{eol}", eol])
    post = rng.choice(["", "epilogue", f"{eol}epi{eol}", eol, f"--{b}{eol}"])
    sep = rng.choice([f"--{b}", f"--{b}  ", f"--{b}\t"])
    body = pre + (eol if pre else "")
    for p in parts:
        body += sep + eol + p + eol
        if rng.random() < 0.05:
            body += sep + eol  # adjacent boundary lines
    if rng.random() > 0.05:
        body += f"--{b}--" + rng.choice(["", " "]) + rng.choice([eol + post, ""])
    return head + eol + eol + body


@pytest.mark.parametrize("seed", range(12))
def test_fuzzed_multiparts(seed: int) -> None:
    rng = random.Random(seed)
    taken = total = 0
    for _ in range(150):
        eol = rng.choice(["\r\n", "\n"])
        top = f"From: a@x{eol}Subject: t{eol}MIME-Version: 1.0{eol}"
        raw = (top + _multipart(rng, eol, 0, [])).encode("utf-8", "surrogateescape")
        if rng.random() < 0.05:
            raw = raw.replace(b"\n", b"\r\n", 1)  # mixed line ends
        total += 1
        taken += _same(raw)
    assert taken > total // 10, f"fast path for {taken} of {total}"


def test_generated_mailbox_goes_fast_and_alike(tmp_path: Path) -> None:
    """Ordinary mail (the bench generator's kind: text, HTML, attachments) takes the fast path."""
    rng = random.Random(5)
    raws = []
    for i in range(40):
        outer = email.message.EmailMessage()
        outer["Subject"], outer["From"], outer["To"] = f"m{i}", "a@x.example", "b@y.example"
        outer.set_content("Hello\n" * rng.randrange(1, 50))
        outer.add_alternative("<p>Hello</p>", subtype="html")
        for k in range(rng.randrange(0, 3)):
            outer.add_attachment(rng.randbytes(rng.randrange(1, 5000)),
                                 maintype="application", subtype="pdf", filename=f"f{k}.pdf")
        raws.append(outer.as_bytes(policy=email.policy.SMTP))
    assert all(_same(raw) for raw in raws)


@pytest.mark.parametrize("seed", range(4))
def test_base64_bodies_decode_as_the_stdlib_decodes_them(seed: int) -> None:
    """Clean, unpadded, dirty and broken base64 bodies: the writer's decode equals
    `get_payload(decode=True)` for each."""
    rng = random.Random(seed)
    for _ in range(300):
        data = rng.randbytes(rng.randrange(0, 200))
        enc = email.base64mime.body_encode(data, maxlinelen=rng.choice([20, 76]),
                                           eol=rng.choice(["\r\n", "\n"]))
        mangle = rng.randrange(6)
        if mangle == 1:
            enc = enc.rstrip("=\r\n")  # padding lost
        elif mangle == 2 and enc:
            i = rng.randrange(len(enc))
            enc = enc[:i] + rng.choice(["*", " ", "\t", "é", "=", "\r"]) + enc[i:]
        elif mangle == 3:
            enc = enc[: rng.randrange(len(enc) + 1)]  # cut anywhere
        raw = (f"Content-Type: application/pdf\r\nContent-Transfer-Encoding: "
               f"{rng.choice(['base64', 'BASE64', ' base64'])}\r\n\r\n{enc}").encode(
            "utf-8", "surrogateescape")
        part = _stdlib(raw)
        assert data_of(part) == part.get_payload(decode=True), raw


def _header_block_reference(raw: bytes) -> str:
    """header_block as it was: every line of the message split, then the loop."""
    out: list[bytes] = []
    for line in raw.splitlines():
        if not line.strip(b"\r") or not (HEADER_LINE.match(line) or (line[:1] in b" \t"
                                         and out)):
            break
        out.append(line.rstrip(b"\r"))
    return (b"\r\n".join(out) + b"\r\n\r\n").decode("utf-8", "surrogateescape") if out else ""


@pytest.mark.parametrize("seed", range(4))
def test_header_block_reads_only_the_head_and_gives_the_same(seed: int, corpus: Path) -> None:
    rng = random.Random(seed)
    raws = list(_corpus_messages(corpus)) if seed == 0 else []
    pieces = [b"A: b", b"", b"\r", b" cont", b"X-Y: z\r", b"body", b"\tfold", b"no header"]
    for _ in range(2000):
        raws.append(rng.choice([b"\n", b"\r\n", b"\r"]).join(
            rng.choice(pieces) for _ in range(rng.randrange(0, 8))))
    for n in (13100, 13106, 20000):  # a head past the first 64 KB searched
        raws += [b"A: b\r\n" * n + b"\r\nbody\r\n\r\n", b"A: b\n" * n + b"\nbody",
                 b"A: b\r" * n + b"\rbody", b"A: b\r\n" * n]
    for raw in raws:
        assert header_block(raw) == _header_block_reference(raw), raw[:100]


_NAMES = [b"Subject", b"From", b"to", b"X-a.b", b"Content-Type", b"!#~", b"", b"Re", b"a b"]
_VALUES = [b"", b" ", b"plain", b"  lead and trail \t", b"a: b: c", b"=?utf-8?q?x?=",
           b"caf\xc3\xa9", b"\xff\x80", b"\t", b"x\x00y", b"From x"]


@pytest.mark.parametrize("seed", range(4))
def test_parse_head_is_the_stdlib_header_parse(seed: int) -> None:
    """Seeded header blocks (continuation lines, blank and odd values, 8-bit bytes,
    nameless fields, a continuation first): parse_head gives the stdlib's headers-only
    parse, field by field as stored, or steps aside (_Slow) where that notes a defect."""
    rng = random.Random(seed)
    fast = slow = 0
    for _ in range(3000):
        eol = rng.choice([b"\r\n", b"\n"])
        lines = []
        for _ in range(rng.randint(1, 6)):
            if rng.random() < 0.25:
                lines.append(rng.choice([b" ", b"\t", b"  "]) + rng.choice(_VALUES))
            else:
                lines.append(rng.choice(_NAMES) + b":" + rng.choice(_VALUES))
        lines = [ln for ln in lines if HEADER_LINE.match(ln) or ln[:1] in b" \t"]
        if not lines or any(not ln.strip(b" \t") and ln[:1] in b" \t" for ln in lines[:1]):
            continue
        head = eol.join(lines) + eol
        want = fastmime._HEADERS.parsebytes(head + eol)
        try:
            got = fastmime.parse_head(head, eol)
        except fastmime._Slow:
            assert want.defects, head  # stepped aside only where the stdlib saw a defect
            slow += 1
            continue
        fast += 1
        assert got._headers == want._headers, head  # type: ignore[attr-defined]
        assert got.get_payload() == want.get_payload() and not want.defects, head
        assert got.items() == want.items(), head
    assert fast > 1000 and slow > 10


def test_header_lookups_follow_changes_as_the_stdlibs_do() -> None:
    """The fast tree's parts (fastmime._Part, its parameters kept per value) after every
    kind of change answer as the stdlib's."""
    raw = (b"From: a@b\r\nTo: c@d\r\nTo: e@f\r\nSubject: one\r\nContent-Type: multipart/mixed;"
           b" boundary=XY\r\n\r\n--XY\r\nContent-Type: text/plain\r\n\r\nhi\r\n--XY--\r\n")
    fast, slow = fastmime.fast(raw), _stdlib(raw)
    assert fast is not None and type(fast) is not type(slow)  # the fast tree's own class
    changes = [lambda m: m.replace_header("Subject", "two"),
               lambda m: m.__setitem__("X-New", "1"),
               lambda m: m.__delitem__("To"),
               lambda m: m.set_boundary("ZZ"),
               lambda m: m.add_header("X-Add", "v", name="n"),
               lambda m: m.set_param("charset", "utf-8"),
               lambda m: m.del_param("boundary"),
               lambda m: m.set_raw("To", "g@h")]
    for change in changes:
        for m in (fast, slow):
            m.get("To")  # the index exists before the change
            change(m)
        assert _shape(fast) == _shape(slow)


@pytest.mark.parametrize("body", [b"plain ASCII\r\nlines\r\n", "caf\u00e9 \u00fcber\r\n".encode(),
                                  b"latin-1 caf\xe9\r\n", b"\xff\xfe raw\r\n"])
def test_leaf_payloads_are_the_stdlibs_ascii_or_not(body: bytes) -> None:
    """The fast tree hands an ASCII body out without compat32's surrogate look; 8-bit
    bodies (surrogate escapes) go compat32's way: either way the stdlib's answers."""
    raw = (b"From: a@x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n"
           b"\r\n--b\r\nContent-Type: text/plain; charset=latin-1\r\n\r\n" + body
           + b"--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + base64.encodebytes(body).replace(b"\n", b"\r\n") + b"--b--\r\n")  # fmt: skip
    got, want = fastmime.fast(raw), _stdlib(raw)
    assert got is not None
    for mine, theirs in zip(got.walk(), want.walk(), strict=True):
        if not mine.is_multipart():
            assert mine.get_payload() == theirs.get_payload()
            assert mine.get_payload(decode=True) == theirs.get_payload(decode=True)
            assert data_of(mine) == data_of(theirs)
