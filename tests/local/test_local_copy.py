"""Maildir and eml -> store: files copied in the kernel (store on the source's file system)
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

from pstkit.converters.local.eml import EmlSource, unwrap_emlx
from pstkit.converters.local.maildir import MaildirSource
from pstkit.filecopy import SETTLED_S
from pstkit.location import Location
from pstkit.options import ConnectOptions
from pstkit.pipeline import export
from pstkit.protocols import Source
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
def settled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Maildir (mail/) and a directory of .eml/.emlx files (eml/) that have not
    changed for SETTLED_S (only such files are copied: see pstkit.filecopy), built
    once for the module."""
    base = tmp_path_factory.mktemp("copy")
    write_maildir(base / "mail", {"": _messages(30), ".Sent": _messages(7), ".A.B": _messages(3)})
    (base / "eml").mkdir()
    for i, (raw, _) in enumerate(_messages(4)):
        (base / "eml" / f"{i}.eml").write_bytes(raw)
        (base / "eml" / f"{i}.emlx").write_bytes(b"%d\n" % len(raw) + raw + b"<?xml?><plist/>")
    time.sleep(SETTLED_S + 0.2)
    return base


@pytest.fixture
def settled_maildir(settled: Path) -> Path:
    return settled / "mail"


def _export(source_root: Path, store: Path, caplog: pytest.LogCaptureFixture,
            source: Source | None = None, n: int = 40) -> str:  # fmt: skip
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="pstkit"), Store.create(store) as st:
        source = source or MaildirSource(Location("maildir", str(source_root)), ConnectOptions())
        result = export(source, st)
        assert result.stats["stored"] == n and not result.problems
        if isinstance(source, EmlSource):  # stored bytes: the .eml file, the .emlx's message
            for row in st.rows():
                raw = (source_root / row.msg.source_id).read_bytes()
                want = raw if row.msg.source_id.endswith(".eml") else unwrap_emlx(raw)
                assert st.read(row) == want
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


def test_eml_files_are_copied_and_emlx_messages_written(
    settled: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An .emlx holds its message between a byte count and a property list: only a
    file that is the message, whole, can be copied."""
    source = EmlSource(Location("eml", str(settled / "eml")), ConnectOptions())
    got = _export(settled / "eml", tmp_path / "st", caplog, source, n=8)
    assert got.endswith("4 copied in the kernel, 4 written")
