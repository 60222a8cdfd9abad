"""Build RFC 5322/MIME bytes from a plain description of a MAPI message. Pure.

No pypff here: `pstkit.converters.pst.source` reads a PST item into a `MapiMessage` and this
module turns it into bytes. Output is deterministic (boundaries and generated
Message-IDs are derived from content), lines end in CRLF and stay within 998
octets, non-ASCII header text is RFC 2047/2231 encoded.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import mimetypes
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.header import Header
from email.utils import encode_rfc2231, format_datetime, formataddr
from operator import itemgetter

from pstkit.converters.pst import speedups

CRLF = b"\r\n"
_first = itemgetter(0)


@dataclass(frozen=True)
class Address:
    name: str = ""
    email: str = ""  # SMTP if known; an Exchange X.500 address otherwise


@dataclass(frozen=True)
class Attachment:
    filename: str = ""
    mime_type: str = ""
    data: bytes = b""
    content_id: str = ""
    embedded: MapiMessage | None = None  # attach method 5, built recursively
    inline: bool = False  # hint from PR_ATTACH_FLAGS/hidden; HTML references decide


@dataclass(frozen=True)
class Body:
    """One body alternative: bytes in `charset` (text/plain, text/html, text/rtf...)."""

    mime_type: str
    data: bytes
    charset: str = "utf-8"


@dataclass(frozen=True)
class MapiMessage:
    subject: str = ""
    sender: Address | None = None  # PR_SENDER_* (Sender: when it differs from From)
    from_: Address | None = None  # PR_SENT_REPRESENTING_*
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    date: datetime | None = None
    message_id: str = ""
    in_reply_to: str = ""
    references: str = ""
    importance: int | None = None  # 0 low, 1 normal, 2 high
    transport_headers: str = ""
    bodies: tuple[Body, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    extra_headers: tuple[tuple[str, str], ...] = field(default=())


# --- headers ---------------------------------------------------------------

_MIME_HEADERS = ("content-type", "content-transfer-encoding", "mime-version")
_MIME_INITIALS = ("c", "C", "m", "M")  # no other character lower-cases to c or m
_LOW_BYTES = bytes(range(128))
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def clean(value: str) -> str:
    """Header text without control characters: a CR or LF would end the header (or the
    block) early, so they become spaces (the only change made to a value)."""
    return _CONTROLS.sub(" ", value)


def _fold(name: str, value: str) -> bytes:
    """One header field; non-ASCII values are RFC 2047 encoded and folded."""
    value = clean(value)
    if value.isascii() and len(name) + len(value) < 996:
        return f"{name}: {value}".encode("ascii") + CRLF
    return f"{name}: ".encode("ascii") + Header(value, "utf-8", header_name=name).encode(
        linesep="\r\n"
    ).encode("ascii") + CRLF


def _x500_addr(email: str) -> str:
    """An address that is no addr-spec (X.500, empty) in Exchange's IMCEAEX form."""
    if not email:
        return ""
    safe = re.sub(r"[^A-Za-z0-9!#$%&'*\-/=?^_`{|}~.]", lambda m: f"+{ord(m.group()):02X}", email)
    return f"IMCEAEX-{safe.replace('/', '_')}@pst.invalid"


def format_address(a: Address) -> str:
    a = Address(clean(a.name), clean(a.email).strip())
    email = a.email if "@" in a.email and " " not in a.email else _x500_addr(a.email)
    name = a.name if a.name != email else ""
    if not email:
        return formataddr((name, "undisclosed@pst.invalid"), charset="utf-8")
    return formataddr((name, email), charset="utf-8")


def _address_list(name: str, addrs: tuple[Address, ...]) -> bytes:
    if not addrs:
        return b""
    parts = [format_address(a) for a in addrs]
    out = f"{name}: ".encode("ascii")
    line = len(out)
    for i, p in enumerate(parts):
        piece = p + ("," if i < len(parts) - 1 else "")
        if line + len(piece) + 1 > 76 and i:
            out += CRLF + b" "
            line = 1
        elif i:
            out += b" "
            line += 1
        out += piece.encode("ascii")
        line += len(piece)
    return out + CRLF


def transport_block(headers: str) -> bytes:
    """The original header block minus its MIME headers (they described MIME that is gone)."""
    lines = headers.replace("\r\n", "\n").rstrip("\n").split("\n")
    out: list[str] = []
    dropping = False
    for line in lines:
        if line[:1] in (" ", "\t"):
            if not dropping and out:
                out.append(line)
            continue
        if not line or line.isspace():
            break  # the block ends at the first empty line
        # Only a name starting with c or m can be a MIME header: most lines skip the split.
        dropping = (line.lstrip()[:1] in _MIME_INITIALS
                    and line.split(":", 1)[0].strip().lower() in _MIME_HEADERS)
        if not dropping:
            out.append(line)
    return ("\r\n".join(out) + "\r\n").encode("utf-8") if out else b""


