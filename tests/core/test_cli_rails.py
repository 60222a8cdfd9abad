"""Issue 15, points 2 and 7, through the CLI in child processes, on Maildir and
mbox sources and targets: `import --redeliver-missing` (exactly once, also
after a run cut off between the target and the ledger), export re-fetching
missing or damaged store files, and the safety rails of export."""

from __future__ import annotations

import shutil
import socket
import sqlite3
from pathlib import Path

from pstkit.store import Store
from tests.helpers import maildir_content, make_message, run_pstkit, write_maildir


def _source(root: Path) -> Path:
    write_maildir(root, {
        "": [(make_message(i), "S") for i in range(4)],
        ".Projects": [(make_message(10 + i), "S") for i in range(2)],
        ".Projects.A": [(make_message(20 + i), "") for i in range(2)],
        ".Other": [(make_message(30), "")],
    })  # fmt: skip
    return root


def _export(src: Path, store: Path, *args: str) -> None:
    res = run_pstkit("export", f"maildir:{src}", store, *args)
    assert res.returncode == 0, res.stderr


def _total(content: dict[object, list[object]]) -> int:
    return sum(len(v) for v in content.values())


def _store_folders(store: Path) -> set[str]:
    with Store.open(store) as st:
        return {"/".join(f.info.path) for f in st.folders() if st.catalog.counts().get(f.id)}


# --- point 2: redeliver missing ---------------------------------------------------------


def _imported(tmp_path: Path) -> tuple[Path, Path]:
    store, out = tmp_path / "store", tmp_path / "out"
    _export(_source(tmp_path / "src"), store)
    res = run_pstkit("import", store, f"maildir:{out}")
    assert res.returncode == 0, res.stderr
    return store, out


def _delete_some(out: Path, folder: str, n: int) -> None:
    files = sorted((out / folder / "cur").iterdir())
    for f in files[:n]:
        f.unlink()


def test_redeliver_missing_puts_back_exactly_what_the_target_lost(tmp_path: Path) -> None:
    store, out = _imported(tmp_path)
    whole = maildir_content(out)
    _delete_some(out, ".Projects.A", 2)
    _delete_some(out, "", 1)
    res = run_pstkit("verify", store, f"maildir:{out}")
    assert res.returncode == 1
    assert "6 matching, 3 missing, 0 extra, 0 differing" in res.stdout
    assert f"pstkit import {store} maildir:{out} --redeliver-missing" in res.stderr
    plain = run_pstkit("import", store, f"maildir:{out}")  # the ledger says delivered
    assert plain.returncode == 0 and _total(maildir_content(out)) == 6  # type: ignore[arg-type]
    res = run_pstkit("import", store, f"maildir:{out}", "--redeliver-missing")
    assert res.returncode == 0, res.stderr
    assert "3 delivered item(s) are no longer in" in res.stderr
    assert maildir_content(out) == whole
    again = run_pstkit("import", store, f"maildir:{out}", "--redeliver-missing")
    assert again.returncode == 0 and maildir_content(out) == whole
    assert run_pstkit("verify", store, f"maildir:{out}").returncode == 0


def _reopen_by_hand(store: Path, how_many: int) -> None:
    """The ledger as a run cut off right after the target took the items (or right
    after --redeliver-missing reopened them) leaves it: rows "sending", no target id."""
    db = sqlite3.connect(store / "catalog.sqlite")
    with db:
        db.execute("UPDATE deliveries SET how='sending', target_id='' WHERE message IN"
                   " (SELECT message FROM deliveries ORDER BY message LIMIT ?)",
                   (how_many,))  # fmt: skip
    db.close()


