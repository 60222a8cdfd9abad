"""Raw MAPI property values as a PST stores them: `(prop id, prop type, bytes)`. Pure."""

from __future__ import annotations

import re
import struct
from datetime import UTC, datetime, timedelta

PT_SHORT, PT_LONG, PT_BOOLEAN, PT_I8 = 0x0002, 0x0003, 0x000B, 0x0014
PT_UNICODE, PT_SYSTIME, PT_BINARY = 0x001F, 0x0040, 0x0102
_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
_SURROGATE = re.compile("[\ud800-\udfff]")

Prop = tuple[int, int, bytes]


def unicode(pid: int, text: str) -> Prop:
    """Text as UTF-16LE; raw 8-bit bytes and lone surrogates as `recover` reads them. The
    strict encoder refuses exactly the text that holds a surrogate, so text without one
    is encoded once and not searched first (that search over non-ASCII bodies was 4 % of
    the translating process, py-spy)."""
    try:
        return pid, PT_UNICODE, text.encode("utf-16-le")
    except UnicodeEncodeError:
        return pid, PT_UNICODE, recover(text).encode("utf-16-le", "replace")


def recover(text: str) -> str:
    """Text with raw 8-bit bytes (surrogate escapes, from undeclared header charsets) read
    as UTF-8, else as Windows-1252; a lone surrogate cannot be stored as UTF-16."""
    if not _SURROGATE.search(text):
        return text
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that is no escaped byte
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def binary(pid: int, data: bytes) -> Prop:
    return pid, PT_BINARY, data


def long(pid: int, value: int) -> Prop:
    return pid, PT_LONG, struct.pack("<I", value & 0xFFFFFFFF)


def boolean(pid: int, value: bool) -> Prop:
    return pid, PT_BOOLEAN, bytes([1 if value else 0, 0, 0, 0])


def systime(pid: int, when: datetime) -> Prop:
    delta = when - _EPOCH  # integer arithmetic: a float loses the last microsecond
    ticks = max(0, ((delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds) * 10)
    return pid, PT_SYSTIME, struct.pack("<Q", ticks)


def filetime(raw: bytes) -> datetime | None:
    """A PT_SYSTIME value back as an aware UTC time (None when out of range)."""
    if len(raw) < 8:
        return None
    ticks = int.from_bytes(raw[:8], "little")
    try:
        return _EPOCH + timedelta(microseconds=ticks // 10)
    except OverflowError:
        return None
