"""IMAP folder names -> pstkit folders. Pure: no I/O, no imapclient.

A LIST reply gives, per mailbox, its attributes, the hierarchy delimiter and
the raw name in modified UTF-7 (RFC 3501 5.1.3). We split on the delimiter
*before* decoding (a decoded segment may legitimately contain the delimiter
character), strip the personal namespace prefix (Courier/cPanel list
"INBOX.Sent" for what the user sees as "Sent"), and take roles from
SPECIAL-USE attributes (RFC 6154), falling back to well-known names only when
the server announced no SPECIAL-USE attribute at all.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pstkit.model import FolderInfo, FolderPath, Role

SPECIAL_USE: dict[str, Role] = {
    "\\sent": Role.SENT,
    "\\drafts": Role.DRAFTS,
    "\\trash": Role.TRASH,
    "\\junk": Role.JUNK,
    "\\archive": Role.ARCHIVE,
    "\\all": Role.ALL,
    "\\flagged": Role.FLAGGED,
    "\\important": Role.IMPORTANT,
}

# Used only for servers without SPECIAL-USE, and only for top-level folders.
NAME_ROLES: dict[str, Role] = {
    "sent": Role.SENT, "sent items": Role.SENT, "sent messages": Role.SENT,
    "sent mail": Role.SENT, "drafts": Role.DRAFTS, "trash": Role.TRASH,
    "deleted items": Role.TRASH, "deleted messages": Role.TRASH, "junk": Role.JUNK,
    "spam": Role.JUNK, "junk e-mail": Role.JUNK, "junk email": Role.JUNK,
    "archive": Role.ARCHIVE, "archives": Role.ARCHIVE,
}

RawListItem = tuple[Sequence[bytes | str], bytes | str | None, bytes | str]


@dataclass(frozen=True)
class ListEntry:
    """One LIST reply line, normalised: attributes lower-case, name raw."""

    attributes: frozenset[str]
    delimiter: str | None
    raw_name: str


def _text(value: bytes | str) -> str:
    # Raw mailbox names are 7-bit; surrogateescape keeps a broken server's
    # 8-bit bytes round-trippable instead of failing the whole listing.
    return value.decode("ascii", "surrogateescape") if isinstance(value, bytes) else value


def parse_list(items: Iterable[RawListItem]) -> list[ListEntry]:
    seen: set[str] = set()
    out: list[ListEntry] = []
    for attrs, delim, name in items:
        raw = _text(name) if not isinstance(name, int) else str(name)
        if raw in seen:
            continue
        seen.add(raw)
        out.append(ListEntry(
            frozenset(_text(a).lower() for a in attrs),
            None if delim is None else _text(delim),
            raw,
        ))
    return out


# --- modified UTF-7 ----------------------------------------------------------


def decode_mutf7(name: str) -> str:
    """RFC 3501 modified UTF-7 -> str. Raises ValueError if malformed."""
    out: list[str] = []
    i = 0
    while i < len(name):
        ch = name[i]
        if ch != "&":
            if not 0x20 <= ord(ch) <= 0x7E:
                raise ValueError(f"not 7-bit printable: {name!r}")
            out.append(ch)
            i += 1
            continue
        end = name.find("-", i + 1)
        if end < 0:
            raise ValueError(f"unterminated '&' in {name!r}")
        chunk = name[i + 1 : end]
        out.append("&" if chunk == "" else _decode_b64_utf16(chunk))
        i = end + 1
    return "".join(out)


def _decode_b64_utf16(chunk: str) -> str:
    b64 = chunk.replace(",", "/")
    try:
        data = base64.b64decode(b64 + "=" * (-len(b64) % 4), validate=True)
        return data.decode("utf-16-be")
    except (binascii.Error, UnicodeDecodeError) as e:
        raise ValueError(f"bad modified UTF-7 chunk {chunk!r}") from e


def encode_mutf7(text: str) -> str:
    """str -> RFC 3501 modified UTF-7 (for sinks and for EXAMINE by path)."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            data = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(data).decode().rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for ch in text:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


def decode_segment(raw: str) -> str:
    """Decode one name segment; a malformed one is kept as the server sent it."""
    try:
        return decode_mutf7(raw)
    except ValueError:
        return raw


# --- look-alikes ----------------------------------------------------------------

#: A character a server cannot keep in a name travels as a look-alike and comes back
#: as itself: the hierarchy delimiter, and "/", which servers that keep folders as
#: directories refuse whatever their delimiter (Cyrus and Courier with ".", Dovecot's
#: maildir). The IMAP sink writes them (`append.substitute`); reading maps them back.
LOOKALIKE: dict[str, str] = {"/": "\u2215", ".": "\u2024"}


def restore_segment(segment: str, delimiter: str | None) -> str:
    """A decoded name segment with the look-alikes of "/" and of `delimiter` undone."""
    out = segment.replace(LOOKALIKE["/"], "/")
    alike = LOOKALIKE.get(delimiter or "")
    return out.replace(alike, delimiter) if alike and delimiter else out


# --- LIST -> folders ---------------------------------------------------------


def folder_path(raw_name: str, delimiter: str | None, prefix: str = "") -> FolderPath:
    """Raw mailbox name -> path, without the personal namespace `prefix`."""
    name = raw_name
    if prefix and name.startswith(prefix) and len(name) > len(prefix):
        name = name[len(prefix):]
    if name.upper() == "INBOX":
        return ("INBOX",)
    parts = name.split(delimiter) if delimiter else [name]
    return tuple(restore_segment(decode_segment(p), delimiter) for p in parts if p != "")


def role_of(entry: ListEntry, path: FolderPath, by_name: bool) -> Role | None:
    if path == ("INBOX",):
        return Role.INBOX
    for attr in entry.attributes:
        if attr in SPECIAL_USE:
            return SPECIAL_USE[attr]
    if by_name and len(path) == 1:
        return NAME_ROLES.get(path[0].lower())
    return None


def folders_from_list(entries: Sequence[ListEntry], prefix: str = "") -> list[FolderInfo]:
    """Every folder, parents before children; missing parents are added as
    not selectable so a tree can always be built."""
    by_name = not any(a in SPECIAL_USE for e in entries for a in e.attributes)
    found: dict[FolderPath, FolderInfo] = {}
    for e in entries:
        if "\\nonexistent" in e.attributes:
            continue
        path = folder_path(e.raw_name, e.delimiter, prefix)
        if not path or path in found:
            continue
        selectable = "\\noselect" not in e.attributes
        found[path] = FolderInfo(path, role_of(e, path, by_name), e.raw_name,
                                 selectable=selectable)
    for path in list(found):
        for n in range(1, len(path)):
            found.setdefault(path[:n], FolderInfo(path[:n], selectable=False))
    return sorted(found.values(), key=_order)


def _order(f: FolderInfo) -> tuple[int, FolderPath]:
    return (0 if f.path[0] == "INBOX" else 1, f.path)
