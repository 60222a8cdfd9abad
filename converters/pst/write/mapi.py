"""MIME -> MAPI properties of an Outlook message, as a PST stores them. Pure.

The inverse of `pstkit.converters.pst.mime` for mail: message class, subject (prefix,
normalized, conversation topic and index), sender and sent-representing, recipients
(To/Cc/Bcc with SMTP addresses and one-off entry ids), dates, flags, importance,
sensitivity, Internet Message-ID and threading headers, the original header block
(PR_TRANSPORT_MESSAGE_HEADERS), the bodies and attachments (`parts`), attached messages as
embedded Outlook messages. Values come out raw (`values`): `(prop id, prop type, bytes)`.
"""

from __future__ import annotations

import base64
import email
import email.errors
import email.header
import email.policy
import hashlib
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message as PyMessage
from email.utils import parsedate_to_datetime

from . import fastmime
from .addrlist import addresses
from .parts import (
    data_of,
    extension,
    filename_of,
    html_body,
    own_parts,
    rtf_body,
    short_name,
    split_parts,
    suffix,
    text_of,
)
from .values import (
    PT_BINARY,
    PT_BOOLEAN,
    PT_LONG,
    PT_UNICODE,
    Prop,
    binary,
    boolean,
    long,
    recover,
    systime,
    unicode,
)

MSGFLAG_READ, MSGFLAG_UNSENT, MSGFLAG_HASATTACH = 0x01, 0x08, 0x10
MAX_DEPTH = 8  # embedded messages inside embedded messages, as pstkit's reader reads them
_ONE_OFF = bytes.fromhex("812b1fa4bea310199d6e00dd010f5402")  # MAPI one-off entry id uid
_PREFIX = re.compile(r"^\s*([A-Za-z]{1,4}:\s)")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_HEADER_LINE = re.compile(rb"^[\x21-\x39\x3b-\x7e]+:")  # a field name and its colon

__all__ = ["PT_BINARY", "PT_BOOLEAN", "PT_LONG", "PT_UNICODE", "Attachment", "Message", "Prop",
           "binary", "boolean", "header_block", "header_text", "long", "one_off",
           "part_attachment", "recover", "short_name", "systime", "text_of", "to_mapi",
           "unicode"]


@dataclass(frozen=True)
class Attachment:
    props: list[Prop]
    embedded: Message | None = None  # attach method 5: an Outlook message inside


@dataclass(frozen=True)
class Message:
    props: list[Prop]
    recipients: list[list[Prop]]
    attachments: list[Attachment]
    #: a mail with a text/calendar part of its own (`to_mapi`): meeting.py reads it again
    calendar: bool = False


# --- the message ------------------------------------------------------------------


def to_mapi(raw: bytes, flags: Iterable[str] = (), received: datetime | None = None,
            depth: int = 0, outer: datetime | None = None) -> Message:
    """The MAPI form of one RFC 5322 message. `flags` are pstkit flag names (seen,
    answered, flagged, draft, forwarded); `received` is when it arrived (UTC). Attached
    messages become embedded Outlook messages, MAX_DEPTH levels deep (deeper ones are
    attached as .eml files); one without a Date takes the time of the message holding it
    (`outer`), so that the same message always gives the same item."""
    msg = fastmime.parse(raw)
    flags = set(flags)
    when = received or _date(msg.get("Date")) or outer or datetime.now(UTC)
    props = [*_envelope(msg, when), unicode(0x007D, header_block(raw))]
    recipients = _recipients(msg)
    plain, html, parts = split_parts(msg)
    rtf, parts = rtf_body(parts)
    props += rtf
    if plain is not None:
        props.append(unicode(0x1000, plain))
    if html is not None:
        props += html_body(html)
    attachments = [_attachment(p, i, depth, when) for i, p in enumerate(parts)]
    bits = (MSGFLAG_READ if "seen" in flags else 0) | (
        MSGFLAG_UNSENT if "draft" in flags else 0) | (MSGFLAG_HASATTACH if attachments else 0)
    props += [long(0x0E07, bits), boolean(0x0E1B, bool(attachments))]
    if "answered" in flags or "forwarded" in flags:  # PR_LAST_VERB_EXECUTED: reply / forward
        props.append(long(0x1081, 102 if "answered" in flags else 104))
    if "flagged" in flags:
        props.append(long(0x1090, 2))  # PR_FLAG_STATUS: followupFlagged
    props += _display_lists(recipients)
    return Message(props, recipients, attachments,
                   any(p.get_content_type() == "text/calendar" for p in own_parts(msg)))


def _header(msg: PyMessage, name: str) -> str:
    value = msg.get(name)
    if value is None:
        return ""
    value = _text(value)
    if "=?" not in value:  # no encoded word: decode/make_header give it back unchanged
        return value
    try:
        return str(email.header.make_header(email.header.decode_header(str(value))))
    except (UnicodeError, LookupError, ValueError, email.errors.HeaderParseError):
        return str(value)


