"""Per-message IMAP translations. Pure: no I/O, no imapclient.

Flags, cursors ("UIDVALIDITY:UID"), UID sets and FETCH batch planning, kept
apart from the connection code so they can be table- and property-tested.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

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
    spelled it (the date is parsed by the caller, with the connection's time rule)."""

    uid: int
    size: int
    flags: tuple[bytes, ...]
    internaldate: bytes | None


_META_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)", re.IGNORECASE)
_META_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)", re.IGNORECASE)
_META_DATE = re.compile(rb'\bINTERNALDATE "([^"]*)"', re.IGNORECASE)


def parse_meta_fetch(data: Sequence[bytes | tuple[bytes, bytes] | None]) -> list[RawMeta] | None:
    """imaplib's raw reply to `UID FETCH set (FLAGS INTERNALDATE RFC822.SIZE)` ->
    one RawMeta per message. Regexes instead of imapclient's general tokeniser, which
    cost about a third of the metadata time in Python. Returns None where the reply is
    not the plain one-line form (a literal in it): the caller then uses the general
    parser. A reply without UID or RFC822.SIZE (an unsolicited FLAGS update) is left
    out, as before. Flags are atoms (RFC 3501), so whitespace splits them (pure)."""
    out: list[RawMeta] = []
    for item in data:
        if item is None:
            continue
        if not isinstance(item, bytes):
            return None
        flags = _META_FLAGS.search(item)
        # Everything but the flag list, so a keyword cannot look like an item.
        rest = item if flags is None else item[: flags.start()] + item[flags.end() :]
        uid, size = _UID.search(rest), _META_SIZE.search(rest)
        if uid is None or size is None:
            continue
        date = _META_DATE.search(rest)
        out.append(RawMeta(int(uid.group(1)), int(size.group(1)),
                           tuple(flags.group(1).split()) if flags else (),
                           date.group(1) if date else None))
    return out
