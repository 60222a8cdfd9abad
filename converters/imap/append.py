"""Translations for the IMAP sink. Pure: no I/O, no imapclient.

Store flags -> IMAP flag atoms (filtered by the folder's PERMANENTFLAGS),
store folder paths -> raw mailbox names (namespace prefix, delimiter,
modified UTF-7), INTERNALDATE strings, APPEND command pieces and the
response codes of the APPEND reply (APPENDUID, TOOBIG, LIMIT, OVERQUOTA).

A store folder segment that contains the server's hierarchy delimiter is
*substituted*, not escaped: the delimiter becomes a look-alike character
(`/` -> U+2215 DIVISION SLASH, `.` -> U+2024 ONE DOT LEADER, anything else
-> `_`), so "Q1/Q2" stays one readable folder instead of becoming two levels.
A "/" is substituted whatever the delimiter: Cyrus and Courier (delimiter ".")
and Dovecot's maildir refuse it in a name. `names.restore_segment` maps the
look-alikes back (sink and source), so a re-run, `verify` and an export find
the folder under its store name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pstkit.converters.imap.names import (
    LOOKALIKE,
    decode_segment,
    encode_mutf7,
    restore_segment,
)
from pstkit.headers import summary
from pstkit.model import Flag, FolderPath

FLAG_ATOMS: dict[Flag, str] = {
    Flag.SEEN: "\\Seen",
    Flag.ANSWERED: "\\Answered",
    Flag.FLAGGED: "\\Flagged",
    Flag.DRAFT: "\\Draft",
    Flag.DELETED: "\\Deleted",
    Flag.FORWARDED: "$Forwarded",
}
_ATOM_SPECIALS = re.compile(r'[(){ %*"\\\]\x00-\x1f\x7f-\U0010ffff]')
_CRLF = re.compile(rb"\r?\n")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# --- flags -------------------------------------------------------------------


@dataclass(frozen=True)
class FlagChoice:
    """Flags to send with APPEND, and those the folder cannot keep."""

    send: tuple[str, ...]
    dropped: tuple[str, ...]


def choose_flags(
    flags: Iterable[Flag], keywords: Iterable[str], permanent: Iterable[str] | None
) -> FlagChoice:
    """Store flags and keywords -> IMAP flags this folder keeps.

    `permanent` is the folder's PERMANENTFLAGS (None: the server sent none,
    so RFC 3501 says every flag may be set). `\\*` allows any keyword.
    A keyword that is not a valid IMAP atom cannot be sent at all."""
    allowed = None if permanent is None else {p.lower() for p in permanent}
    any_keyword = allowed is None or "\\*" in allowed
    send: list[str] = []
    dropped: list[str] = []
    for flag in sorted(flags):
        atom = FLAG_ATOMS[flag]
        system = atom.startswith("\\")
        ok = allowed is None or atom.lower() in allowed or (not system and any_keyword)
        (send if ok else dropped).append(atom)
    for kw in sorted(keywords):
        ok = valid_keyword(kw) and (any_keyword or (allowed is not None and kw.lower() in allowed))
        (send if ok else dropped).append(kw)
    return FlagChoice(tuple(send), tuple(dropped))


def valid_keyword(kw: str) -> bool:
    return bool(kw) and not kw.startswith("\\") and _ATOM_SPECIALS.search(kw) is None


# --- folder names --------------------------------------------------------------


def substitute(segment: str, delimiter: str | None) -> str:
    """One store segment -> a name segment free of the delimiter and of "/"."""
    if delimiter and delimiter in segment:
        segment = segment.replace(delimiter, LOOKALIKE.get(delimiter, "_"))
    return segment.replace("/", LOOKALIKE["/"])


def mailbox_name(path: FolderPath, delimiter: str | None, prefix: str = "") -> str:
    """Store path -> the raw (modified UTF-7) mailbox name to CREATE/APPEND."""
    if path and path[0].upper() == "INBOX" and len(path) == 1:
        return "INBOX"
    parts = [encode_mutf7(substitute(s, delimiter)) for s in path]
    if path and path[0].upper() == "INBOX":
        parts[0] = "INBOX"  # INBOX is never prefixed or encoded
        return (delimiter or "/").join(parts)
    return prefix + (delimiter or "/").join(parts)


def parents(path: FolderPath) -> list[FolderPath]:
    """("a","b","c") -> [("a",), ("a","b")]."""
    return [path[:n] for n in range(1, len(path))]


def path_from_segments(raw_segments: Iterable[str], delimiter: str | None) -> FolderPath:
    """Decoded segments with the look-alikes mapped back."""
    return tuple(restore_segment(decode_segment(raw), delimiter) for raw in raw_segments)


def unsubstitute(path: FolderPath, delimiter: str | None) -> FolderPath:
    return tuple(restore_segment(s, delimiter) for s in path)


# --- APPEND pieces -------------------------------------------------------------


def internaldate(when: datetime) -> str:
    """Aware datetime -> IMAP date-time, in UTC: "04-Mar-2024 09:30:00 +0000"."""
    t = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    return f"{t.day:02d}-{_MONTHS[t.month - 1]}-{t.year:04d} {t:%H:%M:%S} +0000"


def quote(name: str) -> str:
    """A mailbox name as an IMAP quoted string (names are 7-bit after mUTF-7)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def append_head(flags: Iterable[str], when: datetime | None, size: int, plus: bool,
                binary: bool = False) -> bytes:
    """The part of an APPEND before one message literal: `(flags) "date" {n+}`, or
    `~{n+}` (a literal8, RFC 3516) for a message that holds a NUL byte."""
    parts = [f"({' '.join(flags)})"]
    if when is not None:
        parts.append(f'"{internaldate(when)}"')
    parts.append(f"{'~' if binary else ''}{{{size}{'+' if plus else ''}}}")
    return " ".join(parts).encode("ascii")


