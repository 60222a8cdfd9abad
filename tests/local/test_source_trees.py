"""Local source trees as they come from users' disks: file names that are not UTF-8, two
files that would be one folder, and symlink loops. Each either exports every message or
stops with a one-line error; none is an internal error (exit 70) or a silent loss."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers import cli, cli_json

SEP = b"From a@b Mon Jan  1 00:00:00 2024\n"


def _msg(n: int) -> bytes:
    return b"From: a@b\nSubject: m%d\nMessage-ID: <%d@x>\n\nbody %d\n" % (n, n, n)


def _stored(store: Path) -> dict[str, int]:
    _, listing = cli_json("ls", store)
    assert isinstance(listing, dict)
    return {"/".join(f["path"]): f["messages"] for f in listing["folders"] if f["messages"]}


def test_two_mbox_files_that_would_be_one_folder_are_an_error_not_a_loss(
    tmp_path: Path,
) -> None:
    """`Inbox` and `Inbox.mbox` (a Thunderbird profile beside an export of it) both name
    folder Inbox: one of them was read, the other's mail dropped, exit 0."""
    root = tmp_path / "tb"
    root.mkdir()
    (root / "Inbox").write_bytes(SEP + _msg(1) + b"\n")
    (root / "Inbox.mbox").write_bytes(SEP + _msg(2) + b"\n")
    code, _, err = cli("export", f"mbox:{root}", tmp_path / "store")
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and "'Inbox'" in lines[0]
    assert str(root / "Inbox") in lines[0] and str(root / "Inbox.mbox") in lines[0]


def test_folder_and_file_names_that_are_not_utf8_are_exported(tmp_path: Path) -> None:
    """Latin-1 names (`Gesch\\xe4ft`, from an old system or a FAT stick) were an internal
    error (exit 70) for every local source; the eml one also left a damaged store."""
    src = tmp_path / "src"
    os.makedirs(os.fsencode(src / "tb") + b"/Gesch\xe4ft.sbd")
    with open(os.fsencode(src / "tb") + b"/Gesch\xe4ft", "wb") as f:
        f.write(SEP + _msg(1) + b"\n")
    with open(os.fsencode(src / "tb") + b"/Gesch\xe4ft.sbd/Sub", "wb") as f:
        f.write(SEP + _msg(2) + b"\n")
    md = os.fsencode(src / "md")
    for sub in (b"/cur", b"/new", b"/.Gesch\xe4ft/cur", b"/.Gesch\xe4ft/new"):
        os.makedirs(md + sub)
    with open(md + b"/cur/1.x\xe4:2,S", "wb") as f:
        f.write(_msg(3))
    with open(md + b"/.Gesch\xe4ft/cur/2.y:2,S", "wb") as f:
        f.write(_msg(4))
    eml = os.fsencode(src / "eml")
    os.makedirs(eml + b"/Gesch\xe4ft")
    with open(eml + b"/\xe4.eml", "wb") as f:
        f.write(_msg(5))
    with open(eml + b"/Gesch\xe4ft/b.eml", "wb") as f:
        f.write(_msg(6))
    expected = {
        "mbox": {"Geschäft": 1, "Geschäft/Sub": 1},
        "maildir": {"INBOX": 1, "Geschäft": 1},
        "eml": {"eml": 1, "eml/Geschäft": 1},
    }
    for scheme, want in expected.items():
        store = tmp_path / f"store-{scheme}"
        where = {"mbox": "tb", "maildir": "md", "eml": "eml"}[scheme]
        code, _, err = cli("export", f"{scheme}:{src / where}", store)
        assert code == 0, (scheme, err)
        assert _stored(store) == want, scheme
        code, _, err = cli("check", "--read-data", store)
        assert code == 0, (scheme, err)
        code, _, err = cli("export", f"{scheme}:{src / where}", store)  # a re-run: nothing new
        assert code == 0 and _stored(store) == want, (scheme, err)


def test_a_symlink_loop_in_a_source_tree_is_not_an_internal_error(tmp_path: Path) -> None:
    """`ln -s .. loop` inside a tree (a backup tool's link, a user's shortcut) made the
    scan walk the loop until the kernel refused the path: exit 70. A directory seen
    before is not entered again; the mail of the tree is exported once."""
    md = tmp_path / "md"
    for sub in ("cur", "new", "a/cur", "a/new"):
        (md / sub).mkdir(parents=True)
    (md / "cur" / "1.x:2,S").write_bytes(_msg(1))
    (md / "a" / "cur" / "2.y:2,S").write_bytes(_msg(2))
    (md / "a" / "loop").symlink_to("..")
    tb = tmp_path / "tb"
    (tb / "Inbox.sbd").mkdir(parents=True)
    (tb / "Inbox").write_bytes(SEP + _msg(3) + b"\n")
    (tb / "Inbox.sbd" / "Sub").write_bytes(SEP + _msg(4) + b"\n")
    (tb / "Inbox.sbd" / "L.sbd").symlink_to("../Inbox.sbd")
    eml = tmp_path / "eml"
    (eml / "x").mkdir(parents=True)
    (eml / "x" / "m.eml").write_bytes(_msg(5))
    (eml / "x" / "loop").symlink_to("..")
    for scheme, root in (("maildir", md), ("mbox", tb), ("eml", eml)):
        store = tmp_path / f"store-{scheme}"
        code, _, err = cli("export", f"{scheme}:{root}", store)
        assert code == 0, (scheme, err)
        assert sum(_stored(store).values()) == (1 if scheme == "eml" else 2), scheme
        code, _, err = cli("check", "--read-data", store)
        assert code == 0, (scheme, err)
