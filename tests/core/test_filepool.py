"""The store writer's file pool: every write lands before `wait` returns, and an
error is raised only after the other writes have finished (so undo is safe)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pstkit.errors import StoreWriteError
from pstkit.filepool import FilePool


def test_every_write_lands_before_wait_returns(tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    (tmp_path / "cur").mkdir()
    pool = FilePool(threads=2, max_items=3, max_bytes=1000)
    want = {f"m{i}": bytes([i % 256]) * (i * 37) for i in range(200)}
    for name, data in want.items():
        pool.submit(tmp_path / "cur" / name, tmp_path / "tmp" / name, data)
    pool.wait()
    got = {p.name: p.read_bytes() for p in (tmp_path / "cur").iterdir()}
    assert got == want
    assert not list((tmp_path / "tmp").iterdir())
    pool.close()


def test_an_error_comes_after_the_other_writes(tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    (tmp_path / "cur").mkdir()
    pool = FilePool(threads=2, max_items=100)
    pool.submit(tmp_path / "cur" / "a", tmp_path / "tmp" / "a", b"a")
    pool.submit(tmp_path / "gone" / "b", tmp_path / "gone" / "tmp-b", b"b")  # no such dir
    pool.submit(tmp_path / "cur" / "c", tmp_path / "tmp" / "c", b"c")
    with pytest.raises(StoreWriteError):
        pool.wait()
    assert sorted(p.name for p in (tmp_path / "cur").iterdir()) == ["a", "c"]
    pool.wait()  # the error was handed over once
    pool.close()
