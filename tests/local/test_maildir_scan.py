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

from pstkit.converters.local.maildir import MaildirSource
from pstkit.location import Location
from pstkit.model import Fetched, Flag, Skipped
from pstkit.options import ConnectOptions, FetchFilter
from tests.helpers import REPO, cli, cli_json, run_pstkit, write_maildir

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


def test_a_message_renamed_by_the_server_mid_export_is_read_once(tmp_path: Path) -> None:
    """A live Maildir: the server marks mail seen while pstkit reads the folder, renaming
    new/X to cur/X:2,S and then cur/X:2,RS. Every message arrives once, with its new
    flags; none is a skip (each was, and needed a re-run) and none comes twice (it is
    listed in new/ and again in cur/)."""
    root = tmp_path / "md"
    names = [f"17000{i:05d}.M{i}P1.host" for i in range(200)]
    write_maildir(root, {"": []})
    for i, name in enumerate(names):
        (root / "new" / name).write_bytes(b"Subject: live %d\r\n\r\nbody %d\r\n" % (i, i))
    source = MaildirSource(Location("maildir", str(root)), ConnectOptions())
    (inbox,) = source.folders()
    results = source.fetch(inbox, None, FetchFilter(), set())
    first = next(results)  # new/ is listed; the read-ahead has read a few dozen at most
    for name in names:
        if (root / "new" / name).exists():
            os.rename(root / "new" / name, root / "cur" / f"{name}:2,S")
    for name in names[150:]:
        os.rename(root / "cur" / f"{name}:2,S", root / "cur" / f"{name}:2,RS")
    got = [first, *results]
    skipped = [r for r in got if not isinstance(r, Fetched)]
    assert skipped == []
    assert sorted(r.meta.source_id for r in got) == sorted(names)
    assert Counter(r.raw for r in got if isinstance(r, Fetched)) == Counter(
        b"Subject: live %d\r\n\r\nbody %d\r\n" % (i, i) for i in range(200))
    assert any(Flag.SEEN in r.meta.flags for r in got)


def test_a_message_deleted_mid_export_is_a_reported_skip(tmp_path: Path) -> None:
    root = tmp_path / "md"
    write_maildir(root, {"": [(b"Subject: %d\r\n\r\nx\r\n" % i, "S") for i in range(100)]})
    source = MaildirSource(Location("maildir", str(root)), ConnectOptions())
    (inbox,) = source.folders()
    results = source.fetch(inbox, None, FetchFilter(), set())
    got = [next(results)]
    last = sorted((root / "cur").iterdir())[-1]
    last.unlink()  # expunged by the server meanwhile
    got += list(results)
    skipped = [r for r in got if isinstance(r, Skipped)]
    assert len(got) == 100 and len(skipped) == 1
    assert "left the folder during the export" in skipped[0].reason


def test_a_pipe_among_the_messages_is_reported_not_waited_for(tmp_path: Path) -> None:
    """A FIFO in cur/ (left by a tool that streamed into the Maildir, or a fuse mount):
    opening it waited for a writer forever, and Ctrl-C or SIGTERM, waiting for the
    message at hand, could not end the export. It is reported; the rest is exported."""
    root = tmp_path / "md"
    write_maildir(root, {"": []})
    (root / "cur" / "1.a:2,S").write_bytes(b"Subject: a\n\nx\n")
    os.mkfifo(root / "cur" / "2.fifo:2,S")
    store = tmp_path / "store"
    done = run_pstkit("--quiet", "export", f"maildir:{root}", str(store), timeout=60)
    assert done.returncode == 1, done.stderr
    said = done.stdout + done.stderr
    assert "2.fifo:2,S: not a regular file" in said, said
    _, listing = cli_json("ls", store)
    assert isinstance(listing, dict)
    assert sum(f["messages"] for f in listing["folders"]) == 1


def test_files_that_share_a_unique_name_are_all_exported_once(tmp_path: Path) -> None:
    """Two Maildirs merged with `cp -r` (or a sync tool cut off mid-rename) can leave
    `new/X`, `cur/X:2,S` and `cur/X:2,RS` side by side. Only the first was read, the
    others dropped with exit 0 even when they held other mail. Now one copy of each
    content is stored, identical ones once, and a re-run adds nothing."""
    root = tmp_path / "md"
    write_maildir(root, {"": []})
    (root / "cur" / "100.a.host:2,S").write_bytes(b"Subject: one\n\nx\n")
    (root / "cur" / "100.a.host:2,RS").write_bytes(b"Subject: two\n\ny\n")
    (root / "new" / "100.a.host").write_bytes(b"Subject: one\n\nx\n")  # the same as :2,S
    (root / "new" / "200.b.host").write_bytes(b"Subject: three\n\nz\n")
    (root / "cur" / "200.b.host:2,S").write_bytes(b"Subject: four\n\nw\n")
    store = tmp_path / "store"
    for _ in range(2):
        code, _, err = cli("export", f"maildir:{root}", store)
        assert code == 0, err
        assert _stored_digests(store) == Counter(
            hashlib.sha256(b).hexdigest() for b in (b"Subject: one\n\nx\n",
            b"Subject: two\n\ny\n", b"Subject: three\n\nz\n", b"Subject: four\n\nw\n"))
    code, _, err = cli("check", "--read-data", store)
    assert code == 0, err


def _stored_digests(store: Path) -> Counter[str]:
    return Counter(hashlib.sha256((dirpath / f).read_bytes()).hexdigest()
                   for dirpath in (store / "mail" / "cur",) for f in os.listdir(dirpath))
