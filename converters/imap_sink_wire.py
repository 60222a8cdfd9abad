"""The IMAP sink's commands on the wire: MULTIAPPEND written straight to the
socket, CREATE+SUBSCRIBE, and the reads that duplicate checks, recovery and
verify need. Thin I/O; the translations live in `imap_append`."""

from __future__ import annotations

import imaplib
import logging
from collections.abc import Callable, Iterator, Sequence

from imapclient import IMAPClient

from converters import imap_append as ia
from converters.imap_commands import COMMAND_ERRORS, text_of_error
from converters.imap_conn import DROPPED
from converters.imap_items import parse_body_fetch, uid_set
from pstkit.errors import ConnectorError, TargetWriteError
from pstkit.headers import summary

log = logging.getLogger("pstkit.imap")
FETCH_CHUNK = 200  # UIDs per FETCH when indexing or taking inventory


def append_command(imap: imaplib.IMAP4, mailbox: bytes, pieces: list[tuple[bytes, bytes]],
                   plus: bool) -> tuple[str, str]:
    """One (MULTI)APPEND of `pieces` = [(head, exact bytes)], written straight
    to imaplib's socket: imaplib's own `append` takes one message and turns
    bare LF into CRLF, and we send the bytes untouched. Returns (OK|NO|BAD, text)."""
    for typ in ("OK", "NO", "BAD"):
        imap.untagged_responses.pop(typ, None)
    tag = imap._new_tag()
    imap.send(tag + b" APPEND " + mailbox)
    refused = False
    for head, raw in pieces:
        imap.send(b" " + head + b"\r\n")
        if not plus:  # wait for "+ go ahead", or an early NO
            while imap._get_response():
                if imap.tagged_commands[tag]:
                    refused = True
                    break
            if refused:
                break
        imap.send(raw)
    if not refused:
        imap.send(b"\r\n")
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
    part = b"BODY[HEADER.FIELDS (MESSAGE-ID SUBJECT)]"
    for n in range(0, len(uids), FETCH_CHUNK):
        chunk = list(uids[n:n + FETCH_CHUNK])
        resp = client.fetch(chunk, ["RFC822.SIZE", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID SUBJECT)]"])
        for uid in chunk:
            data = resp.get(uid, {})
            mid, subject = summary(data.get(part) or b"")
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
