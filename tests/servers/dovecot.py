"""A private Dovecot for tests: 127.0.0.1, random free ports, throw-away config.

Reusable by every test that needs a real IMAP/POP3 server (IMAP source now,
IMAP sink later). One instance serves IMAP, IMAPS, IMAP+STARTTLS, POP3,
POP3S (+STLS) with a certificate signed by a CA generated here (`ca_file`),
passwd-file users created on demand (`add_user`, optionally with a quota),
SPECIAL-USE folders auto-created, and `restart()` to cut every connection
mid-test. Mail is put in through Dovecot itself (IMAP APPEND with flags and
INTERNALDATE), never by writing its files.

Its fixtures are declared once, in tests/conftest.py (`pytest_plugins`)
and the fixtures `dovecot` (one per session; give each test its own user)
or `fresh_dovecot` (one per test, for tests that restart or break it).
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient

from tests.helpers import wait_gone
from tests.servers.common import (
    HOST,
    SPECIAL_USE,
    Account,
    TlsFiles,
    free_port,
    free_ports,
    mail_ids,
    run,
    temporary_tls,
    unique_user,
)
from tests.servers.oauth import TokenInfoServer

# Account, TlsFiles, free_port and unique_user live in tests.servers.common now; the tests
# still import them from here.
__all__ = ["Account", "Dovecot", "TlsFiles", "free_port", "serve", "unique_user"]


class Dovecot:
    """One running Dovecot. Ports stay the same across `restart()`."""

    name = "dovecot"

    def __init__(self, root: Path, tls: TlsFiles, *, mail_location: str = "sdbox:~/mail",
                 prefix: str = "", separator: str = "/",
                 oauth: TokenInfoServer | None = None) -> None:
        """`prefix`/`separator` shape the personal namespace, e.g. "INBOX." and
        "." to look like Courier/cPanel; mail helpers then take full names."""
        self.root = root
        self.tls = tls
        self.ca_file = tls.ca_file
        self.host = HOST
        self.imap_port, self.imaps_port, self.pop3_port, self.pop3s_port = free_ports(4)
        self.mail_location = mail_location
        self.prefix, self.separator = prefix, separator
        self.oauth = oauth  # also accept XOAUTH2/OAUTHBEARER tokens it issued
        self.conf = root / "dovecot.conf"
        self.users_dir = root / "users.d"
        self.log_file = root / "dovecot.log"
        self.kick_failure = ""  # why the last kick found nobody (kick)
        self._proc: subprocess.Popen[bytes] | None = None
        self._mail_uid, self._mail_gid = mail_ids()
        for sub in ("run", "state", "home", "users.d"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o755)
        os.chmod(root / "home", 0o755)
        os.chmod(self.users_dir, 0o755)
        self.conf.write_text(self._config())

    # --- lifecycle ----------------------------------------------------------

    def start(self) -> None:
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                ["dovecot", "-F", "-c", str(self.conf)], stdout=log, stderr=log,
                start_new_session=True)
        self._wait_ready()

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def restart(self) -> None:
        """Stop (cutting every client connection) and start again, same ports."""
        self.stop()
        self.start()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.log_tail()}")
            try:
                with socket.create_connection((HOST, self.imap_port), timeout=2) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"dovecot did not come up: {self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # --- users --------------------------------------------------------------

    def add_user(self, name: str, password: str, *, quota_bytes: int | None = None) -> Account:
        """A passwd-file user; `quota_bytes` sets a storage quota for this user."""
        home = self.root / "home" / name
        home.mkdir()
        os.chown(home, self._mail_uid, self._mail_gid)
        extra = f"userdb_quota_rule=*:storage={quota_bytes}B" if quota_bytes is not None else ""
        line = (f"{name}:{{PLAIN}}{password}:{self._mail_uid}:{self._mail_gid}::"
                f"{home}::{extra}\n")
        # One file per user: Dovecot re-checks a passwd-file at most once a
        # second, so a user appended to a shared file may not log in at once.
        path = self.users_dir / name
        path.write_text(line)
        os.chmod(path, 0o644)
        return Account(name, password, home)

    # --- content, through Dovecot itself ------------------------------------

    def client(self, account: Account) -> IMAPClient:
        c = IMAPClient(HOST, port=self.imap_port, ssl=False, timeout=30)
        c.login(account.name, account.password)
        return c

    def append(self, account: Account, folder: str, raw: bytes,
               flags: Iterable[str] = (), internaldate: datetime | None = None) -> int:
        """IMAP APPEND; creates `folder` (a "/"-separated name) if missing; returns the UID."""
        with self.client(account) as c:
            if not c.folder_exists(folder):
                c.create_folder(folder)
            resp = c.append(folder, raw, flags=tuple(flags), msg_time=internaldate)
        m = re.search(rb"APPENDUID (\d+) (\d+)", resp)
        if m is None:
            raise RuntimeError(f"no APPENDUID in {resp!r}")
        return int(m.group(2))

    def append_many(self, account: Account, folder: str,
                    messages: Iterable[tuple[bytes, Iterable[str], datetime | None]]) -> None:
        """Many (raw, flags, internaldate) on one connection."""
        with self.client(account) as c:
            if not c.folder_exists(folder):
                c.create_folder(folder)
            for raw, flags, when in messages:
                c.append(folder, raw, flags=tuple(flags), msg_time=when)

    def create_folder(self, account: Account, folder: str) -> None:
        with self.client(account) as c:
            c.create_folder(folder)

    def delete_folder(self, account: Account, folder: str) -> None:
        with self.client(account) as c:
            c.delete_folder(folder)

    def uidvalidity(self, account: Account, folder: str) -> int:
        with self.client(account) as c:
            return int(c.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"])

    def kick(self, account: Account, wait: float = 10.0) -> bool:
        """Disconnect every session of `account` (the server keeps running) and return
        once their processes are gone; False if it had none within `wait` seconds.

        Two races, both seen as a flaky test_dropped_connection_mid_folder_continues:
        - a login reaches anvil (what doveadm kick asks) a moment after the client sees
          OK: on a loaded machine a connection just made was not yet known and the kick
          found nobody; so it looks again until `wait` runs out.
        - doveadm kick returns once the signal is sent, and a kicked imap process that is
          not scheduled at once still answers the commands already in its input: the
          client then read on past the kick on the old connection and was not
          reconnected when the test (whose paused client makes no new session) kicked
          again, and that kick found nobody for 10 s (CI, 2026-12-06: both times
          `doveadm kick` exit 68). Waiting for the kicked processes to exit makes the
          drop happen where the test put it."""
        deadline = time.monotonic() + wait
        while True:
            pids = self.session_pids(account)
            done = subprocess.run(["doveadm", "-c", str(self.conf), "kick", account.name],
                                  capture_output=True, text=True, check=False)
            if done.returncode not in (0, 68):  # 68: nobody was connected
                raise RuntimeError(f"doveadm kick failed: {done.stderr.strip()}")
            if done.returncode == 0:
                wait_gone(pids, deadline)
                return True
            if time.monotonic() >= deadline:
                who = subprocess.run(["doveadm", "-c", str(self.conf), "who"],
                                     capture_output=True, text=True, check=False)
                self.kick_failure = (f"doveadm kick {account.name}: nobody for {wait} s; "
                                     f"doveadm who: {who.stdout.strip() or who.stderr.strip()}"
                                     f"\nlog:\n{self.log_tail(40)}")
                return False
            time.sleep(0.05)

    def session_pids(self, account: Account) -> list[int]:
        """The pids of `account`'s sessions as `doveadm who` lists them."""
        return [int(p) for line in self.doveadm("who", account.name).splitlines()[1:]
                if line.split()[:1] == [account.name]
                for p in re.findall(r"\d+", line.split("(")[1] if "(" in line else "")]

    def doveadm(self, *args: str) -> str:
        return run("doveadm", "-c", self.conf, *args)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    # --- config -------------------------------------------------------------

    def _config(self) -> str:
        r = self.root
        special = "".join(
            f"  mailbox {n} {{\n    special_use = {f}\n    auto = subscribe\n  }}\n"
            for n, f in SPECIAL_USE.items())  # names are relative to the namespace prefix
        return f"""# generated by tests/servers/dovecot.py -- throw-away, loopback only
instance_name = pstkit-test-{r.name}
base_dir = {r}/run
state_dir = {r}/state
protocols = imap pop3
listen = {HOST}
log_path = {self.log_file}
{self._user_settings()}
disable_plaintext_auth = no
auth_mechanisms = plain login apop{" xoauth2 oauthbearer" if self.oauth else ""}
ssl = yes
ssl_cert = <{self.tls.cert}
ssl_key = <{self.tls.key}
ssl_dh = </usr/share/dovecot/dh.pem
mail_location = {self.mail_location}
mail_max_userip_connections = 200
mail_plugins = quota
pop3_uidl_format = %08Xu%08Xv
{self._oauth_passdb()}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.users_dir}/%u
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.users_dir}/%u
}}
plugin {{
  quota = count:User quota
  quota_vsizes = yes
}}
protocol imap {{
  mail_plugins = $mail_plugins imap_quota
}}
namespace inbox {{
  inbox = yes
  prefix = {self.prefix}
  separator = {self.separator}
{special}}}
service imap-login {{
  inet_listener imap {{
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = {self.imaps_port}
    ssl = yes
  }}
{self._chroot()}}}
service pop3-login {{
  inet_listener pop3 {{
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    port = {self.pop3s_port}
    ssl = yes
  }}
{self._chroot()}}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0600
  }}
}}
{self._rootless_services()}"""

    def _oauth_passdb(self) -> str:
        if self.oauth is None:
            return ""
        conf = self.root / "oauth2.conf"
        conf.write_text(f"tokeninfo_url = {self.oauth.url}\nusername_attribute = email\n")
        return f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n" \
               f"  args = {conf}\n}}\n"

    def _user_settings(self) -> str:
        uid = self._mail_uid
        if os.geteuid() == 0:
            login, internal = "dovenull", "dovecot"
        else:  # rootless: every Dovecot process runs as us
            login = internal = pwd.getpwuid(os.geteuid()).pw_name
            group = grp.getgrgid(os.getegid()).gr_name
            return (f"default_login_user = {login}\ndefault_internal_user = {internal}\n"
                    f"default_internal_group = {group}\n"
                    f"first_valid_uid = {uid}\nlast_valid_uid = {uid}")
        return (f"default_login_user = {login}\ndefault_internal_user = {internal}\n"
                f"first_valid_uid = {uid}\nlast_valid_uid = {uid}")

    def _rootless_services(self) -> str:
        # Without root, Dovecot cannot chroot its helper processes.
        return "" if os.geteuid() == 0 else "service anvil {\n  chroot =\n}\n"

    def _chroot(self) -> str:
        return "" if os.geteuid() == 0 else "  chroot =\n"


