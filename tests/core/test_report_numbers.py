"""`pstkit report` and `ls` state what happened: the numbers of a history of runs,
compared with what the store, the ledger and the targets hold."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import cli, cli_json, make_message, write_maildir


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