_HAS_DATE = re.compile(rb"(?im)^date[ \t]*:")
_HAS_ID = re.compile(rb"(?im)^message-id[ \t]*:")


def _missing_ids(block: bytes, msg: MapiMessage, fallback_id: Callable[[], str]) -> bytes:
    """Date and Message-ID for transport headers without them (a draft, a message saved by
    another program): the item's own time and id, else a stable generated id."""
    out = b""
    if msg.date is not None and not _HAS_DATE.search(block):
        out += _fold("Date", format_datetime(msg.date))
    if not _HAS_ID.search(block):
        out += _fold("Message-ID", msg.message_id or fallback_id())
    return out


def _importance_headers(importance: int | None) -> bytes:
    if importance == 2:
        return b"Importance: high\r\nX-Priority: 1\r\n"
    if importance == 0:
        return b"Importance: low\r\nX-Priority: 5\r\n"
    return b""


def build_headers(msg: MapiMessage, fallback_id: Callable[[], str]) -> bytes:
    """The top header block (without MIME headers), from transport headers or MAPI;
    `fallback_id` is called only when the message has no Message-ID of its own."""
    extra = b"".join(_fold(name, value) for name, value in msg.extra_headers)
    if msg.transport_headers.strip():
        block = transport_block(msg.transport_headers)
        return block + _missing_ids(block, msg, fallback_id) + extra
    out = bytearray()
    frm = msg.from_ or msg.sender
    if msg.date is not None:
        out += _fold("Date", format_datetime(msg.date))
    if frm is not None:
        out += _address_list("From", (frm,))
    if msg.sender is not None and frm is not None and msg.sender != frm:
        out += _address_list("Sender", (msg.sender,))
    out += _address_list("To", msg.to) + _address_list("Cc", msg.cc) + _address_list("Bcc", msg.bcc)
    out += _fold("Subject", msg.subject)
    out += _fold("Message-ID", msg.message_id or fallback_id())
    if msg.in_reply_to:
        out += _fold("In-Reply-To", msg.in_reply_to)
    if msg.references:
        out += _fold("References", msg.references)
    out += _importance_headers(msg.importance)
    return bytes(out) + extra


# --- bodies and parts ------------------------------------------------------


def _qp(data: bytes) -> bytes:
    """Quoted-printable that decodes to exactly `data` (CRLF or bare LF = line break)."""
    text_lines = data.split(b"\r\n") if b"\r" in data else data.split(b"\n")
    # istext=False: a lone CR or LF left inside a line is encoded, never taken as a break.
    # An encoded line holds "=\n" only as a soft break ("=" itself is "=3D"), so the soft
    # breaks of all lines are made CRLF by one replace over the whole.
    qp = binascii.b2a_qp
    return CRLF.join([qp(line, quotetabs=False, istext=False) for line in text_lines]).replace(
        b"=\n", b"=\r\n")


def _b64(data: bytes) -> bytes:
    """Base64 in 76-character lines joined by CRLF (none after the last)."""
    if speedups.C is not None:  # the C twin: one pass, no cutting and joining
        return speedups.C.b64_lines(data)
    return _b64_py(data)


def _b64_py(data: bytes) -> bytes:
    enc = base64.b64encode(data)
    full = len(enc) // 76 * 76
    # 76-character lines, cut and joined without a Python-level loop
    lines = CRLF.join(map(_first, struct.iter_unpack("76s", enc[:full])))
    if full == len(enc):
        return lines
    return lines + CRLF + enc[full:] if full else enc


def _param(name: str, value: str) -> str:
    value = clean(value)
    if value.isascii() and '"' not in value and "\\" not in value:
        return f'; {name}="{value}"'
    return f"; {name}*={encode_rfc2231(value, 'utf-8')}"


def canonical_text(data: bytes) -> bytes:
    """Text in canonical form (RFC 2046 4.1.1): every line end CRLF, where the only CRs are
    those of CRLF pairs; a body with a lone CR in it is kept exactly (it is not plain lines)."""
    if b"\r" in data.replace(b"\r\n", b""):
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\n", CRLF)


def _text_part(body: Body) -> bytes:
    data = canonical_text(body.data)
    head = f"Content-Type: {body.mime_type}; charset=\"{body.charset}\"\r\n".encode("ascii")
    lines_only = b"\r" not in data.replace(b"\r\n", b"")  # no lone CR: plain CRLF lines
    if lines_only and data.isascii() and max(map(len, data.split(b"\n"))) <= 900:
        return head + b"Content-Transfer-Encoding: 7bit\r\n\r\n" + data
    high = len(data.translate(None, _LOW_BYTES))
    if high * 3 > len(data):  # mostly non-Latin text: base64 is a third the size of QP
        return head + b"Content-Transfer-Encoding: base64\r\n\r\n" + _b64(data)
    return head + b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + _qp(data)


