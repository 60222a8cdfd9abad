"""Gmail: the same message appears in "[Gmail]/All Mail" and in every label
folder. Each folder is still exported as Gmail presents it, but the bytes
of a message (keyed by its X-GM-MSGID) are downloaded once and served again
from a local spool for its other folders.

The spool is a private temporary directory (one file per message, written
once) with a byte budget: the least recently used files are dropped past
it, which costs at worst a second download, never a wrong message.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path


class GmailSpool:
    """Thread-safe, bounded, on-disk cache X-GM-MSGID -> message bytes."""

    def __init__(self, max_bytes: int, directory: Path | None = None) -> None:
        self.max_bytes = max_bytes
        self._dir = tempfile.TemporaryDirectory(prefix="pstkit-gmail-", dir=directory)
        self._sizes: OrderedDict[int, int] = OrderedDict()
        self._total = 0
        self._lock = threading.Lock()
        self.hits = 0

    def _path(self, msgid: int) -> Path:
        return Path(self._dir.name) / f"{msgid}"

    def get(self, msgid: int | None) -> bytes | None:
        if msgid is None:
            return None
        with self._lock:
            if msgid not in self._sizes:
                return None
            self._sizes.move_to_end(msgid)
            self.hits += 1
            return self._path(msgid).read_bytes()

    def put(self, msgid: int | None, raw: bytes) -> None:
        if msgid is None or len(raw) > self.max_bytes:
            return
        with self._lock:
            if msgid in self._sizes:
                return
            tmp = self._path(msgid).with_suffix(".tmp")
            tmp.write_bytes(raw)
            os.replace(tmp, self._path(msgid))
            self._sizes[msgid] = len(raw)
            self._total += len(raw)
            while self._total > self.max_bytes:
                old, size = self._sizes.popitem(last=False)
                self._path(old).unlink(missing_ok=True)
                self._total -= size

    @property
    def total_bytes(self) -> int:
        return self._total

    def close(self) -> None:
        self._dir.cleanup()
