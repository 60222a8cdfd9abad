"""`pstkit report` and `ls` state what happened: the numbers of a history of runs,
compared with what the store, the ledger and the targets hold."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, cli, cli_json, kill_when, make_message, write_maildir


def _store_with_two_targets(tmp_path: Path) -> Path:
    """A store of 3 messages imported into maildir:out and maildir:out2 (a name that
    begins with the other's)."""
    md, store = tmp_path / "md", tmp_path / "store"
    write_maildir(md, {"": [(make_message(i), "S") for i in range(3)]})
    assert cli("export", f"maildir:{md}", str(store))[0] == 0
    assert cli("import", str(store), f"maildir:{tmp_path / 'out'}")[0] == 0
    assert cli("import", str(store), f"maildir:{tmp_path / 'out2'}")[0] == 0
    return store


@pytest.mark.parametrize("spelling", ["maildir:out", "maildir:./out/", "{tmp}/out/", "out"])
def test_target_is_found_however_it_is_spelled_and_no_other_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spelling: str
) -> None:
    """`--target` is "as written to import": a relative path or a trailing slash names
    the same target, and `maildir:out` is not `maildir:out2` (a substring match mixed
    the other target's runs in, a relative name matched nothing: "not imported yet")."""
    store = _store_with_two_targets(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, data = cli_json("report", str(store), "--target", spelling.format(tmp=tmp_path))
    assert code == 0 and isinstance(data, dict)
    assert data["targets"] == [f"maildir:{tmp_path / 'out'}"]
    assert [r["kind"] for r in data["runs"]] == ["export", "import"]
    assert sum(f["delivered"] for f in data["folders"]) == 3


def _files(root: Path) -> int:
    return sum(len(os.listdir(cur)) for cur in root.rglob("cur")) if root.exists() else 0


def test_a_killed_import_is_interrupted_not_running_after_the_rerun(tmp_path: Path) -> None:
    """kill -9 leaves the run row "running"; the next import holds the store's lock, so
    that run is dead: `ls` and the report showed it as still running for good."""
    md, store, out = tmp_path / "md", tmp_path / "store", tmp_path / "out"
    write_maildir(md, {"": [(make_message(i), "S") for i in range(200)]})
    assert cli("export", f"maildir:{md}", str(store))[0] == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "pstkit", "import", str(store), f"maildir:{out}"], cwd=REPO,
        env={**os.environ, "PSTKIT_BATCH_ITEMS": "20"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert kill_when(proc, lambda: _files(out) >= 60)
    assert cli("import", str(store), f"maildir:{out}")[0] == 0
    _, listing = cli_json("ls", str(store))
    assert isinstance(listing, dict)
    assert [r["status"] for r in listing["runs"]] == ["ok", "interrupted", "ok"]
    _, data = cli_json("report", str(store))
    assert isinstance(data, dict)
    assert [r["status"] for r in data["runs"]] == ["ok", "interrupted", "ok"]
    assert sum(f["delivered"] for f in data["folders"]) == _files(out) == 200
