"""A directory of single-message files (.eml, .msg text, Apple .emlx) as a source.

The directory is one folder named after it; subdirectories are subfolders.
A file that does not start like an RFC 5322 message (a header line, or an
mbox "From " line) is reported as a skip, not guessed at. Apple Mail's
.emlx is unwrapped: its first line is the byte count of the message that
follows, then an XML property list that is not part of the message.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pstkit.errors import SourceError
from pstkit.filecopy import read_whole
from pstkit.fsutil import inner
from pstkit.headers import sent_date
from pstkit.location import MSG_NOT_SUPPORTED, OLE2_MAGIC, Location
from pstkit.model import Fetched, FetchResult, FolderInfo, FolderPath, MessageMeta, Skipped
from pstkit.names import disk_name, disk_text
from pstkit.options import ConnectOptions, FetchFilter

_HEADER_LINE = re.compile(rb"^(From |[!-9;-~]+[ \t]*:)")


def unwrap_emlx(data: bytes) -> bytes | None:
    first, _, rest = data.partition(b"\n")
    if not first.strip().isdigit():
        return None
    count = int(first.strip())
    return rest[:count] if count <= len(rest) else None


def looks_like_message(data: bytes) -> bool:
    return bool(_HEADER_LINE.match(data))


def _files(directory: Path) -> list[Path]:
    """The folder's messages in name order: every visible file (a bad one is reported by _read)."""
    return sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))


class EmlSource:
    max_connections = 2

    def __init__(self, location: Location, options: ConnectOptions) -> None:
        self.root = Path(location.path).absolute()
        if not self.root.is_dir():
            raise SourceError(self.root, "not a directory of message files")
        self.key = f"eml:{self.root}"
        self._dirs: dict[FolderPath, Path] = {}
        top = inner(self.root, frozenset()) or frozenset()
        self._scan(self.root, (disk_name(self.root.name) or "eml",), top)

    def _scan(self, directory: Path, path: FolderPath, seen: frozenset[tuple[int, int]]
              ) -> None:  # fmt: skip
        if path in self._dirs:  # `Geschäft` beside a Latin-1 `Gesch\xe4ft`: one name
            raise SourceError(self._dirs[path], f"it and {directory} both hold folder "
                              f"{'/'.join(path)!r}; move one of them out of the tree")
        self._dirs[path] = directory
        for sub in sorted(
            p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")
        ):
            if (below := inner(sub, seen)) is not None:
                self._scan(sub, (*path, disk_name(sub.name)), below)

    def folders(self) -> list[FolderInfo]:
        return [FolderInfo(p, None, disk_text(str(d)), message_count=len(_files(d)))
                for p, d in sorted(self._dirs.items())]  # fmt: skip

    def fetch(
        self, folder: FolderInfo, cursor: str | None, filt: FetchFilter,
        known: Container[tuple[str, str]],
    ) -> Iterator[FetchResult]:  # fmt: skip
        for path in _files(self._dirs[folder.path]):
            source_id = disk_text(str(path.relative_to(self.root)))
            if ("", source_id) not in known:
                yield self._read(folder.path, path, source_id)

    def _read(self, folder: FolderPath, path: Path, source_id: str) -> FetchResult:
        meta = MessageMeta(folder=folder, source_id=source_id)
        try:
            data, _, origin = read_whole(str(path))
        except OSError as e:
            return Skipped(meta, f"cannot read {disk_text(path.name)}: {e.strerror or e}")
        if path.suffix.lower() == ".emlx":
            inner = unwrap_emlx(data)
            if inner is None:
                return Skipped(meta, "not an Apple .emlx file (bad byte-count line)")
            data, origin = inner, None  # a part of the file: not copied whole
        if not data:
            return Skipped(meta, "empty file")
        if data.startswith(OLE2_MAGIC):
            return Skipped(meta, MSG_NOT_SUPPORTED)
        if not looks_like_message(data):
            return Skipped(meta, "not an RFC 5322 message (does not start with a header line)")
        return Fetched(
            MessageMeta(folder, source_id, received=sent_date(data), size=len(data)), data,
            origin=origin,
        )

    def committed(self, folder: FolderInfo, source_ids: Sequence[str]) -> None:
        pass

    def close(self) -> None:
        pass


if TYPE_CHECKING:
    from pstkit.protocols import Source

    _source: type[Source] = EmlSource
