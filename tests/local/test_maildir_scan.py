"""Maildir trees as admins hand them over: a user's Maildir++ mailbox copied into a
folder (its dot-folders are folders, not hidden files), hidden directories that are no
mail, and two directories that would be one folder (an error, not one of them unread)."""

from __future__ import annotations

import hashlib
import mailbox
import os
import shutil
from collections import Counter
from pathlib import Path

from tests.helpers import REPO, cli, cli_json

SAMPLE = REPO / "fixtures" / "sample-maildir"


def _files(root: Path) -> Counter[str]:
    """sha256 of every message file under `root`, whatever the layout (os.walk)."""
    out: Counter[str] = Counter()
    for dirpath, _dirs, files in os.walk(root):
        if Path(dirpath).name in ("cur", "new"):
            out.update(hashlib.sha256((Path(dirpath) / f).read_bytes()).hexdigest()
                       for f in files if not f.startswith("."))
    return out


def _inbox(root: Path) -> int:
    return sum(1 for sub in ("cur", "new") for f in os.listdir(root / sub)
               if not f.startswith("."))


def test_a_maildirpp_mailbox_one_level_down_is_exported_whole(tmp_path: Path) -> None:
    top = tmp_path / "handover"
    shutil.copytree(SAMPLE, top / "alice")
    (top / "alice" / ".git" / "objects").mkdir(parents=True)  # hidden, no mail
    (top / "alice" / ".git" / "objects" / "x").write_bytes(b"not mail")
    store = tmp_path / "store"
    code, _, err = cli("export", f"maildir:{top}", store)
    assert code == 0, err
    assert sum(_files(SAMPLE).values()) > _inbox(SAMPLE)  # it has folders below its inbox
    _, listing = cli_json("ls", store)
    assert isinstance(listing, dict)
    got = {"/".join(f["path"]): f["messages"] for f in listing["folders"] if f["messages"]}
    assert got["alice"] == _inbox(SAMPLE)
    assert sum(got.values()) == sum(_files(SAMPLE).values())
    assert "alice/Sent" in got and "alice/Projekte/Überweisungen 2024" in got
    assert not any(".git" in name for name in got)
    out = tmp_path / "out"
    code, _, err = cli("import", store, f"maildir:{out}")
    assert code == 0, err
    assert _files(out) == _files(SAMPLE)  # every message, byte for byte, none twice


def test_two_directories_for_one_folder_are_an_error_not_a_loss(tmp_path: Path) -> None:
    root = tmp_path / "mail"
    box = mailbox.Maildir(root)
    box.add(b"Subject: inbox\n\nx\n")
    box.add_folder("a.b").add(b"Subject: dotted\n\nx\n")  # .a.b (Maildir++)
    (root / "a").mkdir()
    nested = mailbox.Maildir(root / "a" / "b")  # a/b/ (Dovecot's LAYOUT=fs)
    nested.add(b"Subject: nested\n\nx\n")
    code, _, err = cli("export", f"maildir:{root}", tmp_path / "store")
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "'a/b'" in lines[0] and "Traceback" not in err
    assert str(root / ".a.b") in lines[0] and str(root / "a" / "b") in lines[0]
