"""Local source trees as they come from users' disks: file names that are not UTF-8, two
files that would be one folder, and symlink loops. Each either exports every message or
stops with a one-line error; none is an internal error (exit 70) or a silent loss."""

from __future__ import annotations

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
