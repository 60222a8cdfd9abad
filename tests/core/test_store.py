"""The store: write order, identity of stored bytes, locks, versions, check."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pstkit.catalog import path_to_text
from pstkit.check import check
from pstkit.errors import StoreLocked, StoreVersionError, StoreWriteError
from pstkit.model import Flag, FolderInfo, Role
from pstkit.pipeline import export
from pstkit.store import Layout, Store
from tests.helpers import cli, make_message, sha
from tests.listsource import Item, ListSource

FAT_FORBIDDEN = set('<>:"\\|?*')


def _source(n: int = 5) -> ListSource:
    return ListSource({
        ("INBOX",): [Item(i, make_message(i), frozenset({Flag.SEEN}) if i % 2 else frozenset())
                     for i in range(1, n + 1)],
        ("Work",): [Item(100, make_message(100))],
        ("work",): [Item(101, make_message(101))],
        ("Projekte", "a.b/c:d"): [Item(200, make_message(200))],
    })  # fmt: skip


def _dead_runs_lock(root: Path) -> None:
    """The lock a killed run leaves: this host, a pid that does not exist."""
    (root / "lock").write_text(json.dumps(
        {"pid": 2**22 + 12345, "host": os.uname().nodename, "started": "x", "command": "dead"}))


@pytest.mark.parametrize("layout", list(Layout))
def test_bytes_flags_and_names_survive(tmp_path: Path, layout: Layout) -> None:
    src = _source()
    with Store.create(tmp_path / "st", layout) as st:
        result = export(src, st)
        assert result.stats["stored"] == 8 and not result.problems
        rows = {(r.msg.folder, r.msg.source_id): r for r in st.rows()}
        for path, items in src.folders_.items():
            for item in items:
                row = rows[(path, str(item.uid))]
                assert st.read(row) == item.raw
                assert row.msg.flags == item.flags
        # Parents are created too, so the tree is complete in every target.
        assert sorted(f.info.path for f in st.folders()) == sorted([*src.folders_, ("Projekte",)])
    for p in (tmp_path / "st").rglob("*"):
        assert not (set(p.name) & FAT_FORBIDDEN), p


def test_case_colliding_folders_get_distinct_directories(tmp_path: Path) -> None:
    with Store.create(tmp_path / "st") as st:
        export(_source(), st)
        dirs = {f.info.path: f.dirname for f in st.folders()}
    assert dirs[("Work",)].casefold() != dirs[("work",)].casefold()


def test_second_export_stores_nothing_and_new_mail_is_added(tmp_path: Path) -> None:
    src = _source()
    with Store.create(tmp_path / "st") as st:
        export(src, st)
        again = export(src, st)
        assert again.stats["stored"] == 0
        src.folders_[("INBOX",)].append(Item(6, make_message(6)))
        third = export(src, st)
        assert third.stats["stored"] == 1
        assert sum(1 for _ in st.rows()) == 9


def test_epoch_change_rematches_by_content_without_duplicates(tmp_path: Path) -> None:
    src = _source(3)
    with Store.create(tmp_path / "st") as st:
        export(src, st)
        # UIDVALIDITY changed: same messages, new ids; plus one genuinely new copy
        # of message 1 (identical bytes) that must be stored, not merged.
        src.epoch = "2"
        src.folders_[("INBOX",)] = [Item(10 + i, make_message(i)) for i in range(1, 4)]
        src.folders_[("INBOX",)].append(Item(20, make_message(1)))
        result = export(src, st)
        # 3 in INBOX + 1 in each of the 3 other folders re-matched; the new copy stored.
        assert result.stats["matched"] == 6 and result.stats["stored"] == 1
        inbox = [r for r in st.rows() if r.msg.folder == ("INBOX",)]
        assert len(inbox) == 4
        assert {r.msg.source_epoch for r in inbox} == {"2"}


def test_skips_are_recorded_with_reasons_and_run_goes_on(tmp_path: Path) -> None:
    src = ListSource(
        {
            ("INBOX",): [
                Item(1, make_message(1)),
                Item(2, b"", bad="server said NO"),
                Item(3, make_message(3)),
            ]
        }
    )
    with Store.create(tmp_path / "st") as st:
        result = export(src, st)
        assert result.stats["stored"] == 2 and result.exit_code == 1
        assert [p.reason for p in result.problems] == ["server said NO"]
        assert [p[4] for p in st.catalog.problems()] == ["server said NO"]
        assert src.committed_ids == ["1", "3"]


def test_parallel_export_equals_serial(tmp_path: Path) -> None:
    with Store.create(tmp_path / "a") as a, Store.create(tmp_path / "b") as b:
        export(_source(40), a, connections=1)
        export(_source(40), b, connections=4)
        assert sorted(r.msg.sha256 for r in a.rows()) == sorted(r.msg.sha256 for r in b.rows())


def test_lock_excludes_second_writer_and_stale_lock_is_taken_over(tmp_path: Path) -> None:
    st = Store.create(tmp_path / "st")
    with pytest.raises(StoreLocked):
        Store.open(tmp_path / "st", writable=True)
    st.close()
    _dead_runs_lock(tmp_path / "st")
    Store.open(tmp_path / "st", writable=True).close()  # stale: same host, no such pid
    assert not (tmp_path / "st" / "lock").exists()


def test_a_new_store_is_opened_under_the_lock_that_made_it(tmp_path: Path) -> None:
    # Store.create keeps its lock from making the store to closing it (one lock fsync,
    # and no moment in which another run could take the new store).
    with Store.create(tmp_path / "st", command="export x") as st:
        held = json.loads((tmp_path / "st" / "lock").read_text(encoding="utf-8"))
        assert held["pid"] == os.getpid() and held["command"] == "export x"
        with pytest.raises(StoreLocked):
            Store.open(tmp_path / "st", writable=True)
        marker = json.loads((tmp_path / "st" / "pstkit-store.json").read_text(encoding="utf-8"))
        assert st.id == marker["id"] and st.layout.value == marker["layout"]
        assert export(_source(2), st).stats["stored"] == 5
    assert not (tmp_path / "st" / "lock").exists()
    with Store.open(tmp_path / "st") as again:
        assert len(list(again.rows())) == 5


def test_a_store_whose_making_was_killed_is_finished_by_the_next_export(
        tmp_path: Path) -> None:  # fmt: skip
    """An earlier pstkit killed while it wrote the new store's marker left it empty (the
    chaos test met it: every later run said "pstkit-store.json is unreadable"). Nothing
    was stored yet: `ls` says so in one line, and the export finishes the store."""
    Store.create(tmp_path / "st").close()
    (tmp_path / "st" / "pstkit-store.json").write_bytes(b"")
    _dead_runs_lock(tmp_path / "st")
    code, _, err = cli("ls", tmp_path / "st")
    assert code == 3 and "was not finished" in err and "the export finishes it" in err, err
    code, _, err = cli("export", "fixtures/sample-maildir", tmp_path / "st")
    assert code == 0, err
    assert cli("export", "fixtures/sample-maildir", tmp_path / "ref")[0] == 0
    with Store.open(tmp_path / "st") as st, Store.open(tmp_path / "ref") as ref:
        assert st.id and {r.msg.sha256 for r in st.rows()} == {r.msg.sha256 for r in ref.rows()}
        assert len(list(st.rows())) == len(list(ref.rows())) > 0


def test_the_marker_is_there_whole_or_not_at_all(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed after the marker's bytes were written and before its rename (SystemExit
    stands for the kill: nothing after it runs), the folder has no marker, so the next
    run makes the store; and a finished store has no temporary marker left."""
    def killed(src: object, dst: object) -> None:
        raise SystemExit("killed")

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(SystemExit):
        Store.create(tmp_path / "st")
    monkeypatch.undo()
    assert not (tmp_path / "st" / "pstkit-store.json").exists()
    _dead_runs_lock(tmp_path / "st")
    with Store.create(tmp_path / "st") as st:
        assert st.id
    assert sorted(p.name for p in (tmp_path / "st").iterdir() if "json" in p.name) == [
        "pstkit-store.json"]


