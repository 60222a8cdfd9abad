"""Pure translations between folder names, file names and flags.

Every name pstkit writes must survive FAT32/exFAT: no `: * ? " < > | \\ /`,
no control characters, no trailing dot or space, at most 255 characters, and
two names that differ only in case are the same name. Such characters (and
`%` itself, and Maildir++'s hierarchy separator `.`) are written as `%XX`
escapes of their UTF-8 bytes; every other Unicode character is kept as is,
so the tree stays readable. The catalog keeps the real names, so nothing
depends on being able to decode a directory name.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Container, Iterable

from pstkit.model import Flag, FolderPath

_FAT_FORBIDDEN = set('<>:"/\\|?*%')
_WINDOWS_RESERVED = {
    "CON", "PRN", "AUX", "NUL",
    *(f"COM{i}" for i in range(1, 10)),
    *(f"LPT{i}" for i in range(1, 10)),
}  # fmt: skip
MAX_NAME = 255


def _escape_char(ch: str) -> str:
    return "".join(f"%{b:02X}" for b in ch.encode("utf-8"))


def escape_segment(segment: str, extra: str = ".") -> str:
    """One folder name -> a FAT-safe file name component (reversible)."""
    out = []
    for ch in segment:
        if ch in _FAT_FORBIDDEN or ch in extra or ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(_escape_char(ch))
        else:
            out.append(ch)
    text = "".join(out)
    # Windows and FAT drop trailing spaces/dots and refuse empty names.
    if text.endswith(" "):
        text = text[:-1] + "%20"
    if not text:
        text = "%"  # an empty folder name: "%" alone is never produced otherwise
    if text.split(".")[0].upper() in _WINDOWS_RESERVED:
        text = _escape_char(text[0]) + text[1:]
    return text


def unescape_segment(text: str) -> str:
    if text == "%":
        return ""
    raw = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "%" and _is_hex(text[i + 1 : i + 3]):
            raw.append(int(text[i + 1 : i + 3], 16))
            i += 3
        else:
            # A name from disk that is not UTF-8 holds its bytes as surrogate escapes.
            raw.extend(text[i].encode("utf-8", "surrogateescape"))
            i += 1
    return _decoded(bytes(raw))


def _decoded(raw: bytes) -> str:
    """Name bytes as text. Bytes that are not UTF-8 are read as Latin-1 (what an old
    system or a FAT stick wrote, `Gesch\xe4ft`), so the folder has a readable name the
    catalog can hold: SQLite refuses surrogate escapes, which stopped the whole export."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def disk_name(name: str) -> str:
    """A file or directory name from os.listdir as a folder name (see `_decoded`)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return _decoded(name.encode("utf-8", "surrogateescape"))
    return name


def disk_text(name: str) -> str:
    """A name or path from disk as an id or a text for the catalog: unchanged when it is
    UTF-8, else its stray bytes as `\\xE4` (one spelling per name, so ids stay stable)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return name


def _is_hex(s: str) -> bool:
    return len(s) == 2 and all(c in "0123456789abcdefABCDEF" for c in s)


def fit_name(name: str, taken: Iterable[str]) -> str:
    """Make `name` unique among `taken` ignoring case, within FAT's length.

    FAT and exFAT fold case, so "Work" and "work" would be one directory;
    the second becomes "work~2". Over-long names are shortened with a hash.
    """
    return fit_folded(name, {t.casefold() for t in taken})


def fit_folded(name: str, folded: Container[str]) -> str:
    """`fit_name` with the taken names already case-folded (a caller adding many
    names keeps one set instead of folding them all for each)."""
    if len(name) > MAX_NAME - 12:
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:10]
        name = f"{name[: MAX_NAME - 24]}~{digest}"
    candidate, n = name, 1
    while candidate.casefold() in folded:
        n += 1
        candidate = f"{name}~{n}"
    return candidate


def maildirpp_dirname(path: FolderPath) -> str:
    """Maildir++ subfolder name: ".a.b" with each segment escaped."""
    return "." + ".".join(escape_segment(s) for s in path)


def maildirpp_path(dirname: str) -> FolderPath:
    """Inverse of `maildirpp_dirname` for names pstkit (or anyone) wrote.

    A segment that is empty in the split (Maildir++ "..x": a name that itself
    starts with a dot) is glued to the next one, so no path has empty names.
    """
    parts = dirname[1:].split(".")
    out: list[str] = []
    carry = ""
    for part in parts:
        if part == "" and carry == "" and not out:
            carry = "."
            continue
        if part == "":
            carry += "."
            continue
        out.append(unescape_segment(carry + part) if carry else unescape_segment(part))
        carry = ""
    if carry:
        out.append(carry)
    return tuple(out)


# --- Maildir info suffix ---------------------------------------------------

_MAILDIR_LETTERS = {
    Flag.DRAFT: "D",
    Flag.FLAGGED: "F",
    Flag.FORWARDED: "P",
    Flag.ANSWERED: "R",
    Flag.SEEN: "S",
    Flag.DELETED: "T",
}
_LETTER_FLAGS = {v: k for k, v in _MAILDIR_LETTERS.items()}


def flags_to_info(flags: Iterable[Flag]) -> str:
    """Maildir "2," info: flag letters in ASCII order, as the spec requires."""
    return "2," + "".join(sorted(_MAILDIR_LETTERS[f] for f in set(flags)))


def info_to_flags(info: str) -> tuple[frozenset[Flag], str]:
    """Parse "2,FRS" -> flags; returns (flags, letters pstkit does not know).

    Lower-case letters are Dovecot keyword indexes; they are returned in the
    second element so the caller can report or map them.
    """
    if not info.startswith("2,"):
        return frozenset(), ""
    flags = {_LETTER_FLAGS[c] for c in info[2:] if c in _LETTER_FLAGS}
    unknown = "".join(c for c in info[2:] if c not in _LETTER_FLAGS)
    return frozenset(flags), unknown


def split_maildir_name(name: str, seps: str = ":!;") -> tuple[str, str]:
    """ "unique:2,FS" -> ("unique", "2,FS"). Accepts ":" and the FAT-safe "!"
    (Python's mailbox.Maildir.colon convention) and ";" (mbsync on Windows)."""
    for sep in seps:
        idx = name.rfind(sep + "2,")
        if idx >= 0:
            return name[:idx], name[idx + 1 :]
    return name, ""


def flags_text(flags: Iterable[Flag]) -> str:
    return ",".join(sorted(f.value for f in set(flags)))


def parse_flags_text(text: str) -> frozenset[Flag]:
    return frozenset(Flag(t) for t in text.split(",") if t)


# --- modified UTF-7 (RFC 3501 5.1.3), as Dovecot and Courier name Maildir folders ---


def decode_mutf7(text: str) -> str | None:
    """Decode an IMAP modified-UTF-7 name; None if `text` is not valid mUTF-7
    (e.g. a UTF-8 name like "R&D", which must then be kept as it is)."""
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch != "&":
            if not 0x20 <= ord(ch) <= 0x7E:
                return None
            out.append(ch)
            i += 1
            continue
        end = text.find("-", i)
        if end < 0:
            return None
        chunk = text[i + 1 : end]
        if not chunk:
            out.append("&")
        else:
            b64 = chunk.replace(",", "/")
            try:
                raw = base64.b64decode(b64 + "=" * (-len(b64) % 4), validate=True)
                out.append(raw.decode("utf-16-be"))
            except (binascii.Error, UnicodeDecodeError):
                return None
        i = end + 1
    return "".join(out)
