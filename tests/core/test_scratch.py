"""The private temporary database three working sets share (verify, PST writer, checker)."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from pstkit.scratch import scratch_db


def _from_other_thread(db: sqlite3.Connection) -> BaseException | int:
    out: list[BaseException | int] = []

    def run() -> None:
        try:
            out.append(db.execute("SELECT count(*) FROM t").fetchone()[0])
        except sqlite3.ProgrammingError as e:
            out.append(e)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    return out[0]


@pytest.mark.parametrize("threads", [True, False])
def test_other_threads_only_when_asked(threads: bool) -> None:
    db = scratch_db(threads=threads)
    db.execute("CREATE TABLE t (x)")
    db.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(3)])
    got = _from_other_thread(db)
    if threads:
        assert got == 3
    else:
        assert isinstance(got, sqlite3.ProgrammingError)
    db.close()


def test_no_journal_no_sync_bounded_cache() -> None:
    db = scratch_db(cache_kib=1234)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "off"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 0
    assert db.execute("PRAGMA cache_size").fetchone()[0] == -1234
    # a temporary database: no file name, nothing left behind on close
    assert db.execute("PRAGMA database_list").fetchone()[2] == ""
    db.close()
