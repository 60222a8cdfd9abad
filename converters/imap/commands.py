"""IMAP commands on one connection, for the IMAP source. I/O only: each
function sends one command (or a few) and returns plain data; deciding what
to fetch, retrying and reporting stay in `imap_source`."""

from __future__ import annotations

import imaplib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from imapclient import IMAPClient
from imapclient import exceptions as imap_exc
from imapclient.datetime_util import parse_to_datetime

from pstkit.converters.imap.conn import DROPPED
from pstkit.converters.imap.items import (
    header_fields,
    may_hold_nul,
    nul_restored,
    parse_body_fetch,
    parse_internaldate,
    parse_meta_fetch,
    translate_flags,
    uid_set,
)
from pstkit.errors import SourceError
from pstkit.headers import summary
from pstkit.model import Flag, FolderInfo, utc
from pstkit.options import FetchFilter

#: A server's NO/BAD (imaplib.IMAP4.abort, a subclass, means the connection
#: broke: callers test DROPPED first).
COMMAND_ERRORS = (imaplib.IMAP4.error, imap_exc.IMAPClientError)


@dataclass(frozen=True)
class MessageInfo:
    uid: int
    size: int | None
    flags: frozenset[Flag] = frozenset()
    keywords: frozenset[str] = frozenset()
    received: datetime | None = None
    gm_msgid: int | None = None


def personal_prefix(client: IMAPClient) -> str:
    if not client.has_capability("NAMESPACE"):
        return ""
    personal = client.namespace().personal
    if not personal:
        return ""
    prefix = personal[0][0]
    return prefix.decode("ascii", "surrogateescape") if isinstance(prefix, bytes) else str(prefix)


def with_counts(client: IMAPClient, infos: list[FolderInfo]) -> list[FolderInfo]:
    """STATUS (MESSAGES) of each selectable folder: totals for `folders` and progress
    bars. A folder the server will not STATUS keeps an unknown count; export
    still tries it and reports its own error."""
    counted = []
    for info in infos:
        count = None
        if info.selectable:
            try:
                count = int(client.folder_status(info.source_name, [b"MESSAGES"])[b"MESSAGES"])
            except DROPPED:
                raise
            except (*COMMAND_ERRORS, KeyError, ValueError):
                count = None
        counted.append(replace(info, message_count=count))
    return counted


def examine(client: IMAPClient, folder: FolderInfo, key: str) -> int:
    try:
        info = client.select_folder(folder.source_name, readonly=True)
    except DROPPED:
        raise
    except COMMAND_ERRORS as e:
        raise SourceError(key, f"cannot open folder {'/'.join(folder.path)!r}: {e}") from e
    if b"UIDVALIDITY" not in info:
        raise SourceError(key, f"folder {'/'.join(folder.path)!r} has no UIDVALIDITY")
    return int(info[b"UIDVALIDITY"])


def search(client: IMAPClient, after: int, filt: FetchFilter) -> list[int]:
    criteria: list[Any] = ["UID", f"{after + 1}:*"]
    # SEARCH dates have day granularity in the server's time zone: widen by
    # a day and cut exactly on INTERNALDATE afterwards.
    if filt.since is not None:
        criteria += ["SINCE", (filt.since - timedelta(days=1)).date()]
    if filt.before is not None:
        criteria += ["BEFORE", (filt.before + timedelta(days=1)).date()]
    return sorted(int(u) for u in client.search(criteria))


def fetch_meta(client: IMAPClient, uids: list[int], gmail: bool) -> dict[int, MessageInfo]:
    if not gmail:
        fast = _fetch_meta_raw(client, uids)
        if fast is not None:
            return fast
    items = ["FLAGS", "INTERNALDATE", "RFC822.SIZE"] + (["X-GM-MSGID"] if gmail else [])
    resp = client.fetch(uids, items)
    out: dict[int, MessageInfo] = {}
    for uid, data in resp.items():
        if b"RFC822.SIZE" not in data:
            continue
        when = data.get(b"INTERNALDATE")
        flags, keywords = translate_flags(data.get(b"FLAGS", ()))
        out[int(uid)] = MessageInfo(int(uid), int(data[b"RFC822.SIZE"]), flags, keywords,
                              utc(when) if isinstance(when, datetime) else None,
                              data.get(b"X-GM-MSGID"))
    return out


def _fetch_meta_raw(client: IMAPClient, uids: list[int]) -> dict[int, MessageInfo] | None:
    """fetch_meta through imaplib and `parse_meta_fetch`; None: use the general parser.
    The date goes through imapclient's own parser, so times come out as before."""
    typ, data = client._imap.uid("FETCH", uid_set(uids), "(FLAGS INTERNALDATE RFC822.SIZE)")
    if typ != "OK":
        raise imaplib.IMAP4.error(text_of_data(data))
    parsed = parse_meta_fetch(data)
    if parsed is None:
        return None
    out: dict[int, MessageInfo] = {}
    for m in parsed:
        flags, keywords = translate_flags(m.flags)
        when = _internaldate(m.internaldate) if m.internaldate else None
        out[m.uid] = MessageInfo(m.uid, m.size, flags, keywords, when)
    return out


def _internaldate(raw: bytes) -> datetime | None:
    """The RFC 3501 form exactly; else imapclient's lenient parser; unreadable: None
    (as imapclient's general path gives), never an error that stops the export."""
    when = parse_internaldate(raw)
    if when is not None:
        return when
    try:
        return utc(parse_to_datetime(raw, normalise=False))
    except (ValueError, OverflowError):
        return None


def subjects(client: IMAPClient, uids: list[int]) -> dict[int, str]:
    if not uids:
        return {}
    try:
        resp = client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
    except DROPPED:
        raise
    except COMMAND_ERRORS:
        resp = {}
    return {u: summary(header_fields(resp.get(u, {})))[1] for u in uids}


