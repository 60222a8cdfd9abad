"""IMAP source: every folder of an account, read-only, incremental, resumable.

Layout (same in every converter): constants, records, the class, helpers.
The commands on one connection live in `imap_commands`.

How it reads a folder: EXAMINE (read-only, so \\Seen never changes), UID
SEARCH for UIDs after the cursor (and the date window), then FETCH of the
metadata (FLAGS INTERNALDATE RFC822.SIZE) for a chunk of UIDs, then the
bodies (BODY.PEEK[]) of that chunk in batches bounded by count and bytes, so
memory stays flat whatever the mailbox size. A dropped connection is
reopened and the folder continues after the last UID yielded; a NO/BAD on
one message becomes a `Skipped` with the server's text.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Container, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from imapclient import IMAPClient

from pstkit.converters.imap.commands import (
    COMMAND_ERRORS,
    BodyPipe,
    MessageInfo,
    examine,
    fetch_meta,
    personal_prefix,
    search,
    subjects,
    text_of_error,
    with_counts,
)
from pstkit.converters.imap.conn import DROPPED, ImapConnector, close, dropped
from pstkit.converters.imap.gmail import GmailSpool
from pstkit.converters.imap.items import Cursor, batches, parse_cursor, start_after
from pstkit.converters.imap.names import folders_from_list, parse_list
from pstkit.errors import ConnectorError, SourceError, TransientError, UsageError
from pstkit.location import Location
from pstkit.model import Fetched, FetchResult, FolderInfo, MessageMeta, Skipped, utc
from pstkit.options import ConnectOptions, FetchFilter

if TYPE_CHECKING:
    from pstkit.protocols import Source

META_CHUNK = 1000  # UIDs per metadata FETCH
BODY_COUNT = 100  # messages per body FETCH ...
BODY_BYTES = 16 * 1024 * 1024  # ... and bytes per body FETCH
MAX_RECONNECTS = 5  # consecutive reconnects without progress before giving up


@dataclass
class _Progress:
    """What one fetch() has yielded so far (survives reconnects)."""

    uidvalidity: int = 0
    done: set[int] = field(default_factory=set)
    failures: int = 0
    in_flight: list[MessageInfo] = field(default_factory=list)
    bodies_in_flight: bool = False  # False: only metadata was being fetched
    # After a message the server would not send, no cursor goes past it, so
    # the next run tries it again (`known` keeps the rest from being re-read).
    frozen: bool = False
    drops: dict[int, int] = field(default_factory=dict)  # uid -> drops while fetching it
    suspects: dict[int, MessageInfo] = field(default_factory=dict)
    # Body FETCHes sent on the current connection whose replies may still be owed:
    # read before the connection goes back to the pool (see ImapSource.fetch).
    pipe: BodyPipe | None = None

    def dropped_during(self) -> None:
        self.pipe = None  # its connection is gone
        for m in self.in_flight:
            self.suspects[m.uid] = m
            # Only a drop while sending bodies points at the message itself;
            # a drop during a metadata FETCH (restart, timeout) does not.
            if self.bodies_in_flight:
                self.drops[m.uid] = self.drops.get(m.uid, 0) + 1
        self.in_flight = []

    def vanished(self, listed: set[int]) -> list[MessageInfo]:
        """Messages the server hung up on and then no longer lists (Dovecot
        drops a message whose file it lost when it rebuilds its index)."""
        gone = [m for u, m in self.suspects.items() if u not in listed and u not in self.done]
        for m in gone:
            self.done.add(m.uid)
        return gone


class ImapSource:
    """Reads every folder of one IMAP account; see the module docstring."""

    def __init__(self, location: Location, options: ConnectOptions) -> None:
        self.key = location.display()
        self.max_connections = max(1, options.connections)
        self._options = options
        self._connector = ImapConnector(location, options)
        self._idle: list[IMAPClient] = []
        self._closed = False
        self._lock = threading.Lock()
        self._spool: GmailSpool | None = None
        self._gmail: bool | None = options.gmail
        # --opt imap_fetch_batch=N: messages per body FETCH (tests use small ones).
        self._batch = _int_opt(options, "imap_fetch_batch", BODY_COUNT)

    # --- Source protocol ----------------------------------------------------

    def folders(self) -> list[FolderInfo]:
        client = self._acquire()
        for attempt in (1, 2):
            try:
                prefix = personal_prefix(client)
                listed = folders_from_list(parse_list(client.list_folders("", "*")), prefix)
                infos = with_counts(client, listed)
                break
            except DROPPED as e:  # e.g. an idle pooled connection the server closed
                close(client)
                if attempt == 2:
                    raise dropped(self.key, e) from e
                client = self._connector.reopen()
            except COMMAND_ERRORS as e:
                self._release(client)
                raise SourceError(self.key, f"LIST failed: {text_of_error(e)}") from e
        self._release(client)
        return infos

    def fetch(self, folder: FolderInfo, cursor: str | None, filt: FetchFilter,
              known: Container[tuple[str, str]]) -> Iterator[FetchResult]:
        if not folder.selectable:
            return
        start = parse_cursor(cursor)
        progress = _Progress()
        client: IMAPClient | None = self._acquire()
        try:
            while client is not None:
                try:
                    yield from self._fetch_pass(client, folder, start, filt, known, progress)
                    break
                except DROPPED as e:
                    progress.dropped_during()
                    close(client)
                    client = None  # not back into the pool if recovery fails
                    client = self._recover(progress, e)
                except COMMAND_ERRORS as e:  # SEARCH/FETCH refused for the folder
                    name = "/".join(folder.path)
                    raise SourceError(self.key, f"folder {name!r}: {text_of_error(e)}") from e
        finally:
            if client is not None and progress.pipe is not None and progress.pipe.owed():
                # Stopped early (interrupted, or the caller had enough) with a FETCH
                # reply still owed: not back into the pool, and no waiting for
                # megabytes of bodies (the server may be the reason for the stop).
                close(client)
            elif client is not None:
                self._release(client)

    def committed(self, folder: FolderInfo, source_ids: Sequence[str]) -> None:
        """Nothing to do: an IMAP export never changes the server."""

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
            self._closed = True
        for client in idle:
            close(client)
        if self._spool is not None:
            self._spool.close()

    # --- one pass over a folder ---------------------------------------------

    def _fetch_pass(self, client: IMAPClient, folder: FolderInfo, start: Cursor | None,
                    filt: FetchFilter, known: Container[tuple[str, str]],
                    progress: _Progress) -> Iterator[FetchResult]:
        uidvalidity = examine(client, folder, self.key)
        if progress.uidvalidity and progress.uidvalidity != uidvalidity:
            progress.done.clear()  # renumbered while we were away: start over
        progress.uidvalidity = uidvalidity
        epoch = str(uidvalidity)
        after = start_after(start, uidvalidity)
        listed = search(client, after, filt)
        uids = [u for u in listed
                if u > after and u not in progress.done and (epoch, str(u)) not in known]
        emit = not (filt.since or filt.before or filt.max_size or filt.newest_first)
        for m in progress.vanished(set(listed)):
            # No cursor: lower UIDs of this pass may still be to come.
            yield Skipped(_meta(folder, epoch, m), "the server closed the connection while "
                          "sending it and no longer lists it")
        if filt.newest_first:
            uids.reverse()
        # A cursor promises "everything up to this UID is handled"; with a
        # filter that leaves messages out, or out of UID order, that promise
        # does not hold, so only the `known` ids prevent re-reading then.
        gmail = self._gmail_mode(client)
        for i in range(0, len(uids), META_CHUNK):
            chunk = uids[i : i + META_CHUNK]
            progress.in_flight = [MessageInfo(u, None) for u in chunk]
            progress.bodies_in_flight = False
            metas = fetch_meta(client, chunk, gmail)
            progress.in_flight = []
            results = self._chunk_results(client, folder, chunk, metas, filt, epoch, emit,
                                          progress)
            for r in results:
                progress.done.add(int(r.meta.source_id))
                progress.failures = 0
                yield r

    def _chunk_results(self, client: IMAPClient, folder: FolderInfo, chunk: list[int],
                       metas: dict[int, MessageInfo], filt: FetchFilter, epoch: str, emit: bool,
                       progress: _Progress) -> Iterator[FetchResult]:
        limit = filt.max_size
        big = [u for u in chunk
               if u in metas and limit is not None and (metas[u].size or 0) > limit]
        titles = subjects(client, big)  # the report should say which message it was
        wanted: list[MessageInfo] = []
        for uid in chunk:
            m = metas.get(uid)
            if m is None or not _in_window(m, filt):
                continue  # expunged since SEARCH, or outside the dates
            if uid in titles:
                yield Skipped(replace(_meta(folder, epoch, m), subject=titles[uid]),
                              f"larger than --max-size ({limit} bytes)", _cursor(epoch, uid, emit))
                continue
            wanted.append(m)
        plan = batches([(m.uid, m.size or 0) for m in wanted], self._batch, BODY_BYTES)
        by_uid = {m.uid: m for m in wanted}
        for batch, bodies in self._bodies(client, list(_isolate_suspects(plan, progress.drops)),
                                          by_uid, progress):
            if bodies is None:
                # Some servers (Dovecot on a damaged message) answer BYE and
                # hang up instead of NO: after two drops on this message
                # alone, report it and go on rather than loop.
                progress.frozen = True
                yield Skipped(_meta(folder, epoch, by_uid[batch[0]]),
                              "the server closed the connection twice while sending it")
                continue
            for uid in batch:
                meta = _meta(folder, epoch, by_uid[uid])
                got = bodies.get(uid)
                if isinstance(got, bytes):
                    # Hashed on this fetch thread, beside the store writer's (issue 19:
                    # 3 % less CPU for 2 connections; the bytes are still in this core's cache).
                    yield Fetched(meta, got, _cursor(epoch, uid, emit and not progress.frozen),
                                  sha256=hashlib.sha256(got).hexdigest())
                else:
                    progress.frozen = True
                    yield Skipped(meta, got or "the server sent no body (deleted there meanwhile?)")

    def _bodies(self, client: IMAPClient, plan: list[list[int]], metas: dict[int, MessageInfo],
                progress: _Progress) -> Iterator[tuple[list[int], dict[int, bytes | str] | None]]:
        """(batch, bodies by UID) for each batch of the plan, in order; None for a message
        given up after two drops. The FETCH of the next batch goes out before the reply
        to this one is read (`BodyPipe`); Gmail's spool answers what it holds."""
        pipe = progress.pipe = BodyPipe(client)
        queued: list[tuple[list[int], dict[int, bytes | str], list[int]]] = []
        ahead = 0  # plan[:ahead] is sent (or answered by the spool, or given up)
        for batch in plan:
            while ahead < len(plan) and len(queued) < 2:
                queued.append(self._send(pipe, plan[ahead], metas, progress))
                ahead += 1
            _, cached, need = queued.pop(0)
            if _given_up(batch, progress.drops):
                yield batch, None
                continue
            progress.in_flight = [metas[u] for u in batch]
            progress.bodies_in_flight = True
            got = pipe.take(need)
            progress.in_flight = []
            self._spool_put(need, got, metas)
            yield batch, {**cached, **got}
        pipe.discard()  # nothing is owed when the plan is done
        progress.pipe = None

    def _send(self, pipe: BodyPipe, batch: list[int], metas: dict[int, MessageInfo],
              progress: _Progress) -> tuple[list[int], dict[int, bytes | str], list[int]]:
        cached: dict[int, bytes | str] = {}
        need = []
        if not _given_up(batch, progress.drops):  # never asked for again
            for uid in batch:
                body = self._spool.get(metas[uid].gm_msgid) if self._spool is not None else None
                if body is not None:
                    cached[uid] = body
                else:
                    need.append(uid)
        pipe.send(need)
        return batch, cached, need

    def _spool_put(self, need: list[int], got: dict[int, bytes | str],
                   metas: dict[int, MessageInfo]) -> None:
        if self._spool is not None:
            for uid in need:
                body = got.get(uid)
                if isinstance(body, bytes):
                    self._spool.put(metas[uid].gm_msgid, body)

    # --- connections --------------------------------------------------------

    def _recover(self, progress: _Progress, e: BaseException) -> IMAPClient:
        progress.failures += 1
        if progress.failures > MAX_RECONNECTS:
            raise dropped(self.key, e) from e
        try:
            return self._connector.reopen()
        except ConnectorError as again:
            raise TransientError(self.key, f"connection lost and not restored: {again}") from e

    def _acquire(self) -> IMAPClient:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._connector.open()

    def _release(self, client: IMAPClient) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(client)
                return
        close(client)  # a fetch abandoned after close(): do not leak its connection

    def _gmail_mode(self, client: IMAPClient) -> bool:
        with self._lock:
            if self._gmail is None:
                self._gmail = bool(client.has_capability("X-GM-EXT-1"))
            if self._gmail and self._spool is None:
                self._spool = GmailSpool(_spool_limit(self._options))
            return self._gmail


