"""A killed append whose work file the user then deleted by hand: the sign that the
killed run's deliveries never reached the file is gone, so the next run trusts the
ledger and the items it recorded are missing from the PST. `verify` must name them and
`import --redeliver-missing` must bring each back exactly once (nothing twice, nothing
lost), as for every other target."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.helpers import REPO, kill_when, make_message, run_pstkit, write_maildir

from .test_write_append import _clean, _delivered, _export, _import, _message_ids


def _verify(store: Path, pst: Path) -> dict[str, int]:
    done = run_pstkit("--json", "--quiet", "verify", str(store), f"pst:{pst}")
    assert done.returncode in (0, 1), done.stdout + done.stderr
    totals: dict[str, int] = json.loads(done.stdout)["totals"]
    return totals


def _kill_after_recorded_batch(store: Path, pst: Path, rows: int) -> None:
    """SIGKILL an append once a batch of new items is recorded as delivered (the work
    file holds them, the earlier file does not)."""
    proc = subprocess.Popen([sys.executable, "-m", "pstkit", "--quiet", "import", str(store),
                             f"pst:{pst}"], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    kill_when(proc, lambda: _delivered(store) >= rows + 50)
    assert proc.returncode == -signal.SIGKILL, "the append ended before the kill"


def test_deleted_work_file_then_redeliver_missing_brings_each_item_once(
        tmp_path: Path) -> None:
    store, pst, md = tmp_path / "store", tmp_path / "out.pst", tmp_path / "md"
    write_maildir(md, {"": [(make_message(i, size=40_000), "S") for i in range(60)]})
    _export(md, store)
    _import(store, pst)
    rows = _delivered(store)
    write_maildir(md, {"": [(make_message(i, size=40_000), "S") for i in range(200)]})
    _export(md, store)
    _kill_after_recorded_batch(store, pst, rows)
    work = pst.with_name(pst.name + ".pstkit-tmp")
    assert work.exists()
    work.unlink()  # what a user tidying up after a crash does
    _import(store, pst)
    want = Counter(f"<m{i}@test.example>" for i in range(200))
    lost = want - _message_ids(pst)
    assert lost, "the killed run's recorded items should be missing before redelivery"
    assert _verify(store, pst)["missing"] == sum(lost.values())
    _import(store, pst, "--redeliver-missing")
    _clean(pst)
    got = _message_ids(pst)
    assert got == want, (sorted(int(k[2:-14]) for k in (want - got).elements()),
                         sorted(int(k[2:-14]) for k in (got - want).elements()))
    summary = _verify(store, pst)
    assert summary["missing"] == 0 and summary["extra"] == 0
    assert not work.exists()
