"""A Spool behaves as a list that is only appended to and read, whatever it spilled."""

from __future__ import annotations

import os
import threading
import tracemalloc
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from pstkit.model import Problem
from pstkit.runs import RunResult
from pstkit.runstats import summary
from pstkit.spool import Spool


class _Small(Spool[object]):
    HELD = 3


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.integers(), st.text(), st.tuples(st.text(), st.none()))),
       st.integers(min_value=0, max_value=40))  # fmt: skip
def test_reads_back_what_came_in_order(items: list[object], cut: int) -> None:
    spool = _Small()
    for x in items[:cut]:
        spool.append(x)
    first = iter(spool)  # an iteration begun before more came: sees what was there
    spool.extend(items[cut:])
    assert list(spool) == items and len(spool) == len(items) and bool(spool) == bool(items)
    assert list(first) == items[:cut]
    if items:
        assert spool[0] == items[0] and spool[-1] == items[-1]
    # two iterations at once each read their own way through the file
    pairs = list(zip(spool, spool, strict=True))
    assert pairs == [(x, x) for x in items]
    spool.close()


def test_many_items_leave_memory_flat() -> None:
    """100,000 problems (a verify against the wrong target has one per message): a list
    held them all (~30 MB here); the spool holds at most HELD of them."""
    when = datetime(2024, 3, 4, tzinfo=UTC)
    problems = (Problem("verify", ("Inbox", f"f{i % 7}"), str(i), "missing: ", subject=f"s{i}",
                        date=when) for i in range(100_000))  # fmt: skip
    result = RunResult(1, "verify")
    tracemalloc.start()
    try:
        result.problems.extend(problems)
        counted = summary(result)  # the stats block reads them all back
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak
    assert counted["reasons"] == {"missing:": 100_000} and counted["warnings"] == 0
    assert len(result.problems) == 100_000 and result.failed
    assert [int(p.item) for p in result.problems][::9999] == list(range(0, 100_000, 9999))
    result.problems.close()


def test_appends_from_threads_are_all_kept() -> None:
    spool: Spool[tuple[int, int]] = _Small()  # type: ignore[assignment]

    def add(t: int) -> None:
        for i in range(2000):
            spool.append((t, i))

    threads = [threading.Thread(target=add, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = list(spool)
    assert sorted(got) == [(t, i) for t in range(4) for i in range(2000)]
    for n in range(4):  # each thread's own items in its order
        assert [i for t, i in got if t == n] == list(range(2000))


def test_a_full_temporary_disk_keeps_items_in_memory() -> None:
    """No space for the file: the items stay held, none is lost."""
    full = os.open("/dev/full", os.O_WRONLY)
    spool = _Small()
    spool.append(0)
    spool._file = os.fdopen(full, "wb")  # a file whose writes fail (ENOSPC)
    spool.extend(range(1, 10))
    assert list(spool) == list(range(10))
