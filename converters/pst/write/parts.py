"""The parts of a MIME message as a PST wants them: the bodies (plain; HTML with its code
page) and the leaf parts that become attachments, with their data and names. Pure."""

from __future__ import annotations

import base64
import binascii
import codecs
import contextlib
import email.errors
import email.header
import quopri
import re
import struct
from collections.abc import Iterator
from email.message import Message as PyMessage

from pstkit.converters.pst import speedups

from .values import Prop, binary, long

_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


def html_body(part: PyMessage) -> list[Prop]:
    """PR_HTML with its code page (PR_INTERNET_CPID): the bytes as they came when their
    charset has a Windows code page and decodes them, else re-encoded as UTF-8."""
    data = data_of(part)
    cp = codepage(part.get_content_charset() or "us-ascii")
    if cp is not None:
        try:
            data.decode(part.get_content_charset() or "us-ascii")
            return [binary(0x1013, data), long(0x3FDE, cp)]
        except (UnicodeError, LookupError):
            pass
    return [binary(0x1013, text_of(part).encode("utf-8")), long(0x3FDE, 65001)]


#: code pages of the charsets whose Python name does not give it away
_CODEPAGES = {"utf-8": 65001, "ascii": 20127, "shift_jis": 932, "euc_jp": 51932,
              "iso2022_jp": 50220, "gb2312": 936, "gbk": 936, "gb18030": 54936, "big5": 950,
              "euc_kr": 51949, "koi8-r": 20866, "koi8-u": 21866, "hz": 52936}


def codepage(charset: str) -> int | None:
    """The Windows code page of a MIME charset (None when it has none)."""
    try:
        name = codecs.lookup(charset).name
    except (LookupError, ValueError):
        return None
    if name.startswith("iso8859-") and name[8:].isdigit():
        return 28590 + int(name[8:])
    if name.startswith("cp") and name[2:].isdigit():
        return int(name[2:])
    return _CODEPAGES.get(name)


def split_parts(msg: PyMessage) -> tuple[str | None, PyMessage | None, list[PyMessage]]:
    """(plain body, HTML body, attachment parts): the first inline text/plain and
    text/html outside attachments are the bodies; every other leaf part is attached."""
    plain: str | None = None
    html: PyMessage | None = None
    parts: list[PyMessage] = []
    for part in leaves(msg):
        ctype = part.get_content_type()
        inline = part.get_content_disposition() != "attachment" and not part.get_filename()
        if inline and ctype == "text/plain" and plain is None:
            plain = text_of(part)
        elif inline and ctype == "text/html" and html is None:
            html = part
        else:
            parts.append(part)
    return plain, html, parts


def rtf_body(parts: list[PyMessage]) -> tuple[list[Prop], list[PyMessage]]:
    """An inline text/rtf part (an RTF alternative, as pstkit's reader writes a real RTF
    body) -> PR_RTF_COMPRESSED in its uncompressed form ([MS-OXRTFCP] 2.2.1.1: header
    with COMPTYPE "MELA", CRC 0, then the RTF) and PR_RTF_IN_SYNC; the other parts."""
    for i, part in enumerate(parts):
        if (part.get_content_type() == "text/rtf" and not part.get_filename()
                and part.get_content_disposition() != "attachment"):
            rtf = data_of(part)
            packed = struct.pack("<IIII", len(rtf) + 12, len(rtf), 0x414C454D, 0) + rtf
            return [binary(0x1009, packed), (0x0E1F, 0x000B, b"\1\0\0\0")], [
                *parts[:i], *parts[i + 1 :]]
    return [], parts


def own_parts(msg: PyMessage) -> list[PyMessage]:
    """The message's MIME parts, not those of messages attached to it (an attached
    invitation does not make the mail a meeting item)."""
    out, todo = [], [msg]
    while todo:
        part = todo.pop(0)
        out.append(part)
        if part.is_multipart() and part.get_content_maintype() != "message":
            todo += [p for p in part.get_payload() if isinstance(p, PyMessage)]
    return out