def wire_form(raw: bytes, *, binary: bool) -> bytes | None:
    """What an APPEND carries for the stored bytes `raw`; the store keeps `raw` as is.

    IMAP allows only CRLF line ends in a message (RFC 3501 2.3.1; Cyrus refuses
    "bare newlines", Dovecot converts them), so a bare LF goes out as CRLF; a bare CR
    is left alone. A NUL byte may travel only in a literal8, where the server offers
    BINARY (RFC 3516): without it, None (the caller reports the message as failed).
    `verify` compares a target's bytes with this form: equal here is "=" there."""
    if b"\0" in raw and not binary:
        return None
    return crlf(raw)


NUL_REFUSED = ("it holds a NUL byte and the server does not offer BINARY (RFC 3516): "
               "IMAP cannot carry it")


# --- responses -------------------------------------------------------------------


@dataclass(frozen=True)
class AppendUid:
    uidvalidity: int
    uids: tuple[int, ...]


_APPENDUID = re.compile(r"\[APPENDUID (\d+) ([0-9:,]+)\]", re.IGNORECASE)
_CODE = re.compile(r"^\s*\[([A-Z-]+)", re.IGNORECASE)


def parse_appenduid(text: str) -> AppendUid | None:
    """`[APPENDUID 38505 3955:3957,4000]` -> AppendUid(38505, (3955, 3956, 3957, 4000))."""
    m = _APPENDUID.search(text)
    if m is None:
        return None
    uids: list[int] = []
    for span in m.group(2).split(","):
        a, _, b = span.partition(":")
        lo, hi = int(a), int(b or a)
        uids.extend(range(min(lo, hi), max(lo, hi) + 1))
    return AppendUid(int(m.group(1)), tuple(uids))


def response_code(text: str) -> str:
    """The response code of a tagged reply's text, upper-case, or ""."""
    m = _CODE.match(text)
    return m.group(1).upper() if m else ""


#: Codes that concern the one message: it is reported and the run goes on.
MESSAGE_CODES = frozenset({"TOOBIG", "LIMIT"})
#: The mailbox is full: nothing more can go in, stop with a clear message.
QUOTA_CODES = frozenset({"OVERQUOTA"})


def is_over_quota(text: str) -> bool:
    # Servers without RFC 5530 codes still say "quota" in the text.
    return response_code(text) in QUOTA_CODES or (
        response_code(text) not in MESSAGE_CODES and "quota" in text.lower()
    )


def target_id(uidvalidity: int, uid: int) -> str:
    return f"{uidvalidity}:{uid}"


def parse_target_id(text: str) -> tuple[int, int] | None:
    a, sep, b = text.partition(":")
    if not sep or not a.isdigit() or not b.isdigit():
        return None
    return int(a), int(b)


# --- message keys --------------------------------------------------------------


def crlf(raw: bytes) -> bytes:
    """Line ends as an IMAP server returns them (it stores bare LF as CRLF).

    Most mail has CRLF already: two C scans say so and the bytes go as they are. The
    regex rewrote every line end of every message (1.3 ms for 110 KB; two calls per
    message made an import into IMAP 2x slower than mbsync, issue 19). Where bare LFs
    are, CRLF -> LF -> CRLF is the same as `_CRLF.sub` (a lone CR stays;
    tests/imap/test_wire_forms.py compares both on seeded bytes)."""
    lf = raw.count(b"\n")
    if lf == 0 or lf == raw.count(b"\r\n"):
        return raw
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def dup_key(message_id: str, raw: bytes) -> str:
    """Duplicate-index key: the Message-ID, else the size on the server (a
    size match is then confirmed by comparing bytes)."""
    mid = message_id or summary(raw)[0]
    return f"id:{mid}" if mid else f"size:{len(crlf(raw))}"


def text(d: object) -> str:
    return d.decode("utf-8", "replace") if isinstance(d, bytes) else str(d)


def permanent_flags(raw: Sequence[object] | None) -> tuple[str, ...] | None:
    """PERMANENTFLAGS of a SELECT reply; None if the server sent none."""
    return None if raw is None else tuple(text(f) for f in raw)
