"""The IMAP sink's commands on the wire: MULTIAPPEND written straight to the
socket, CREATE+SUBSCRIBE, and the reads that duplicate checks, recovery and
verify need. Thin I/O; the translations live in `imap_append`."""

from __future__ import annotations

import hashlib
import imaplib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from imapclient import IMAPClient

from pstkit.converters.imap import append as ia
from pstkit.converters.imap.commands import COMMAND_ERRORS, text_of_error
from pstkit.converters.imap.conn import DROPPED
from pstkit.converters.imap.items import header_fields, parse_body_fetch, uid_set
from pstkit.errors import ConnectorError, TargetWriteError
from pstkit.headers import summary
from pstkit.protocols import TargetItem

log = logging.getLogger("pstkit.imap")
FETCH_CHUNK = 200  # UIDs per FETCH when indexing or taking inventory


def append_command(imap: imaplib.IMAP4, mailbox: bytes, pieces: list[tuple[bytes, bytes]],
                   plus: bool) -> tuple[str, str]:
    """One (MULTI)APPEND of `pieces` = [(head, wire bytes)], written straight
    to imaplib's socket: imaplib's own `append` takes one message and rewrites
    its line ends; the caller sends `ia.wire_form`. Returns (OK|NO|BAD, text)."""
    for typ in ("OK", "NO", "BAD"):
        imap.untagged_responses.pop(typ, None)
    tag = imap._new_tag()
    # Each step of the command goes out in one write (with TCP_NODELAY set by the
    # connector): a command split over small writes waits ~40 ms for the server's
    # delayed ACK per message (Nagle), which made Courier take 40 ms per APPEND.
    out = [tag + b" APPEND " + mailbox]
    refused = False
    for head, raw in pieces:
        out.append(b" " + head + b"\r\n")
        if not plus:  # send what we have, wait for "+ go ahead", or an early NO
            imap.send(b"".join(out))
            out = []
            while imap._get_response():
                if imap.tagged_commands[tag]:
                    refused = True
                    break
            if refused:
                break
        out.append(raw)
    if not refused:
        out.append(b"\r\n")
        imap.send(b"".join(out))
    try:
        typ, data = imap._command_complete("APPEND", tag)
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error as e:  # BAD
        return "BAD", text_of_error(e)
    finally:
        # imaplib keeps every untagged reply (EXISTS after each APPEND) until
        # a command asks for it: over a long import that is a leak.
        imap.untagged_responses.clear()
    return str(typ), " ".join(ia.text(d) for d in data)


def creator(name: str, key: str) -> Callable[[IMAPClient], None]:
    return lambda client: create_folder(client, name, key)


def create_folder(client: IMAPClient, name: str, key: str) -> None:
    try:
        client.create_folder(name)
    except DROPPED:
        raise
    except COMMAND_ERRORS as e:
        text = text_of_error(e)
        if "ALREADYEXISTS" not in text.upper() and not client.folder_exists(name):
            raise TargetWriteError(f"{key} folder {name!r}", text) from e
    try:
        client.subscribe_folder(name)
    except DROPPED:
        raise
    except COMMAND_ERRORS as e:  # not being able to subscribe loses no mail
        log.warning("%s: cannot subscribe %r: %s", key, name, text_of_error(e))


def header_summaries(
    client: IMAPClient, uids: Sequence[int]
) -> Iterator[tuple[int, int, str, str]]:
    """(uid, size, Message-ID, Subject) of `uids`, in chunks."""
    for n in range(0, len(uids), FETCH_CHUNK):
        chunk = list(uids[n:n + FETCH_CHUNK])
        resp = client.fetch(chunk, ["RFC822.SIZE", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID SUBJECT)]"])
        for uid in chunk:
            data = resp.get(uid, {})
            mid, subject = summary(header_fields(data))
            yield uid, int(data.get(b"RFC822.SIZE", 0)), mid, subject


def read_bodies(client: IMAPClient, uids: Sequence[int]) -> Iterator[tuple[int, bytes]]:
    for n in range(0, len(uids), 50):
        chunk = list(uids[n:n + 50])
        if not chunk:
            continue
        typ, data = client._imap.uid("FETCH", uid_set(chunk), "(BODY.PEEK[])")
        if typ != "OK":
            raise ConnectorError(f"cannot read back messages: {data!r}")
        yield from parse_body_fetch(data).items()


# --- looking up what a folder holds (the folder is selected by the caller) --------------


def candidates(client: IMAPClient, floor: int, message_id: str, raw: bytes) -> list[int]:
    """UIDs >= floor holding exactly `raw` (line ends normalised to CRLF, as IMAP
    servers store them)."""
    want = ia.crlf(raw)
    by_size: list[Any] = ["UID", f"{floor}:*", "LARGER", len(want) - 1, "SMALLER", len(want) + 1]
    try:
        found = client.search(["UID", f"{floor}:*", "HEADER", "Message-ID", message_id]
                              if message_id else by_size)
    except DROPPED:
        raise
    except COMMAND_ERRORS:  # e.g. a Message-ID the server cannot search for
        found = client.search(by_size)
    uids = sorted(u for u in found if u >= floor)
    return [u for u, body in read_bodies(client, uids) if body == want]


def duplicate_index(client: IMAPClient) -> dict[str, list[int]]:
    """Duplicate key (`ia.dup_key` form) -> UIDs, for every message of the folder."""
    index: dict[str, list[int]] = {}
    for uid, size, mid, _ in header_summaries(client, client.search(["ALL"])):
        key = f"id:{mid}" if mid else f"size:{size}"
        index.setdefault(key, []).append(uid)
    return index


def inventory_items(client: IMAPClient, uidvalidity: int, *, with_sha256: bool
                    ) -> list[TargetItem]:
    uids = sorted(client.search(["ALL"]))
    out = [TargetItem(ia.target_id(uidvalidity, uid), size, subject, mid)
           for uid, size, mid, subject in header_summaries(client, uids)]
    if not with_sha256:
        return out
    shas = {u: hashlib.sha256(b).hexdigest() for u, b in read_bodies(client, uids)}
    return [TargetItem(i.target_id, i.size, i.subject, i.message_id,
                       sha256=shas.get(int(i.target_id.split(":")[1]), ""))
            for i in out]
