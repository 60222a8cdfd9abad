"""Read a few header fields for reports and duplicate checks (pure, never raises)."""

from __future__ import annotations

import email.header
import email.parser
import email.policy
import email.utils
from datetime import datetime

from pstkit.model import utc

_PARSER = email.parser.BytesHeaderParser(policy=email.policy.compat32)


def header_block(raw: bytes) -> bytes:
    """Bytes up to the first empty line (the message's own header section)."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        idx = raw.find(sep)
        if idx >= 0:
            return raw[: idx + len(sep)]
    return raw


def _decoded(value: object) -> str:
    if value is None:
        return ""
    try:
        text = str(email.header.make_header(email.header.decode_header(str(value))))
    except (ValueError, LookupError, UnicodeError, email.errors.HeaderParseError):
        text = str(value)
    return " ".join(text.split())


def summary(raw: bytes) -> tuple[str, str]:
    """(Message-ID, Subject) of a message; "" where missing or unreadable."""
    try:
        msg = _PARSER.parsebytes(header_block(raw))
    except (ValueError, LookupError, UnicodeError, email.errors.MessageError):
        return "", ""
    message_id = " ".join(str(msg.get("Message-ID", "") or "").split())
    return message_id, _decoded(msg.get("Subject"))


def sent_date(raw: bytes) -> datetime | None:
    """The Date header as aware UTC, or None."""
    try:
        msg = _PARSER.parsebytes(header_block(raw))
        value = msg.get("Date")
        return utc(email.utils.parsedate_to_datetime(str(value))) if value else None
    except (ValueError, TypeError, IndexError, LookupError, email.errors.MessageError):
        return None
