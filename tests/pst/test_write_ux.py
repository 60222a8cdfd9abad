"""The PST target as an admin meets it from a script: `--json` carries what the text run
prints at its end (files with sizes and items, the import requests, the mapping file)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import make_message, run_pstkit, write_maildir


def _store(tmp_path: Path, n: int) -> Path:
    write_maildir(tmp_path / "md", {"": [(make_message(i, size=30_000), "S") for i in range(n)]})
    store = tmp_path / "store"
    done = run_pstkit("--quiet", "export", f"maildir:{tmp_path / 'md'}", str(store))
    assert done.returncode == 0, done.stderr
    return store


def test_json_names_the_files_written_and_how_to_import_them(tmp_path: Path) -> None:
    store = _store(tmp_path, 6)
    out, csv = tmp_path / "out" / "ann.pst", tmp_path / "out" / "mapping.csv"
    out.parent.mkdir()
    done = run_pstkit("--json", "import", str(store), f"pst:{out}", "--max-size", "5MB",
                      "--mailbox", "ann@contoso.com", "--purview-csv", str(csv))
    assert done.returncode == 0, done.stderr
    pst = json.loads(done.stdout)["pst"]
    parts = sorted(out.parent.glob("ann-*.pst"))
    assert [f["path"] for f in pst["files"]] == [str(p) for p in parts] and parts
    assert [f["bytes"] for f in pst["files"]] == [p.stat().st_size for p in parts]
    assert sum(f["items"] for f in pst["files"]) == 6
    assert len(pst["import_requests"]) == len(parts)
    assert all("-Mailbox 'ann@contoso.com'" in r for r in pst["import_requests"])
    assert pst["purview_csv"] == str(csv)


def test_a_split_run_removes_the_work_file_of_a_cut_single_file_run(tmp_path: Path) -> None:
    """Disk full (`ulimit -f`) cut the single-file run; the admin re-runs with --max-size.
    The dead `ann.pst.pstkit-tmp` must not stay in the folder the admin uploads."""
    store = _store(tmp_path, 6)
    out = tmp_path / "out" / "ann.pst"
    out.parent.mkdir()
    work = out.with_name("ann.pst.pstkit-tmp")
    work.write_bytes(b"\0" * 300_000)  # what the cut run left
    done = run_pstkit("import", str(store), f"pst:{out}", "--max-size", "5MB")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.parent.iterdir()) == ["ann-001.pst"]


def test_a_new_pst_without_the_pst_prefix_is_told_how_to_name_it(tmp_path: Path) -> None:
    store = _store(tmp_path, 1)
    out = tmp_path / "new.pst"
    done = run_pstkit("import", str(store), str(out))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"name the target pst:{out}" in done.stderr.splitlines()[0]
    assert not out.exists()


def test_a_missing_folder_is_named_before_anything_is_read(tmp_path: Path) -> None:
    """Not the work file `OUT/x.pst.pstkit-tmp` after the store was read: the folder, first."""
    store = tmp_path / "store"
    done = run_pstkit("import", str(store), f"pst:{tmp_path / 'nope' / 'x.pst'}")
    code, out, err = done.returncode, done.stdout, done.stderr
    assert code == 3, out + err
    assert f"cannot write to target {tmp_path / 'nope'}: no such folder" in err
    assert ".pstkit-tmp" not in err and "Traceback" not in err
