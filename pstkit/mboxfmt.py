"""Pure mbox framing: mboxrd quoting on write, reading mboxo/mboxrd/Thunderbird.

mboxrd: every body line matching `^>*From ` gets one more `>` on write and
loses one on read, so quoting is exactly reversible. The store keeps each
message's original size in the catalog, so the trailing newline the format
adds is removed again on read and the bytes come back exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

_FROM_QUOTED = re.compile(rb"^(>*From )", re.MULTILINE)
_FROM_UNQUOTE = re.compile(rb"^>(>*From )", re.MULTILINE)
# A separator line: "From " + sender + asctime date, as written by MTAs,
# Thunderbird ("From - Fri Aug 05 10:57:20 2016") and pstkit.
_SEPARATOR = re.compile(rb"^From \S*\s+\w{3} \w{3} [ \d]\d \d\d:\d\d(:\d\d)? .*$")


def quote(raw: bytes) -> bytes:
    return _FROM_QUOTED.sub(rb">\1", raw)


def unquote(body: bytes) -> bytes:
    return _FROM_UNQUOTE.sub(rb"\1", body)


def from_line(sender: str, when: datetime | None) -> bytes:
    stamp = (when or datetime(1970, 1, 1, tzinfo=UTC)).astimezone(UTC)
    safe = "".join(c for c in sender if c.isprintable() and not c.isspace()) or "MAILER-DAEMON"
    return f"From {safe} {stamp.strftime('%a %b %d %H:%M:%S %Y')}\n".encode("ascii", "replace")


def frame(raw: bytes, sender: str, when: datetime | None) -> bytes:
    """One message as it is appended to an mbox file (separator + blank line)."""
    body = quote(raw)
    if not body.endswith(b"\n"):
        body += b"\n"
    return from_line(sender, when) + body + b"\n"


def unframe(chunk: bytes, size: int) -> bytes:
    """Inverse of `frame`, given the original size from the catalog."""
    _, _, rest = chunk.partition(b"\n")
    return unquote(rest)[:size]


def split_mbox(data: Any) -> Iterator[tuple[int, bytes, bytes]]:
    """Yield (offset, separator line, message bytes) for each message.

    A "From " line only separates messages when it follows a blank line (or
    starts the file) and looks like a real separator; mboxo files leave
    unquoted "From " lines in bodies, and those must not split a message.
    The message bytes are un-quoted (mboxrd) and lose the one blank line
    that precedes the next separator.
    """
    starts = [m.start() for m in re.finditer(rb"^From ", data, re.MULTILINE)]
    seps = [s for s in starts if _is_separator(data, s)]
    for i, start in enumerate(seps):
        end = seps[i + 1] if i + 1 < len(seps) else len(data)
        line_end = data.find(b"\n", start, end)
        line_end = end if line_end < 0 else line_end + 1
        body = bytes(data[line_end:end])
        # The blank line before the next separator (or at the end of the file)
        # belongs to the format, not to the message.
        if body.endswith(b"\r\n\r\n"):
            body = body[:-2]
        elif body.endswith(b"\n\n"):
            body = body[:-1]
        yield start, bytes(data[start:line_end]).rstrip(b"\r\n"), unquote(body)


def _is_separator(data: Any, pos: int) -> bool:
    if pos == 0:
        return True
    # Slices, not bytes.endswith: `data` may be an mmap of a large file.
    if data[max(0, pos - 2) : pos] != b"\n\n" and data[max(0, pos - 4) : pos] != b"\r\n\r\n":
        return False
    line_end = data.find(b"\n", pos)
    line = data[pos : line_end if line_end >= 0 else len(data)].rstrip(b"\r")
    return bool(_SEPARATOR.match(line))


#: Header fields mail programs rewrite inside an mbox to keep their own state (read,
#: answered, deleted, keywords, their UIDs): Thunderbird in place when a message is read
#: (X-Mozilla-Status, -Status2, -Keys), mutt/pine/elm (Status, X-Status), Dovecot and
#: UW-IMAP (X-UID, X-Keywords, X-IMAP, X-IMAPbase in the first message).
_STATE = re.compile(
    rb"^(status|x-status|x-mozilla-status2?|x-mozilla-keys|x-uid|x-keywords|x-imap(base)?)"
    rb"[ \t]*:", re.IGNORECASE | re.MULTILINE)  # fmt: skip


def without_state(raw: bytes) -> bytes:
    """`raw` without the state header fields (and their continuation lines), for an id
    that stays when a mail program marks the message read: a content digest of the whole
    message changed with it, and each re-run stored the read message again. `raw` itself
    (the same object) when it has none. The stored bytes are never these."""
    if raw.startswith((b"\n", b"\r\n")):
        return raw  # no header block at all
    # the header block ends at the first empty line; `end` is where the body begins
    end = min((i + 1 for i in (raw.find(b"\n\n"), raw.find(b"\n\r\n")) if i >= 0),
              default=len(raw))  # fmt: skip
    head = raw[:end]
    if not _STATE.search(head):
        return raw
    kept: list[bytes] = []
    dropping = False
    parts = head.split(b"\n")  # lines end at LF only, as `_STATE`'s ^ sees them
    for i, part in enumerate(parts):
        line = part + b"\n" if i < len(parts) - 1 else part
        if line[:1] in (b" ", b"\t") and dropping:
            continue  # a continuation of a dropped field
        dropping = _STATE.match(line) is not None
        if not dropping:
            kept.append(line)
    return b"".join(kept) + raw[end:]
