"""The checker's per-block and per-node state: a private SQLite database, not dicts.

A 50 GB PST has millions of blocks; a dict entry per block (a few hundred bytes) made the
checker's memory grow with the file (277 MB at 5 GiB). SQLite keeps a bounded page cache
and puts the rest in an anonymous temporary file (the empty database name), gone when the
connection is. SQLite integers are signed: unsigned 64-bit values (a damaged file may hold
any) are stored shifted into the signed range and shifted back when read."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pstkit.scratch import scratch_db

_SCHEMA = """
CREATE TABLE blocks (bid INTEGER PRIMARY KEY, ib INTEGER, cb INTEGER,
                     refs INTEGER NOT NULL DEFAULT 0);
CREATE TABLE nodes (nid INTEGER PRIMARY KEY, data INTEGER, sub INTEGER, parent INTEGER);
CREATE TABLE pages (ib INTEGER PRIMARY KEY);
CREATE TABLE missing (bid INTEGER UNIQUE);
"""
_TOP = 1 << 63


def s64(value: int) -> int:
    return value - (1 << 64) if value >= _TOP else value


def u64(value: int) -> int:
    return value + (1 << 64) if value < 0 else value


class State:
    """Blocks (BBT), nodes (NBT), B-tree pages and references of one file."""

    def __init__(self) -> None:
        self.db = scratch_db(cache_kib=8000)  # its cache is the bound on memory
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def add_blocks(self, rows: Iterable[tuple[int, int, int]]) -> None:
        """(bid, ib, cb); a BID given twice keeps its last entry (as a dict would)."""
        self.db.executemany("INSERT OR REPLACE INTO blocks (bid, ib, cb) VALUES (?, ?, ?)",
                            ((s64(b), s64(i), c) for b, i, c in rows))

    def add_nodes(self, rows: Iterable[tuple[int, int, int, int]]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO nodes VALUES (?, ?, ?, ?)",
                            ((n, s64(d), s64(s), p) for n, d, s, p in rows))

    def add_page(self, ib: int) -> bool:
        """Record a B-tree page; False when it was recorded before (a page seen twice)."""
        return self.db.execute("INSERT OR IGNORE INTO pages VALUES (?)", (s64(ib),)).rowcount == 1

    def index(self) -> None:
        """Once both trees are in: the lookups by parent and by file offset."""
        self.db.execute("CREATE INDEX nodes_parent ON nodes (parent)")
        self.db.execute("CREATE INDEX blocks_ib ON blocks (ib)")

    def counts(self) -> tuple[int, int]:
        nodes = self.db.execute("SELECT count(*) FROM nodes").fetchone()[0]
        return int(nodes), int(self.db.execute("SELECT count(*) FROM blocks").fetchone()[0])

    def block(self, bid: int) -> tuple[int, int] | None:
        row = self.db.execute("SELECT ib, cb FROM blocks WHERE bid = ?", (s64(bid),)).fetchone()
        return None if row is None else (u64(row[0]), int(row[1]))

    def blocks(self) -> Iterator[tuple[int, int, int]]:
        """(bid, ib, cb) in BID order."""
        for bid, ib, cb in self.db.execute("SELECT bid, ib, cb FROM blocks ORDER BY bid"):
            yield u64(bid), u64(ib), cb

    def node(self, nid: int) -> tuple[int, int, int] | None:
        row = self.db.execute("SELECT data, sub, parent FROM nodes WHERE nid = ?",
                              (nid,)).fetchone()
        return None if row is None else (u64(row[0]), u64(row[1]), int(row[2]))

    def node_refs(self) -> Iterator[tuple[int, int]]:
        """(data, sub) BIDs of every node."""
        for data, sub in self.db.execute("SELECT data, sub FROM nodes ORDER BY nid"):
            yield u64(data), u64(sub)

    def refer(self, bid: int) -> int:
        """Count one reference to `bid` (its bit 0 cleared); how many it has now, or 0 for a
        BID not in the BBT (seen once: 1, then 2 for any later)."""
        key = s64(bid & ~1)
        row = self.db.execute("UPDATE blocks SET refs = refs + 1 WHERE bid = ? RETURNING refs",
                              (key,)).fetchone()
        if row is not None:
            return int(row[0])
        new = self.db.execute("INSERT OR IGNORE INTO missing VALUES (?)", (key,)).rowcount
        return 1 if new else 2

    def missing(self) -> Iterator[int]:
        for (bid,) in self.db.execute("SELECT bid FROM missing ORDER BY rowid"):
            yield u64(bid)

    def miscounted(self, strict: bool) -> Iterator[tuple[int, int]]:
        """(bid, references) of blocks referenced never, or (strict) more than once."""
        where = "refs != 1" if strict else "refs = 0"
        for bid, refs in self.db.execute(f"SELECT bid, refs FROM blocks WHERE {where} "
                                         "ORDER BY bid"):
            yield u64(bid), refs

    def used(self) -> Iterator[tuple[int, int]]:
        """(ib, cb) of every block, and (ib, -1) of every B-tree page, in file order."""
        rows = self.db.execute("SELECT ib, cb FROM blocks UNION ALL SELECT ib, -1 FROM pages "
                               "ORDER BY 1")
        for ib, cb in rows:
            yield u64(ib), cb

    def orphans(self) -> Iterator[tuple[int, int]]:
        """(nid, parent) of folders and messages whose parent is not a folder."""
        yield from self.db.execute(
            "SELECT n.nid, n.parent FROM nodes n LEFT JOIN nodes p ON p.nid = n.parent "
            "WHERE n.nid & 31 IN (2, 3, 4) AND n.parent != 0 "
            "AND (p.nid IS NULL OR n.parent & 31 != 2) ORDER BY n.nid")

    def folders(self) -> Iterator[int]:
        for (nid,) in self.db.execute("SELECT nid FROM nodes WHERE nid & 31 = 2 ORDER BY nid"):
            yield nid

    def kids(self, folder: int) -> list[int]:
        """Folders, search folders and messages under `folder` (not itself)."""
        return [n for (n,) in self.db.execute(
            "SELECT nid FROM nodes WHERE parent = ? AND nid != parent AND nid & 31 IN (2, 3, 4)"
            " ORDER BY nid", (folder,))]

    def count_type(self, kind: int) -> int:
        return int(self.db.execute("SELECT count(*) FROM nodes WHERE nid & 31 = ?",
                                   (kind,)).fetchone()[0])
