"""A private Cyrus IMAP 3.6 for tests: 127.0.0.1, random free ports, throw-away config.

Cyrus conflicts with the installed `dovecot-imapd` package, so it runs from the tree that
scripts/fetch_servers.py unpacked (`apt-get download` + `dpkg-deb -x`), with its own
imapd.conf/cyrus.conf, spool and SASL password database (`saslpasswd2`, auxprop sasldb).
When we are root its processes run as "nobody" (`cyrus_user`).

Cyrus's default namespace is kept: personal folders under "INBOX." with "." as the
separator (`unixhierarchysep=True` gives "INBOX/" and "/"). Users are created by an
admin (`CREATE user.NAME`), with SPECIAL-USE Sent/Drafts/Trash/Junk/Archive folders.
Cyrus logs only to syslog, which test machines lack: `log_tail()` shows what the master
printed.

Its fixtures are declared once, in tests/conftest.py; use the fixture `cyrus` (one per
session; give each test its own user) or `fresh_cyrus` (one per test, to stall or stop).
"""

from __future__ import annotations

import os
import signal
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

BIN = "usr/lib/cyrus/bin"
ADMIN, ADMIN_PASSWORD = "cyrusadmin", "admin-pw"
REALM = "pstkit-cyrus"  # servername: the SASL realm of users who log in without @realm


class Cyrus:
    """One running Cyrus master with imap and imaps services; ports stay across restarts."""

    name = "cyrus"

    def __init__(self, root: Path, tls: TlsFiles, tree: Unpacked, *,
                 unixhierarchysep: bool = False) -> None:
        self.root, self.tls, self.tree = root, tls, tree
        self.ca_file = tls.ca_file
        self.host = HOST
        self.imap_port, self.imaps_port = free_ports(2)
        self.separator = "/" if unixhierarchysep else "."
        self.prefix = "INBOX" + self.separator
        self.conf, self.master_conf = root / "imapd.conf", root / "cyrus.conf"
        self.sasldb = root / "sasldb2"
        self.log_file = root / "master.log"
        self._proc: subprocess.Popen[bytes] | None = None
        for sub in ("conf", "spool", "proc", "lock", "socket"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(self._imapd_conf(unixhierarchysep))
        self.master_conf.write_text(self._cyrus_conf())
        self._saslpasswd(ADMIN, ADMIN_PASSWORD)
        chown_tree(root)

    # --- lifecycle ----------------------------------------------------------

    def start(self) -> None:
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                [str(self.tree.path(f"{BIN}/master")), "-C", str(self.conf),
                 "-M", str(self.master_conf), "-p", str(self.root / "master.pid"), "-D"],
                stdout=log, stderr=log, env=self._env(), start_new_session=True)
        proc = self._proc
        wait_greeting(self.imap_port, lambda: proc.poll() is None, "cyrus master",
                      self.log_tail)

    def stop(self) -> None:
        if self._proc is not None:
            stop_group(self._proc)
            self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def stall(self) -> None:
        """Stop the master process (SIGSTOP) and kill its imapd children: every
        client connection drops, the ports stay open and the kernel still completes
        TCP handshakes, but nobody greets, as after the SIGTERM of issue 13 left the
        master spinning. `resume()` lets it go on."""
        assert self._proc is not None
        master = self._proc.pid
        os.kill(master, signal.SIGSTOP)
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master:  # field 4 of /proc/PID/stat: the parent
                os.kill(int(stat.parent.name), signal.SIGKILL)

    def resume(self) -> None:
        assert self._proc is not None
        os.kill(self._proc.pid, signal.SIGCONT)

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        return "\n".join(text.splitlines()[-lines:]) or "(cyrus logs to syslog only)"

    # --- users --------------------------------------------------------------

    def add_user(self, name: str, password: str) -> Account:
        """A sasldb user with an INBOX and the SPECIAL-USE folders."""
        self._saslpasswd(name, password)
        with IMAPClient(HOST, port=self.imap_port, ssl=False, timeout=30) as admin:
            admin.login(ADMIN, ADMIN_PASSWORD)
            admin.create_folder(f"user{self.separator}{name}")
        account = Account(name, password, self.root / "spool")
        with self.client(account) as c:
            for folder, use in SPECIAL_USE.items():
                # CREATE-SPECIAL-USE (RFC 6154), which imapclient does not offer
                typ, data = c._imap._simple_command("CREATE", self.prefix + folder,
                                                    f"(USE ({use}))")
                if typ != "OK":
                    raise RuntimeError(f"cyrus: CREATE {folder}: {data!r}")
                c.subscribe_folder(self.prefix + folder)
        return account

    def client(self, account: Account) -> IMAPClient:
        c = IMAPClient(HOST, port=self.imap_port, ssl=False, timeout=30)
        c.login(account.name, account.password)
        return c

    def _saslpasswd(self, name: str, password: str) -> None:
        run(self.tree.path("usr/sbin/saslpasswd2"), "-p", "-c", "-f", self.sasldb,
            "-u", REALM, name, env=self._env(), stdin=password)
        uid, gid = mail_ids()
        os.chown(self.sasldb, uid, gid)

    def _env(self) -> dict[str, str]:
        return self.tree.env()

    # --- config -------------------------------------------------------------

    def _imapd_conf(self, unixhierarchysep: bool) -> str:
        r = self.root
        user = "nobody" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
        return f"""# generated by tests/servers/cyrus.py -- throw-away, loopback only
configdirectory: {r}/conf
defaultpartition: default
partition-default: {r}/spool
proc_path: {r}/proc
mboxname_lockpath: {r}/lock
lmtpsocket: {r}/socket/lmtp
idlesocket: {r}/socket/idle
notifysocket: {r}/socket/notify
cyrus_user: {user}
servername: {REALM}
admins: {ADMIN}
allowplaintext: yes
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: {self.sasldb}
sasl_mech_list: PLAIN LOGIN
altnamespace: no
unixhierarchysep: {"yes" if unixhierarchysep else "no"}
hashimapspool: true
delete_mode: immediate
expunge_mode: immediate
tls_server_cert: {self.tls.cert}
tls_server_key: {self.tls.key}
syslog_prefix: pstkit-cyrus
"""

    def _cyrus_conf(self) -> str:
        b, c = self.tree.path(BIN), self.conf
        return f"""# generated by tests/servers/cyrus.py
START {{
  recover cmd="{b}/ctl_cyrusdb -r -C {c}"
}}
SERVICES {{
  imap cmd="{b}/imapd -C {c}" listen="{HOST}:{self.imap_port}" prefork=0
  imaps cmd="{b}/imapd -s -C {c}" listen="{HOST}:{self.imaps_port}" prefork=0
}}
EVENTS {{
}}
"""


