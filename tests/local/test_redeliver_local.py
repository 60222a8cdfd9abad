"""Messages a user deleted by hand from a local target come back exactly once with
`import --redeliver-missing`, and `verify` names exactly those as missing. In an mbox the
ledger's ids are byte offsets, which move when a message before them is deleted: verify
must not pair a message with whatever now sits at its old offset (it called the next six
messages "differing" and the last one "missing", and redelivery sent that one twice while
the deleted one stayed lost)."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import make_message, run_pstkit, write_maildir

MID = re.compile(rb"(?im)^Message-ID: <m(\d+)@")


def _mbox_ids(path: Path) -> Counter[int]:
    return Counter(int(m) for m in MID.findall(path.read_bytes()))


def _maildir_ids(root: Path) -> Counter[int]:
    return Counter(int(m) for p in root.rglob("*") if p.is_file() and p.parent.name in
                   ("cur", "new") for m in MID.findall(p.read_bytes()))  # fmt: skip


def _delete_mbox(path: Path, rng: random.Random, k: int) -> set[int]:
    """Delete k messages at random from the mbox, as a mail client would."""
    parts = [p for p in re.split(rb"(?m)^(?=From )", path.read_bytes()) if p]
    gone = set(rng.sample(range(len(parts)), k))
    path.write_bytes(b"".join(p for i, p in enumerate(parts) if i not in gone))
    return {int(MID.findall(parts[i])[0]) for i in gone}


def _delete_maildir(root: Path, rng: random.Random, k: int) -> set[int]:
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.parent.name in ("cur", "new"))
    gone = rng.sample(files, k)
    ids = {int(MID.findall(p.read_bytes())[0]) for p in gone}
    for p in gone:
        p.unlink()
    return ids


def _totals(store: Path, target: str) -> dict[str, int]:
    done = run_pstkit("--json", "--quiet", "verify", str(store), target)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    totals: dict[str, int] = json.loads(done.stdout)["totals"]
    return totals


@pytest.mark.parametrize("kind", ["mbox", "maildir"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_deleted_by_hand_come_back_once(tmp_path: Path, kind: str, seed: int) -> None:
    rng = random.Random(seed)
    src, store, out = tmp_path / "src", tmp_path / "store", tmp_path / "out"
    # same-size messages: an offset left by a deleted one lands exactly on another message
    write_maildir(src, {"": [(make_message(i), "S") for i in range(12)]})
    assert run_pstkit("export", f"maildir:{src}", str(store)).returncode == 0
    target = f"{kind}:{out}"
    done = run_pstkit("import", str(store), target)
    assert done.returncode == 0, done.stderr
    inbox = out / "INBOX" if kind == "mbox" else out
    ids = _mbox_ids if kind == "mbox" else _maildir_ids
    assert ids(inbox) == Counter(range(12))
    k = rng.randint(1, 3)
    gone = (_delete_mbox if kind == "mbox" else _delete_maildir)(inbox, rng, k)
    totals = _totals(store, target)
    assert (totals["missing"], totals["differing"], totals["extra"]) == (k, 0, 0), (gone, totals)
    done = run_pstkit("import", str(store), target, "--redeliver-missing")
    assert done.returncode == 0, done.stderr
    assert ids(inbox) == Counter(range(12)), gone
    assert _totals(store, target)["matching"] == 12
