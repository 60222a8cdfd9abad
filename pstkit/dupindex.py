"""Finding a message already in a local target folder (for `--duplicates`).

Key: the Message-ID, or for mail without one the SHA-256 of its bytes. Built
lazily per folder from the target's own items, then kept up to date with
what this run delivers. Thread-safe (folders import in parallel).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable

from pstkit.headers import summary
from pstkit.model import FolderPath
from pstkit.protocols import TargetItem


def duplicate_key(raw: bytes) -> str:
    message_id = summary(raw)[0]
    return f"id:{message_id}" if message_id else f"sha:{hashlib.sha256(raw).hexdigest()}"


def target_item(target_id: str, raw: bytes) -> TargetItem:
    """What verify needs to know of one message a local target holds."""
    message_id, subject = summary(raw)
    return TargetItem(
        target_id=target_id, size=len(raw), subject=subject, message_id=message_id,
        sha256=hashlib.sha256(raw).hexdigest(),
    )  # fmt: skip


class DuplicateIndex:
    def __init__(self, load: Callable[[FolderPath], Iterable[tuple[str, str]]]) -> None:
        """`load(folder)` yields (key, target id) for what the folder holds now."""
        self._load = load
        self._folders: dict[FolderPath, dict[str, list[str]]] = {}
        self._lock = threading.Lock()

    def _index(self, folder: FolderPath) -> dict[str, list[str]]:
        with self._lock:
            if folder not in self._folders:
                index: dict[str, list[str]] = {}
                for key, target_id in self._load(folder):
                    index.setdefault(key, []).append(target_id)
                self._folders[folder] = index
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
