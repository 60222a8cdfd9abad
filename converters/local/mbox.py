"""mbox source and sink.

Source: one mbox file, or a Thunderbird-style tree (`Name` files with
`Name.sbd/` subfolder directories). Separators: mboxo/mboxrd "From sender
date" and Thunderbird's "From - date"; bodies are un-quoted as mboxrd.
Bytes before the first separator, or a file with none, are reported, never
dropped silently. Flags are read from Status/X-Status/X-Mozilla-Status
headers (the bytes are not changed). The id of a message is the SHA-256 of its bytes
without those state headers, plus its occurrence count: it stays when messages are appended
and when a mail program marks one read (Thunderbird rewrites X-Mozilla-Status in place;
with a digest of the whole message each re-run stored the read message again). Ids of that
earlier kind are epoch "" and these ID_EPOCH: a store made before re-matches its messages by
their SHA-256 (the pipeline's epoch change) instead of storing them twice.
Sink: a Thunderbird-style tree of mboxrd files. Appending is guarded: before a batch, the
file's size goes into a mark file beside it (`.NAME.pstkit-append`), removed once the batch
is durable. A run killed mid-batch leaves the mark, and the next import, as it begins the
folder, cuts the file back to that size: the batch was never confirmed to the ledger, so it
is sent again, and no message cut short is left glued to the next one. `verify` and `plan`
only read: the mark may be a running import's.
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import os
import re
import threading
from collections.abc import Container, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pstkit.dupindex import DuplicateIndex, target_item
from pstkit.errors import SourceError, TargetWriteError
from pstkit.fsutil import fsync_path, inner
from pstkit.headers import header_block
from pstkit.location import Location
from pstkit.mboxfmt import frame, split_mbox, without_state
from pstkit.model import (
    Delivered,
    Fetched,
    FetchResult,
    Flag,
    FolderInfo,
    FolderPath,
    MessageMeta,
    Role,
    Skipped,
    StoredMessage,
)
from pstkit.names import disk_text, escape_segment, unescape_segment
from pstkit.options import ConnectOptions, FetchFilter
from pstkit.protocols import BatchLimit, Failed, TargetItem

#: the epoch of ids without the state headers (see the module's docstring)
ID_EPOCH = "2"
_SKIP_SUFFIXES = (".msf", ".dat", ".json", ".sqlite", ".lock")
log = logging.getLogger("pstkit.mbox")


def scan_tree(root: Path, strict: bool = False) -> dict[FolderPath, Path]:
    """A file is one folder; a directory is a Thunderbird tree. `strict` (a source): two
    files that name one folder are an error."""
    if root.is_file():
        return {(root.stem if root.suffix.lower() in (".mbox", ".mbx") else root.name,): root}
    found: dict[FolderPath, Path] = {}
    _scan_dir(root, (), found, strict, inner(root, frozenset()) or frozenset())
    return found


def _scan_dir(directory: Path, prefix: FolderPath, found: dict[FolderPath, Path],
              strict: bool, seen: frozenset[tuple[int, int]]) -> None:  # fmt: skip
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        name = entry.name
        if name.startswith(".") or name.lower().endswith(_SKIP_SUFFIXES):
            continue
        if entry.is_file():
            stem = name[:-5] if name.lower().endswith(".mbox") else name
            folder = (*prefix, unescape_segment(stem))
            # `Inbox` beside `Inbox.mbox` (or `x%41` beside `xA`) name one folder: keeping
            # the last one dropped the other's mail with exit 0, so a source stops. (A
            # target appends to one of them: nothing is lost there.)
            if strict and folder in found:
                raise SourceError(found[folder], f"it and {entry.path} both hold folder "
                                  f"{'/'.join(folder)!r}; move one of them out of the tree")
            found[folder] = Path(entry.path)
        elif entry.is_dir() and name.endswith(".sbd") and (
                below := inner(entry.path, seen)) is not None:
            _scan_dir(Path(entry.path), (*prefix, unescape_segment(name[:-4])), found, strict,
                      below)  # fmt: skip


def _asctime(line: bytes) -> datetime | None:
    parts = line.decode("ascii", "replace").split()
    try:
        return datetime.strptime(" ".join(parts[2:7]), "%a %b %d %H:%M:%S %Y").replace(tzinfo=UTC)
    except (ValueError, IndexError):
        return None


_X_STATUS = ((b"A", Flag.ANSWERED), (b"F", Flag.FLAGGED), (b"D", Flag.DELETED), (b"T", Flag.DRAFT))
_STATUS = re.compile(
    rb"^(Status|X-Status|X-Mozilla-Status):[ \t]*(\S*)", re.MULTILINE | re.IGNORECASE
)


def status_flags(raw: bytes) -> frozenset[Flag]:
    """Flags from the status headers mail programs keep inside mbox files."""
    flags: set[Flag] = set()
    for name, value in _STATUS.findall(header_block(raw)):
        key = name.lower()
        if key == b"status" and b"R" in value:
            flags.add(Flag.SEEN)
        elif key == b"x-status":
            flags |= {f for c, f in _X_STATUS if c in value}
        elif key == b"x-mozilla-status":
            flags |= _mozilla_flags(value)
    return frozenset(flags)


def _mozilla_flags(value: bytes) -> set[Flag]:
    try:
        bits = int(value, 16)
    except ValueError:
        return set()
    table = ((0x1, Flag.SEEN), (0x2, Flag.ANSWERED), (0x4, Flag.FLAGGED),
             (0x8, Flag.DELETED), (0x1000, Flag.FORWARDED))  # fmt: skip
    return {f for bit, f in table if bits & bit}


class MboxSource:
    max_connections = 2

    def __init__(self, location: Location, options: ConnectOptions) -> None:
        self.root = Path(location.path).absolute()
        if not self.root.exists():
            raise SourceError(self.root, "no such file or directory")
        self.key = f"mbox:{self.root}"
        self._files = scan_tree(self.root, strict=True)

    def folders(self) -> list[FolderInfo]:
        return [FolderInfo(p, None, disk_text(str(f))) for p, f in sorted(self._files.items())]

    def fetch(
        self, folder: FolderInfo, cursor: str | None, filt: FetchFilter,
        known: Container[tuple[str, str]],
    ) -> Iterator[FetchResult]:  # fmt: skip
        path = self._files[folder.path]
        try:
            with open(path, "rb") as f:
                if os.fstat(f.fileno()).st_size == 0:
                    return
                with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                    yield from self._messages(folder.path, data, known)
        except OSError as e:
            yield Skipped(
                MessageMeta(folder.path, disk_text(path.name)),
                f"cannot read mbox: {e.strerror or e}",
            )

    def _messages(
        self, folder: FolderPath, data: mmap.mmap, known: Container[tuple[str, str]]
    ) -> Iterator[FetchResult]:
        if data[:5] != b"From ":
            first = data.find(b"\n\nFrom ")
            lost = len(data) if first < 0 else first + 2
            reason = (
                "not an mbox file: no 'From ' separator line"
                if first < 0
                else f"{lost} bytes before the first 'From ' line are not a message"
            )
            yield Skipped(MessageMeta(folder, f"offset:0+{lost}", size=lost), reason)
        seen: dict[str, int] = {}
        for offset, separator, raw in split_mbox(data):
            if offset == 0 and data[:5] != b"From ":
                continue
            digest = hashlib.sha256(raw).hexdigest()
            kept = without_state(raw)
            ident = digest if kept is raw else hashlib.sha256(kept).hexdigest()
            seen[ident] = seen.get(ident, 0) + 1
            source_id = f"{ident[:32]}.{seen[ident]}"
            if (ID_EPOCH, source_id) in known:
                continue
            meta = MessageMeta(
                folder=folder, source_id=source_id, source_epoch=ID_EPOCH,
                flags=status_flags(raw), received=_asctime(separator), size=len(raw),
            )  # fmt: skip
            yield Fetched(meta, raw, sha256=digest)  # hashed for its id: not again

    def committed(self, folder: FolderInfo, source_ids: Sequence[str]) -> None:
        pass

    def close(self) -> None:
        pass


class MboxSink:
    """`mbox:DIR` target: one mboxrd file per folder, subfolders in `Name.sbd/`."""

    def __init__(self, location: Location, options: ConnectOptions) -> None:
        self.root = Path(location.path).absolute()
        self.key = f"mbox:{self.root}"
        self.max_connections = max(1, options.connections)
        self.batch_limit = BatchLimit(max_items=500, max_bytes=64 * 1024 * 1024)
        self._index = DuplicateIndex(self._existing, keep=self.max_connections)
        self._lock = threading.Lock()
        if self.root.is_file():  # mkdir would say only "File exists"
            raise TargetWriteError(self.root, "this is a file; an mbox target is a folder, "
                                   "which gets one mbox file per mail folder (Inbox, "
                                   "Inbox.sbd/…): name a new or existing folder")
        try:
            if not options.only_read:  # verify and plan: a mistyped path got a new folder
                self.root.mkdir(parents=True, exist_ok=True)
                if not os.access(self.root, os.W_OK):
                    raise PermissionError(13, "Permission denied")
            self._files = scan_tree(self.root) if self.exists() else {}
        except OSError as e:
            raise TargetWriteError(self.root, e.strerror or str(e)) from e

    def exists(self) -> bool:
        return self.root.exists()

    def folders(self) -> list[FolderInfo]:
        return [FolderInfo(p) for p in sorted(self._files)]

    def _file_for(self, path: FolderPath) -> Path:
        if path in self._files:
            return self._files[path]
        parts = [escape_segment(s) + ".sbd" for s in path[:-1]] + [escape_segment(path[-1])]
        return self.root.joinpath(*parts)

    def ensure_folder(self, path: FolderPath, role: Role | None, folder_class: str = "") -> None:
        with self._lock:
            target = self._file_for(path)
            # Here, where an import begins a folder (before it reads or appends), not when
            # the sink is opened: `verify` and `plan` open it too, and one run beside an
            # import cut the batch that import was appending and removed its mark, so the
            # import failed and what it appended after the cut stayed.
            cut = _undo_unfinished_append(target)
            if cut:
                log.warning("%s: cut %d bytes that a killed run left unfinished; "
                            "their messages are sent again", target, cut)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.touch()
            except OSError as e:
                raise TargetWriteError(target, e.strerror or str(e)) from e
            self._files[path] = target

    def put_batch(
        self, folder: FolderPath, batch: Sequence[tuple[StoredMessage, bytes]]
    ) -> list[Delivered | Failed]:
        target = self._files[folder]
        results: list[Delivered | Failed] = []
        try:
            _begin_append(target)
            with open(target, "ab") as f:
                for msg, raw in batch:
                    target_id = f"{target.relative_to(self.root)}@{f.tell()}"
                    f.write(frame(raw, "-", msg.received))
                    self._index.add(folder, raw, target_id)
                    results.append(Delivered(target_id))
                f.flush()
                os.fsync(f.fileno())
            fsync_path(target.parent)
            _end_append(target)
        except OSError as e:
            raise TargetWriteError(target, e.strerror or str(e)) from e
        return results

    def _existing(self, folder: FolderPath) -> Iterator[tuple[str, str]]:
        for item in self.inventory(folder):
            if item.message_id:
                yield f"id:{item.message_id}", item.target_id
                continue
            yield f"sha:{item.sha256}", item.target_id
            # A message that had no final line end got one here (the next separator must
            # start a line): its own bytes are these without it, which `duplicate_key`
            # hashes. Without that key, a run without the ledger appended it again.
            if item.sha256_unended:
                yield f"sha:{item.sha256_unended}", item.target_id

    def find_duplicates(self, msg: StoredMessage, raw: bytes, folder: FolderPath) -> list[str]:
        return self._index.find(folder, raw)

    def delete(self, folder: FolderPath, target_ids: Sequence[str]) -> None:
        raise TargetWriteError(
            self._files[folder],
            "the mbox target cannot replace messages; use --duplicates skip or allow",
        )

    def inventory(self, folder: FolderPath) -> Iterator[TargetItem]:
        path = self._files.get(folder)
        if path is None or not path.exists() or path.stat().st_size == 0:
            return
        data = path.read_bytes()
        for offset, _, raw in split_mbox(data):
            yield target_item(f"{path.relative_to(self.root)}@{offset}", raw, ends_lines=True)

    def close(self) -> None:
        self._index.close()


# --- the append guard ------------------------------------------------------------------


def _mark(target: Path) -> Path:
    return target.with_name(f".{target.name}.pstkit-append")


def _begin_append(target: Path) -> None:
    """Make the file's size before this batch durable in the mark file."""
    mark, tmp = _mark(target), target.with_name(f".{target.name}.pstkit-append.tmp")
    with open(tmp, "wb") as f:
        f.write(str(target.stat().st_size).encode())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, mark)
    fsync_path(target.parent)


def _end_append(target: Path) -> None:
    """The batch is durable: drop the mark, durably, before anyone is told it was delivered
    (a mark that came back after a crash would cut away delivered messages)."""
    _mark(target).unlink()
    fsync_path(target.parent)


def _undo_unfinished_append(target: Path) -> int:
    """Cut `target` back to the size its mark recorded; returns the bytes cut."""
    mark = _mark(target)
    try:
        text = mark.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return 0
    except (OSError, UnicodeDecodeError) as e:
        raise TargetWriteError(mark, f"unreadable append mark ({e})") from e
    if not text.isdigit():
        raise TargetWriteError(mark, f"unreadable append mark {text[:20]!r}")
    size, cut = int(text), 0
    try:
        if target.exists() and target.stat().st_size > size:
            cut = target.stat().st_size - size
            with open(target, "r+b") as f:
                f.truncate(size)
                os.fsync(f.fileno())
        _end_append(target)
    except OSError as e:
        raise TargetWriteError(target, e.strerror or str(e)) from e
    return cut


if TYPE_CHECKING:
    from pstkit.protocols import Sink, Source

    _source: type[Source] = MboxSource
    _sink: type[Sink] = MboxSink