NEEDS = (f"{BIN}/master", f"{BIN}/imapd", "usr/sbin/saslpasswd2")


def cyrus_tree() -> Unpacked:
    """The unpacked Cyrus, or skip saying why it is not there."""
    return unpacked_or_skip("cyrus", NEEDS)


def serve(tls: TlsFiles, **kw: bool) -> Iterator[Cyrus]:
    """Start a Cyrus (keyword arguments as for `Cyrus`), stop and delete it after."""
    tree = cyrus_tree()
    root = Path(tempfile.mkdtemp(prefix="pstkit-cyrus-"))
    yield from serve_in(root, lambda r: Cyrus(r, tls, tree, **kw))


@pytest.fixture(scope="session")
def cyrus_tls() -> Iterator[TlsFiles]:
    cyrus_tree()
    with temporary_tls("pstkit-cyrus-tls-") as tls:
        yield tls


@pytest.fixture(scope="session")
def cyrus(cyrus_tls: TlsFiles) -> Iterator[Cyrus]:
    """One Cyrus for the session: give each test its own `add_user`."""
    yield from serve(cyrus_tls)


@pytest.fixture()
def fresh_cyrus(cyrus_tls: TlsFiles) -> Iterator[Cyrus]:
    """A Cyrus of its own, for tests that stall or stop it."""
    yield from serve(cyrus_tls)