def dovecot_available() -> bool:
    return shutil.which("dovecot") is not None and shutil.which("openssl") is not None


@pytest.fixture(scope="session")
def dovecot_tls() -> Iterator[TlsFiles]:
    if not dovecot_available():
        pytest.skip("dovecot/openssl not installed (apt-get install dovecot-imapd dovecot-pop3d)")
    with temporary_tls("pstkit-tls-") as tls:
        yield tls


def serve(tls: TlsFiles, **kw: Any) -> Iterator[Dovecot]:
    """Start a server (keyword arguments as for `Dovecot`), stop and delete it after."""
    # Not pytest's tmp_path: /tmp/pytest-of-USER is 0700, and the mail user
    # ("nobody" when we are root) must be able to reach its home.
    root = Path(tempfile.mkdtemp(prefix="pstkit-dovecot-"))
    server = Dovecot(root, tls, **kw)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def dovecot(dovecot_tls: TlsFiles) -> Iterator[Dovecot]:
    """One server for the session: give each test its own `add_user`."""
    yield from serve(dovecot_tls)


@pytest.fixture()
def fresh_dovecot(dovecot_tls: TlsFiles) -> Iterator[Dovecot]:
    """A server of its own, for tests that restart or otherwise disturb it."""
    yield from serve(dovecot_tls)
