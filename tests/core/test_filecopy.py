"""Message files copied in the kernel (copy_file_range) hold exactly the bytes that were
read and hashed: a source file that changed, was replaced, cut or removed after it
was read is not copied, its bytes as read are written instead; so is a file the
kernel will not copy (another file system)."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pstkit.filecopy import SETTLED_S, FileCopier, local_file, read_whole
from pstkit.filepool import FilePool
from pstkit.model import LocalFile


def _message(seed: int, size: int = 200_000) -> bytes:
    """Bare LF, CRLF, a lone CR and binary bytes: copied or written, all stay."""
    body = random.Random(seed).randbytes(size)
    return b"Subject: x\nFrom: a@b\r\n\r\nline\rline\n" + body


def _read(path: Path) -> tuple[bytes, LocalFile]:
    """The file's bytes and identity, as a local source passes them on (the settle
    rule is tested apart: a file written by a test has not settled)."""
    data, st, _ = read_whole(str(path))
    return data, LocalFile(str(path), st.st_dev, st.st_ino, st.st_size,
                           st.st_mtime_ns, st.st_ctime_ns)  # fmt: skip


def _dirs(tmp_path: Path) -> tuple[Path, Path]:
    for sub in ("src", "tmp", "cur"):
        (tmp_path / sub).mkdir()
    return tmp_path / "src", tmp_path / "cur"


def test_an_unchanged_file_is_copied_byte_for_byte(tmp_path: Path) -> None:
    src, cur = _dirs(tmp_path)
    copier = FileCopier()
    want = {}
    for i, size in enumerate([0, 1, 4096, 200_001, 3 * 1024 * 1024 + 5]):
        (src / f"m{i}").write_bytes(_message(i, size))
        data, origin = _read(src / f"m{i}")
        copier.write(cur / f"m{i}", tmp_path / "tmp" / f"m{i}", data, origin)
        want[f"m{i}"] = data
    assert {p.name: p.read_bytes() for p in cur.iterdir()} == want
    assert (copier.copied, copier.written) == (5, 0)
    assert not list((tmp_path / "tmp").iterdir())


def _rewrite_same_size(path: Path) -> None:
    path.write_bytes(bytes(len(path.read_bytes())))


def _rewrite_keeping_mtime(path: Path) -> None:
    st = path.stat()
    _rewrite_same_size(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # only ctime tells now


def _replace_by_rename(path: Path) -> None:
    other = path.with_name("other")
    other.write_bytes(bytes(len(path.read_bytes())))
    other.replace(path)


def _cut(path: Path) -> None:
    os.truncate(path, 10)


def _remove(path: Path) -> None:
    path.unlink()


@pytest.mark.parametrize(
    "change", [_rewrite_same_size, _rewrite_keeping_mtime, _replace_by_rename, _cut, _remove]
)
def test_a_file_changed_after_it_was_read_gets_the_bytes_read(
    tmp_path: Path, change: Callable[[Path], None]
) -> None:
    src, cur = _dirs(tmp_path)
    (src / "m").write_bytes(_message(1))
    data, origin = _read(src / "m")
    time.sleep(0.05)  # past a coarse time stamp's tick, so the change moves ctime
    change(src / "m")
    copier = FileCopier()
    copier.write(cur / "m", tmp_path / "tmp" / "m", data, origin)
    assert (cur / "m").read_bytes() == data
    assert (copier.copied, copier.written) == (0, 1)


def test_another_file_system_gets_written_and_is_not_tried_again(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on another file system than the test's tmp_path")
    _, cur = _dirs(tmp_path)
    other = shm / f"pstkit-filecopy-{os.getpid()}"
    other.mkdir()
    try:
        copier = FileCopier()
        for i in range(3):
            (other / f"m{i}").write_bytes(_message(i))
            data, origin = _read(other / f"m{i}")
            copier.write(cur / f"m{i}", tmp_path / "tmp" / f"m{i}", data, origin)
            assert (cur / f"m{i}").read_bytes() == data
        assert (copier.copied, copier.written) == (0, 3)
        assert len(copier._refused) == 1  # one pair refused, remembered
    finally:
        for p in other.iterdir():
            p.unlink()
        other.rmdir()


def test_only_a_settled_file_is_offered_for_copying(tmp_path: Path) -> None:
    (tmp_path / "m").write_bytes(b"Subject: x\n\nbody\n")
    st = (tmp_path / "m").stat()
    changed = max(st.st_mtime_ns, st.st_ctime_ns)
    assert local_file(str(tmp_path / "m"), st, changed + int(SETTLED_S * 1e9) - 1) is None
    got = local_file(str(tmp_path / "m"), st, changed + int(SETTLED_S * 1e9))
    assert got == LocalFile(str(tmp_path / "m"), st.st_dev, st.st_ino, st.st_size,
                            st.st_mtime_ns, st.st_ctime_ns)  # fmt: skip
    _, _, fresh = read_whole(str(tmp_path / "m"))  # just written: not settled
    assert fresh is None


def test_the_pool_copies_and_writes_side_by_side(tmp_path: Path) -> None:
    src, cur = _dirs(tmp_path)
    pool = FilePool(threads=2, max_items=4, max_bytes=1_000_000)
    want = {}
    for i in range(40):
        (src / f"m{i}").write_bytes(_message(i, 1000 * i))
        data, origin = _read(src / f"m{i}")
        pool.submit(cur / f"m{i}", tmp_path / "tmp" / f"m{i}", data, origin if i % 2 else None)
        want[f"m{i}"] = data
    pool.close()
    assert {p.name: p.read_bytes() for p in cur.iterdir()} == want
    assert (pool.copier.copied, pool.copier.written) == (20, 20)
