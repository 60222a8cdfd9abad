"""Finding a message already in a local target folder (for `--duplicates`).

Key: the Message-ID, or for mail without one the SHA-256 of its bytes. Built
lazily per folder from the target's own items, then kept up to date with
what this run delivers. Thread-safe (folders import in parallel).
Only the folders used last are kept (`keep`): an import goes folder by folder, and an
index of every folder it has filled would grow with the whole mailbox. A folder dropped
and needed again is read again from the target, which holds what this run delivered.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable

from pstkit.headers import message_id, summary
from pstkit.model import FolderPath
from pstkit.protocols import TargetItem


def duplicate_key(raw: bytes) -> str:
    mid = message_id(raw)  # not summary(): its subject decoding is a third of the time
    return f"id:{mid}" if mid else f"sha:{hashlib.sha256(raw).hexdigest()}"


def target_item(target_id: str, raw: bytes) -> TargetItem:
    """What verify needs to know of one message a local target holds."""
    message_id, subject = summary(raw)
    return TargetItem(
        target_id=target_id, size=len(raw), subject=subject, message_id=message_id,
        sha256=hashlib.sha256(raw).hexdigest(),
    )  # fmt: skip


class DuplicateIndex:
    def __init__(
        self, load: Callable[[FolderPath], Iterable[tuple[str, str]]], keep: int = 4
    ) -> None:
        """`load(folder)` yields (key, target id) for what the folder holds now; the
        indexes of the `keep` folders used last are held (at least one per connection)."""
        self._load = load
        self._keep = max(1, keep)
        self._folders: OrderedDict[FolderPath, dict[str, list[str]]] = OrderedDict()
        self._lock = threading.Lock()

    def _index(self, folder: FolderPath) -> dict[str, list[str]]:
        with self._lock:
            if folder not in self._folders:
                index: dict[str, list[str]] = {}
                for key, target_id in self._load(folder):
                    index.setdefault(key, []).append(target_id)
                self._folders[folder] = index
                while len(self._folders) > self._keep:
                    self._folders.popitem(last=False)
            self._folders.move_to_end(folder)
            return self._folders[folder]

    def find(self, folder: FolderPath, raw: bytes) -> list[str]:
        return list(self._index(folder).get(duplicate_key(raw), []))

    def add(self, folder: FolderPath, raw: bytes, target_id: str) -> None:
        with self._lock:
            if folder in self._folders:
                self._folders[folder].setdefault(duplicate_key(raw), []).append(target_id)

    def forget(self, folder: FolderPath) -> None:
        with self._lock:
            self._folders.pop(folder, None)
