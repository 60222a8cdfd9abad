"""`pst:OUT.pst` as a target through the CLI: roles become Outlook's special folders, paths
and Unicode names are kept, flags and categories survive a read back, a re-run leaves the
file alone (appending: test_write_append.py), a killed write leaves no PST, and `verify`
matches every item."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from pstkit.converters.pst.btree import Ndb, NdbError
from pstkit.converters.pst.source import PstSource
from pstkit.converters.pst.write.check import check
from pstkit.converters.pst.write.sink import PstSink
from pstkit.location import Location
from pstkit.model import Delivered, Flag, Role, StoredMessage
from pstkit.options import ConnectOptions, FetchFilter
from tests.helpers import as_killed, cli, make_message, write_maildir

FOLDERS = {"": [(make_message(1), "S"), (make_message(2), "FS"), (make_message(3), "")],
           ".Sent": [(make_message(4), "RS")], ".Trash": [(make_message(5), "S")],
           ".Drafts": [(make_message(6), "D")], ".Junk": [(make_message(7), "")],
           ".Projekte": [], ".Projekte.Überweisungen 2024": [(make_message(8), "PS")],
           ".日本語 😀": [(make_message(9), "S")]}
WANT = {("Inbox",): Role.INBOX, ("Sent Items",): Role.SENT, ("Deleted Items",): Role.TRASH,
        ("Drafts",): Role.DRAFTS, ("Junk E-mail",): Role.JUNK, ("Projekte",): None,
        ("Projekte", "Überweisungen 2024"): None, ("日本語 😀",): None}


def _written(tmp_path: Path) -> tuple[Path, Path]:
    write_maildir(tmp_path / "md", FOLDERS)
    store, pst = tmp_path / "store", tmp_path / "out.pst"
    assert cli("--quiet", "export", f"maildir:{tmp_path / 'md'}", str(store))[0] == 0
    code, _out, err = cli("--quiet", "import", str(store), f"pst:{pst}")
    assert code == 0, err
    return store, pst


def test_roles_paths_and_flags(tmp_path: Path) -> None:
    _store, pst = _written(tmp_path)
    with pst.open("rb") as f:
        assert check(f).findings == []
    src = PstSource(Location("pst", str(pst)), ConnectOptions())
    try:
        folders = {f.path: f for f in src.folders()}
        assert {p: f.role for p, f in folders.items()} == WANT
        flags = {p: sorted(sorted(x.value for x in r.meta.flags)
                           for r in src.fetch(f, None, FetchFilter(), set()))
                 for p, f in folders.items()}
    finally:
        src.close()
    assert flags[("Inbox",)] == [[], ["flagged", "seen"], ["seen"]]
    assert flags[("Sent Items",)] == [["answered", "seen"]]
    assert flags[("Drafts",)] == [["draft"]]
    assert flags[("Projekte", "Überweisungen 2024")] == [["forwarded", "seen"]]


def test_verify_and_existing_file(tmp_path: Path) -> None:
    store, pst = _written(tmp_path)
    code, out = cli("--json", "--quiet", "verify", "--all", str(store), f"pst:{pst}")[:2]
    assert code == 0, out
    report = json.loads(out)
    assert report["totals"]["matching"] == sum(len(m) for m in FOLDERS.values())
    lines = report["lines"]
    assert len(lines) == sum(len(m) for m in FOLDERS.values())
    assert {x["mark"] for x in lines} == {"="}
    assert {x["folder"] for x in lines} >= {"Inbox", "Sent Items", "Projekte/Überweisungen 2024"}
    before = pst.read_bytes()  # a re-run appends nothing: the file is not touched
    code, _out, err = cli("--quiet", "import", str(store), f"pst:{pst}")
    assert code == 0, err
    assert pst.read_bytes() == before


def _msg(i: int, keywords: frozenset[str] = frozenset()) -> StoredMessage:
    return StoredMessage(i, ("Inbox",), "", 0, frozenset({Flag.SEEN}), keywords,
                         datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC), f"<m{i}@x>",
                         "", str(i), "e", store_id="store-uuid")


def test_killed_write_leaves_no_pst_and_categories_survive(tmp_path: Path) -> None:
    out = tmp_path / "out.pst"
    killed = PstSink(Location("pst", str(out)), ConnectOptions())
    killed.ensure_folder(("Inbox",), Role.INBOX)
    assert isinstance(killed.put_batch(("Inbox",), [(_msg(1), make_message(1))])[0], Delivered)
    assert [i.stable_key for i in killed.inventory(("Inbox",))] == ["store-uuid:1"]
    assert killed.find_duplicates(_msg(1), make_message(1), ("Inbox",))
    assert not out.exists()  # no close(): the work file has no header, no reader takes it
    as_killed(killed)
    with killed.tmp.open("rb") as f:
        try:
            Ndb.open(f)
            raise AssertionError("a half-written PST opened")
        except NdbError:
            pass
    again = PstSink(Location("pst", str(out)), ConnectOptions())
    assert again.key != killed.key  # a fresh file: the dead file's ledger rows are not used
    again.ensure_folder(("Inbox",), Role.INBOX)
    again.put_batch(("Inbox",), [(_msg(1, frozenset({"Rot", "Projekt Ä"})), make_message(1))])
    again.close()
    assert not again.tmp.exists()
    src = PstSource(Location("pst", str(out)), ConnectOptions())
    try:
        inbox = next(f for f in src.folders() if f.role == Role.INBOX)
        metas = [r.meta for r in src.fetch(inbox, None, FetchFilter(), set())]
    finally:
        src.close()
    assert [m.keywords for m in metas] == [frozenset({"Rot", "Projekt Ä"})]
    assert metas[0].received == datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    items = list(PstSink(Location("pst", str(out)), ConnectOptions()).inventory(("Inbox",)))
    assert [(i.subject, i.stable_key) for i in items] == [("Message 1 – Grüße", "store-uuid:1")]
