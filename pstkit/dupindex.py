"""Finding a message already in a local target folder (for `--duplicates`).

Key: the Message-ID, or for mail without one the SHA-256 of its bytes. Built
lazily per folder from the target's own items, then kept up to date with
what this run delivers. Thread-safe (folders import in parallel).
Only the folders used last are kept (`keep`): an import goes folder by folder, and an
index of every folder it has filled would grow with the whole mailbox. A folder dropped
and needed again is read again from the target, which holds what this run delivered.
The index lives in a private temporary SQLite file with a small page cache, not in a
dict: a dict of a folder's keys and ids grew with the largest folder (~250 bytes an
item: 2.5 MiB at 10,000, 250 MiB for an Inbox of a million), and made the import's
peak RSS at 100,000 messages 1.22 times that at 10,000 (issue 19's scale benchmark).
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable

from pstkit.headers import message_id, summary
from pstkit.model import FolderPath
from pstkit.protocols import TargetItem
from pstkit.scratch import scratch_db


def duplicate_key(raw: bytes) -> str:
    mid = message_id(raw)  # not summary(): its subject decoding is a third of the time
    return f"id:{mid}" if mid else f"sha:{hashlib.sha256(raw).hexdigest()}"


def target_item(target_id: str, raw: bytes, ends_lines: bool = False) -> TargetItem:
    """What verify needs to know of one message a local target holds; `ends_lines`: the
    target ends a message without a final line end with one (`TargetItem.sha256_unended`)."""
    message_id, subject = summary(raw)
    unended = ""
    if ends_lines and raw.endswith(b"\n"):  # one pass: the digest without it, then with it
        h = hashlib.sha256(memoryview(raw)[:-1])
        unended = h.hexdigest()
        h.update(b"\n")
        digest = h.hexdigest()
    else:
        digest = hashlib.sha256(raw).hexdigest()
    return TargetItem(
        target_id=target_id, size=len(raw), subject=subject, message_id=message_id,
        sha256=digest, sha256_unended=unended,
    )  # fmt: skip


class DuplicateIndex:
    #: KiB of SQLite page cache: a lookup is one B-tree descent, whose pages the OS
    #: caches; more cache only makes the peak grow with the folder up to it.
    CACHE_KIB = 256

    def __init__(
        self, load: Callable[[FolderPath], Iterable[tuple[str, str]]], keep: int = 4
    ) -> None:
        """`load(folder)` yields (key, target id) for what the folder holds now; the
        indexes of the `keep` folders used last are held (at least one per connection)."""
        self._load = load
        self._keep = max(1, keep)
        self._folders: OrderedDict[FolderPath, int] = OrderedDict()
        self._numbers = itertools.count()
        self._lock = threading.Lock()
        self._db = scratch_db(cache_kib=self.CACHE_KIB, threads=True)
        self._db.execute("CREATE TABLE keys(folder INTEGER, key TEXT, target_id TEXT)")
        self._db.execute("CREATE INDEX keys_key ON keys(folder, key)")

    def _number(self, folder: FolderPath) -> int:
        """The folder's number in the table, its items loaded first if it is not held
        (call with the lock held)."""
        if folder not in self._folders:
            number = self._folders[folder] = next(self._numbers)
            rows = ((number, key, target_id) for key, target_id in self._load(folder))
            with self._db:
                while chunk := list(itertools.islice(rows, 1000)):
                    self._db.executemany("INSERT INTO keys VALUES(?,?,?)", chunk)
                while len(self._folders) > self._keep:
                    _, dropped = self._folders.popitem(last=False)
                    self._db.execute("DELETE FROM keys WHERE folder=?", (dropped,))
        self._folders.move_to_end(folder)
        return self._folders[folder]

    def find(self, folder: FolderPath, raw: bytes) -> list[str]:
        key = duplicate_key(raw)
        with self._lock:
            number = self._number(folder)
            found = self._db.execute(
                "SELECT target_id FROM keys WHERE folder=? AND key=? ORDER BY rowid",
                (number, key),
            ).fetchall()
        return [t for (t,) in found]

    def add(self, folder: FolderPath, raw: bytes, target_id: str) -> None:
        key = duplicate_key(raw)
        with self._lock:
            if folder in self._folders:
                self._db.execute(
                    "INSERT INTO keys VALUES(?,?,?)", (self._folders[folder], key, target_id)
                )

    def forget(self, folder: FolderPath) -> None:
        with self._lock:
            number = self._folders.pop(folder, None)
            if number is not None:
                self._db.execute("DELETE FROM keys WHERE folder=?", (number,))

    def close(self) -> None:
        with self._lock:
            self._db.close()
