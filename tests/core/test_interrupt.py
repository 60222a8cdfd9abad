"""Ctrl-C and SIGTERM keep what is on disk (issue 14), for every source.

An export in a child process is interrupted mid-run: it must exit 130 with every message
file it wrote committed (catalog rows = the run record's "stored", `check` clean), and the
next run says "resuming: N already stored" and fetches only the rest. Before, SIGINT threw
the uncommitted batch away while the run record counted it, SIGTERM killed the process
without a record, and a re-run said nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, make_message, run_pstkit, signal_when, write_maildir

N = 3000


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("src")
    write_maildir(root, {"": [(make_message(i, size=1500), "S") for i in range(N)]})
    return root


def _files(root: Path) -> int:
    total = 0
    for cur in root.rglob("cur"):
        with contextlib.suppress(FileNotFoundError):
            total += len(os.listdir(cur))
    return total


def _catalog(store: Path) -> tuple[int, list[tuple[str, dict[str, int]]]]:
    db = sqlite3.connect(store / "catalog.sqlite")
    try:
        rows = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        runs = [(str(s), json.loads(st or "{}")) for s, st in
                db.execute("SELECT status, stats FROM runs WHERE kind='export' ORDER BY id")]
    finally:
        db.close()
    return int(rows), runs


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_export_keeps_what_it_wrote(source: Path, tmp_path: Path, sig: int) -> None:
    store = tmp_path / "store"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pstkit", "export", f"maildir:{source}", str(store)],
        cwd=REPO, env={**os.environ, "PSTKIT_BATCH_ITEMS": "50"}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    # sent while the run is stopped at the look: taken with 2,600 messages still to go
    assert signal_when(proc, lambda: _files(store) >= 400, sig), "the export ended first"
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    rows, runs = _catalog(store)
    assert runs[-1][0] == "interrupted"
    assert runs[-1][1]["stored"] == rows >= 400  # every written file is committed
    checked = run_pstkit("check", str(store))
    assert checked.returncode == 0, checked.stdout + checked.stderr

    again = run_pstkit("--json", "export", f"maildir:{source}", str(store))
    assert again.returncode == 0, again.stderr
    assert f"resuming: {rows} already stored" in again.stderr
    assert json.loads(again.stdout)["stats"]["stored"] == N - rows
    assert _catalog(store)[0] == N
