"""A private Courier-IMAP 5.0 for tests: 127.0.0.1, random free ports, throw-away config.

Courier conflicts with the installed `dovecot-imapd` package, so it runs from the tree
that scripts/fetch_servers.py unpacked: `couriertcpd` -> `imaplogin` -> `imapd`, with
logins checked by Courier's own `authdaemond` and its `authuserdb` module against a
userdb made by `makedatprog`. Mail is a Maildir per user; the namespace is Courier's
"INBOX." with ".". IMAPS goes through `couriertls` in front of imaplogin, as Debian's
imapd-ssl runs it.

Courier's auth library has the daemon's socket, its rc file, its module folder and the
userdb file compiled in (under /run/courier, /etc/courier and /usr/lib). Instead of
writing there (shared by every instance, and root only), each instance gets copies of
the three binaries with those paths rewritten to same-length or shorter paths inside
its own short folder /tmp/pcXXXXXXXX (`rewrite_paths`). Nothing else is changed.

Its fixtures are declared once, in tests/conftest.py; use the fixture `courier` (one per
session; give each test its own user) or `fresh_courier` (one per test).
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from imapclient import IMAPClient

from tests.servers.common import (
    HOST,
    SPECIAL_USE,
    Account,
    TlsFiles,
    Unpacked,
    chown_tree,
    free_ports,
    mail_ids,
    run,
    serve_in,
    stop_group,
    temporary_tls,
    unpacked_or_skip,
    wait_greeting,
)

SOCKET = b"/run/courier/authdaemon/socket"  # 30 bytes; see rewrite_paths
AUTHLIB = "usr/lib/libcourierauth.so.0.0.0"
DAEMON = "usr/lib/courier/courier-authlib/authdaemond"
USERDB = "usr/lib/courier-authlib/libauthuserdb.so.0.0.0"
CAPABILITY = ("IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES "
              "SORT QUOTA IDLE")


def _overlapped(path: bytes, cut: int) -> bytes:
    # GCC copies a short constant string with two overlapping 16-byte moves, and stores
    # it as path[:16] + path[cut:]: the socket path appears in that form too.
    return path[:16] + path[cut:]


def rewrite_paths(data: bytes, paths: dict[bytes, bytes]) -> bytes:
    """`data` with each compiled-in path replaced, NUL-padded to keep every offset.
    A socket path must keep its length (it is also stored in overlapped form)."""
    for old, new in paths.items():
        if len(new) > len(old):
            raise ValueError(f"{new!r} is longer than {old!r}")
        found = data.count(old + b"\0")
        data = data.replace(old + b"\0", new.ljust(len(old) + 1, b"\0"))
        if len(new) == len(old):
            for cut in (14, 15):
                form = _overlapped(old, cut)
                found += data.count(form)
                data = data.replace(form, _overlapped(new, cut))
        if not found:
            raise ValueError(f"{old!r} not found")
    return data


class Courier:
    """One running authdaemond and couriertcpd for imap and imaps; ports stay across
    restarts."""

    name = "courier"
    prefix, separator = "INBOX.", "."

    def __init__(self, root: Path, tls: TlsFiles, tree: Unpacked) -> None:
        if len(str(root)) != 15:
            raise ValueError(f"{root} must be /tmp/pcXXXXXXXX: paths are patched in place")
        self.root, self.tls, self.tree = root, tls, tree
        self.ca_file = tls.ca_file
        self.host = HOST
        self.imap_port, self.imaps_port = free_ports(2)
        self.log_file = root / "courier.log"
        self.socket = root / "authdaemon.skt"  # 30 bytes, as SOCKET
        self._users: dict[str, str] = {}
        self._procs: list[subprocess.Popen[bytes]] = []
        for sub in ("lib", "mod", "home"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self._patch()
        (root / "rc").write_text("authmodulelist=\"authuserdb\"\ndaemons=3\n"
                                 "DEBUG_LOGIN=0\nDEFAULTOPTIONS=\"\"\n")
        self._write_userdb()
        chown_tree(root / "home")

    def _patch(self) -> None:
        r = str(self.root).encode()
        copies = {
            AUTHLIB: (self.root / "lib" / "libcourierauth.so.0", {SOCKET: bytes(self.socket)}),
            DAEMON: (self.root / "authdaemond", {
                SOCKET: bytes(self.socket), b"/etc/courier/authdaemonrc": r + b"/rc",
                b"/usr/lib/courier-authlib": r + b"/mod"}),
            USERDB: (self.root / "mod" / "libauthuserdb.so.0", {
                b"/etc/courier/userdb.dat": r + b"/udb.dat",
                b"/etc/courier/userdbshadow.dat": r + b"/uds.dat"}),
        }
        for source, (dest, paths) in copies.items():
            dest.write_bytes(rewrite_paths(self.tree.path(source).read_bytes(), paths))
            dest.chmod(0o755)

    # --- lifecycle ----------------------------------------------------------

    def start(self) -> None:
        env = self._env()
        with self.log_file.open("ab") as log:
            self._procs.append(subprocess.Popen(
                [str(self.root / "authdaemond")], stdout=log, stderr=log, env=env,
                start_new_session=True, cwd=self.root))
            self._procs.append(subprocess.Popen(
                [*self._tcpd(self.imap_port), *self._login()],
                stdout=log, stderr=log, env=env, start_new_session=True, cwd=self.root))
            # imaps as Debian's imapd-ssl runs it: couriertls in front of imaplogin.
            self._procs.append(subprocess.Popen(
                [*self._tcpd(self.imaps_port), str(self.tree.path("usr/bin/couriertls")),
                 "-server", "-tcpd", *self._login()],
                stdout=log, stderr=log, env=self._tls_env(env), start_new_session=True,
                cwd=self.root))
        procs = list(self._procs)
        wait_greeting(self.imap_port, lambda: all(p.poll() is None for p in procs),
                      "courier", self.log_tail)

    def _tcpd(self, port: int) -> list[str]:
        return [str(self.tree.path("usr/sbin/couriertcpd")), f"-address={HOST}",
                "-maxprocs=100", "-maxperip=100", "-nodnslookup", "-noidentlookup", str(port)]

    def _login(self) -> list[str]:
        return [str(self.tree.path("usr/lib/courier/courier/imaplogin")),
                str(self.tree.path("usr/bin/imapd")), "Maildir"]

    def _tls_env(self, env: dict[str, str]) -> dict[str, str]:
        pem = self.root / "imapd.pem"  # couriertls wants key and certificate in one file
        pem.write_bytes(self.tls.key.read_bytes() + self.tls.cert.read_bytes())
        return {**env, "TLS_CERTFILE": str(pem), "TLS_VERIFYPEER": "NONE",
                "IMAP_TLS": "1", "IMAP_CAPABILITY": env["IMAP_CAPABILITY_TLS"]}

    def stop(self) -> None:
        for p in reversed(self._procs):
            stop_group(p)
        self._procs = []

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def _env(self) -> dict[str, str]:
        env = self.tree.env(
            IMAP_CAPABILITY=CAPABILITY, IMAP_KEYWORDS="1", IMAP_ACL="1",
            IMAP_ENHANCEDIDLE="0", IMAP_USELOCKS="1", IMAP_UMASK="022",
            IMAP_TRASHFOLDERNAME="Trash", IMAP_MOVE_EXPUNGE_TO_TRASH="0",
            IMAP_MAILBOX_SANITY_CHECK="1", IMAP_IDLE_TIMEOUT="60", IMAP_PROXY="0",
            IMAP_CAPABILITY_TLS=CAPABILITY + " AUTH=PLAIN", TCPDOPTS="-nodnslookup",
            MAILDIRPATH="Maildir",
            # Courier watches maildirs through FAM; libgamin finds gam_server at a compiled
            # path unless told here. Without it every command waits ~1.2 s for the server.
            GAMIN_DEBUG_SERVER=str(self.tree.path("usr/libexec/gam_server")))
        env["LD_LIBRARY_PATH"] = f"{self.root}/lib:{self.root}/mod:{env['LD_LIBRARY_PATH']}"
        return env

    # --- users --------------------------------------------------------------

    def add_user(self, name: str, password: str) -> Account:
        """A userdb user with a Maildir holding Sent, Drafts, Trash, Junk and Archive."""
        home = self.root / "home" / name
        maildir = home / "Maildir"
        for folder in ("", *(f".{f}" for f in SPECIAL_USE)):
            for sub in ("cur", "new", "tmp"):
                (maildir / folder / sub).mkdir(parents=True, exist_ok=True)
            if folder:
                (maildir / folder / "maildirfolder").touch()
        (maildir / "courierimapsubscribed").write_text(
            "".join(f"INBOX.{f}\n" for f in SPECIAL_USE))
        chown_tree(home)
        self._users[name] = password
        self._write_userdb()
        return Account(name, password, home)

    def client(self, account: Account) -> IMAPClient:
        c = IMAPClient(HOST, port=self.imap_port, ssl=False, timeout=30)
        c.login(account.name, account.password)
        return c

    def _write_userdb(self) -> None:
        """udb.dat and (the passwords, as makeuserdb splits them) uds.dat."""
        uid, gid = mail_ids()
        users, shadow = [], []
        for name, password in self._users.items():
            crypted = run("openssl", "passwd", "-6", "-stdin", stdin=password).strip()
            home = self.root / "home" / name
            users.append(f"{name}\tuid={uid}|gid={gid}|home={home}|mail={home}/Maildir|_=\n")
            shadow.append(f"{name}\tsystempw={crypted}\n")
        for lines, dat in ((users, "udb"), (shadow, "uds")):
            run(self.tree.path("usr/lib/courier/courier-authlib/makedatprog"), "-",
                self.root / f"{dat}.tmp", self.root / f"{dat}.dat", env=self._env(),
                stdin="".join(lines) + ".\n")


NEEDS = (AUTHLIB, DAEMON, USERDB, "usr/sbin/couriertcpd", "usr/libexec/gam_server",
         "usr/bin/couriertls", "usr/bin/imapd",
         "usr/lib/courier/courier/imaplogin", "usr/lib/courier/courier-authlib/makedatprog")


def courier_tree() -> Unpacked:
    return unpacked_or_skip("courier", NEEDS)


def serve(tls: TlsFiles) -> Iterator[Courier]:
    tree = courier_tree()
    root = Path(tempfile.mkdtemp(prefix="pc", dir="/tmp"))
    yield from serve_in(root, lambda r: Courier(r, tls, tree))


@pytest.fixture(scope="session")
def courier_tls() -> Iterator[TlsFiles]:
    courier_tree()
    with temporary_tls("pstkit-courier-tls-") as tls:
        yield tls


@pytest.fixture(scope="session")
def courier(courier_tls: TlsFiles) -> Iterator[Courier]:
    """One Courier for the session: give each test its own `add_user`."""
    yield from serve(courier_tls)


@pytest.fixture()
def fresh_courier(courier_tls: TlsFiles) -> Iterator[Courier]:
    yield from serve(courier_tls)
