"""`pstkit folders`: per-kind counts for PSTs (issue 4), plain counts elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import cli, cli_json, make_message, write_maildir


def _pst(corpus: Path, name: str) -> Path:
    path = corpus / "pst" / name
    if not path.exists():
        pytest.skip(f"{path} not in the corpus")
    return path


def test_pst_folders_show_counts_per_kind(corpus: Path) -> None:
    # dist-list.pst (corpus README): Calendar 1 IPM.Appointment, Contacts 1 IPM.DistList
    # + 1 IPM.Contact; Freebusy Data (Outlook's own, outside the IPM subtree) is not listed.
    code, out, _ = cli("folders", _pst(corpus, "dist-list.pst"))
    assert code == 0
    lines = {line.split("[")[0].split("(")[0].strip(): line for line in out.splitlines()}
    assert lines["1  Calendar"].endswith("[calendar]  (1 event)")
    assert lines["2  Contacts"].endswith("[contacts]  (1 contact, 1 distlist)")
    assert not any("Freebusy" in line for line in lines)
    assert "(" not in lines["0  Inbox"]  # empty folders say nothing about kinds


def test_pst_folders_json_has_kinds(corpus: Path) -> None:
    code, data = cli_json("folders", _pst(corpus, "dist-list.pst"))
    assert code == 0 and isinstance(data, list)
    by_path = {tuple(f["path"]): f for f in data}
    assert by_path[("Contacts",)]["kinds"] == {"contact": 1, "distlist": 1}
    assert by_path[("Calendar",)]["kinds"] == {"event": 1}
    assert "kinds" not in by_path[("Inbox",)]  # no items, nothing counted
    # every counted item is in exactly one kind
    for f in data:
        if "kinds" in f:
            assert sum(f["kinds"].values()) == f["messages"]


def test_pst_mail_only_folder_has_no_kind_suffix(corpus: Path) -> None:
    code, data = cli_json("folders", _pst(corpus, "testPST.pst"))
    assert code == 0 and isinstance(data, list)
    mail = [f for f in data if f.get("kinds")]
    assert mail and all(set(f["kinds"]) == {"mail"} for f in mail)
    code, out, _ = cli("folders", _pst(corpus, "testPST.pst"))
    assert code == 0 and "mail)" not in out


def test_maildir_folders_have_no_kinds(tmp_path: Path) -> None:
    write_maildir(tmp_path / "md", {"": [(make_message(1), "S")], ".Sent": [(make_message(2), "")]})
    code, data = cli_json("folders", f"maildir:{tmp_path / 'md'}")
    assert code == 0 and isinstance(data, list)
    assert data and all("kinds" not in f for f in data)
    assert sum(f["messages"] for f in data) == 2


def test_eml_folders_count_their_files(tmp_path: Path) -> None:
    (tmp_path / "eml" / "Sub").mkdir(parents=True)
    for n in range(3):
        (tmp_path / "eml" / f"{n}.eml").write_bytes(make_message(n))
    (tmp_path / "eml" / "Sub" / "x.eml").write_bytes(make_message(9))
    (tmp_path / "eml" / ".hidden").write_bytes(b"not counted")
    code, data = cli_json("folders", f"eml:{tmp_path / 'eml'}")
    assert code == 0 and isinstance(data, list)
    counts = {tuple(f["path"]): f["messages"] for f in data}
    assert sorted(counts.values()) == [1, 3]
