"""Seeded chaos per server of the matrix (issue 13): kill -9 the import (and the export)
at 10 random moments, re-run after each; in the end every store message is in its
target folder exactly once, compared as multisets of content digests."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.imap.servers_helpers import (
    make_store,
    server,
    server_digests,
    store_digests,
    target,
)
from tests.servers.common import ImapServer, unique_user

pytest_plugins = ["tests.servers.dovecot", "tests.servers.cyrus", "tests.servers.courier"]
__all__ = ["server"]
PW = "pw"
KILLS = 10
SEEDS = {"dovecot": 1301, "cyrus": 1302, "courier": 1303}  # failing runs replay exactly
CLI = [sys.executable, "-c", "from pstkit.cli import main; main()"]


def _run(args: list[str], kill_after: float | None) -> int | None:
    """Run the CLI; SIGKILL it after `kill_after` s. Its exit code, None if killed."""
    env = {**os.environ, "PSTKIT_PASSWORD": PW}
    proc = subprocess.Popen([*CLI, *args], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        proc.wait(timeout=kill_after if kill_after is not None else 300)
    except subprocess.TimeoutExpired:
        if kill_after is None:
            raise
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return None
    finally:
        assert proc.stderr is not None
        proc.stderr.close()
    return proc.returncode


def _chaos(args: list[str], rng: random.Random, span: tuple[float, float]) -> int:
    """KILLS runs each killed at a random moment of `span` s, then one to the end."""
    killed = 0
    for _ in range(KILLS):
        code = _run(args, rng.uniform(*span))
        killed += code is None
        assert code in (None, 0, 1), f"{args[0]} ended with {code}"
    final = _run(args, None)
    assert final == 0, f"the last {args[0]} after the kills ended with {final}"
    return killed


@pytest.mark.slow
def test_killed_import_and_export_end_exactly_once(server: ImapServer, tmp_path: Path) -> None:
    rng = random.Random(SEEDS[server.name])
    user = server.add_user(unique_user("ch"), PW)
    store = make_store(tmp_path, per_folder=15, copies=2)  # identical copies: distinct items
    killed = _chaos(["import", str(store), *target(server, user), "--opt",
                     "imap_batch_items=2"], rng, (0.5, 1.5))
    assert killed >= KILLS // 2, f"only {killed} of {KILLS} imports were still running"
    want = store_digests(store)
    assert server_digests(server, user) == want
    # And back: the account exported into a new store, killed the same way.
    back = tmp_path / "back"
    _chaos(["export", *target(server, user), str(back)], rng, (0.3, 1.5))
    assert store_digests(back) == want