# --- helpers -----------------------------------------------------------------


def _isolate_suspects(plan: Iterable[list[int]], drops: dict[int, int]) -> Iterator[list[int]]:
    """Batches as planned, but one message at a time where a drop happened."""
    for batch in plan:
        if any(u in drops for u in batch):
            yield from ([u] for u in batch)
        else:
            yield batch


def _given_up(batch: list[int], drops: dict[int, int]) -> bool:
    """A message alone in its batch that the server dropped the connection on twice:
    reported and not fetched again (both when the FETCH is sent and when its batch
    comes up)."""
    return len(batch) == 1 and drops.get(batch[0], 0) >= 2


def _in_window(m: MessageInfo, filt: FetchFilter) -> bool:
    if m.received is None:
        return True  # unknown date: let the pipeline decide
    if filt.since is not None and m.received < utc(filt.since):
        return False
    return not (filt.before is not None and m.received >= utc(filt.before))


def _meta(folder: FolderInfo, epoch: str, m: MessageInfo) -> MessageMeta:
    return MessageMeta(folder=folder.path, source_id=str(m.uid), source_epoch=epoch,
                       flags=m.flags, keywords=m.keywords, received=m.received, size=m.size)


def _cursor(epoch: str, uid: int, emit: bool) -> str | None:
    return f"{epoch}:{uid}" if emit else None


def _int_opt(options: ConnectOptions, name: str, default: int) -> int:
    text = options.extra.get(name, "")
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"--opt {name}={text!r}: expected a positive whole number")
    return int(text)


def _spool_limit(options: ConnectOptions) -> int:
    return _int_opt(options, "gmail_spool_mb", 2048) * 1024 * 1024


if TYPE_CHECKING:
    _: type[Source] = ImapSource
