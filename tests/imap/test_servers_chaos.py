"""Seeded chaos per server of the matrix (issue 13): kill -9 the import (and the export)
at 10 random moments (random progress points, so every kill lands mid-run), re-run
after each; in the end every store message is in its target folder exactly once,
compared as multisets of content digests per folder."""

from __future__ import annotations

import functools
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from pstkit.model import FolderPath
from pstkit.store import CATALOG
from tests.helpers import REPO
from tests.imap.servers_helpers import (
    make_store,
    server_digests,
    store_digests,
    target,
)
from tests.servers.common import ImapServer, unique_user

PW = "pw"
KILLS = 10
SEEDS = {"dovecot": 1301, "cyrus": 1302, "courier": 1303}  # failing runs replay exactly
CLI = [sys.executable, "-c", "from pstkit.cli import main; main()"]


def _run(args: list[str], log: Path, progress: Callable[[], int] | None = None, at: int = 0
         ) -> int | None:
    """Run the CLI (stderr appended to `log`); with `progress`, SIGKILL it as soon as
    progress() reaches `at`. Its exit code, or None if it was killed."""
    env = {**os.environ, "PSTKIT_PASSWORD": PW}
    with log.open("ab") as err:
        proc = subprocess.Popen([*CLI, *args], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=err)
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if progress is not None and progress() >= at:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return None
        time.sleep(0.002)
    if proc.poll() is None:
        proc.kill()
        raise AssertionError(f"{args[0]} still running after 300 s")
    return proc.returncode


def _chaos(args: Callable[[int], list[str]], progress: Callable[[int], int],
           check: Callable[[int], None], rng: random.Random, log: Path) -> int:
    """Runs killed with kill -9 when their progress has gone a random 1-4 messages past
    where the last one died, until KILLS of them died mid-run; each re-runs the last.
    A run that finishes before its kill point completes target `n`: it is checked and
    the chaos goes on with target n+1 (so a slow poll cannot make a kill miss). The
    last target is then run to the end and checked. Returns how many targets."""
    killed, n = 0, 0
    while killed < KILLS:
        code = _run(args(n), log, functools.partial(progress, n), progress(n) + rng.randint(1, 4))
        assert code in (None, 0, 1), f"{args(n)[0]} ended with {code}: {_tail(log)}"
        killed += code is None
        if code is not None:
            check(n)
            n += 1
    assert _run(args(n), log) == 0, f"the last {args(n)[0]} failed: {_tail(log)}"
    check(n)
    return n + 1


def _tail(log: Path) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-5:])


def _ledger(store: Path, url: str) -> int:
    """Messages the import's ledger holds as done for the account at `url`. Read by a
    query-only connection, not `mode=ro`: after a killed run the catalog's WAL index must
    be rebuilt by the first reader, which a read-only connection cannot do ("attempt to
    write a readonly database", seen once in a full run on Cyrus)."""
    db = sqlite3.connect(store / CATALOG)
    db.execute("PRAGMA query_only=ON")
    try:
        return int(db.execute("SELECT count(*) FROM deliveries WHERE how<>'sending'"
                              " AND sink_key LIKE ?", (f"%{url.split('//')[1]}%",)).fetchone()[0])
    finally:
        db.close()


def _files(root: Path) -> int:
    """Messages an export has written so far (files under the store, but the catalog)."""
    return sum(len([f for f in files if not f.startswith("catalog")])
               for _, _, files in os.walk(root))


@pytest.mark.slow
def test_killed_import_and_export_end_exactly_once(server: ImapServer, tmp_path: Path) -> None:
    rng = random.Random(SEEDS[server.name])
    store = make_store(tmp_path, per_folder=20, copies=2)  # identical copies: distinct items
    want = store_digests(store)
    users = [server.add_user(unique_user("ch"), PW)]

    def account(n: int) -> list[str]:
        while len(users) <= n:
            users.append(server.add_user(unique_user("ch"), PW))
        return target(server, users[n])

    def imported(n: int) -> None:
        assert server_digests(server, users[n]) == want

    _chaos(lambda n: ["import", str(store), *account(n), "--opt", "imap_batch_items=2"],
           lambda n: _ledger(store, account(n)[0]), imported, rng, tmp_path / "import.log")
    # And back: the (last) account exported into new stores, killed the same way.
    source = account(len(users) - 1)
    _chaos(lambda n: ["export", *source, str(tmp_path / f"back{n}")],
           lambda n: _files(tmp_path / f"back{n}"),
           lambda n: _exported(tmp_path / f"back{n}", want), rng, tmp_path / "export.log")


def _exported(store: Path, want: dict[FolderPath, Counter[str]]) -> None:
    assert store_digests(store) == want
