"""An in-memory Source (a stand-in for a remote server in store tests)."""

from __future__ import annotations

from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass, field

from pstkit.model import (
    Fetched,
    FetchResult,
    Flag,
    FolderInfo,
    FolderPath,
    MessageMeta,
    Role,
    Skipped,
)
from pstkit.options import FetchFilter


@dataclass
class Item:
    uid: int
    raw: bytes
    flags: frozenset[Flag] = frozenset()
    bad: str = ""  # a reason: yield Skipped instead


@dataclass
class ListSource:
    """Folders of items with IMAP-like ids: epoch = uidvalidity, cursor = last uid."""

    folders_: dict[FolderPath, list[Item]]
    epoch: str = "1"
    key: str = "test://list"
    max_connections: int = 4
    roles: dict[FolderPath, Role] = field(default_factory=dict)
    committed_ids: list[str] = field(default_factory=list)

    def folders(self) -> list[FolderInfo]:
        return [
            FolderInfo(p, self.roles.get(p), message_count=len(v)) for p, v in self.folders_.items()
        ]

    def fetch(
        self, folder: FolderInfo, cursor: str | None, filt: FetchFilter,
        known: Container[tuple[str, str]],
    ) -> Iterator[FetchResult]:  # fmt: skip
        last = 0
        if cursor and cursor.split(":")[0] == self.epoch:
            last = int(cursor.split(":")[1])
        for item in self.folders_[folder.path]:
            if item.uid <= last:
                continue
            meta = MessageMeta(
                folder.path, str(item.uid), self.epoch, item.flags, size=len(item.raw)
            )
            cur = f"{self.epoch}:{item.uid}"
            yield Skipped(meta, item.bad, cur) if item.bad else Fetched(meta, item.raw, cur)

    def committed(self, folder: FolderInfo, source_ids: Sequence[str]) -> None:
        self.committed_ids.extend(source_ids)

    def close(self) -> None:
        pass
