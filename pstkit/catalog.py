"""The store's SQLite catalog: schema and queries, nothing else.

`journal_mode=DELETE` (never WAL): a WAL catalog lives in three files, and a
store copied to removable media without its -wal file silently loses its
newest commits. `synchronous=FULL` makes every commit durable.
One connection is shared by threads, serialised by a lock.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from pstkit.catalog_ledger import LedgerQueries
from pstkit.catalog_schema import SCHEMA
from pstkit.errors import StoreError, StoreWriteError
from pstkit.model import FolderInfo, FolderPath, ItemKind, Role, StoredMessage
from pstkit.names import parse_flags_text

MESSAGE_COLUMNS = (
    "m.id, f.path, m.sha256, m.size, m.flags, m.keywords, m.received, m.message_id, "
    "m.subject, m.source_id, m.source_epoch, m.kind, m.file, m.offset, m.length"
)


@lru_cache(maxsize=4096)
def path_to_text(path: FolderPath) -> str:
    """The catalog's text of a folder path. Cached: it is asked for each message a batch
    delivers, of a handful of folders (json.dumps was 4 % of the PST writer's main
    thread, py-spy, 5,000 bench messages)."""
    return json.dumps(list(path), ensure_ascii=False)


def text_to_path(text: str) -> FolderPath:
    return tuple(json.loads(text))


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class FolderRow:
    id: int
    info: FolderInfo
    dirname: str


@dataclass(frozen=True)
class MessageRow:
    """A catalog row plus where its bytes are (`file`, and mbox offsets)."""

    msg: StoredMessage
    file: str
    offset: int | None
    length: int | None


@dataclass(frozen=True)
class NewMessage:
    """A row waiting for its file to become durable."""

    folder_id: int
    file: str
    offset: int | None
    length: int | None
    size: int
    sha256: str
    flags: str
    keywords: str
    received: str | None
    message_id: str
    subject: str
    kind: str
    source_key: str
    source_epoch: str
    source_id: str


class Catalog(LedgerQueries):
    def __init__(self, path: Path, *, create: bool = False) -> None:
        if not create and not path.exists():
            raise StoreError(f"catalog {path} is missing")
        self.path = path
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=DELETE")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            if create:
                # One transaction: with autocommit each CREATE was its own durable
                # commit (~10 fsyncs, 70 ms of a small export); now all or nothing.
                self._db.executescript(f"BEGIN;\n{SCHEMA}\nCOMMIT;")
        except sqlite3.DatabaseError as e:
            raise StoreError(f"catalog {path} is unreadable: {e}") from e
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything written inside is one durable commit, or none of it: anything that
        goes wrong, a failed COMMIT (a full disk) included, rolls back, so the connection
        is never left inside a transaction; SQLite's errors become StoreWriteError."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield
                self._db.execute("COMMIT")
            except BaseException as e:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if isinstance(e, sqlite3.Error):
                    raise StoreWriteError("catalog", str(e)) from e
                raise

    def _q(self, sql: str, args: Sequence[object] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.OperationalError as e:
                raise StoreWriteError("catalog", str(e)) from e

    # --- meta / runs -----------------------------------------------------

    def begin_run(self, kind: str, peer: str) -> int:
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO runs(kind, peer, started) VALUES(?, ?, ?)", (kind, peer, now_text())
            )
            return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, status: str, stats: dict[str, object]) -> None:
        self._q(
            "UPDATE runs SET finished=?, status=?, stats=? WHERE id=?",
            (now_text(), status, json.dumps(stats, ensure_ascii=False), run_id),
        )

    def runs(self) -> list[tuple[object, ...]]:
        return self._q(
            "SELECT id, kind, peer, started, finished, status, stats FROM runs ORDER BY id"
        )

    # --- folders ---------------------------------------------------------

    def folders(self, path: FolderPath | None = None) -> list[FolderRow]:
        """Every folder, or the one at `path` (by the unique index: no listing)."""
        where, args = ("WHERE path=?", [path_to_text(path)]) if path is not None else ("", [])
        rows = self._q(
            "SELECT id, path, role, source_name, container_class, dirname, selectable"
            f" FROM folders {where} ORDER BY path", args
        )
        return [_folder_row(r) for r in rows]

    def add_folder(self, info: FolderInfo, dirname: str) -> int:
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO folders(path, role, source_name, container_class, dirname, selectable)"
                " VALUES(?, ?, ?, ?, ?, ?)",
                (path_to_text(info.path), info.role.value if info.role else None,
                 info.source_name, info.container_class, dirname, int(info.selectable)),
            )  # fmt: skip
            return int(cur.lastrowid or 0)

    def set_folder_selectable(self, folder_id: int) -> None:
        self._q("UPDATE folders SET selectable=1 WHERE id=?", (folder_id,))

    def set_folder_role(self, folder_id: int, role: Role) -> None:
        self._q("UPDATE folders SET role=? WHERE id=? AND role IS NULL", (role.value, folder_id))

    # --- messages --------------------------------------------------------

    def has_source_id(self, folder_id: int, source_key: str, epoch: str, source_id: str) -> bool:
        return bool(
            self._q(
                "SELECT 1 FROM messages WHERE folder_id=? AND source_key=? AND source_epoch=?"
                " AND source_id=?",
                (folder_id, source_key, epoch, source_id),
            )
        )

    def source_message_ids(self, folder_id: int, source_key: str) -> set[int]:
        """Ids of the rows one source stored in a folder."""
        rows = self._q(
            "SELECT id FROM messages WHERE folder_id=? AND source_key=?", (folder_id, source_key)
        )
        return {int(str(r[0])) for r in rows}

    def source_keys(self) -> set[str]:
        """Every source this store holds mail of."""
        return {str(r[0]) for r in self._q("SELECT DISTINCT source_key FROM messages")}

    def count_source(self, source_key: str) -> int:
        """Messages stored from one source (over all folders and epochs)."""
        rows = self._q("SELECT COUNT(*) FROM messages WHERE source_key=?", (source_key,))
        return int(str(rows[0][0]))

    def epochs(self, folder_id: int, source_key: str) -> set[str]:
        """The source epochs this folder holds rows of (empty: a fresh folder)."""
        rows = self._q(
            "SELECT DISTINCT source_epoch FROM messages WHERE folder_id=? AND source_key=?",
            (folder_id, source_key),
        )
        return {str(r[0]) for r in rows}

    def stale_copy(
        self, folder_id: int, source_key: str, epoch: str, sha256: str, claimed: set[int]
    ) -> int | None:
        """A row with the same bytes from an older epoch of this source, not yet
        matched in this run (see pipeline: UIDVALIDITY changes)."""
        rows = self._q(
            "SELECT id FROM messages WHERE folder_id=? AND source_key=? AND sha256=?"
            " AND source_epoch<>? ORDER BY id",
            (folder_id, source_key, sha256, epoch),
        )
        for (row_id,) in rows:
            if int(str(row_id)) not in claimed:
                return int(str(row_id))
        return None

    def commit_batch(
        self,
        run_id: int,
        rows: Sequence[NewMessage],
        rekeys: Sequence[tuple[int, str, str]],
        cursors: dict[tuple[str, int], str],
        problems: Sequence[tuple[str, str, str, str]],
    ) -> None:
        """One transaction: new rows, re-keyed rows, cursors, problems."""
        with self.transaction():
            self._db.executemany(
                "INSERT INTO messages(folder_id, file, offset, length, size, sha256, flags,"
                " keywords, received, message_id, subject, kind, source_key, source_epoch,"
                " source_id, run_id) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(*_row_values(r), run_id) for r in rows],
            )
            self._db.executemany(
                "UPDATE messages SET source_epoch=?, source_id=? WHERE id=?",
                [(epoch, sid, row_id) for row_id, epoch, sid in rekeys],
            )
            self._db.executemany(
                "INSERT OR REPLACE INTO cursors(source_key, folder_id, cursor, run_id)"
                " VALUES(?,?,?,?)",
                [(k, f, c, run_id) for (k, f), c in cursors.items()],
            )
            self._add_problems(run_id, problems)

    def _add_problems(self, run_id: int, problems: Sequence[tuple[str, str, str, str]]) -> None:
        at = now_text()
        self._db.executemany(
            "INSERT INTO problems(run_id, stage, folder, item, reason, at) VALUES(?,?,?,?,?,?)",
            [(run_id, stage, folder, item, reason, at) for stage, folder, item, reason in problems],
        )

    def cursor(self, source_key: str, folder_id: int) -> str | None:
        rows = self._q(
            "SELECT cursor FROM cursors WHERE source_key=? AND folder_id=?", (source_key, folder_id)
        )
        return str(rows[0][0]) if rows else None

    def messages(
        self, folder_id: int | None = None, undelivered_to: str | None = None
    ) -> Iterator[MessageRow]:
        """All rows (of one folder), in id order, fetched in pages to keep memory flat.
        With `undelivered_to`, only those the ledger of that sink has not delivered: an
        anti-join on the ledger's primary key, so no set of delivered ids is held."""
        where = "AND m.folder_id=?" if folder_id is not None else ""
        fixed: list[object] = [] if folder_id is None else [folder_id]
        if undelivered_to is not None:
            where += (" AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.sink_key=?"
                      " AND d.message=m.id AND d.how<>'sending')")  # fmt: skip
            fixed.append(undelivered_to)
        for r in self._pages("", "", where, fixed):
            yield _message_row(r)

    def rows_for_target(
        self, folder_id: int, sink_key: str, target: str, planned: bool
    ) -> Iterator[tuple[MessageRow, str]]:
        """For verify: the rows of a folder that are in target folder `target` (path
        text), each with the target id the ledger holds for it ("" if none). A row is
        where the ledger delivered it; a row not delivered is where the plan sends its
        folder (`planned`: the plan sends this folder to `target`)."""
        join = "LEFT JOIN deliveries d ON d.sink_key=? AND d.message=m.id"
        where = ("AND m.folder_id=? AND CASE WHEN d.how IS NOT NULL AND d.how<>'sending'"
                 " THEN d.target_folder=? ELSE ? END")  # fmt: skip
        for r in self._pages(", d.target_id", join, where, [sink_key, folder_id, target, planned]):
            yield _message_row(r[:-1]), str(r[-1] or "")

    def _pages(
        self, more: str, join: str, where: str, args: list[object]
    ) -> Iterator[tuple[object, ...]]:
        """Rows in id order, fetched in pages of 1000 to keep memory flat."""
        last = 0
        while True:
            page = self._q(
                f"SELECT {MESSAGE_COLUMNS}{more} FROM messages m JOIN folders f ON"
                f" f.id=m.folder_id {join} WHERE m.id>? {where} ORDER BY m.id LIMIT 1000",
                [*args[: join.count("?")], last, *args[join.count("?"):]],
            )
            if not page:
                return
            yield from page
            last = int(str(page[-1][0]))

    def larger_than(self, size: int) -> list[MessageRow]:
        """Messages over `size` bytes (a target's per-item limit, reported before writing)."""
        rows = self._q(f"SELECT {MESSAGE_COLUMNS} FROM messages m JOIN folders f ON "
                       "f.id=m.folder_id WHERE m.size>? ORDER BY m.id", (size,))
        return [_message_row(r) for r in rows]

    def files(self) -> Iterator[tuple[str, int, str, str | None]]:
        """(file, size, sha256, received) of every message in id order, in pages:
        what a seal streams, without building whole rows (a tenth of its CPU)."""
        last = 0
        sql = ("SELECT id, file, size, sha256, received FROM messages WHERE id>?"
               " ORDER BY id LIMIT 1000")  # fmt: skip
        while page := self._q(sql, (last,)):
            for _, file, size, sha, received in page:
                yield str(file), int(str(size)), str(sha), str(received) if received else None
            last = int(str(page[-1][0]))

    def counts(self) -> dict[int, tuple[int, int]]:
        rows = self._q("SELECT folder_id, COUNT(*), COALESCE(SUM(size),0) FROM messages GROUP BY 1")
        return {int(str(f)): (int(str(n)), int(str(b))) for f, n, b in rows}

    def max_mbox_end(self, file: str) -> int:
        rows = self._q("SELECT MAX(offset + length) FROM messages WHERE file=?", (file,))
        return int(str(rows[0][0])) if rows and rows[0][0] is not None else 0

    # --- deliveries (the ledger) ----------------------------------------------

    def record_deliveries(
        self,
        run_id: int,
        sink_key: str,
        done: Sequence[tuple[int, FolderPath, str, str]],
        problems: Sequence[tuple[str, str, str, str]] = (),
    ) -> None:
        at = now_text()
        with self.transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO deliveries(sink_key, message, target_folder, target_id,"
                " how, run_id, at) VALUES(?,?,?,?,?,?,?)",
                [(sink_key, m, path_to_text(f), t, h, run_id, at) for m, f, t, h in done],
            )
            self._add_problems(run_id, problems)

    def record_problems(self, run_id: int, problems: Sequence[tuple[str, str, str, str]]) -> None:
        """Problems found outside a batch of stored or delivered items (a failed repair)."""
        with self.transaction():
            self._add_problems(run_id, problems)

    def problems(self, run_id: int | None = None) -> list[tuple[object, ...]]:
        where, args = ("WHERE run_id=?", (run_id,)) if run_id is not None else ("", ())
        return self._q(
            f"SELECT run_id, stage, folder, item, reason, at FROM problems {where} ORDER BY id",
            args,
        )

    def describe_item(self, stage: str, folder: FolderPath, item: str) -> tuple[str, str]:
        """(subject, received) of a problem's item, so reports can name it by
        subject and date: an import problem's item is a message id, an export
        problem's the source id in its folder ("", "" when never stored)."""
        if stage == "export":
            sql = ("SELECT m.subject, m.received FROM messages m JOIN folders f ON f.id=m.folder_id"
                   " WHERE f.path=? AND m.source_id=? ORDER BY m.id LIMIT 1")  # fmt: skip
            rows = self._q(sql, (path_to_text(folder), item))
        elif item.isdigit():
            rows = self._q("SELECT subject, received FROM messages WHERE id=?", (int(item),))
        else:
            rows = []
        return (str(rows[0][0]), str(rows[0][1] or "")) if rows else ("", "")

    def integrity_check(self) -> str:
        return str(self._q("PRAGMA integrity_check")[0][0])