def test_a_redelivery_cut_off_never_delivers_twice(tmp_path: Path) -> None:
    store, out = _imported(tmp_path)
    whole = maildir_content(out)
    _delete_some(out, "", 2)
    res = run_pstkit("import", store, f"maildir:{out}", "--redeliver-missing")
    assert res.returncode == 0 and maildir_content(out) == whole
    # Cut off after the target took them, before the ledger said so: the re-run (without
    # the option) looks first and sends none of them again.
    _reopen_by_hand(store, 9)
    res = run_pstkit("import", store, f"maildir:{out}")
    assert res.returncode == 0, res.stderr
    assert maildir_content(out) == whole
    assert run_pstkit("verify", store, f"maildir:{out}").returncode == 0


def test_redeliver_into_a_folder_deleted_in_the_target(tmp_path: Path) -> None:
    store, out = _imported(tmp_path)
    whole = maildir_content(out)
    shutil.rmtree(out / ".Projects.A")
    res = run_pstkit("import", store, f"maildir:{out}", "--redeliver-missing")
    assert res.returncode == 0, res.stderr
    assert maildir_content(out) == whole


# --- point 2: export fetches missing or damaged store files again -----------------------


def _message_files(store: Path) -> list[Path]:
    return sorted(p for p in (store / "mail").rglob("*") if p.is_file() and p.parent.name == "cur")


def test_rerunning_export_repairs_missing_and_cut_short_files(tmp_path: Path) -> None:
    src, store = _source(tmp_path / "src"), tmp_path / "store"
    _export(src, store)
    files = _message_files(store)
    files[0].unlink()
    files[3].write_bytes(files[3].read_bytes()[:20])
    res = run_pstkit("check", store)
    assert res.returncode == 4
    assert f"pstkit export maildir:{src} {store}" in res.stderr
    res = run_pstkit("export", f"maildir:{src}", store)
    assert res.returncode == 0, res.stderr
    assert "missing or damaged: fetching them again" in res.stderr
    assert run_pstkit("check", store, "--read-data").returncode == 0
    with Store.open(store) as st:
        assert sum(n for n, _ in st.catalog.counts().values()) == 9  # nothing stored twice


def test_repair_reads_content_damage_that_only_read_data_finds(tmp_path: Path) -> None:
    src, store = _source(tmp_path / "src"), tmp_path / "store"
    _export(src, store)
    victim = _message_files(store)[2]
    data = bytearray(victim.read_bytes())
    data[-5] ^= 0x20
    victim.write_bytes(bytes(data))  # same size: only a digest finds it
    assert run_pstkit("check", store).returncode == 0
    res = run_pstkit("check", store, "--read-data")
    assert res.returncode == 4 and "--repair" in res.stderr
    assert run_pstkit("export", f"maildir:{src}", store).returncode == 0
    assert run_pstkit("check", store, "--read-data").returncode == 4  # not without --repair
    res = run_pstkit("export", f"maildir:{src}", store, "--repair")
    assert res.returncode == 0, res.stderr
    assert run_pstkit("check", store, "--read-data").returncode == 0


def test_mbox_store_repaired_in_place(tmp_path: Path) -> None:
    src, store = _source(tmp_path / "src"), tmp_path / "store"
    _export(src, store, "--format", "mbox")
    with Store.open(store) as st:
        row = next(r for r in st.rows() if r.offset)
        path = st.message_path(row)
    data = bytearray(path.read_bytes())
    assert row.offset is not None
    data[row.offset + 40] ^= 0x01
    path.write_bytes(bytes(data))
    assert run_pstkit("check", store, "--read-data").returncode == 4
    res = run_pstkit("export", f"maildir:{src}", store, "--repair")
    assert res.returncode == 0, res.stderr
    assert run_pstkit("check", store, "--read-data").returncode == 0


def test_a_file_the_source_no_longer_has_stays_damaged_and_is_reported(tmp_path: Path) -> None:
    src, store = _source(tmp_path / "src"), tmp_path / "store"
    _export(src, store)
    with Store.open(store) as st:
        row = next(r for r in st.rows() if r.msg.folder == ("Other",))
        path = st.message_path(row)
    path.unlink()
    for f in (src / ".Other" / "cur").iterdir():
        f.unlink()
    res = run_pstkit("export", f"maildir:{src}", store)
    assert res.returncode == 1
    assert "the source no longer has the same message" in res.stderr
    assert run_pstkit("check", store).returncode == 4


