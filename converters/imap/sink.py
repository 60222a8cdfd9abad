"""IMAP sink: import into any IMAP server with APPEND (stage 2).

Layout (same in every converter): constants, the class, helpers.
Translations (flags, names, dates, reply codes) live in `imap_append`;
connecting, TLS and login in `imap_conn`, shared with the IMAP source.

A batch goes out as one MULTIAPPEND command when the server offers it
(with LITERAL+ the whole command is written without waiting for the
server between messages). MULTIAPPEND is all-or-nothing, so a NO on the
batch is retried message by message to find the one the server refuses:
`[TOOBIG]`/`[LIMIT]` fail that message only, `[OVERQUOTA]` stops the run.

A connection that drops while APPEND is in flight is ambiguous: the server
may have stored some messages. After reconnecting, each pending message is
looked for among the UIDs the folder got since the batch began (by
Message-ID, else by size, and always confirmed by comparing the bytes)
and only the missing ones are sent again, so nothing arrives twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

from imapclient import IMAPClient

from pstkit.converters.imap import append as ia
from pstkit.converters.imap.commands import COMMAND_ERRORS, personal_prefix, text_of_error
from pstkit.converters.imap.conn import DROPPED, ImapConnector, close, cut, dropped
from pstkit.converters.imap.names import folders_from_list, parse_list
from pstkit.converters.imap.sink_wire import (
    append_command,
    candidates,
    creator,
    duplicate_index,
    inventory_items,
    read_bodies,
)
from pstkit.errors import QuotaExceeded, TargetWriteError, UsageError
from pstkit.location import Location
from pstkit.model import Delivered, FolderInfo, FolderPath, Role, StoredMessage
from pstkit.options import ConnectOptions
from pstkit.protocols import BatchLimit, Failed, TargetItem

if TYPE_CHECKING:
    from pstkit.protocols import Sink

log = logging.getLogger("pstkit.imap")
T = TypeVar("T")
Batch = Sequence[tuple[StoredMessage, bytes]]
Results = list[Delivered | Failed | None]
MAX_RECONNECTS = 5


class _Folder:
    """What one SELECT told us about a mailbox (shared by all threads)."""

    def __init__(self, uidvalidity: int, uidnext: int, permanent: tuple[str, ...] | None) -> None:
        self.uidvalidity = uidvalidity
        self.floor = uidnext  # every UID this run may have appended is >= floor
        self.permanent = permanent
        self.ours: set[int] = set()  # UIDs appended by this sink


class ImapSink:
    """Imports into one IMAP account; see the module docstring."""

    def __init__(self, location: Location, options: ConnectOptions) -> None:
        self.key = location.display()
        self.max_connections = max(1, options.connections)
        # --opt imap_batch_items=N / imap_batch_bytes=N: messages per APPEND command.
        self.batch_limit = BatchLimit(_int_opt(options, "imap_batch_items", 50),
                                      _int_opt(options, "imap_batch_bytes", 16 * 1024 * 1024))
        self._verify_bytes = options.extra.get("imap_verify_bytes", "1") != "0"
        self._connector = ImapConnector(location, options)
        self._local = threading.local()
        self._clients: list[IMAPClient] = []
        #: the thread each client belongs to (clients are per thread)
        self._owners: dict[int, threading.Thread] = {}
        self._lock = threading.Lock()
        self._names: dict[FolderPath, str] = {}
        self._delim: str | None = None
        self._prefix = ""
        self._state: dict[str, _Folder] = {}
        self._index: dict[FolderPath, dict[str, list[int]]] = {}
        self.dropped_flags: dict[str, int] = {}  # flag -> messages that lost it
        self._caps: frozenset[str] = frozenset()
        self._opened = False
        self._call(self._hello)

    # --- connections ----------------------------------------------------------

    def _client(self) -> IMAPClient:
        client: IMAPClient | None = getattr(self._local, "client", None)
        if client is None:
            # The first login fails fast (a wrong host or password is not
            # worth retrying); later ones follow a drop and are retried.
            client = self._connector.reopen() if self._opened else self._connector.open()
            self._opened = True
            self._local.client = client
            self._local.selected = None
            with self._lock:
                self._clients.append(client)
                self._owners[id(client)] = threading.current_thread()
        return client

    def _forget_client(self) -> None:
        client: IMAPClient | None = getattr(self._local, "client", None)
        if client is not None:
            close(client)
            with self._lock:
                if client in self._clients:
                    self._clients.remove(client)
        self._local.client = None
        self._local.selected = None

    def _call(self, fn: Callable[[IMAPClient], T]) -> T:
        """Run an idempotent operation, reconnecting after a drop."""
        for attempt in range(MAX_RECONNECTS + 1):
            try:
                return fn(self._client())
            except DROPPED as e:
                self._forget_client()
                if attempt == MAX_RECONNECTS:
                    raise dropped(self.key, e) from e
            except COMMAND_ERRORS as e:  # a NO/BAD we did not expect: one line, no traceback
                raise TargetWriteError(self.key, text_of_error(e)) from e
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
            owners, self._owners = self._owners, {}
        for c in clients:
            if owners.get(id(c), threading.current_thread()) is threading.current_thread():
                close(c)
            else:  # another thread's: it may still be waiting in it (a Ctrl-C's grace ran out)
                cut(c)

    def _hello(self, client: IMAPClient) -> None:
        self._caps = frozenset(
            c.decode().upper() if isinstance(c, bytes) else str(c).upper()
            for c in client.capabilities()
        )
        self._prefix = personal_prefix(client)

    # --- folders ----------------------------------------------------------------

    def folders(self) -> list[FolderInfo]:
        entries = parse_list(self._call(lambda c: c.list_folders("", "*")))
        with self._lock:
            self._delim = next((e.delimiter for e in entries if e.delimiter), self._delim)
        with self._lock:  # names this sink created keep the path it was asked for
            known = {raw: path for path, raw in self._names.items()}
        out = []
        for info in folders_from_list(entries, self._prefix):
            path = known.get(info.source_name) or ia.unsubstitute(info.path, self._delim)
            out.append(FolderInfo(path, info.role, info.source_name, selectable=info.selectable))
            if info.source_name:
                with self._lock:
                    self._names.setdefault(path, info.source_name)
        return out

    def ensure_folder(self, path: FolderPath, role: Role | None, folder_class: str = "") -> None:
        """CREATE just `path`: servers create the superior levels themselves
        (RFC 3501 6.3.3) the way they do for their own clients, so the target
        does not get empty parent folders the source did not have. Only if
        that fails are the parents created one by one first."""
        if self._delim is None:
            self.folders()
        with self._lock:
            if path in self._names:
                return
        try:
            self._create(path)
        except TargetWriteError:
            if len(path) == 1:
                raise
            for p in ia.parents(path):
                self.ensure_folder(p, None)
            self._create(path)

    def _create(self, path: FolderPath) -> None:
        name = ia.mailbox_name(path, self._delim, self._prefix)
        self._call(creator(name, self.key))
        with self._lock:
            self._names[path] = name

    def _name(self, path: FolderPath) -> str:
        with self._lock:
            name = self._names.get(path)
        if name is None:
            self.ensure_folder(path, None)
            with self._lock:
                name = self._names[path]
        return name

    def _select(self, client: IMAPClient, name: str) -> _Folder:
        # Always read-write (PERMANENTFLAGS is empty under EXAMINE); reading
        # uses BODY.PEEK, so it never sets \\Seen.
        if getattr(self._local, "selected", None) == name:
            with self._lock:
                return self._state[name]
        try:
            info = client.select_folder(name)
        except DROPPED:
            raise
        except COMMAND_ERRORS as e:
            raise TargetWriteError(f"{self.key} {name}", text_of_error(e)) from e
        self._local.selected = name
        state = _Folder(int(info.get(b"UIDVALIDITY", 0)), int(info.get(b"UIDNEXT", 1)),
                        ia.permanent_flags(info.get(b"PERMANENTFLAGS")))
        with self._lock:
            old = self._state.get(name)
            if old is None or old.uidvalidity != state.uidvalidity:
                self._state[name] = state
            return self._state[name]

    # --- delivery -------------------------------------------------------------

    def put_batch(self, folder: FolderPath, batch: Batch) -> list[Delivered | Failed]:
        name = self._name(folder)
        results: Results = [None] * len(batch)
        for attempt in range(MAX_RECONNECTS + 1):
            pending = [i for i, r in enumerate(results) if r is None]
            if not pending:
                break
            try:
                client = self._client()
                state = self._select(client, name)
                if attempt:  # the last try may have stored some of them
                    self._recover(client, state, batch, pending, results)
                    pending = [i for i, r in enumerate(results) if r is None]
                self._append(client, name, state, batch, pending, results)
            except DROPPED as e:
                self._forget_client()
                if attempt == MAX_RECONNECTS:
                    raise dropped(self.key, e) from e
            except COMMAND_ERRORS as e:
                raise TargetWriteError(self.key, text_of_error(e)) from e
        self._remember(folder, batch, results)
        return [self._noted(r, batch[i][0], state.permanent) if r is not None
                else Failed("not delivered") for i, r in enumerate(results)]

    @staticmethod
    def _noted(
        result: Delivered | Failed, msg: StoredMessage, permanent: tuple[str, ...] | None
    ) -> Delivered | Failed:
        """Tell the pipeline which flags the folder could not keep for this message."""
        if isinstance(result, Failed):
            return result
        lost = ia.choose_flags(msg.flags, msg.keywords, permanent).dropped
        return replace(result, note=f"the target cannot keep {', '.join(lost)}") if lost else result

    def _append(self, client: IMAPClient, name: str, state: _Folder, batch: Batch,
                pending: list[int], results: Results) -> None:
        binary = "BINARY" in self._caps
        for i in list(pending):
            if not binary and b"\0" in batch[i][1]:  # wire_form's None, without the copy
                results[i] = Failed(ia.NUL_REFUSED)
                pending.remove(i)
        if not pending:
            return
        if len(pending) > 1 and "MULTIAPPEND" in self._caps:
            typ, text = self._send(client, name, state, [batch[i] for i in pending])
            if typ == "OK":
                self._delivered(state, pending, text, results)
                return
            if ia.is_over_quota(text):
                raise QuotaExceeded(self.key, text)
        for i in pending:  # one by one: find the message the server refuses
            typ, text = self._send(client, name, state, [batch[i]])
            if typ == "OK":
                self._delivered(state, [i], text, results)
            elif ia.is_over_quota(text):
                raise QuotaExceeded(self.key, text)
            else:
                results[i] = Failed(f"server refused it: {text}")

    def _send(self, client: IMAPClient, name: str, state: _Folder, items: Batch
              ) -> tuple[str, str]:
        plus, binary = "LITERAL+" in self._caps, "BINARY" in self._caps
        pieces = []
        for msg, raw in items:
            choice = ia.choose_flags(msg.flags, msg.keywords, state.permanent)
            self._count_dropped(choice.dropped)
            wire = ia.wire_form(raw, binary=binary) or b""
            head = ia.append_head(choice.send, msg.received, len(wire), plus, b"\0" in wire)
            pieces.append((head, wire))
        return append_command(client._imap, ia.quote(name).encode("ascii"), pieces, plus)

    def _delivered(self, state: _Folder, idx: list[int], text: str, results: Results) -> None:
        got = ia.parse_appenduid(text)
        ok = got is not None and len(got.uids) == len(idx)
        for n, i in enumerate(idx):
            uid = got.uids[n] if ok and got is not None else 0
            results[i] = Delivered(ia.target_id(got.uidvalidity, uid) if uid and got else "")
        if ok and got is not None:
            with self._lock:
                state.ours.update(got.uids)
                state.floor = max(state.floor, max(got.uids) + 1)

    def _count_dropped(self, flags: Sequence[str]) -> None:
        with self._lock:
            for f in flags:
                if f not in self.dropped_flags:
                    log.warning("%s: the server cannot keep flag %s; dropped", self.key, f)
                self.dropped_flags[f] = self.dropped_flags.get(f, 0) + 1

    def _recover(self, client: IMAPClient, state: _Folder, batch: Batch,
                 pending: list[int], results: Results) -> None:
        """After a drop: messages of the batch the server did store, found
        among UIDs newer than the batch and not already claimed."""
        for i in pending:
            msg, raw = batch[i]
            with self._lock:
                claimed = set(state.ours)
            for uid in candidates(client, state.floor, msg.message_id, raw):
                if uid not in claimed:
                    results[i] = Delivered(ia.target_id(state.uidvalidity, uid))
                    with self._lock:
                        state.ours.add(uid)
                    break

    def _remember(self, folder: FolderPath, batch: Batch, results: Results) -> None:
        with self._lock:
            index = self._index.get(folder)
            if index is None:
                return
            for (msg, raw), res in zip(batch, results, strict=True):
                if isinstance(res, Delivered) and res.target_id:
                    index.setdefault(ia.dup_key(msg.message_id, raw), []).append(
                        int(res.target_id.split(":")[1]))

    # --- duplicates, delete, inventory ----------------------------------------------

    def find_duplicates(self, msg: StoredMessage, raw: bytes, folder: FolderPath) -> list[str]:
        name = self._name(folder)
        with self._lock:
            index = self._index.get(folder)
        if index is None:
            index = self._call(lambda c: self._build_index(c, name))
            with self._lock:
                index = self._index.setdefault(folder, index)
        with self._lock:
            uids = list(index.get(ia.dup_key(msg.message_id, raw), []))
        if uids and not msg.message_id:  # same size is not the same message: compare
            want = ia.crlf(raw)
            uids = self._call(lambda c: self._same_bytes(c, name, uids, want))
        with self._lock:
            state = self._state[name]
        return [ia.target_id(state.uidvalidity, u) for u in uids]

    def _same_bytes(self, client: IMAPClient, name: str, uids: list[int], crlf: bytes
                    ) -> list[int]:
        self._select(client, name)
        return [u for u, b in read_bodies(client, uids) if b == crlf]

    def _build_index(self, client: IMAPClient, name: str) -> dict[str, list[int]]:
        self._select(client, name)
        # Courier shows messages this session appended to the selected folder only
        # after a command that lets it report them (EXISTS); SEARCH alone does not.
        client.noop()
        return duplicate_index(client)

    def delete(self, folder: FolderPath, target_ids: Sequence[str]) -> None:
        name = self._name(folder)
        self._call(lambda c: self._delete(c, name, target_ids))
        with self._lock:
            self._index.pop(folder, None)

    def _delete(self, client: IMAPClient, name: str, target_ids: Sequence[str]) -> None:
        state = self._select(client, name)
        uids = [t[1] for t in map(ia.parse_target_id, target_ids)
                if t is not None and t[0] == state.uidvalidity]
        if not uids:
            return
        client.add_flags(uids, [b"\\Deleted"], silent=True)
        if "UIDPLUS" in self._caps:
            client.uid_expunge(uids)
        else:
            client.expunge()

    def inventory(self, folder: FolderPath) -> Iterator[TargetItem]:
        name = self._name(folder)
        items = self._call(lambda c: self._inventory(c, name))
        yield from items

    def _inventory(self, client: IMAPClient, name: str) -> list[TargetItem]:
        state = self._select(client, name)
        return inventory_items(client, state.uidvalidity, with_sha256=self._verify_bytes)


# --- helpers ------------------------------------------------------------------------


def _int_opt(options: ConnectOptions, name: str, default: int) -> int:
    text = options.extra.get(name)
    if text is None:
        return default
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"--opt {name} needs a positive whole number, got {text!r}")
    return int(text)


if TYPE_CHECKING:
    _: type[Sink] = ImapSink