def _text(value: object) -> str:
    """A header value as text: compat32 hands raw 8-bit bytes over as an unknown-8bit
    Header, whose str() would make them U+FFFD."""
    if isinstance(value, email.header.Header):
        return "".join(_eight_bit(data, charset)
                       for data, charset in email.header.decode_header(value))
    return str(value)


def _eight_bit(data: bytes | str, charset: str | None) -> str:
    """A header chunk: text as it is; bytes in their charset, undeclared ones read as
    UTF-8, else Windows-1252."""
    if isinstance(data, str):
        return data
    for codec in ((charset,) if charset and charset != "unknown-8bit" else ()) + ("utf-8",):
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode("cp1252", "replace")


def _envelope(msg: PyMessage, when: datetime) -> list[Prop]:
    """Subject, importance, dates (`when`: delivery, creation, modification), ids, sender."""
    subject = _unfold(_header(msg, "Subject"))
    m = _PREFIX.match(subject)
    prefix = m.group(1) if m else ""
    props = [unicode(0x001A, "IPM.Note"), unicode(0x0037, subject),
             unicode(0x003D, prefix), unicode(0x0E1D, subject[len(prefix):]),
             long(0x0017, _importance(msg)), long(0x0036, _sensitivity(msg)),
             long(0x3FFD, 65001)]
    sent = _date(msg.get("Date"))
    props += _thread(msg, subject[len(prefix):], sent or when)
    if sent is not None:
        props.append(systime(0x0039, sent))
    props += [systime(0x0E06, when), systime(0x3007, when), systime(0x3008, when)]
    for pid, name in ((0x1035, "Message-ID"), (0x1042, "In-Reply-To"), (0x1039, "References")):
        value = _unfold(_header(msg, name)).strip()
        if value:
            props.append(unicode(pid, value))
    props += _sender(msg)
    return props


def _sensitivity(msg: PyMessage) -> int:
    """PR_SENSITIVITY from the Sensitivity header (RFC 2156): normal, personal, private,
    company-confidential."""
    value = _header(msg, "Sensitivity").strip().lower()
    return {"personal": 1, "private": 2, "company-confidential": 3}.get(value, 0)


def _thread(msg: PyMessage, topic: str, when: datetime) -> list[Prop]:
    """Conversation topic and index (Outlook's Thread-Topic/Thread-Index headers when
    there, else a fresh index from the date, MS-OXOMSG 2.2.1.3) and a search key."""
    topic = _unfold(_header(msg, "Thread-Topic")).strip() or topic
    mid = _unfold(_header(msg, "Message-ID")).strip()
    seed = (mid or topic).encode("utf-8", "replace")
    try:
        index = base64.b64decode(_header(msg, "Thread-Index").strip(), validate=True)
    except ValueError:
        index = b""
    if len(index) < 22 or (len(index) - 22) % 5:
        ticks = int.from_bytes(systime(0, when)[2], "little")
        guid = hashlib.md5(seed, usedforsecurity=False).digest()
        index = b"\x01" + ((ticks >> 24) & (2**40 - 1)).to_bytes(5, "big") + guid
    key = hashlib.md5(seed + index, usedforsecurity=False).digest()
    return [unicode(0x0070, topic), binary(0x0071, index), binary(0x300B, key)]


def _unfold(value: str) -> str:
    """RFC 5322 unfolding: a line break before white space goes, the white space stays."""
    return _FOLD.sub("", value).replace("\r", "").replace("\n", "")


def header_block(raw: bytes) -> str:
    """The message's header lines as they came (PR_TRANSPORT_MESSAGE_HEADERS), CRLF, up to
    the blank line or the first line that is no header (a parser reads the rest as body)."""
    out: list[bytes] = []
    # the lines up to the first blank line are all that is read: splitting only a prefix
    # that holds it saves splitting megabytes of body
    head = raw
    # the head is near the start: look there first (a search that finds nothing scans its
    # whole window, ~0.1 ms for 64 KiB); a smaller window gives the same first blank line
    # when it has one, as an end found there is before any that crosses its edge
    for window in (1 << 12, 1 << 16, len(raw)):
        ends = [i for i in (raw.find(b"\n\n", 0, window), raw.find(b"\n\r\n", 0, window),
                            raw.find(b"\r\r", 0, window)) if i >= 0]
        if ends:
            head = raw[:min(ends) + 4]
            break
    for line in head.splitlines():
        if not line.strip(b"\r") or not (_HEADER_LINE.match(line) or (line[:1] in b" \t"
                                         and out)):
            break
        out.append(line.rstrip(b"\r"))
    # raw 8-bit bytes stay escaped: `unicode` reads them as UTF-8, else Windows-1252
    return (b"\r\n".join(out) + b"\r\n\r\n").decode("utf-8", "surrogateescape") if out else ""


def _importance(msg: PyMessage) -> int:
    value = (_header(msg, "Importance") or _header(msg, "X-Priority")).strip().lower()
    if value.startswith(("high", "1", "2")):
        return 2
    if value.startswith(("low", "4", "5")):
        return 0
    return 1


def _date(value: object) -> datetime | None:
    if value is None:
        return None
    try:
        when = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    try:
        return when.astimezone(UTC) if when.year > 1601 else None
    except (OverflowError, ValueError):
        return None