def test_lock_from_other_host_needs_unlock(tmp_path: Path) -> None:
    Store.create(tmp_path / "st").close()
    (tmp_path / "st" / "lock").write_text(
        json.dumps({"pid": 1, "host": "elsewhere", "started": "x", "command": "export"})
    )
    code, _, err = cli("export", "fixtures/sample-maildir", tmp_path / "st")
    assert code == 3 and "locked by pid 1 on elsewhere" in err and "pstkit unlock" in err
    assert cli("unlock", tmp_path / "st")[0] == 0
    assert not (tmp_path / "st" / "lock").exists()


def test_newer_format_version_is_refused(tmp_path: Path) -> None:
    Store.create(tmp_path / "st").close()
    marker = tmp_path / "st" / "pstkit-store.json"
    data = json.loads(marker.read_text())
    marker.write_text(json.dumps({**data, "version": 2}))
    with pytest.raises(StoreVersionError):
        Store.open(tmp_path / "st")
    code, _, err = cli("ls", tmp_path / "st")
    assert code == 3 and err.count("\n") == 2 and "format version 2" in err


@pytest.mark.parametrize("layout", list(Layout))
def test_check_finds_every_kind_of_damage(tmp_path: Path, layout: Layout) -> None:
    with Store.create(tmp_path / "st", layout) as st:
        export(_source(), st)
        rows = list(st.rows())
    assert cli("check", "--read-data", tmp_path / "st")[0] == 0
    mail = tmp_path / "st" / "mail"
    first = mail / rows[0].file
    data = bytearray(first.read_bytes())
    where = (rows[0].offset or 0) + (rows[0].length or len(data)) - 5
    data[where] ^= 0x20  # flip one bit, same size
    first.write_bytes(bytes(data))
    code, out, _ = cli("check", tmp_path / "st")
    assert code == 0  # without --read-data, sizes still match
    code, out, _ = cli("check", "--read-data", tmp_path / "st")
    assert code == 4 and "digest" in out
    if layout is Layout.MAILDIR:
        (mail / rows[1].file).unlink()
        (mail / rows[2].file).with_name("extra!2,S").write_bytes(b"Subject: x\n\nadded\n")
        code, out, _ = cli("check", tmp_path / "st")
        assert code == 4 and "missing" in out and "orphan" in out
    else:
        with open(mail / rows[-1].file, "r+b") as f:
            f.truncate((rows[-1].offset or 0) + 10)
        code, out, _ = cli("check", tmp_path / "st")
        assert code == 4 and "size" in out


