"""Helpers for the IMAP server matrix (tests/imap/test_servers*.py; the `server` fixture
over Dovecot, Cyrus and Courier is in tests/imap/conftest.py): stores made from a bare-LF
Maildir, and what an account holds as multisets of content digests per folder."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections import Counter
from pathlib import Path

from pstkit.converters.imap.append import wire_form
from pstkit.model import FolderPath
from pstkit.store import CATALOG, Store
from tests.helpers import cli, make_message, write_maildir
from tests.servers.common import Account, ImapServer

SERVERS = ["dovecot", "cyrus", "courier"]
Digests = dict[FolderPath, Counter[str]]
# Maildir++ folder -> store path (no SPECIAL-USE names: every server maps them alike)
FOLDERS: dict[str, FolderPath] = {"": ("INBOX",), ".Projekte.2024": ("Projekte", "2024"),
                                  ".Kunden": ("Kunden",)}


def target(server: ImapServer, user: Account) -> list[str]:
    """CLI arguments for the account, over IMAPS."""
    return [f"imaps://{user.name}@127.0.0.1:{server.imaps_port}", "--ca-file",
            str(server.ca_file)]


def lf_message(i: int, size: int = 0) -> bytes:
    """A message with bare LF line ends, as Maildirs on Unix hold them."""
    return make_message(i, size=size).replace(b"\r\n", b"\n")


def make_store(tmp: Path, per_folder: int = 3, copies: int = 1, name: str = "store",
               offset: int = 0) -> Path:
    """A store exported from a bare-LF Maildir; each message `copies` times per folder."""
    src = tmp / f"{name}-src"
    n = offset
    tree: dict[str, list[tuple[bytes, str]]] = {}
    for dirname in FOLDERS:
        tree[dirname] = []
        for _ in range(per_folder):
            tree[dirname] += [(lf_message(n), "S" if n % 2 else "")] * copies
            n += 1
    write_maildir(src, tree)
    store = tmp / name
    code, out, err = cli("export", f"maildir:{src}", str(store))
    assert code == 0, out + err
    return store


def digest(raw: bytes) -> str:
    """What a server holding `raw` should return: its wire form (CRLF), hashed."""
    wire = wire_form(raw, binary=True)
    assert wire is not None
    return hashlib.sha256(wire).hexdigest()


def store_digests(store: Path) -> Digests:
    out: Digests = {}
    with Store.open(store) as st:
        for row in st.rows():
            out.setdefault(row.msg.folder, Counter())[digest(st.read(row))] += 1
    return out


def server_digests(server: ImapServer, user: Account, *, flags: bool = False) -> Digests:
    """Every message of every folder, read with plain imapclient: its digest, and
    with `flags` also its flags and keywords (without the session's \\Recent)."""
    out: Digests = {}
    with server.client(user) as c:
        for attrs, delim, name in c.list_folders():
            if {b"\\Noselect", b"\\NonExistent"} & set(attrs):
                continue
            path = folder_path(server, name, delim.decode())
            c.select_folder(name, readonly=True)
            uids = c.search(["ALL"])
            for d in c.fetch(uids, ["BODY.PEEK[]", "FLAGS"]).values() if uids else []:
                key = hashlib.sha256(d[b"BODY[]"]).hexdigest()
                if flags:
                    key += " " + " ".join(sorted(f.decode() for f in d[b"FLAGS"]
                                                 if f.lower() != b"\\recent"))
                out.setdefault(path, Counter())[key] += 1
    return out


def folder_path(server: ImapServer, name: str, delim: str) -> FolderPath:
    if name.upper() == "INBOX":
        return ("INBOX",)
    if server.prefix and name.startswith(server.prefix):
        name = name[len(server.prefix):]
    return tuple(name.split(delim))


def count(server: ImapServer, user: Account) -> int:
    with server.client(user) as c:
        return sum(int(c.folder_status(n, ["MESSAGES"])[b"MESSAGES"])
                   for a, _, n in c.list_folders() if b"\\Noselect" not in a)


def mark_sending(store: Path, message_ids: list[int]) -> None:
    """Put the ledger where a run killed between APPEND and its ledger commit leaves
    it: the rows say "sending" (maybe delivered), with no target id."""
    db = sqlite3.connect(store / CATALOG)
    with db:
        db.executemany("UPDATE deliveries SET how='sending', target_id='' WHERE message=?",
                       [(m,) for m in message_ids])
    db.close()


def message_ids(store: Path, folder: FolderPath) -> list[int]:
    with Store.open(store) as st:
        return [r.msg.id for r in st.rows() if r.msg.folder == folder]


def env_with_password(password: str) -> dict[str, str]:
    return {**os.environ, "PSTKIT_PASSWORD": password}