def leaves(part: PyMessage) -> Iterator[PyMessage]:
    if part.get_content_type() == "message/rfc822" or not part.is_multipart():
        yield part
        return
    payload = part.get_payload()
    for sub in payload if isinstance(payload, list) else []:
        if isinstance(sub, PyMessage):
            yield from leaves(sub)


def text_of(part: PyMessage) -> str:
    data = data_of(part)
    charset = part.get_content_charset() or "us-ascii"
    try:
        return data.decode(charset, "replace")
    except LookupError:
        return data.decode("latin-1")


def data_of(part: PyMessage) -> bytes:
    cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if part.get_content_type() == "message/rfc822" and cte in ("base64", "quoted-printable"):
        # RFC 2046 forbids encoding message/rfc822, but mailers do; Python leaves it encoded
        body = _BLANK_LINE.split(part.as_bytes(), maxsplit=1)[-1]
        if cte == "base64":
            return base64.b64decode(body + b"===", validate=False)
        return quopri.decodestring(body)
    if part.get_content_type() == "message/rfc822" and part.is_multipart():
        inner = part.get_payload(0)
        return inner.as_bytes() if isinstance(inner, PyMessage) else b""
    fast = _base64(part)
    if fast is not None:
        return fast
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _base64(part: PyMessage) -> bytes | None:
    """A clean base64 body decoded as `get_payload(decode=True)` decodes it, without its
    split into lines and join (most of its time on large attachments): the stdlib's first
    try (email._encoded_words.decode_b) is this strict decode of the body without its line
    ends and with missing padding added; anything it refuses goes the stdlib's way."""
    payload = part.get_payload()
    if str(part.get("content-transfer-encoding", "")).lower() != "base64" or not isinstance(
            payload, str):
        return None
    return b64_strict(payload)


def b64_strict(payload: str) -> bytes | None:
    """`_base64`'s decode. The C twin decodes well-formed bodies in one pass over the text
    (no copies before it); what it leaves (None) is decided here, as binascii of this
    Python decides it (its strict mode has changed between versions)."""
    if speedups.C is not None:
        done = speedups.C.b64_strict(payload)
        if done is not None:
            return done
    return b64_strict_py(payload)


def b64_strict_py(payload: str) -> bytes | None:
    """`b64_strict` in Python (the reference of the C twin)."""
    try:
        data = payload.encode("ascii", "surrogateescape").translate(None, b"\r\n")
        pad = len(data) % 4
        return binascii.a2b_base64(data + (b"==="[:4 - pad] if pad else b""), strict_mode=True)
    except (UnicodeEncodeError, binascii.Error):
        return None


def filename_of(part: PyMessage) -> str:
    try:
        name = part.get_filename() or ""
    except (UnicodeError, LookupError, ValueError):
        return ""
    if "=?" in name:
        with contextlib.suppress(UnicodeError, LookupError, ValueError,
                                 email.errors.HeaderParseError):
            name = str(email.header.make_header(email.header.decode_header(name)))
    return " ".join(name.replace("\0", "").split())


def extension(ctype: str) -> str:
    return {"text/plain": ".txt", "text/html": ".html", "text/calendar": ".ics",
            "image/png": ".png", "image/jpeg": ".jpg", "application/pdf": ".pdf"}.get(
        ctype, ".bin")


def suffix(name: str) -> str:
    return name[name.rfind("."):] if "." in name else ""


def short_name(name: str) -> str:
    """An 8.3 name for PR_ATTACH_FILENAME."""
    stem, ext = name.rsplit(".", 1) if "." in name else (name, "")
    clean = "".join(c for c in stem.upper() if c.isascii() and c.isalnum())[:8] or "ATTACH"
    ext = "".join(c for c in ext.upper() if c.isascii() and c.isalnum())[:3]
    return f"{clean}.{ext}" if ext else clean