def _folder_row(r: tuple[object, ...]) -> FolderRow:
    fid, path, role, source_name, cclass, dirname, selectable = r
    info = FolderInfo(
        path=text_to_path(str(path)),
        role=Role(str(role)) if role else None,
        source_name=str(source_name),
        selectable=bool(selectable),
        container_class=str(cclass),
    )
    return FolderRow(int(str(fid)), info, str(dirname))


def _message_row(r: tuple[object, ...]) -> MessageRow:
    (mid, path, sha, size, flags, kw, received, msgid, subject, sid, epoch, kind, file, off, ln) = r
    msg = StoredMessage(
        id=int(str(mid)),
        folder=text_to_path(str(path)),
        sha256=str(sha),
        size=int(str(size)),
        flags=parse_flags_text(str(flags)),
        keywords=frozenset(json.loads(str(kw))),
        received=datetime.fromisoformat(str(received)) if received else None,
        message_id=str(msgid),
        subject=str(subject),
        source_id=str(sid),
        source_epoch=str(epoch),
        kind=ItemKind(str(kind)),
    )
    return MessageRow(
        msg, str(file), int(str(off)) if off is not None else None,
        int(str(ln)) if ln is not None else None,
    )  # fmt: skip


def _row_values(r: NewMessage) -> tuple[object, ...]:
    return (
        r.folder_id, r.file, r.offset, r.length, r.size, r.sha256, r.flags, r.keywords,
        r.received, r.message_id, r.subject, r.kind, r.source_key, r.source_epoch, r.source_id,
    )  # fmt: skip