def fetch_bodies(client: IMAPClient, uids: list[int]) -> dict[int, bytes | str]:
    """Bodies by UID (one FETCH, nothing else in flight); see BodyPipe.take."""
    pipe = BodyPipe(client)
    pipe.send(uids)
    return pipe.take(uids)


class BodyPipe:
    """Body FETCHes on one connection, each sent before the reply to the one before it
    is read: the server streams the next batch while the caller stores this one, instead
    of waiting a round trip per batch. A server may run two FETCHes at once (RFC 3501
    5.5), and Dovecot sends bodies of the second before the first one's tagged OK, so
    imaplib files them under the first tag: bodies are matched to batches by their UID
    (`_pool`), never by the tag they arrived with. Any other command (a retry, BINARY)
    first reads every reply still owed (`_settle`), so no body lands under its tag."""

    def __init__(self, client: IMAPClient) -> None:
        self.client = client
        self._sent: list[tuple[list[int], str]] = []  # sent, reply not yet read
        self._early: list[tuple[list[int], dict[int, bytes | str]]] = []  # read by _settle
        self._pool: dict[int, bytes] = {}  # bodies read, not yet taken

    def send(self, uids: list[int]) -> None:
        if uids:
            tag = self.client._imap._command("UID", "FETCH", uid_set(uids), "(BODY.PEEK[])")
            self._sent.append((uids, tag))

    def take(self, uids: list[int]) -> dict[int, bytes | str]:
        """The bodies of a batch sent earlier (batches are taken in the order sent); on a
        NO/BAD for the batch, one by one, so only the message the server refuses is
        skipped, with the server's text."""
        if not uids:
            return {}
        if self._early:
            early_uids, got = self._early.pop(0)
            assert early_uids == uids, "BodyPipe.take out of order"
            return got
        sent_uids, tag = self._sent.pop(0)
        assert sent_uids == uids, "BodyPipe.take out of order"
        return self._finish(uids, tag)

    def owed(self) -> bool:
        """Is a reply still to be read from the server?"""
        return bool(self._sent)

    def discard(self) -> None:
        """Read every reply still owed, so the connection can be used again."""
        self._settle()
        self._early.clear()
        self._pool.clear()

    def _settle(self) -> None:
        while self._sent:
            uids, tag = self._sent.pop(0)
            self._early.append((uids, self._finish(uids, tag)))

    def _finish(self, uids: list[int], tag: str) -> dict[int, bytes | str]:
        imap = self.client._imap
        try:
            typ, dat = imap._command_complete("UID", tag)
            typ, data = imap._untagged_response(typ, dat, "FETCH")
            if typ != "OK":
                raise imaplib.IMAP4.error(text_of_data(data))
            # Straight through imaplib: see imap_items.parse_body_fetch for why.
            self._pool.update(parse_body_fetch(data))
        except DROPPED:
            raise
        except COMMAND_ERRORS as e:
            self._settle()
            if len(uids) == 1:
                return {uids[0]: f"server refused to send it: {text_of_error(e)}"}
            out: dict[int, bytes | str] = {}
            for uid in uids:
                out.update(fetch_bodies(self.client, [uid]))
            return out
        bodies = {u: self._pool.pop(u) for u in uids if u in self._pool}
        suspects = [u for u, b in bodies.items() if may_hold_nul(b)]
        if suspects and self.client.has_capability("BINARY"):
            self._settle()
            return restore_nuls(self.client, bodies, suspects)
        return dict(bodies)


def restore_nuls(client: IMAPClient, bodies: dict[int, bytes], suspects: list[int]
                 ) -> dict[int, bytes | str]:
    """The exact bytes of messages whose NUL bytes the server changed. A NUL may not be
    sent in a literal (RFC 3501), so Dovecot sends each as 0x80 in BODY[]; where the
    server offers BINARY (RFC 3516), BINARY.PEEK[] sends the stored bytes in a literal8.
    It also decodes a base64 or quoted-printable body, so it is taken only where it is
    BODY[] but for NULs in place of 0x80 (`nul_restored`). Only bodies with a 0x80 outside
    valid UTF-8 are asked again (`may_hold_nul`, the caller's `suspects`; a cp1252 `€`
    costs one more FETCH). One FETCH for all suspects of a batch; if the server refuses
    it, one per message. Missed: a message whose every NUL follows a UTF-8 lead byte so
    that 0x80 completes a valid sequence. Servers without BINARY: BODY[] as sent."""
    out: dict[int, bytes | str] = dict(bodies)
    exact = _binary_bodies(client, suspects)
    if exact is None:
        exact = {}
        for uid in suspects:
            exact.update(_binary_bodies(client, [uid]) or {})
    for uid, body in exact.items():
        if uid in bodies and nul_restored(bodies[uid], body):
            out[uid] = body
    return out


def _binary_bodies(client: IMAPClient, uids: list[int]) -> dict[int, bytes] | None:
    """BINARY.PEEK[] of `uids`; None if the server refused (BODY[] as sent then)."""
    try:
        typ, data = client._imap.uid("FETCH", uid_set(uids), "(BINARY.PEEK[])")
    except DROPPED:
        raise
    except COMMAND_ERRORS:
        return None
    return parse_body_fetch(data, binary=True) if typ == "OK" else None


def text_of_data(data: Any) -> str:
    parts = [d.decode("utf-8", "replace") if isinstance(d, bytes) else str(d) for d in data or ()]
    return " ".join(" ".join(parts).split())


def text_of_error(e: BaseException) -> str:
    return " ".join(str(e).split())


