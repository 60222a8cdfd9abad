"""Per-message IMAP translations. Pure: no I/O, no imapclient.

Flags, cursors ("UIDVALIDITY:UID"), UID sets and FETCH batch planning, kept
apart from the connection code so they can be table- and property-tested.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from pstkit.errors import SourceError
from pstkit.model import Flag

SYSTEM_FLAGS: dict[str, Flag] = {
    "\\seen": Flag.SEEN,
    "\\answered": Flag.ANSWERED,
    "\\flagged": Flag.FLAGGED,
    "\\draft": Flag.DRAFT,
    "\\deleted": Flag.DELETED,
    "$forwarded": Flag.FORWARDED,
}
# \Recent belongs to one session, not to the message: never exported.
SESSION_FLAGS = frozenset({"\\recent"})


def translate_flags(raw: Iterable[bytes | str]) -> tuple[frozenset[Flag], frozenset[str]]:
    """IMAP FLAGS -> (system flags, other keywords as the server spelled them)."""
    flags: set[Flag] = set()
    keywords: set[str] = set()
    for item in raw:
        text = item.decode("utf-8", "replace") if isinstance(item, bytes) else item
        low = text.lower()
        if low in SYSTEM_FLAGS:
            flags.add(SYSTEM_FLAGS[low])
        elif low not in SESSION_FLAGS and not low.startswith("\\"):
            keywords.add(text)
    return frozenset(flags), frozenset(keywords)


@dataclass(frozen=True)
class Cursor:
    uidvalidity: int
    uid: int  # last UID durable in the store (0 = none yet)

    def __str__(self) -> str:
        return f"{self.uidvalidity}:{self.uid}"


def parse_cursor(text: str | None) -> Cursor | None:
    if not text:
        return None
    a, sep, b = text.partition(":")
    if not sep or not a.isdigit() or not b.isdigit():
        raise SourceError("the store's IMAP cursor", f"malformed cursor {text!r}")
    return Cursor(int(a), int(b))


def start_after(cursor: Cursor | None, uidvalidity: int) -> int:
    """Last UID already exported under the server's current UIDVALIDITY.

    A different UIDVALIDITY means every UID was renumbered: read all again
    (the pipeline recognises already-stored copies by content)."""
    if cursor is None or cursor.uidvalidity != uidvalidity:
        return 0
    return cursor.uid


def uid_set(uids: Iterable[int]) -> str:
    """Sorted, compressed IMAP sequence set: [1,2,3,7] -> "1:3,7"."""
    out: list[str] = []
    run: list[int] = []
    for u in sorted(set(uids)):
        if run and u == run[-1] + 1:
            run.append(u)
            continue
        if run:
            out.append(_span(run))
        run = [u]
    if run:
        out.append(_span(run))
    return ",".join(out)


def _span(run: Sequence[int]) -> str:
    return str(run[0]) if len(run) == 1 else f"{run[0]}:{run[-1]}"


def batches(items: Sequence[tuple[int, int]], max_count: int, max_bytes: int
            ) -> Iterator[list[int]]:
    """Group (uid, size) in the given order into FETCH batches bounded by
    count and bytes (a single oversized message gets a batch of its own)."""
    cur: list[int] = []
    size = 0
    for uid, n in items:
        if cur and (len(cur) >= max_count or size + n > max_bytes):
            yield cur
            cur, size = [], 0
        cur.append(uid)
        size += n
    if cur:
        yield cur


_UID = re.compile(rb"\bUID (\d+)", re.IGNORECASE)
_BODY_LITERAL = re.compile(rb"BODY\[\] ~?\{\d+\}$", re.IGNORECASE)  # Cyrus: literal8 for a NUL
_BINARY_LITERAL = re.compile(rb"BINARY\[\] ~?\{\d+\}$", re.IGNORECASE)


def parse_body_fetch(data: Sequence[bytes | tuple[bytes, bytes] | None],
                     binary: bool = False) -> dict[int, bytes]:
    """imaplib's raw `UID FETCH … (BODY.PEEK[])` reply -> {uid: exact bytes}.

    imaplib returns a list where each literal comes as (text before it,
    literal) followed by the text after it. imapclient's general parser
    tokenises all of that in Python (a third of the export's CPU time); we
    only need the UID and the literal. The UID may come before the literal
    (Dovecot) or after it (some servers), so both places are checked. `binary`: the
    reply to `BINARY.PEEK[]` (RFC 3516), whose literal may be a literal8 (`~{n}`)."""
    out: dict[int, bytes] = {}
    label = _BINARY_LITERAL if binary else _BODY_LITERAL
    for i, item in enumerate(data):
        if not isinstance(item, tuple) or not label.search(item[0]):
            continue
        m = _UID.search(item[0])
        if m is None:
            after = data[i + 1] if i + 1 < len(data) else None
            m = _UID.search(after) if isinstance(after, bytes) else None
        if m is not None:
            out[int(m.group(1))] = item[1]
    return out


def header_fields(data: dict[bytes, object]) -> bytes:
    """The BODY[HEADER.FIELDS (...)] part of one FETCH reply, whichever way the server
    spelled the key: Dovecot and Cyrus echo `(MESSAGE-ID SUBJECT)`, Courier quotes the
    field names `("MESSAGE-ID" "SUBJECT")`; both are valid astrings (RFC 3501)."""
    for key, value in data.items():
        if key.upper().startswith(b"BODY[HEADER.FIELDS") and isinstance(value, bytes):
            return value
    return b""


def may_hold_nul(body: bytes) -> bool:
    """Could a 0x80 byte of this body be a NUL the server replaced? Not when every 0x80
    is a continuation byte of valid UTF-8 (`—`, `’`, `、` all hold one: most non-ASCII mail
    would otherwise cost a second FETCH). A replaced NUL after ASCII, or in binary or
    cp1252 data, is not valid UTF-8, so the message is looked at again (pure)."""
    return b"\x80" in body and "\udc80" in body.decode("utf-8", "surrogateescape")


def nul_restored(body: bytes, exact: bytes) -> bool:
    """Is `exact` the message `body` was, before the server sent each NUL byte as 0x80?
    (Same length, same bytes, but NUL where `body` has 0x80; pure.)"""
    return len(exact) == len(body) and exact != body and exact.replace(b"\0", b"\x80") == body


@dataclass(frozen=True)
class RawMeta:
    """One `FETCH (UID FLAGS INTERNALDATE RFC822.SIZE)` reply, still as the server
    spelled it (the date is parsed by the caller: `parse_internaldate`, then a lenient one)."""

    uid: int
    size: int
    flags: tuple[bytes, ...]
    internaldate: bytes | None


_META_LINE = re.compile(rb"\d+ \((.*)\)", re.DOTALL)
# The items of the plain form, each with its value; anything else -> general parser.
# A flag is an atom (RFC 3501: no parentheses, quotes, braces or controls).
_META_ITEM = re.compile(
    rb'(?:(UID|RFC822\.SIZE) (\d+)|FLAGS \(([^()"{}\x00-\x1f\x7f]*)\)'
    rb'|INTERNALDATE "([^"\\\x00-\x1f]*)"|MODSEQ \(\d+\))(?: |$)',
    re.IGNORECASE,
)


def parse_meta_fetch(data: Sequence[bytes | tuple[bytes, bytes] | None]) -> list[RawMeta] | None:
    """imaplib's raw reply to `UID FETCH set (FLAGS INTERNALDATE RFC822.SIZE)` ->
    one RawMeta per message. Regexes instead of imapclient's general tokeniser, which
    cost about a third of the metadata time in Python. Returns None (the caller then
    uses the general parser) where any message is not in the plain one-line form this
    reads completely: a literal, a quoted flag, an item it does not know, an unclosed
    list. So a flag is never dropped because a regex missed it. A message without UID
    or RFC822.SIZE (an unsolicited FLAGS update; a UID-less reply cannot be placed) is
    left out, as imapclient's path did (pure)."""
    out: list[RawMeta] = []
    for item in data:
        if item is None:
            continue
        if not isinstance(item, bytes):
            return None
        meta = _meta_line(item)
        if meta is False:
            return None
        if isinstance(meta, RawMeta):
            out.append(meta)
    return out


def _meta_line(item: bytes) -> RawMeta | bool | None:
    """One FETCH item -> RawMeta; None: no UID or size; False: not the plain form."""
    line = _META_LINE.fullmatch(item)
    if line is None:
        return False
    body, pos = line.group(1), 0
    found: dict[bytes, bytes] = {}
    flags: tuple[bytes, ...] = ()
    while pos < len(body):
        m = _META_ITEM.match(body, pos)
        if m is None:
            return False
        if m.group(1) is not None:
            found[m.group(1).upper()] = m.group(2)
        elif m.group(3) is not None:
            flags = tuple(m.group(3).split())
        elif m.group(4) is not None:
            found[b"INTERNALDATE"] = m.group(4)
        pos = m.end()
    if b"UID" not in found or b"RFC822.SIZE" not in found:
        return None
    return RawMeta(int(found[b"UID"]), int(found[b"RFC822.SIZE"]), flags,
                   found.get(b"INTERNALDATE"))


_MONTHS = {m: i for i, m in enumerate(
    (b"jan", b"feb", b"mar", b"apr", b"may", b"jun",
     b"jul", b"aug", b"sep", b"oct", b"nov", b"dec"), 1)}
_DATE_TIME = re.compile(
    rb" ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)")


def parse_internaldate(raw: bytes) -> datetime | None:
    """RFC 3501 date-time (`"17-Jul-1996 02:44:25 -0700"`, day may be space-padded or
    one digit) -> the instant in UTC; None for any other form or an impossible date (the
    caller then tries a lenient parser). Exact: no local time zone is involved (pure)."""
    m = _DATE_TIME.fullmatch(raw)
    if m is None:
        return None
    day, mon, year, hh, mm, ss, sign, oh, om = m.groups()
    month = _MONTHS.get(mon.lower())
    offset = timedelta(hours=int(oh), minutes=int(om)) * (-1 if sign == b"-" else 1)
    if month is None or abs(offset) >= timedelta(days=1):
        return None
    try:
        when = datetime(int(year), month, int(day), int(hh), int(mm), int(ss),
                        tzinfo=timezone(offset))
        return when.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
