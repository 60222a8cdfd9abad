"""A run killed between creating the store's lock file and writing it leaves an empty
lock; the next run takes it over instead of refusing (found by the IMAP chaos test of
issue 13: `locked by pid 0 on ? since ? (unreadable lock file)`, exit 3)."""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

from pstkit.store import LOCK
from tests.helpers import REPO, cli

SAMPLE = f"maildir:{REPO / 'fixtures' / 'sample-maildir'}"


def test_an_empty_lock_left_by_a_killed_run_is_taken_over(tmp_path: Path) -> None:
    store = tmp_path / "store"
    code, out, err = cli("export", SAMPLE, str(store))
    assert code == 0, out + err
    (store / LOCK).write_bytes(b"")  # O_EXCL-created, the process killed before writing
    code, out, err = cli("export", SAMPLE, str(store))
    assert code == 0, out + err
    assert "removing stale lock" in err and "left empty by a killed run" in err
    assert not (store / LOCK).exists()


def test_a_lock_being_written_is_not_taken(tmp_path: Path) -> None:
    """A lock that becomes readable within the grace time is respected."""
    store = tmp_path / "store"
    code, out, err = cli("export", SAMPLE, str(store))
    assert code == 0, out + err
    lock = store / LOCK
    lock.write_bytes(b"")
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": "now",
              "command": "export (test)"}
    late = threading.Timer(0.3, lambda: lock.write_text(json.dumps(holder)))
    late.start()
    code, out, err = cli("export", SAMPLE, str(store))
    late.join()
    assert code == 3, out + err
    assert "export (test)" in err
