"""What a PST sink wrote in this run, and the stable keys of the items an earlier file holds:
the lookups behind `find_duplicates` and `inventory`. I/O (a private SQLite database).

Kept in a temporary SQLite database, not in dicts: a run may write millions of items into
a 50 GB PST, and a few hundred bytes of Python objects per item would make the sink's
memory grow with the file. SQLite keeps a bounded page cache and puts the rest in an
anonymous temporary file (the empty database name), gone when the sink is."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable

from pstkit.model import FolderPath
from pstkit.scratch import scratch_db

_SCHEMA = """
CREATE TABLE written (folder TEXT, dup TEXT, target TEXT, skey TEXT);
CREATE INDEX written_dup ON written (folder, dup);
CREATE TABLE earlier (folder TEXT, skey TEXT, target TEXT, dup TEXT);
CREATE INDEX earlier_key ON earlier (folder, skey);
CREATE INDEX earlier_dup ON earlier (folder, dup);
"""


@functools.lru_cache(maxsize=1024)
def _folder(path: FolderPath) -> str:
    """A folder as the tables hold it (asked once or twice for every item written)."""
    return json.dumps(list(path))


class Written:
    """Items written in this run by (folder, duplicate key), and an earlier file's items
    by (folder, stable key). The sink calls it under its own lock."""

    #: rows added are inserted together, before the next look (one executemany a batch
    #: instead of an INSERT an item)
    PENDING_MAX = 512

    def __init__(self) -> None:
        self.db = scratch_db(threads=True)
        self.db.executescript(_SCHEMA)
        self.has_earlier = False
        self._pending: list[tuple[str, str, str, str]] = []

    def add(self, folder: FolderPath, dup: str, target: str, stable_key: str) -> None:
        self._pending.append((_folder(folder), dup, target, stable_key))
        if len(self._pending) >= self.PENDING_MAX:
            self._insert()

    def _insert(self) -> None:
        if self._pending:
            self.db.executemany("INSERT INTO written VALUES (?, ?, ?, ?)", self._pending)
            self._pending = []

    def dups(self, folder: FolderPath, dup: str) -> list[str]:
        """Ids of the items written in this run to `folder` with this duplicate key."""
        self._insert()
        return [t for (t,) in self.db.execute(
            "SELECT target FROM written WHERE folder = ? AND dup = ? ORDER BY rowid",
            (_folder(folder), dup))]

    def items(self, folder: FolderPath) -> list[tuple[str, str]]:
        """(target id, stable key) of the items written in this run to `folder`."""
        self._insert()
        return self.db.execute("SELECT target, skey FROM written WHERE folder = ? "
                               "ORDER BY rowid", (_folder(folder),)).fetchall()

    def add_earlier(self, rows: Iterable[tuple[FolderPath, str, str, str]]) -> None:
        """(folder, stable key, target id, duplicate key or "") of an earlier file's
        items."""
        self.db.executemany("INSERT INTO earlier VALUES (?, ?, ?, ?)",
                            ((_folder(f), k, t, d) for f, k, t, d in rows))
        self.has_earlier = True

    def earlier(self, folder: FolderPath, stable_key: str, dup: str) -> list[str]:
        """An earlier file's items in `folder` with this stable key (written from this
        store), else with this duplicate key (the same mail from another store)."""
        found = [t for (t,) in self.db.execute(
            "SELECT target FROM earlier WHERE folder = ? AND skey = ? ORDER BY rowid",
            (_folder(folder), stable_key))] if stable_key else []
        return found or [t for (t,) in self.db.execute(
            "SELECT target FROM earlier WHERE folder = ? AND dup = ? ORDER BY rowid",
            (_folder(folder), dup))]
