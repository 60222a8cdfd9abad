"""What the writer makes durable when it does not use syncfs(2): the fsyncs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pstkit.check import check
from pstkit.fsutil import FSYNC_MAX_FILES, NO_SYNCFS_ENV, fallback_paths, sync_tree
from pstkit.model import FolderInfo
from pstkit.pipeline import export
from pstkit.store import LOCK, MARKER, Store
from tests.helpers import make_message
from tests.listsource import Item, ListSource


def _nested_source() -> ListSource:
    return ListSource({("Projekte", "Kunde"): [Item(1, make_message(1))]})


def test_the_fallback_syncs_every_new_directory_up_to_the_root_and_the_marker(
    tmp_path: Path,
) -> None:
    root = tmp_path / "st"
    with Store.create(root) as st:
        export(_nested_source(), st)
        (row,) = st.rows()
        folder = st.folder(("Projekte", "Kunde"))
        assert folder is not None
    file = root / "mail" / row.file
    cur = root / "mail" / folder.dirname / "cur"
    paths = fallback_paths(root, [file, root / MARKER], [cur])
    # The file and the marker, then each directory entry a crash could lose:
    # cur/, the folder's maildir, mail/ (all made with this store), and the root.
    assert paths[:2] == [str(file), str(root / MARKER)]
    assert set(paths[2:]) == {str(cur), str(cur.parent), str(root / "mail"), str(root)}
    assert len(paths) == len(set(paths))  # each once


def test_the_fallback_never_climbs_above_the_root(tmp_path: Path) -> None:
    root = tmp_path / "st"
    outside = tmp_path / "elsewhere" / "deep"
    paths = fallback_paths(root, [], [root / "mail" / "cur", outside])
    assert str(tmp_path) not in paths and str(outside.parent) not in paths
    assert str(outside) in paths and str(root) in paths


def test_syncfs_only_for_many_files_unless_switched_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # syncfs opens the root itself; the fsyncs only touch paths that exist.
    missing = tmp_path / "not-made"
    few = [missing / f"m{i}" for i in range(FSYNC_MAX_FILES)]
    many = [*few, missing / "one-more"]
    sync_tree(missing, few, [])  # a small batch: fsync, no syncfs
    sync_tree(missing, [*few, *few], [])  # an mbox names its file once per message
    with pytest.raises(FileNotFoundError):
        sync_tree(missing, many, [])  # syncfs
    monkeypatch.setenv(NO_SYNCFS_ENV, "1")
    sync_tree(missing, many, [])


def test_an_export_without_syncfs_writes_a_whole_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(NO_SYNCFS_ENV, "1")
    root = tmp_path / "st"
    with Store.create(root) as st:
        st.ensure_folders([FolderInfo(path=("Leer",))])
        result = export(_nested_source(), st)
        assert result.stats["stored"] == 1 and not result.problems
        assert not [f for f in check(st, read_data=True) if f.damage]
    assert os.listdir(root / "mail")


def test_a_new_catalog_is_built_aside_and_renamed_into_place(tmp_path: Path) -> None:
    root = tmp_path / "st"
    with Store.create(root) as st:
        assert st.catalog.integrity_check() == "ok"
        export(_nested_source(), st)
    assert sorted(p.name for p in root.iterdir()) == ["catalog.sqlite", "mail", MARKER]
    with Store.open(root) as st:
        assert len(list(st.rows())) == 1


def test_a_catalog_left_without_its_marker_is_never_replaced(tmp_path: Path) -> None:
    root = tmp_path / "st"
    with Store.create(root) as st:
        export(_nested_source(), st)
    # An older store whose marker was lost, and whose writer died (a stale lock).
    (root / MARKER).unlink()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    (root / LOCK).write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(),
                                         "started": "?", "command": "x"}))  # fmt: skip
    with Store.create(root) as st:
        assert [r.msg.source_id for r in st.rows()] == ["1"]
    assert not (root / "catalog.sqlite.new").exists()
