"""Maildir -> store: files copied in the kernel (store on the source's file system)
and files written from the bytes read (store on another file system, where
copy_file_range refuses) give the same store: rows, digests, files."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pstkit.converters.local.maildir import MaildirSource
from pstkit.filecopy import SETTLED_S
from pstkit.location import Location
from pstkit.options import ConnectOptions
from pstkit.pipeline import export
from pstkit.store import Store
from tests.helpers import REPO, make_message, write_maildir


def _messages(n: int) -> list[tuple[bytes, str]]:
    out = []
    for i in range(n):
        raw = make_message(i, size=300 * i)
        if i % 3 == 1:  # bare LF, as many Maildir deliveries write it
            raw = raw.replace(b"\r\n", b"\n")
        elif i % 3 == 2:  # mixed endings and a lone CR in the body
            raw = raw.replace(b"\r\n", b"\n", 2) + b"tail\rend"
        out.append((raw, "S" if i % 2 else ""))
    return out


@pytest.fixture(scope="module")
def settled_maildir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Maildir whose files have not changed for SETTLED_S (only such files are
    copied: see pstkit.filecopy), built once for the module."""
    root = tmp_path_factory.mktemp("copy") / "mail"
    write_maildir(root, {"": _messages(30), ".Sent": _messages(7), ".A.B": _messages(3)})
    time.sleep(SETTLED_S + 0.2)
    return root


def _export(source_root: Path, store: Path, caplog: pytest.LogCaptureFixture) -> str:
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="pstkit"), Store.create(store) as st:
        source = MaildirSource(Location("maildir", str(source_root)), ConnectOptions())
        result = export(source, st)
    assert result.stats["stored"] == 40 and not result.problems
    return next(r.getMessage() for r in caplog.records if "message files:" in r.getMessage())


def test_copied_and_written_stores_are_identical(
    settled_maildir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == settled_maildir.stat().st_dev:
        pytest.skip("needs /dev/shm on another file system than the test's tmp_path")
    copied = _export(settled_maildir, tmp_path / "copied", caplog)
    assert copied.endswith("40 copied in the kernel, 0 written")
    other = shm / f"pstkit-copy-{os.getpid()}"
    try:
        written = _export(settled_maildir, other, caplog)
        assert written.endswith("0 copied in the kernel, 40 written")
        same = subprocess.run(
            [sys.executable, str(REPO / "scripts" / "compare_stores.py"), str(tmp_path / "copied"),
             str(other)], capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert same.returncode == 0, same.stdout + same.stderr
        assert "files: 40 / 40 identical" in same.stdout
    finally:
        subprocess.run(["rm", "-rf", str(other)], check=False)


def test_a_fresh_maildir_is_written_not_copied(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Files changed less than SETTLED_S ago are not offered for copying: a change in
    the same clock tick could leave their times as they were."""
    write_maildir(tmp_path / "mail", {"": _messages(40)})
    got = _export(tmp_path / "mail", tmp_path / "st", caplog)
    assert got.endswith("0 copied in the kernel, 40 written")