def test_recover_removes_uncommitted_files_after_interrupted_run(tmp_path: Path) -> None:
    with Store.create(tmp_path / "st") as st:
        export(_source(), st)
        run = st.catalog.begin_run("export", "test://list")  # a run that never finished
        assert run
        # next to a stored message (INBOX is the Maildir++ root now that its role is known)
        first = Path(next(st.rows()).file)
        orphan = tmp_path / "st" / "mail" / first.parent / "deadbeef!2,"
        orphan.write_bytes(b"Subject: half\n\n")
    with Store.open(tmp_path / "st", writable=True) as st:
        export(_source(), st)
        assert not orphan.exists()
        assert not [f for f in check(st, read_data=True) if f.damage]
        assert sha(st.read(next(st.rows()))) == next(st.rows()).msg.sha256


def _change_counter(store: Path) -> int:
    """SQLite's file change counter (header bytes 24-27): +1 per committed write transaction."""
    return int.from_bytes((store / "catalog.sqlite").read_bytes()[24:28], "big")


@pytest.mark.parametrize("layout", list(Layout))
def test_folders_are_created_in_one_commit_and_a_failure_commits_none(
    tmp_path: Path, layout: Layout
) -> None:
    infos = [FolderInfo(("INBOX",), Role.INBOX)] + [
        FolderInfo(("Archive", str(year), f"Q{q}")) for year in (2020, 2021) for q in (1, 2, 3, 4)
    ]
    with Store.create(tmp_path / "st", layout) as st:
        before = _change_counter(tmp_path / "st")
        rows = st.ensure_folders(infos)
        assert _change_counter(tmp_path / "st") == before + 1  # was one commit per folder
        assert [r.info.path for r in rows] == [i.path for i in infos]
        # parents the source did not list exist, not selectable, each with its directory
        by_path = {f.info.path: f for f in st.folders()}
        assert not by_path[("Archive", "2020")].info.selectable and len(by_path) == 12
        assert all((st.mail / f.dirname).exists() for f in by_path.values())
        assert st.ensure_folders(infos) == rows  # known folders: same rows, nothing new
        blocker = st.mail / ("X.sbd" if layout is Layout.MBOX else ".X.Y")
        blocker.write_text("a file where the folder's directory must go")
        with pytest.raises(StoreWriteError):
            st.ensure_folders([FolderInfo(("W",)), FolderInfo(("X", "Y"))])
        assert {f.info.path for f in st.folders()} == set(by_path)  # W was rolled back


def test_a_failed_commit_rolls_back_and_the_catalog_goes_on(tmp_path: Path) -> None:
    """A COMMIT can fail (here a deferred foreign key; in use a full disk): the
    transaction is rolled back, the error is one StoreWriteError, and the next write
    commits (an open transaction left behind would refuse every later BEGIN)."""
    src = ListSource({("INBOX",): [Item(1, make_message(1))]})
    with Store.create(tmp_path / "st") as st:
        export(src, st)
        before = _change_counter(tmp_path / "st")
        with pytest.raises(StoreWriteError, match="FOREIGN KEY"), st.catalog.transaction():
            st.catalog._q("PRAGMA defer_foreign_keys=ON")
            st.catalog._q("INSERT INTO deliveries(sink_key, message, target_folder, run_id, at)"
                          " VALUES('k', 999999, 'INBOX', 1, 'now')")  # no such message
        assert _change_counter(tmp_path / "st") == before
        run = st.catalog.begin_run("import", "test")
        (row,) = list(st.rows())
        st.catalog.record_deliveries(run, "k", [(row.msg.id, ("INBOX",), "t1", "delivered")])
        assert st.catalog.delivered_count("k") == 1


