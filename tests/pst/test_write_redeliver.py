"""A killed append whose work file the user then deleted by hand: the sign that the
killed run's deliveries never reached the file is gone, so the next run trusts the
ledger and the items it recorded are missing from the PST. That run must not say all is
well: it names each of them and exits 1 (the PST knows its items when opened: a ledger
row whose item is not in it is one gone). `verify` must name them and
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
    done = run_pstkit("--json", "--quiet", "import", str(store), f"pst:{pst}")
    want = Counter(f"<m{i}@test.example>" for i in range(200))
    lost = want - _message_ids(pst)
    assert lost, "the killed run's recorded items should be missing before redelivery"
    # not "0 new, N already delivered" and exit 0: each item gone is a problem of the run
    assert done.returncode == 1, done.stdout + done.stderr
    gone = [p for p in json.loads(done.stdout)["problems"]
            if "no longer in the target" in p["reason"]]
    assert len(gone) == sum(lost.values()), gone
    assert _verify(store, pst)["missing"] == sum(lost.values())
    _import(store, pst, "--redeliver-missing")
    _clean(pst)
    got = _message_ids(pst)
    assert got == want, (sorted(int(k[2:-14]) for k in (want - got).elements()),
                         sorted(int(k[2:-14]) for k in (got - want).elements()))
    summary = _verify(store, pst)
    assert summary["missing"] == 0 and summary["extra"] == 0
    assert not work.exists()


def _gone(done: subprocess.CompletedProcess[str]) -> list[str]:
    """The items a run named as delivered earlier and no longer in the target."""
    out = json.loads(done.stdout)
    return sorted(p["item"] for p in out["problems"] if "no longer in the target" in p["reason"])


def test_an_older_copy_of_the_pst_is_not_taken_for_the_whole(tmp_path: Path) -> None:
    """The PST replaced by an older copy of itself (a restore from backup): the record
    key and so the ledger are the same, and the run said "0 new, N already delivered",
    exit 0, with the newer items gone. Now it names each of them and exits 1, writes
    nothing, and --redeliver-missing puts exactly those back. A split set whose last
    part was deleted is the same case."""
    store, pst, md = tmp_path / "store", tmp_path / "out.pst", tmp_path / "md"
    write_maildir(md, {"": [(make_message(i), "S") for i in range(5)]})
    _export(md, store)
    _import(store, pst)
    old = pst.read_bytes()
    write_maildir(md, {"": [(make_message(i), "S") for i in range(8)]})
    _export(md, store)
    assert _import(store, pst)["done"] == 3
    pst.write_bytes(old)
    done = run_pstkit("--json", "--quiet", "import", str(store), f"pst:{pst}")
    assert done.returncode == 1, done.stdout + done.stderr
    assert len(_gone(done)) == 3 and pst.read_bytes() == old
    assert _verify(store, pst)["missing"] == 3
    assert _import(store, pst, "--redeliver-missing")["done"] == 3
    assert _message_ids(pst) == Counter(f"<m{i}@test.example>" for i in range(8))
    assert _import(store, pst)["done"] == 0  # exit 0 again: nothing is gone
    # a split set, its last part deleted
    out = tmp_path / "set.pst"
    write_maildir(md, {"": [(make_message(i, size=150_000), "S") for i in range(20)]})
    _export(md, store)
    _import(store, out, "--max-size", "1MB")
    parts = sorted(tmp_path.glob("set-*.pst"))
    assert len(parts) >= 3
    held = _message_ids(parts[-1])
    parts[-1].unlink()
    done = run_pstkit("--json", "--quiet", "import", str(store), f"pst:{out}")
    assert done.returncode == 1, done.stdout + done.stderr
    assert len(_gone(done)) == sum(held.values()) > 0
    assert sorted(tmp_path.glob("set-*.pst")) == parts[:-1]
