"""Removable media for real: a store copied into a FAT32 image and back (mtools)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO, cli, maildir_content

pytestmark = pytest.mark.skipif(shutil.which("mcopy") is None, reason="mtools not installed")
MTOOLS_ENV = {**os.environ, "MTOOLS_SKIP_CHECK": "1", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


def _mtools(*args: str) -> None:
    subprocess.run(list(args), check=True, env=MTOOLS_ENV, capture_output=True)


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize("layout", ["maildir", "mbox"])
def test_store_survives_fat32_round_trip(tmp_path: Path, layout: str) -> None:
    store = tmp_path / "store"
    assert cli("export", "--format", layout, REPO / "fixtures" / "sample-maildir", store)[0] == 0
    image = tmp_path / "fat32.img"
    with open(image, "wb") as f:
        f.truncate(64 * 1024 * 1024)
    _mtools("mformat", "-i", str(image), "-F", "::")
    _mtools("mcopy", "-i", str(image), "-s", "-Q", str(store), "::/")
    back = tmp_path / "back"
    back.mkdir()
    _mtools("mcopy", "-i", str(image), "-s", "-Q", "::/store", str(back))
    assert _tree(back / "store") == _tree(store)  # every name and byte survived FAT
    code, out, _ = cli("check", "--read-data", back / "store")
    assert code == 0, out
    out_dir = tmp_path / "out"
    assert cli("import", back / "store", f"maildir:{out_dir}")[0] == 0
    assert maildir_content(out_dir) == maildir_content(REPO / "fixtures" / "sample-maildir")
