"""Read a few header fields for reports and duplicate checks (pure, never raises)."""

from __future__ import annotations

import email.header
import email.parser
import email.utils
import re
from datetime import datetime

from pstkit.model import utc

# compat32 is the parsers' default policy; naming email.policy.compat32 would import
# email.policy and with it the header registry (~8 ms at every start, issue 19).
_PARSER = email.parser.BytesHeaderParser()


_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


def header_block(raw: bytes) -> bytes:
    """Bytes up to the first empty line (the message's own header section).

    One regex scan that stops at the first blank line: two `find`s (CRLF,
    then LF) would read a large LF-only message twice to its end."""
    m = _BLANK_LINE.search(raw)
    return raw[: m.end()] if m else raw


def _decoded(value: str) -> str:
    text = value
    # No encoded word: decode_header gives the text back as one chunk and
    # make_header/str return it unchanged; skip the 0.25 ms per message.
    if "=?" in value:
        try:
            text = str(email.header.make_header(email.header.decode_header(value)))
        except (ValueError, LookupError, UnicodeError, email.errors.HeaderParseError):
            text = value
    return " ".join(text.split())


_FIELD = re.compile(
    rb"^(message-id|subject)[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE
)


def summary(raw: bytes) -> tuple[str, str]:
    """(Message-ID, Subject) of a message; "" where missing or unreadable.

    A regex over the header block, not the email parser: this runs for every
    stored message and the parser is a quarter of an export's time.
    """
    found: dict[bytes, bytes] = {}
    for name, value in _FIELD.findall(header_block(raw)):
        found.setdefault(name.lower(), value)
    message_id = found.get(b"message-id", b"").decode("ascii", "replace")
    # Raw 8-bit subjects (RFC 6532 or plain broken) are read as UTF-8, lossy:
    # the catalog's subject is for people; the message bytes are untouched.
    subject = found.get(b"subject", b"").decode("utf-8", "replace")
    return " ".join(message_id.split()), _decoded(subject.strip()) if subject else ""


def sent_date(raw: bytes) -> datetime | None:
    """The Date header as aware UTC, or None."""
    try:
        msg = _PARSER.parsebytes(header_block(raw))
        value = msg.get("Date")
        return utc(email.utils.parsedate_to_datetime(str(value))) if value else None
    except (ValueError, TypeError, IndexError, LookupError, email.errors.MessageError):
        return None
