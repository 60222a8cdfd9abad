"""Helpers for tests that use the IMAP/POP3 sources against tests.servers.dovecot."""

from __future__ import annotations

import hashlib
import imaplib
from collections.abc import Container, Iterator
from pathlib import Path

from pstkit.converters.imap.names import encode_mutf7
from pstkit.converters.imap.source import ImapSource
from pstkit.location import parse_location
from pstkit.model import Fetched, FetchResult, FolderInfo, FolderPath
from pstkit.options import ConnectOptions, FetchFilter, SecretSpec
from tests.servers.dovecot import Account, Dovecot


def options(password_file: Path, **kw: object) -> ConnectOptions:
    spec = SecretSpec(env=None, file=password_file, prompt=False)
    return ConnectOptions(password=spec, **kw)  # type: ignore[arg-type]


def password_file(tmp: Path, account: Account) -> Path:
    p = tmp / f"{account.name}.pw"
    p.write_text(account.password + "\n")
    return p


def source(server: Dovecot, account: Account, tmp: Path, scheme: str = "imaps",
           **kw: object) -> ImapSource:
    port = {"imaps": server.imaps_port, "imap": server.imap_port}[scheme]
    kw.setdefault("ca_file", server.ca_file)
    loc = parse_location(f"{scheme}://{account.name}@127.0.0.1:{port}")
    return ImapSource(loc, options(password_file(tmp, account), **kw))


def folder(src: ImapSource, path: FolderPath) -> FolderInfo:
    return next(f for f in src.folders() if f.path == path)


def fetch_all(src: ImapSource, path: FolderPath, cursor: str | None = None,
              filt: FetchFilter | None = None,
              known: Container[tuple[str, str]] = frozenset()) -> list[FetchResult]:
    return list(src.fetch(folder(src, path), cursor, filt or FetchFilter(), known))


def server_bodies(server: Dovecot, account: Account, name: str) -> dict[int, bytes]:
    """BODY.PEEK[] of every message, read by plain imaplib (independent of the
    code under test), keyed by UID."""
    m = imaplib.IMAP4("127.0.0.1", server.imap_port)
    try:
        m.login(account.name, account.password)
        typ, _ = m.select(f'"{encode_mutf7(name)}"', readonly=True)
        assert typ == "OK"
        typ, data = m.uid("FETCH", "1:*", "(UID BODY.PEEK[])")
        out: dict[int, bytes] = {}
        for item in data:
            if isinstance(item, tuple):
                uid = int(item[0].split(b"UID ")[1].split()[0])
                out[uid] = item[1]
        return out
    finally:
        m.logout()


def sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def fetched(results: list[FetchResult]) -> Iterator[Fetched]:
    return (r for r in results if isinstance(r, Fetched))
