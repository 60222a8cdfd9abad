"""What the test mail servers share: loopback ports, accounts, TLS files, waiting for a
greeting, and the cache of servers that are unpacked rather than installed.

Dovecot is an installed Debian package; Cyrus and Courier conflict with it and are run
from the tree that scripts/fetch_servers.py unpacks (`unpacked()` finds it).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import pytest
from imapclient import IMAPClient

HOST = "127.0.0.1"
SPECIAL_USE = {"Sent": "\\Sent", "Drafts": "\\Drafts", "Trash": "\\Trash", "Junk": "\\Junk",
               "Archive": "\\Archive"}


@dataclass(frozen=True)
class Account:
    name: str
    password: str
    home: Path


@dataclass(frozen=True)
class TlsFiles:
    ca_file: Path  # the CA that signed `cert`: pass as --ca-file
    cert: Path
    key: Path


class ImapServer(Protocol):
    """What a test of the IMAP matrix may use of any server (Dovecot, Cyrus, Courier)."""

    name: str  # "dovecot", "cyrus", "courier"
    host: str
    imap_port: int
    imaps_port: int
    ca_file: Path
    prefix: str  # personal namespace prefix, e.g. "" or "INBOX."
    separator: str

    def add_user(self, name: str, password: str) -> Account: ...

    def client(self, account: Account) -> IMAPClient: ...

    def log_tail(self, lines: int = 30) -> str: ...

    def restart(self) -> None: ...


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """`n` different free ports. The sockets stay bound until all are picked: the
    kernel may hand a just-closed port out again, and two calls of a one-port
    picker once gave Dovecot the same port for two listeners ("duplicate
    listener")."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind((HOST, 0))
        return [int(s.getsockname()[1]) for s in socks]


def unique_user(prefix: str = "u") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def run(*args: object, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, check=False,
                          env=env, input=stdin)
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {done.stderr.strip()}")
    return done.stdout


def make_tls(directory: Path) -> TlsFiles:
    """A CA and a server certificate for localhost/127.0.0.1 (openssl CLI)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (directory / n for n in
                                  ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                   "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                   "extendedKeyUsage=serverAuth\n")
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        "-subj", "/CN=pstkit test CA", "-keyout", ca_key, "-out", ca,
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign,cRLSign")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", key, "-out", csr)
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-days", "30", "-extfile", ext, "-out", cert)
    os.chmod(key, 0o644)  # read by the server's unprivileged processes, which may not be us
    return TlsFiles(ca, cert, key)


@contextlib.contextmanager
def temporary_tls(prefix: str) -> Iterator[TlsFiles]:
    """`make_tls` in a fresh folder, removed afterwards. The folder is world-readable:
    Cyrus's and Courier's daemons run as "nobody" when the tests run as root."""
    d = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(d, 0o755)
    try:
        yield make_tls(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def mail_ids() -> tuple[int, int]:
    """The uid/gid mail belongs to: ours, or "nobody" when we are root (servers refuse
    to keep mail as root, and drop to this user)."""
    if os.geteuid() == 0:
        pw = pwd.getpwnam("nobody")
        return pw.pw_uid, pw.pw_gid
    return os.geteuid(), os.getegid()


def chown_tree(path: Path) -> None:
    uid, gid = mail_ids()
    for p in [path, *path.rglob("*")]:
        os.chown(p, uid, gid, follow_symlinks=False)


def wait_greeting(port: int, alive: Callable[[], bool], what: str, log: Callable[[], str],
                  timeout: float = 30) -> None:
    """Until `port` answers with an IMAP greeting; RuntimeError with the log if the
    server exits or does not come up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"{what} exited: {log()}")
        try:
            with socket.create_connection((HOST, port), timeout=2) as s:
                if s.recv(100).startswith(b"* OK"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not come up: {log()}")


def stop_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Stop a server started with start_new_session=True, and everything it forked."""
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # children left behind by the master
    proc.wait()


# --- servers unpacked by scripts/fetch_servers.py ------------------------------------

@dataclass(frozen=True)
class Unpacked:
    root: Path  # the tree dpkg-deb -x made: root/usr/lib/..., root/etc/...

    def path(self, relative: str) -> Path:
        return self.root / relative

    def env(self, **extra: str) -> dict[str, str]:
        """The environment to run its binaries: its libraries first, then the system's."""
        libs = [self.root / d for d in ("usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu",
                                        "usr/lib")]
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = ":".join(str(p) for p in libs)
        env.update(extra)
        return env


def cache_dir() -> Path:
    env = os.environ.get("PSTKIT_SERVERS")
    if env:
        return Path(env)
    # As root the servers run as "nobody", who cannot enter /root.
    return (Path("/var/cache/pstkit-servers") if os.geteuid() == 0
            else Path.home() / ".cache" / "pstkit-servers")


def unpacked(server: str, needs: tuple[str, ...]) -> Unpacked | str:
    """The unpacked tree holding `needs` (paths inside it), or why it is not there."""
    cache = cache_dir()
    missing = cache / f"{server}.missing"
    if missing.exists():
        return f"{server} could not be fetched: {missing.read_text().strip()}"
    tree = Unpacked(cache / "root")
    absent = [n for n in needs if not tree.path(n).exists()]
    if absent:
        return (f"{server} is not unpacked in {cache} (missing {absent[0]}): "
                "run bash scripts/setup.sh --dev")
    return tree


def unpacked_or_skip(server: str, needs: tuple[str, ...]) -> Unpacked:
    """The unpacked tree, or skip the test saying why it is not there (openssl too: the
    fixtures make their TLS files with it)."""
    tree = unpacked(server, needs)
    if isinstance(tree, str):
        pytest.skip(tree)
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed (apt-get install openssl)")
    return tree


class _Runnable(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


R = TypeVar("R", bound=_Runnable)


def serve_in(root: Path, make: Callable[[Path], R]) -> Iterator[R]:
    """Make a server in `root` (0755: it runs as another user), start it, and stop it and
    delete `root` after, also when making or starting it failed."""
    os.chmod(root, 0o755)
    server = None
    try:
        server = make(root)
        server.start()
        yield server
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
