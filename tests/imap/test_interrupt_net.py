"""Ctrl-C is prompt while a server is silent (issue 15.9).

A proxy between pstkit and Dovecot stops forwarding in the middle of a session (the
sockets stay open, so a read blocks for the whole 60 s --timeout). SIGINT must print
"stopping…" at once and end the run within a few seconds with exit 130; the store and
its ledger stay consistent and the re-run completes with every message exactly once.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pstkit.store import CATALOG
from tests.helpers import REPO, cli, make_message, write_maildir
from tests.imap.servers_helpers import server_digests, store_digests
from tests.servers.dovecot import Dovecot, unique_user
from tests.servers.stallproxy import StallProxy

PW = "pw"
N = 24
SIZE = 20_000
#: how long the run may take to end after SIGINT: the grace (1 s) and a LOGOUT wait
#: (1 s) plus slack for a loaded machine; a blocked read would take the 60 s timeout
BOUND = 8.0


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PSTKIT_PASSWORD": PW}
    with log.open("ab") as err:
        return subprocess.Popen([sys.executable, "-m", "pstkit", *args], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip


def _interrupt_when_stalled(proc: subprocess.Popen[bytes], proxy: StallProxy,
                            log: Path) -> float:  # fmt: skip
    """SIGINT once the proxy went silent; seconds until the process ended."""
    assert proxy.stalled.wait(60), "the proxy never went silent: " + log.read_text()
    time.sleep(0.5)  # pstkit is now blocked on a read from the silent server
    assert proc.poll() is None, "ended before the interrupt: " + log.read_text()
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError("still running 40 s after Ctrl-C: " + log.read_text()) from None
    return time.monotonic() - sent


def _run(args: list[str], log: Path) -> int:
    proc = _start(args, log)
    return proc.wait(timeout=120)


@pytest.mark.parametrize("connections", [1, 2])
def test_ctrl_c_during_export_from_a_silent_server(dovecot: Dovecot, tmp_path: Path,
                                                   connections: int) -> None:  # fmt: skip
    user = dovecot.add_user(unique_user(), PW)
    for folder in ("INBOX", "Archive"):
        dovecot.append_many(user, folder, [(make_message(i, size=SIZE), (), None)
                                           for i in range(N // 2)])  # fmt: skip
    store, log = tmp_path / "store", tmp_path / "err.log"
    with StallProxy(("127.0.0.1", dovecot.imap_port)) as proxy:
        args = ["export", f"imap://{user.name}@127.0.0.1:{proxy.port}", str(store),
                "--ca-file", str(dovecot.ca_file), "--opt", "imap_fetch_batch=2",
                "--connections", str(connections)]
        proxy.silence_after(8 * SIZE, upstream=False)  # a few messages, then silence
        took = _interrupt_when_stalled(_start(args, log), proxy, log)
        first = log.read_text()
        proxy.speak()
        assert took < BOUND, f"took {took:.1f} s to stop: {first}"
        assert "stopping…" in first and "pstkit: error: interrupted" in first, first
        assert "Traceback" not in first
        kept = _stored(store)
        assert 0 < kept < N, first
        assert _run(["check", str(store)], log) == 0, log.read_text()
        assert _run(args, log) == 0, log.read_text()
    assert _stored(store) == N
    assert {k: sum(v.values()) for k, v in store_digests(store).items()} == {
        ("INBOX",): N // 2, ("Archive",): N // 2}


@pytest.mark.parametrize("connections", [1, 2])
def test_ctrl_c_during_import_to_a_silent_server(dovecot: Dovecot, tmp_path: Path,
                                                 connections: int) -> None:  # fmt: skip
    user = dovecot.add_user(unique_user(), PW)
    src = tmp_path / "src"
    write_maildir(src, {"": [(make_message(100 + i, size=SIZE), "") for i in range(N // 2)],
                        ".Archive": [(make_message(200 + i, size=SIZE), "")
                                     for i in range(N // 2)]})  # fmt: skip
    store, log = tmp_path / "store", tmp_path / "err.log"
    code, out, err = cli("export", f"maildir:{src}", str(store))
    assert code == 0, out + err
    with StallProxy(("127.0.0.1", dovecot.imap_port)) as proxy:
        args = ["import", str(store), f"imap://{user.name}@127.0.0.1:{proxy.port}",
                "--ca-file", str(dovecot.ca_file), "--connections", str(connections)]
        proxy.silence_after(6 * SIZE, upstream=True)
        took = _interrupt_when_stalled(_start(args, log), proxy, log)
        first = log.read_text()
        proxy.speak()
        assert took < BOUND, f"took {took:.1f} s to stop: {first}"
        assert "stopping…" in first and "pstkit: error: interrupted" in first, first
        assert "Traceback" not in first
        assert _run(["check", str(store)], log) == 0, log.read_text()
        assert _run(args, log) == 0, log.read_text()
    got = server_digests(dovecot, user)
    assert got == store_digests(store), "not every message exactly once"
    assert sum(sum(c.values()) for c in got.values()) == N


def _stored(store: Path) -> int:
    db = sqlite3.connect(store / CATALOG)
    try:
        return int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
    finally:
        db.close()