def test_ledger_counts_and_lookups_come_from_sql(tmp_path: Path) -> None:
    """report's per-folder delivered counts and --redeliver-missing's lookup read single
    rows or counts from the ledger, never a copy of it: same answers as a walk over it."""
    with Store.create(tmp_path / "st") as st:
        export(_source(), st)
        ids = {r.msg.source_id: (r.msg.id, r.msg.folder) for r in st.rows()}
        run = st.catalog.begin_run("import", "test")
        inbox = [ids[str(i)] for i in range(1, 6)]
        st.catalog.record_deliveries(run, "a", [(m, f, f"t{m}", "delivered") for m, f in inbox[:3]])
        st.catalog.record_deliveries(run, "a", [(inbox[3][0], inbox[3][1], "", "sending")])
        st.catalog.record_deliveries(run, "b", [(m, f, "", "duplicate") for m, f in inbox[2:5]])
        work = ids["100"]
        st.catalog.record_deliveries(run, "b", [(work[0], work[1], "w", "delivered")])
        folder_id = {f.info.path: f.id for f in st.folders()}
        # message 3 delivered to both counts once; the 'sending' row of a counts not
        assert st.catalog.delivered_per_folder(["a"]) == {folder_id[("INBOX",)]: 3}
        assert st.catalog.delivered_per_folder(["a", "b"]) == {
            folder_id[("INBOX",)]: 5, folder_id[("Work",)]: 1}
        assert st.catalog.delivered_per_folder([]) == {}
        text = path_to_text(("INBOX",))
        assert st.catalog.delivery("a", inbox[0][0]) == (text, f"t{inbox[0][0]}", "delivered")
        assert st.catalog.delivery("a", inbox[3][0]) == (text, "", "sending")
        assert st.catalog.delivery("a", inbox[4][0]) is None


def test_a_folders_pages_are_range_reads_also_in_an_older_store(tmp_path: Path) -> None:
    """Import, plan and verify read a folder's rows in pages by id: with the folder index
    each page is a range read; without it SQLite sorted the whole folder for every page
    (CPU per message grew with the folder). Older stores get the index at import."""
    with Store.create(tmp_path / "st") as st:
        export(_source(30), st)
        st.catalog._q("DROP INDEX messages_folder")  # a store made before the index
        st.catalog.ensure_indexes()
        seen: list[str] = []
        st.catalog._db.set_trace_callback(seen.append)
        inbox = st.folder(("INBOX",))
        assert inbox is not None
        assert len(list(st.rows(inbox.id))) == 30
        st.catalog._db.set_trace_callback(None)
        page = next(q for q in seen if "ORDER BY m.id" in q)
        plan = " ".join(str(r) for r in st.catalog._q(f"EXPLAIN QUERY PLAN {page}"))
        assert "messages_folder" in plan and "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize("layout", [Layout.MAILDIR, Layout.MBOX])
def test_many_folders_at_once_get_the_directories_one_at_a_time_would(
        tmp_path: Path, layout: Layout) -> None:
    """`ensure_folders` indexes the catalog's folders once for the whole list (it listed
    them all per folder: 10,000 folders took 22 minutes); the directories it picks,
    case collisions and parents included, are those of one `ensure_folder` at a time."""
    names = ["Work", "work", "WORK", "Work~2", "a/b", "A/B", "x" * 300, "X" * 300]
    infos = [FolderInfo((top, *([sub] if sub else []))) for top in [*names[:4], "P"]
             for sub in ["", *names]]
    infos += [FolderInfo(("Many", f"f{i}")) for i in range(300)]
    with Store.create(tmp_path / "batch", layout) as batch:
        rows = batch.ensure_folders(infos)
        at_once = {f.info.path: f.dirname for f in batch.folders()}
    with Store.create(tmp_path / "single", layout) as single:
        for info in infos:
            single.ensure_folder(info)
        one_by_one = {f.info.path: f.dirname for f in single.folders()}
    assert [r.info.path for r in rows] == [i.path for i in infos]
    assert at_once == one_by_one and len(at_once) == len(infos) + 1  # + "Many"
    beside: dict[str, set[str]] = {}
    for dirname in at_once.values():  # distinct on a case-folding file system
        scope, _, leaf = dirname.rpartition("/")
        assert leaf.casefold() not in beside.setdefault(scope, set()), dirname
        beside[scope].add(leaf.casefold())
