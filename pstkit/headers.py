"""Read a few header fields for reports and duplicate checks (pure, never raises)."""

from __future__ import annotations

import binascii
import email.base64mime
import email.errors
import email.header
import email.parser
import email.quoprimime
import email.utils
import re
from datetime import datetime

from pstkit.model import utc

# compat32 is the parsers' default policy; naming email.policy.compat32 would import
# email.policy and with it the header registry (~8 ms at every start, issue 19).
_PARSER = email.parser.BytesHeaderParser()
HEADER_WINDOW = 4096  # bytes searched first for the end of the header section


def header_block(raw: bytes) -> bytes:
    """Bytes up to the first empty line (the message's own header section).

    What the regex `\\r?\\n\\r?\\n` would match first, found with `bytes.find`: the
    first LF followed by LF or CRLF (a regex scan cost 9 us a message). Searched in
    growing windows, so neither search reads a large body to its end when the other
    line end is the one used: CRLF mail holds no `\\n\\n`, LF mail no `\\n\\r\\n`. A
    match that crosses a window's edge starts after every match inside it."""
    size = HEADER_WINDOW
    while True:
        end = min(size, len(raw))
        crlf = raw.find(b"\n\r\n", 0, end)
        lf = raw.find(b"\n\n", 0, crlf + 1 if crlf >= 0 else end)
        if lf >= 0:
            return raw[: lf + 2]
        if crlf >= 0:
            return raw[: crlf + 3]
        if end == len(raw):
            return raw
        size *= 8


def _decoded(value: str) -> str:
    text = value
    # No encoded word: decode_header gives the text back as one chunk and
    # make_header/str return it unchanged; skip the 0.25 ms per message.
    if "=?" in value:
        try:
            text = str(email.header.make_header(decode_words(value)))
        except (ValueError, LookupError, UnicodeError, email.errors.HeaderParseError):
            text = value
    return " ".join(text.split())


_ECRE: re.Pattern[str] = vars(email.header)["ecre"]  # the stdlib's own pattern (not typed)
# Q text binascii decodes as the stdlib does: printable ASCII, each "=" an escape
_Q_PLAIN = re.compile(r"(?:[!-<>-~]|=[0-9A-Fa-f]{2})*")
DecodedWords = list[tuple[bytes | str, str | None]]


def decode_words(header: str) -> DecodedWords:
    """What `email.header.decode_header(header)` gives for a str (the reference; tests
    compare the two on random headers), with Q words decoded by binascii: the stdlib's
    regex callback per "=XX" was two thirds of a catalog row's Python time (issue 19).
    The same steps: encoded words split off line by line, whitespace between two of
    them dropped, runs of one charset joined (unencoded ones with a space)."""
    if not _ECRE.search(header):
        return [(header, None)]
    words: list[tuple[str, str | None]] = []  # (text, "q"/"b" or None) with charsets
    charsets: list[str | None] = []
    for line in header.splitlines():
        parts = _ECRE.split(line)  # text, then (charset, q/b, encoded, text) per word
        for i in range(0, len(parts), 4):
            text = parts[i].lstrip() if i == 0 else parts[i]
            if text:
                words.append((text, None))
                charsets.append(None)
            if i + 3 < len(parts):
                words.append((parts[i + 3], parts[i + 2].lower()))
                charsets.append(parts[i + 1].lower())
    keep = [j for j in range(len(words)) if not (
        1 <= j < len(words) - 1 and words[j + 1][1] and words[j - 1][1]
        and words[j][0].isspace())]
    out: DecodedWords = []
    last: bytes | None = None
    last_charset: str | None = None
    for j in keep:
        (text, how), charset = words[j], charsets[j]
        word = _q(text) if how == "q" else _b(text) if how == "b" else bytes(
            text, "raw-unicode-escape")
        if last is not None and charset == last_charset:
            last += b" " + word if charset is None else word
            continue
        if last is not None:
            out.append((last, last_charset))
        last, last_charset = word, charset
    out.append((last if last is not None else b"", last_charset))
    return out


def _q(text: str) -> bytes:
    if _Q_PLAIN.fullmatch(text):
        return binascii.a2b_qp(text, header=True)
    return bytes(email.quoprimime.header_decode(text), "raw-unicode-escape")


def _b(text: str) -> bytes:
    if len(text) % 4:  # Postel's law, as the stdlib: the missing padding added
        text += "==="[: 4 - len(text) % 4]
    try:
        return email.base64mime.decode(text)
    except binascii.Error as e:
        raise email.errors.HeaderParseError("Base64 decoding error") from e


def summary(raw: bytes) -> tuple[str, str]:
    """(Message-ID, Subject) of a message; "" where missing or unreadable.

    The first field of each name in the header block, not the email parser: this runs
    for every stored message and the parser is a quarter of an export's time.
    """
    block = header_block(raw)
    low = block.lower()
    message_id = _field(block, low, b"message-id").decode("ascii", "replace")
    # Raw 8-bit subjects (RFC 6532 or plain broken) are read as UTF-8, lossy:
    # the catalog's subject is for people; the message bytes are untouched.
    subject = _field(block, low, b"subject").decode("utf-8", "replace")
    return " ".join(message_id.split()), _decoded(subject.strip()) if subject else ""


def message_id(raw: bytes) -> str:
    """`summary(raw)[0]`, without reading and decoding the subject (a duplicate key)."""
    block = header_block(raw)
    value = _field(block, block.lower(), b"message-id").decode("ascii", "replace")
    return " ".join(value.split())


def _field(block: bytes, low: bytes, name: bytes) -> bytes:
    """The value of the first field `name` (lower case) in a header block, with its
    continuation lines and line ends, b"" if none: what the regex
    `^name[ \\t]*:(.*(?:\\r?\\n[ \\t].*)*)` (multi-line, any case) finds first. A line
    that starts with `name` and then something other than blanks and a colon
    (`Subjects:`, `Subject-X:`) is another field; the search goes on."""
    start = 0 if low.startswith(name) else _line_start(low, name, 0)
    while start >= 0:
        colon = start + len(name)
        while low[colon:colon + 1] in (b" ", b"\t"):
            colon += 1
        if low[colon:colon + 1] == b":":
            end = block.find(b"\n", colon)
            while end >= 0 and block[end + 1:end + 2] in (b" ", b"\t"):
                end = block.find(b"\n", end + 1)
            return block[colon + 1:end] if end >= 0 else block[colon + 1:]
        start = _line_start(low, name, start + 1)
    return b""


def _line_start(low: bytes, name: bytes, pos: int) -> int:
    """Offset of the next line at or after `pos` that starts with `name`, or -1."""
    at = low.find(b"\n" + name, max(pos - 1, 0))
    return at + 1 if at >= 0 else -1


def sent_date(raw: bytes) -> datetime | None:
    """The Date header as aware UTC, or None."""
    try:
        msg = _PARSER.parsebytes(header_block(raw))
        value = msg.get("Date")
        return utc(email.utils.parsedate_to_datetime(str(value))) if value else None
    except (ValueError, TypeError, IndexError, LookupError, email.errors.MessageError):
        return None
