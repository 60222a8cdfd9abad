"""`verify` against Maildir and mbox targets: an identical target is all `=` (exit 0), and
a damaged one gives a clear error, never an internal error (exit 70)."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from pstkit.converters import open_sink
from pstkit.location import parse_location
from pstkit.options import ConnectOptions
from tests.helpers import cli, make_message, write_maildir


def _store(tmp_path: Path, messages: list[bytes]) -> Path:
    write_maildir(tmp_path / "src", {"": [(raw, "S") for raw in messages]})
    store = tmp_path / "store"
    code, _out, err = cli("--quiet", "export", f"maildir:{tmp_path / 'src'}", str(store))
    assert code == 0, err
    return store


def test_mbox_of_messages_without_a_final_line_end_verifies_as_matching(tmp_path: Path) -> None:
    # An mbox ends every message with a line end (the format needs one before the next
    # separator); verify called each such message "differing" in a faithful target.
    messages = [make_message(1).rstrip(b"\r\n"),
                b"Subject: lf\nMessage-ID: <lf@x>\n\nbody",
                b"Subject: cr\nMessage-ID: <cr@x>\n\nbody\r",
                make_message(2)]  # fmt: skip
    store = _store(tmp_path, messages)
    target = f"mbox:{tmp_path / 'mb'}"
    code, _out, err = cli("--quiet", "import", str(store), target)
    assert code == 0, err
    code, out, err = cli("--quiet", "verify", str(store), target)
    assert code == 0, out + err
    assert out.splitlines()[0] == "4 matching, 0 missing, 0 extra, 0 differing"
    # a real change at the end of such a message is still a difference
    mbox = tmp_path / "mb" / "INBOX"
    mbox.write_bytes(mbox.read_bytes().replace(b"body\n\n", b"bodx\n\n", 1))
    code, out, _err = cli("--quiet", "verify", str(store), target)
    assert code == 1
    assert "1 differing" in out
    # a Maildir file holds the bytes as they are: one that gained a line end differs
    md = tmp_path / "md"
    assert cli("--quiet", "import", str(store), f"maildir:{md}")[0] == 0
    assert cli("--quiet", "verify", str(store), f"maildir:{md}")[0] == 0
    unended = next(p for p in (md / "cur").iterdir() if p.read_bytes().endswith(b"body"))
    unended.write_bytes(unended.read_bytes() + b"\n")
    code, out, _err = cli("--quiet", "verify", str(store), f"maildir:{md}")
    assert code == 1 and "1 differing" in out, out


def test_mbox_without_its_ledger_gets_no_second_copy_of_a_message_without_a_line_end(
    tmp_path: Path,
) -> None:
    # The mbox ends a message that has no final line end with one. Without the ledger (a
    # second store of the same mail, or its deliveries rows gone) the import looks for each
    # message without a Message-ID by its bytes' SHA-256; it hashed the target's copy with
    # that line end, found nothing and appended a second copy: "1 new", verify '+'.
    messages = [b"Subject: no id\n\nbody", b"Subject: no id\n\nbody",  # two copies
                b"Subject: cr\n\nbody\r", b"Subject: ended\n\nbody\n",
                b"Subject: ended\n\nbody", make_message(1).rstrip(b"\r\n")]  # fmt: skip
    store = _store(tmp_path, messages)
    target = f"mbox:{tmp_path / 'mb'}"
    assert cli("--quiet", "import", str(store), target)[0] == 0
    inbox = tmp_path / "mb" / "INBOX"
    before = inbox.read_bytes()
    store2 = tmp_path / "store2"
    assert cli("--quiet", "export", f"maildir:{tmp_path / 'src'}", str(store2))[0] == 0
    with closing(sqlite3.connect(store / "catalog.sqlite")) as db, db:
        assert db.execute("DELETE FROM deliveries").rowcount == len(messages)
    for again in (store2, store):
        code, out, err = cli("--quiet", "import", str(again), target)
        assert code == 0, err
        assert " 0 new" in out and f"{len(messages)} duplicate" in out, out
        assert inbox.read_bytes() == before
        code, out, err = cli("--quiet", "verify", str(again), target)
        assert code == 0, out + err


@pytest.mark.parametrize("scheme", ["maildir", "mbox", "pst"])
def test_verify_and_plan_leave_a_missing_target_missing(tmp_path: Path, scheme: str) -> None:
    # verify and plan only read. Against a target path that does not exist (a typo) they
    # made an empty Maildir tree or mbox folder there, and verify called every item
    # missing (with a hint to deliver them again: into the typo). verify now refuses in
    # one line; plan shows what an import would do, as before an import into a new target.
    store = _store(tmp_path, [make_message(1), make_message(2)])
    path = tmp_path / ("typo.pst" if scheme == "pst" else "typo")
    target = f"{scheme}:{path}"
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = cli("--quiet", "verify", str(store), target)
    assert (code, out) == (3, ""), out + err
    assert err.splitlines()[0] == f"pstkit: error: no such target: {target}", err
    code, plan, err = cli("--quiet", "plan", str(store), target)
    assert code == 0, err
    assert "2 messages to import" in plan, plan
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    # the plan is the one for the empty target an import begins with
    open_sink(parse_location(target), ConnectOptions()).close()
    assert cli("--quiet", "plan", str(store), target)[1] == plan
    # import still creates it
    assert cli("--quiet", "import", str(store), target)[0] == 0
    assert path.exists()
    assert cli("--quiet", "verify", str(store), target)[0] == 0


def test_maildir_target_with_an_unreadable_entry_is_a_clear_error(tmp_path: Path) -> None:
    store = _store(tmp_path, [make_message(1), make_message(2)])
    out_dir = tmp_path / "md"
    code, _out, err = cli("--quiet", "import", str(store), f"maildir:{out_dir}")
    assert code == 0, err
    for bad in ("dir", "link"):  # a directory, a dangling symlink where a message file goes
        entry = out_dir / "cur" / f"{bad}:2,S"
        if bad == "dir":
            entry.mkdir()
        else:
            entry.symlink_to(tmp_path / "nowhere")
        code, out, err = cli("--quiet", "verify", str(store), f"maildir:{out_dir}")
        assert code == 3, out + err
        assert "internal error" not in err and "Traceback" not in err
        assert f"{bad}:2,S" in err
        entry.rmdir() if bad == "dir" else entry.unlink()
    assert cli("--quiet", "verify", str(store), f"maildir:{out_dir}")[0] == 0


def test_verify_leaves_an_mbox_alone_while_an_import_appends_to_it(tmp_path: Path) -> None:
    # A running import's batch is marked by `.NAME.pstkit-append` (the size before it). verify
    # opened the sink, which cut the file back to that size and removed the mark as if the
    # import had been killed: the import then failed, and what it appended after stayed.
    store = _store(tmp_path, [make_message(1), make_message(2)])
    mb = tmp_path / "mb"
    assert cli("--quiet", "import", str(store), f"mbox:{mb}")[0] == 0
    inbox, mark = mb / "INBOX", mb / ".INBOX.pstkit-append"
    size = inbox.stat().st_size
    with inbox.open("ab") as f:  # the import's batch, half written
        f.write(b"From - Mon Mar  4 09:30:00 2024\nSubject: half")
    mark.write_text(str(size))
    before = inbox.read_bytes()
    for command in ("verify", "plan"):
        code, out, err = cli("--quiet", command, str(store), f"mbox:{mb}")
        assert "cut" not in err, command
        assert inbox.read_bytes() == before and mark.read_text() == str(size), command
    assert code == 0, out + err  # plan
    # the next import, as it begins the folder, cuts what a killed run left
    code, _out, err = cli("--quiet", "import", str(store), f"mbox:{mb}")
    assert code == 0, err
    assert inbox.read_bytes() == before[:size] and not mark.exists()
    assert cli("--quiet", "verify", str(store), f"mbox:{mb}")[0] == 0


def test_the_item_the_ledger_names_is_the_one_reported_missing(tmp_path: Path) -> None:
    # Two copies of one message without a Message-ID (same bytes, flags S and F): the file
    # of the first is deleted. Its row, found by neither its id nor a Message-ID, took the
    # second's file by content, and verify called the second missing, whose file is there.
    raw = b"Subject: no id\n\nsame body\n"
    write_maildir(tmp_path / "src", {"": [(raw, "S"), (raw, "F")]})
    store = tmp_path / "store"
    assert cli("--quiet", "export", f"maildir:{tmp_path / 'src'}", str(store))[0] == 0
    out_dir = tmp_path / "md"
    assert cli("--quiet", "import", str(store), f"maildir:{out_dir}")[0] == 0
    code, out = cli("--json", "--quiet", "verify", "--all", str(store), f"maildir:{out_dir}")[:2]
    lines = json.loads(out)["lines"]
    assert code == 0 and [x["mark"] for x in lines] == ["=", "="]
    first = next((out_dir / "cur").glob("*:2,S"))  # the first copy's file
    first.unlink()
    code, out = cli("--json", "--quiet", "verify", "--all", str(store), f"maildir:{out_dir}")[:2]
    marks = {x["item"]: x["mark"] for x in json.loads(out)["lines"]}
    assert code == 1
    assert marks == {lines[0]["item"]: "-", lines[1]["item"]: "="}
    # so --redeliver-missing brings that one back (it sent the other, found it there, and
    # the target stayed one message short however often it ran)
    code, _out, err = cli("--quiet", "import", "--redeliver-missing", str(store),
                          f"maildir:{out_dir}")
    assert code == 0, err
    assert len(list((out_dir / "cur").iterdir())) == 2
    assert cli("--quiet", "verify", str(store), f"maildir:{out_dir}")[0] == 0