def _boundary(parts: list[bytes]) -> bytes:
    h = hashlib.sha256()
    for p in parts:
        h.update(hashlib.sha256(p).digest())
    return b"=_pstkit_" + h.hexdigest()[:32].encode("ascii")


def multipart(subtype: str, parts: list[bytes], extra: str = "") -> bytes:
    b = _boundary(parts)
    out = [f"Content-Type: multipart/{subtype}; boundary=\"{b.decode()}\"{extra}\r\n\r\n".encode()]
    for p in parts:
        out += (b"--", b, CRLF, p, CRLF)
    return b"".join((*out, b"--", b, b"--", CRLF))


def guess_type(filename: str) -> str:
    return mimetypes.guess_type(filename, strict=False)[0] or "application/octet-stream"


def _attachment_part(att: Attachment, inline: bool) -> bytes:
    disposition = "inline" if inline else "attachment"
    if att.embedded is not None:
        inner = build_message(att.embedded)
        name = att.filename or att.embedded.subject or "message"
        if not name.lower().endswith((".eml", ".msg")):
            name += ".eml"
        cte = "7bit" if inner.isascii() else "8bit"
        return (
            f"Content-Type: message/rfc822{_param('name', name)}\r\n"
            f"Content-Transfer-Encoding: {cte}\r\n"
            f"Content-Disposition: {disposition}{_param('filename', name)}\r\n\r\n"
        ).encode("ascii") + inner
    ctype = att.mime_type or guess_type(att.filename)
    data, cte = att.data, "base64"
    if ctype.lower().startswith("message/"):  # RFC 2046 5.2: never encoded, only 7bit/8bit
        data, cte = _message_content(att.data)
    head = f"Content-Type: {ctype}{_param('name', att.filename) if att.filename else ''}\r\n"
    head += f"Content-Transfer-Encoding: {cte}\r\n"
    head += f"Content-Disposition: {disposition}"
    head += f"{_param('filename', att.filename) if att.filename else ''}\r\n"
    if att.content_id:
        head += f"Content-ID: <{att.content_id.strip('<>')}>\r\n"
    return head.encode("ascii") + CRLF + (_b64(data) if cte == "base64" else data)


def _message_content(data: bytes) -> tuple[bytes, str]:
    """A message/* part's content as lines (delivery-status, disposition-notification,
    rfc822…) and its encoding: 7bit or 8bit; "binary" (also allowed) when it is not lines
    of at most 998 octets without NUL."""
    text = canonical_text(data)
    lines = text.split(CRLF)
    if b"\0" in text or b"\r" in text.replace(CRLF, b"") or max(map(len, lines)) > 998:
        return data, "binary"
    return text, "7bit" if text.isascii() else "8bit"


def referenced_cids(bodies: tuple[Body, ...]) -> frozenset[str]:
    """Content ids an HTML body points to with cid: URLs (lower-cased)."""
    found: set[str] = set()
    for b in bodies:
        # lower() + find is several times faster than the case-blind scan over bodies
        # that hold no cid: URL at all (most of them)
        if b.mime_type == "text/html" and b"cid:" in b.data.lower():
            for m in re.finditer(rb"cid:([^\"'\s>)]+)", b.data, re.IGNORECASE):
                found.add(m.group(1).decode("ascii", "replace").lower())
    return frozenset(found)


def build_body(msg: MapiMessage) -> bytes:
    """The MIME entity (its Content-* headers, blank line, content) of the message."""
    alts = [_text_part(b) for b in msg.bodies] or [_text_part(Body("text/plain", b""))]
    core = alts[0] if len(alts) == 1 else multipart("alternative", alts)
    candidates = [a for a in msg.attachments if a.embedded is None and a.content_id]
    cids = referenced_cids(msg.bodies) if candidates else frozenset()  # scanning costs
    related = [a for a in candidates if a.content_id.strip("<>").lower() in cids]
    if related:
        parts = [core, *(_attachment_part(a, True) for a in related)]
        core = multipart("related", parts, '; type="multipart/alternative"' if len(alts) > 1
                         else f'; type="{msg.bodies[0].mime_type}"')
    rest = [a for a in msg.attachments if not any(a is r for r in related)]
    if not rest:
        return core
    return multipart("mixed", [core, *(_attachment_part(a, False) for a in rest)])


def build_message(msg: MapiMessage) -> bytes:
    """Complete RFC 5322 message bytes, deterministic for a given `msg`."""
    body = build_body(msg)

    def fallback() -> str:
        # A stable id from content, so the same item gives the same bytes on every run;
        # computed only when needed: hashing the whole body again is costly.
        h = hashlib.sha256(body)
        h.update(repr((msg.subject, msg.date, msg.from_, msg.sender, msg.to, msg.cc)).encode())
        return f"<{h.hexdigest()[:32]}@pstkit.invalid>"

    return b"".join((build_headers(msg, fallback), b"MIME-Version: 1.0\r\n", body))
