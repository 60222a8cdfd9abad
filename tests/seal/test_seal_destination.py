"""A bundle directory that cannot be made — on a write-protected stick (a
read-only file system), or under a path that is a file — is one line and exit 3
("cannot write …"). It was `internal error: OSError: [Errno 30] Read-only file
system` (exit 70, "report the traceback")."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.seal.conftest import Keys, build_store, seal


@pytest.fixture
def read_only_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "stick"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "pstkit-test", str(disk)],
                          capture_output=True, check=False)  # fmt: skip
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    # what a killed seal left (a FAT stick also turns read-only by itself on an error)
    (disk / "partial" / "data").mkdir(parents=True)
    (disk / "partial" / "data" / "00001.age.tmp").write_bytes(b"x")
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    yield disk
    subprocess.run(["umount", str(disk)], check=False)


def _one_line(code: int, err: str) -> None:
    assert code == 3, err
    assert "internal error" not in err and "cannot write" in err
    lines = err.strip().splitlines()  # (after "clearing an interrupted seal", if any)
    assert [ln for ln in lines if ln.startswith("pstkit: error:")] == [lines[-2]]
    assert lines[-1].startswith("hint:")


def test_a_bundle_under_a_file(tmp_path: Path, keys: Keys) -> None:
    store = build_store(tmp_path, per_folder=1)
    (tmp_path / "file").write_text("x")
    _one_line(*seal(store, tmp_path / "file" / "bundle", keys)[::2])


@pytest.mark.parametrize("name", ["bundle", "partial"])
def test_a_bundle_on_a_read_only_disk(
    tmp_path: Path, keys: Keys, read_only_disk: Path, name: str
) -> None:
    store = build_store(tmp_path, per_folder=1)
    _one_line(*seal(store, read_only_disk / name, keys)[::2])