def _addresses(msg: PyMessage, name: str) -> list[tuple[str, str]]:
    values = [_text(v) for v in msg.get_all(name, [])]
    decoded = [_words(v) if "=?" in v else v for v in values] if values else []
    return [(n, a) for n, a in addresses(decoded) if n or a]


def _words(value: str) -> str:
    """Encoded words decoded; a value whose words name an unknown charset or are broken
    stays as it is (found by test_write_fastmime_mapi: it had stopped the whole run)."""
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except (UnicodeError, LookupError, ValueError, email.errors.HeaderParseError):
        return value


def _sender(msg: PyMessage) -> list[Prop]:
    found = _addresses(msg, "From") or _addresses(msg, "Sender")
    if not found:
        return []
    name, addr = found[0]
    name = name or addr
    out = []
    for ids in ((0x0C1A, 0x0C1E, 0x0C1F, 0x5D01, 0x0C19), (0x0042, 0x0064, 0x0065, 0x5D02,
                                                         0x0041)):
        out += [unicode(ids[0], name), unicode(ids[1], "SMTP"), unicode(ids[2], addr),
                unicode(ids[3], addr), binary(ids[4], one_off(name, addr))]
    return out


def one_off(name: str, addr: str, flags: int = 0x8000 | 0x1000) -> bytes:
    """A one-off entry id (MS-OXCDATA 2.2.5.1) for an SMTP address, Unicode strings."""
    text = "\0".join((name, "SMTP", addr)) + "\0"
    return b"\0" * 4 + _ONE_OFF + struct.pack("<HH", 0, flags) + unicode(0, text)[2]


def _recipients(msg: PyMessage) -> list[list[Prop]]:
    out = []
    for kind, header in ((1, "To"), (2, "Cc"), (3, "Bcc")):
        for name, addr in _addresses(msg, header):
            shown = name or addr
            out.append([long(0x0C15, kind), unicode(0x3001, shown), unicode(0x3002, "SMTP"),
                        unicode(0x3003, addr), unicode(0x39FE, addr), unicode(0x5FF6, shown),
                        long(0x0FFE, 6), long(0x3900, 0), boolean(0x0E0F, True),
                        boolean(0x3A40, False), binary(0x0FFF, one_off(shown, addr)),
                        binary(0x300B, f"SMTP:{addr.upper()}\0".encode("ascii", "replace"))])
    return out


def _display_lists(recipients: list[list[Prop]]) -> list[Prop]:
    out: list[Prop] = []
    for kind, pid in ((1, 0x0E04), (2, 0x0E03), (3, 0x0E02)):
        names = [r[1][2].decode("utf-16-le") for r in recipients
                 if r[0][2] == struct.pack("<I", kind)]
        out.append(unicode(pid, "; ".join(names)))
    return out


def _attachment(part: PyMessage, index: int, depth: int, when: datetime | None) -> Attachment:
    data = data_of(part)
    ctype = part.get_content_type()
    if ctype == "message/rfc822" and depth < MAX_DEPTH and data.strip():
        inner = to_mapi(data, ("seen",), None, depth + 1, when)
        return Attachment(_embedded_props(part, inner), inner)
    name = filename_of(part) or (f"message-{index + 1}.eml" if ctype == "message/rfc822"
                               else f"attachment-{index + 1}{extension(ctype)}")
    cid = (part.get("Content-ID") or "").strip().strip("<>")
    inline = part.get_content_disposition() == "inline" and bool(cid)
    props = [long(0x3705, 1), binary(0x3701, data), unicode(0x3707, name),
             unicode(0x3704, short_name(name)), unicode(0x3001, name),
             unicode(0x3703, suffix(name)), unicode(0x370E, ctype),
             long(0x0E20, len(data)), long(0x370B, 0xFFFFFFFF),
             long(0x3714, 4 if inline else 0), boolean(0x7FFE, inline)]
    if cid:
        props.append(unicode(0x3712, cid))
    return Attachment(props)


def part_attachment(part: PyMessage, index: int, depth: int = 0,
                    when: datetime | None = None) -> Attachment:
    """A MIME part as an Outlook attachment (attached messages embedded, those without a
    Date at `when`); for `items`."""
    return _attachment(part, index, depth, when)


def header_text(msg: PyMessage, name: str) -> str:
    """A header's decoded text (encoded words, raw 8-bit bytes); for `items`."""
    return _header(msg, name)


def _embedded_props(part: PyMessage, inner: Message) -> list[Prop]:
    """An attachment holding a message: Outlook shows it by the message's subject; the
    message itself (PR_ATTACH_DATA_OBJ) is added where it is written."""
    subject = next((raw for pid, _t, raw in inner.props if pid == 0x0037), b"")
    props = [long(0x3705, 5), unicode(0x3001, subject.decode("utf-16-le")),
             unicode(0x370E, "message/rfc822"), long(0x370B, 0xFFFFFFFF), long(0x3714, 0),
             boolean(0x7FFE, False)]
    name = filename_of(part)
    if name:
        props += [unicode(0x3707, name), unicode(0x3704, short_name(name))]
    return props