# --- point 7: safety rails ----------------------------------------------------------


def test_another_source_into_a_store_is_refused_without_add_source(tmp_path: Path) -> None:
    store = tmp_path / "store"
    _export(_source(tmp_path / "a"), store)
    other = tmp_path / "b"
    write_maildir(other, {"": [(make_message(99), "")]})
    res = run_pstkit("export", f"maildir:{other}", store)
    assert res.returncode == 2
    assert res.stderr.count("\n") <= 2 and "already holds mail from maildir:" in res.stderr
    assert "--add-source" in res.stderr and "Traceback" not in res.stderr
    with Store.open(store) as st:
        assert len(st.catalog.source_keys()) == 1
    res = run_pstkit("export", f"maildir:{other}", store, "--add-source")
    assert res.returncode == 0, res.stderr
    with Store.open(store) as st:
        assert len(st.catalog.source_keys()) == 2


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_failed_connection_leaves_no_new_store(tmp_path: Path) -> None:
    url = f"imap://someone@127.0.0.1:{_closed_port()}"
    new = tmp_path / "new-store"
    res = run_pstkit("export", url, new, env={"PSTKIT_PASSWORD": "x"})
    assert res.returncode == 5, res.stderr
    assert not new.exists()
    empty = tmp_path / "empty-dir"  # an empty directory given as the store stays, empty
    empty.mkdir()
    res = run_pstkit("export", url, empty, env={"PSTKIT_PASSWORD": "x"})
    assert res.returncode == 5 and empty.is_dir() and not any(empty.iterdir())


def test_a_failed_connection_into_an_existing_store_is_recorded(tmp_path: Path) -> None:
    store = tmp_path / "store"
    _export(_source(tmp_path / "src"), store)
    url = f"imap://someone@127.0.0.1:{_closed_port()}"
    res = run_pstkit("export", url, store, "--add-source", env={"PSTKIT_PASSWORD": "x"})
    assert res.returncode == 5
    db = sqlite3.connect(store / "catalog.sqlite")
    status, stats = db.execute("SELECT status, stats FROM runs ORDER BY id DESC").fetchone()
    db.close()
    assert status == "failed" and "error" in stats and "127.0.0.1" in stats
    assert run_pstkit("check", store).returncode == 0


def test_a_pattern_that_matches_nothing_is_a_warning_naming_it(tmp_path: Path) -> None:
    src, store = _source(tmp_path / "src"), tmp_path / "store"
    res = run_pstkit("export", f"maildir:{src}", store, "--folder", "Projcts",
                     "--exclude", "Junk*", "--folder", "Other")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "--folder 'Projcts' matches no folder of maildir:" in res.stderr
    assert "--exclude 'Junk*' matches no folder" in res.stderr
    assert "'Other' matches no folder" not in res.stderr
    assert _store_folders(store) == {"Other"}


def test_a_folder_pattern_takes_its_subfolders(tmp_path: Path) -> None:
    src = _source(tmp_path / "src")
    _export(src, tmp_path / "s1", "--folder", "Projects")
    assert _store_folders(tmp_path / "s1") == {"Projects", "Projects/A"}
    _export(src, tmp_path / "s2", "--folder", "Projects/*")
    assert _store_folders(tmp_path / "s2") == {"Projects/A"}
    _export(src, tmp_path / "s3", "--folder", "Projects", "--exclude", "Projects/*")
    assert _store_folders(tmp_path / "s3") == {"Projects"}
    _export(src, tmp_path / "s4", "--exclude", "Projects")
    assert _store_folders(tmp_path / "s4") == {"INBOX", "Other"}
    res = run_pstkit("export", "--help")
    assert "subfolders" in res.stdout and "Projects/*" in res.stdout
