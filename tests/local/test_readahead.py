"""The Maildir source's fast paths: read-ahead on a thread and four-syscall reads."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pstkit.converters.local.readahead import read_ahead
from pstkit.filecopy import read_whole


def _count(n: int, seen: list[int], fail_at: int | None = None) -> Iterator[int]:
    for i in range(n):
        if i == fail_at:
            raise OSError("disk gone")
        seen.append(i)
        yield i


def test_order_kept_and_everything_arrives() -> None:
    seen: list[int] = []
    assert list(read_ahead(_count(1000, seen), lambda i: i, max_items=7, max_bytes=50)) == list(
        range(1000)
    )
    assert seen == list(range(1000))


def test_error_comes_after_what_was_read_before_it() -> None:
    got: list[int] = []
    with pytest.raises(OSError, match="disk gone"):
        for i in read_ahead(_count(100, [], fail_at=40), lambda i: 1):
            got.append(i)
    assert got == list(range(40))


def test_bounded_and_stops_when_the_consumer_leaves() -> None:
    seen: list[int] = []
    before = threading.active_count()
    gen = read_ahead(_count(10_000, seen), lambda i: 1, max_items=4)
    assert next(gen) == 0
    assert next(gen) == 1
    gen.close()
    # The producer never ran far ahead (items go over in lists of up to max_items: one list
    # in the consumer's hand, one queued, one being filled), and is gone.
    assert len(seen) <= 12
    assert threading.active_count() == before


def test_an_item_over_the_byte_budget_still_passes_alone() -> None:
    sizes = [10, 500, 10, 10]
    out = list(read_ahead(iter(sizes), lambda n: n, max_items=8, max_bytes=100))
    assert out == sizes


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 65537, 3 * 1024 * 1024 + 7])
def test_read_whole_matches_read_bytes(tmp_path: Path, size: int) -> None:
    data = random.Random(size).randbytes(size)
    path = tmp_path / "m"
    path.write_bytes(data)
    got, st, _ = read_whole(str(path))
    assert got == data
    assert st.st_mtime == path.stat().st_mtime


def test_read_whole_missing_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_whole(str(tmp_path / "gone"))
