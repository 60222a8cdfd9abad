"""Helpers for the IMAP sink tests (tests/imap/test_sink*.py)."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
from datetime import datetime
from pathlib import Path

from pstkit.converters.imap.names import encode_mutf7
from pstkit.converters.imap.sink import ImapSink
from pstkit.headers import summary
from pstkit.location import parse_location
from pstkit.model import Flag, FolderPath, StoredMessage
from tests.servers.dovecot import Account, Dovecot
from tests.servers.listener import close_listener
from tests.servers.mail_helpers import options, password_file

IMAP_FLAGS = {"\\Seen": Flag.SEEN, "\\Answered": Flag.ANSWERED, "\\Flagged": Flag.FLAGGED,
              "\\Draft": Flag.DRAFT, "$Forwarded": Flag.FORWARDED, "\\Deleted": Flag.DELETED}


def sink(server: Dovecot, account: Account, tmp: Path, *, port: int | None = None,
         **extra: str) -> ImapSink:
    """An ImapSink on IMAPS, or on plain IMAP without TLS at `port` (a proxy)."""
    if port is None:
        loc = parse_location(f"imaps://{account.name}@127.0.0.1:{server.imaps_port}")
        opts = options(password_file(tmp, account), ca_file=server.ca_file, extra=extra)
    else:
        loc = parse_location(f"imap://{account.name}@127.0.0.1:{port}")
        opts = options(password_file(tmp, account), insecure=True, starttls=False, extra=extra)
    return ImapSink(loc, opts)


def stored(n: int, raw: bytes, folder: FolderPath = ("INBOX",),
           flags: frozenset[Flag] = frozenset(), keywords: frozenset[str] = frozenset(),
           received: datetime | None = None
           ) -> StoredMessage:
    mid, subject = summary(raw)
    return StoredMessage(n, folder, hashlib.sha256(raw).hexdigest(), len(raw), flags, keywords,
                         received, mid, subject, str(n), "1", store_id="test")


def mailbox(server: Dovecot, account: Account, name: str
            ) -> dict[int, tuple[bytes, frozenset[str], datetime]]:
    """uid -> (BODY.PEEK[], flags, INTERNALDATE) of a "/"-separated folder name."""
    with server.client(account) as c:
        c.folder_encode = False
        c.normalise_times = False  # aware datetimes, not local naive ones
        c.select_folder(encode_mutf7(name), readonly=True)
        uids = c.search(["ALL"])
        if not uids:
            return {}
        resp = c.fetch(uids, ["BODY.PEEK[]", "FLAGS", "INTERNALDATE"])
        return {u: (d[b"BODY[]"], frozenset(f.decode() for f in d[b"FLAGS"]),
                    d[b"INTERNALDATE"]) for u, d in resp.items()}


class CuttingProxy:
    """A TCP proxy to an IMAP port that hangs up on the client right after the
    server confirmed the `cut_after`-th APPEND, before the client sees that
    confirmation: the server has the message, the client does not know."""

    def __init__(self, port: int, cut_after: int) -> None:
        self.target = port
        self.cut_after = cut_after
        self.appends = 0
        self.cuts = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def close(self) -> None:
        close_listener(self._listener, self._thread)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_server: bool) -> None:
        try:
            while data := src.recv(65536):
                if from_server and b"[APPENDUID" in data:
                    self.appends += data.count(b"[APPENDUID")
                    if self.appends >= self.cut_after and self.cuts == 0:
                        self.cuts += 1
                        break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
