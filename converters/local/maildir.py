"""Maildir source and sink (Maildir++ `.a.b` layout and nested `a/b/` layout).

Source: the root maildir is INBOX; hidden directories are skipped, except a nested
maildir's Maildir++ folders (`alice/.Sent`); flags come from the
info suffix (":2,FS", or "!2,FS" as written on FAT media); Dovecot keyword
letters are resolved through its `dovecot-keywords` file; the received date
is the file's mtime, as Dovecot itself uses it.
Sink: one file per message, named from the item's stable key, so a resent
item overwrites itself instead of appearing twice; mtime = received date.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pstkit.converters.local.readahead import read_ahead
from pstkit.dupindex import DuplicateIndex, duplicate_key, target_item
from pstkit.errors import SourceError, TargetReadError, TargetWriteError
from pstkit.filecopy import read_whole
from pstkit.fsutil import inner, sync_tree, write_new
from pstkit.location import Location
from pstkit.model import (
    Delivered,
    Fetched,
    FetchResult,
    FolderInfo,
    FolderPath,
    MessageMeta,
    Role,
    Skipped,
    StoredMessage,
)
from pstkit.names import (
    decode_mutf7,
    disk_text,
    escape_segment,
    flags_to_info,
    info_to_flags,
    maildirpp_dirname,
    maildirpp_path,
    split_maildir_name,
    unescape_segment,
)
from pstkit.options import ConnectOptions, FetchFilter
from pstkit.protocols import BatchLimit, Failed, TargetItem

INBOX: FolderPath = ("INBOX",)
_SUBDIRS = ("cur", "new", "tmp")


def _is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() or (path / "new").is_dir()


def _decoded(path: FolderPath, names: str) -> FolderPath:
    """Dovecot and Courier write folder names in modified UTF-7 ("&ANw-berweisungen");
    `names=auto` decodes a segment only when it is valid mUTF-7 with a "&"."""
    if names == "utf8":
        return path
    out = []
    for seg in path:
        decoded = decode_mutf7(seg) if "&" in seg or names == "mutf7" else None
        out.append(decoded if decoded is not None else seg)
    return tuple(out)


def scan(root: Path, names: str = "auto") -> dict[FolderPath, Path]:
    """Every folder of a Maildir tree in either layout -> its directory."""
    return {_decoded(p, names): d for p, d in _scan(root).items()}


def _scan(root: Path) -> dict[FolderPath, Path]:
    found: dict[FolderPath, Path] = {}
    top = inner(root, frozenset()) or frozenset()
    if _is_maildir(root):
        found[INBOX] = root
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if not entry.is_dir() or entry.name in _SUBDIRS:
            continue
        if entry.name.startswith("."):
            # Maildir++ (and Python's mailbox): every dot-directory is a folder,
            # even one whose cur/ and new/ do not exist yet.
            if len(entry.name) > 1:
                _add(found, maildirpp_path(entry.name), Path(entry.path))
        elif (below := inner(entry.path, top)) is not None:
            _scan_nested(Path(entry.path), (unescape_segment(entry.name),), found, below)
    return found


def _scan_nested(path: Path, prefix: FolderPath, found: dict[FolderPath, Path],
                 seen: frozenset[tuple[int, int]]) -> None:  # fmt: skip
    if not _is_maildir(path):
        _scan_children(path, prefix, found, seen)
        return
    _add(found, prefix, path)
    _scan_children(path, prefix, found, seen)
    # A Maildir++ mailbox below the root (`src/alice/` with `.Sent/`, `.Archive.2020/`,
    # as `cp -r` of a user's Maildir into a folder leaves it): its folders are its
    # dot-directories that are maildirs; skipped as hidden, all but its inbox were lost
    # without a word. Other dot-directories (.git, .Trash-1000) stay skipped.
    for entry in sorted(os.scandir(path), key=lambda e: e.name):
        if (entry.is_dir() and len(entry.name) > 1 and entry.name.startswith(".")
                and _is_maildir(Path(entry.path))):
            _add(found, (*prefix, *maildirpp_path(entry.name)), Path(entry.path))


def _scan_children(path: Path, prefix: FolderPath, found: dict[FolderPath, Path],
                   seen: frozenset[tuple[int, int]]) -> None:  # fmt: skip
    for entry in sorted(os.scandir(path), key=lambda e: e.name):
        if (entry.is_dir() and entry.name not in _SUBDIRS and not entry.name.startswith(".")
                and (below := inner(entry.path, seen)) is not None):
            _scan_nested(Path(entry.path), (*prefix, unescape_segment(entry.name)), found, below)


def _add(found: dict[FolderPath, Path], folder: FolderPath, path: Path) -> None:
    """One directory per folder: two that name the same folder (`.a.b` and `a/b/` in one
    tree) would leave one of them unread, so that is an error, not a choice."""
    if folder in found and found[folder] != path:
        raise SourceError(found[folder], f"it and {path} both hold folder "
                          f"{'/'.join(folder)!r}; move one of them out of the tree")
    found[folder] = path


def _keywords_table(folder_dir: Path) -> dict[str, str]:
    """Dovecot stores keywords as letters a-z indexed by `dovecot-keywords`."""
    try:
        lines = (folder_dir / "dovecot-keywords").read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    table = {}
    for line in lines:
        idx, _, name = line.partition(" ")
        if idx.isdigit() and int(idx) < 26 and name:
            table[chr(ord("a") + int(idx))] = name
    return table


@dataclass(frozen=True)
class _Entry:
    file: str  # the file's path as text: a Path per message costs more than reading it
    name: str
    unique: str
    info: str

    @property
    def path(self) -> Path:
        return Path(self.file)


def _entries(folder_dir: Path) -> Iterator[_Entry]:
    """Messages of one folder in name order. Only the names are held (a
    folder may have 100,000 files); each entry is built when it is reached."""
    for sub in ("new", "cur"):
        base = folder_dir / sub
        prefix = f"{base}{os.sep}"
        for name in sorted(_names(base)):
            unique, info = split_maildir_name(name)
            # The id and the name in reasons must be text the catalog can hold.
            yield _Entry(prefix + name, disk_text(name), disk_text(unique), info)


def _names(subdir: Path) -> list[str]:
    """Message file names in new/ or cur/ (dot files are not messages; a missing
    subdirectory has none)."""
    try:
        return [n for n in os.listdir(subdir) if not n.startswith(".")]
    except FileNotFoundError:
        return []


def _count(folder_dir: Path) -> int:
    """Messages in new/ and cur/ (names only: cheap, and gives progress bars a total)."""
    return sum(len(_names(folder_dir / sub)) for sub in ("new", "cur"))


_NONE: frozenset[str] = frozenset()
_flags = functools.lru_cache(maxsize=256)(info_to_flags)  # a few infos ("2,S", "2,RS")


def _size(item: FetchResult) -> int:
    return len(item.raw) if isinstance(item, Fetched) else 0


class MaildirSource:
    max_connections = 4

    def __init__(self, location: Location, options: ConnectOptions) -> None:
        self.root = Path(location.path).absolute()
        if not self.root.is_dir():
            raise SourceError(self.root, "not a directory")
        self.key = f"maildir:{self.root}"
        self._dirs = scan(self.root, options.extra.get("names", "auto"))
        if not self._dirs:
            raise SourceError(self.root, "no Maildir folders (cur/ and new/) found")

    def folders(self) -> list[FolderInfo]:
        return [
            FolderInfo(path, Role.INBOX if path == INBOX else None,
                       disk_text(str(d.relative_to(self.root))),
                       message_count=_count(d))
            for path, d in sorted(self._dirs.items())
        ]

    def fetch(
        self, folder: FolderInfo, cursor: str | None, filt: FetchFilter,
        known: Container[tuple[str, str]],
    ) -> Iterator[FetchResult]:  # fmt: skip
        # Files are read on a thread ahead of the store writer (see readahead).
        return read_ahead(self._fetch(folder, known), _size)

    def _fetch(self, folder: FolderInfo, known: Container[tuple[str, str]]
               ) -> Iterator[FetchResult]:  # fmt: skip
        folder_dir = self._dirs[folder.path]
        keywords = _keywords_table(folder_dir)
        listing: dict[str, _Entry] = {}  # unique name -> entry, listed again after a miss
        # A message moved from new/ to cur/ is listed twice; but `cp -r` of two Maildirs
        # into one, or a sync tool cut off mid-rename, leaves files that share a unique
        # name and may hold other mail: those were dropped with exit 0. unique name ->
        # digest of the first file (read this run) or its path (stored before).
        taken: dict[str, str] = {}
        for entry in _entries(folder_dir):
            if entry.unique in taken:
                other = self._other_copy(folder.path, entry, keywords, taken[entry.unique], known)
                if other is not None:
                    yield other
            elif ("", entry.unique) in known:
                taken[entry.unique] = entry.file
            else:
                got = self._follow(folder.path, folder_dir, entry, keywords, listing)
                taken[entry.unique] = (got.sha256 or "") if isinstance(got, Fetched) else entry.file
                yield got

    def _other_copy(self, folder: FolderPath, entry: _Entry, keywords: dict[str, str],
                    first: str, known: Container[tuple[str, str]]) -> FetchResult | None:
        """A second file with a unique name already taken: nothing if it holds the first
        one's bytes (or the first is gone: it became this one), else stored under its
        unique name and digest, an id that stays when its flags rename it."""
        got = self._read(folder, entry, keywords)
        if not isinstance(got, Fetched) or not got.sha256:
            return got
        if first.startswith(os.sep):  # the path of a file stored in an earlier run
            try:
                first = hashlib.sha256(Path(first).read_bytes()).hexdigest()
            except OSError:
                return None
        source_id = f"{entry.unique}#{got.sha256[:16]}"
        if first == got.sha256 or ("", source_id) in known:
            return None
        return Fetched(replace(got.meta, source_id=source_id), got.raw, sha256=got.sha256,
                       origin=got.origin)

    def _follow(self, folder: FolderPath, folder_dir: Path, entry: _Entry,
                keywords: dict[str, str], listing: dict[str, _Entry]) -> FetchResult:
        """The message of `entry`, wherever its file is now: on a live Maildir the server
        renames a file when its flags change (new/X -> cur/X:2,S, the unique part stays),
        and each such message was a reported skip, fetched only by a re-run."""
        got = self._read(folder, entry, keywords)
        for _ in range(3):  # renamed again meanwhile: look again, a few times
            if got is not None:
                return got
            if entry.unique not in listing or listing[entry.unique].file == entry.file:
                listing.clear()
                listing.update((e.unique, e) for e in _entries(folder_dir))
            if entry.unique not in listing:
                break
            entry = listing[entry.unique]
            got = self._read(folder, entry, keywords)
        if got is not None:
            return got
        return Skipped(MessageMeta(folder=folder, source_id=entry.unique),
                       f"{entry.name} left the folder during the export (deleted or moved "
                       "by another program)")

    def _read(self, folder: FolderPath, entry: _Entry, keywords: dict[str, str]
              ) -> FetchResult | None:
        """The message, a reported skip, or None when the file is gone."""
        # The read-ahead thread is the export's critical path: the meta is built once,
        # after the read (dataclasses.replace cost more than the rest of the Python here).
        flags, letters = _flags(entry.info)
        words = frozenset(keywords[c] for c in letters if c in keywords) if letters else _NONE
        try:
            raw, st, origin = read_whole(entry.file)
        except FileNotFoundError:
            return None
        except OSError as e:
            meta = MessageMeta(folder=folder, source_id=entry.unique, flags=flags, keywords=words)
            return Skipped(meta, f"cannot read {entry.name}: {e.strerror or e}")
        meta = MessageMeta(folder=folder, source_id=entry.unique, flags=flags, keywords=words,
                           received=datetime.fromtimestamp(st.st_mtime, UTC), size=len(raw))
        # Hashed here, on the read-ahead thread: the writer's thread is the busier one.
        return Fetched(meta, raw, sha256=hashlib.sha256(raw).hexdigest(), origin=origin)

    def committed(self, folder: FolderInfo, source_ids: Sequence[str]) -> None:
        pass

    def close(self) -> None:
        pass


class MaildirSink:
    """`maildir:PATH` target. Options: `--opt layout=fs` for nested folders,
    `--opt colon=!` for an info separator FAT media accept."""

    def __init__(self, location: Location, options: ConnectOptions) -> None:
        self.root = Path(location.path).absolute()
        self.key = f"maildir:{self.root}"
        self.nested = options.extra.get("layout", "maildir++") == "fs"
        self.colon = options.extra.get("colon", ":")
        self.max_connections = max(1, options.connections)
        self.batch_limit = BatchLimit(max_items=500, max_bytes=64 * 1024 * 1024)
        self._lock = threading.Lock()
        self._index = DuplicateIndex(self._existing, keep=self.max_connections)
        try:
            if not options.only_read:  # verify and plan: a mistyped path got an empty tree
                for sub in _SUBDIRS:
                    (self.root / sub).mkdir(parents=True, exist_ok=True)
                probe = self.root / "tmp" / f".pstkit-probe-{os.getpid()}"
                probe.write_bytes(b"")
                probe.unlink()
            # Not there (plan before an import into a new Maildir): its root is the INBOX
            # the import will make, so the store's Inbox goes there by role, as it will.
            self._dirs = scan(self.root) if self.exists() else {INBOX: self.root}
        except OSError as e:
            raise TargetWriteError(self.root, e.strerror or str(e)) from e

    def exists(self) -> bool:
        return self.root.exists()

    def folders(self) -> list[FolderInfo]:
        return [FolderInfo(p, Role.INBOX if p == INBOX else None) for p in sorted(self._dirs)]

    def _dir_for(self, path: FolderPath) -> Path:
        if path in self._dirs:
            return self._dirs[path]
        if self.nested:
            return self.root.joinpath(*(escape_segment(s, extra="") for s in path))
        return self.root / maildirpp_dirname(path)

    def ensure_folder(self, path: FolderPath, role: Role | None, folder_class: str = "") -> None:
        with self._lock:
            target = self._dir_for(path)
            try:
                for sub in _SUBDIRS:
                    (target / sub).mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise TargetWriteError(target, e.strerror or str(e)) from e
            self._dirs[path] = target

    def put_batch(
        self, folder: FolderPath, batch: Sequence[tuple[StoredMessage, bytes]]
    ) -> list[Delivered | Failed]:
        target = self._dirs[folder]
        results: list[Delivered | Failed] = []
        written: list[Path] = []
        for msg, raw in batch:
            name = hashlib.sha256(msg.stable_key.encode()).hexdigest()[:32]
            final = target / "cur" / f"{name}{self.colon}{flags_to_info(msg.flags)}"
            try:
                write_new(final, target / "tmp" / name, raw)
                if msg.received is not None:
                    stamp = msg.received.timestamp()
                    os.utime(final, (stamp, stamp))
            except (OSError, TargetWriteError) as e:
                raise TargetWriteError(final, str(e)) from e
            written.append(final)
            target_id = str(final.relative_to(self.root))
            self._index.add(folder, raw, target_id)
            results.append(Delivered(target_id))
        if written:
            sync_tree(self.root, written, [target / "cur"])
        return results

    def _existing(self, folder: FolderPath) -> Iterator[tuple[str, str]]:
        for entry in _entries(self._dirs[folder]):
            try:
                raw = entry.path.read_bytes()
            except OSError:
                continue
            yield duplicate_key(raw), str(entry.path.relative_to(self.root))

    def find_duplicates(self, msg: StoredMessage, raw: bytes, folder: FolderPath) -> list[str]:
        return [t for t in self._index.find(folder, raw) if (self.root / t).exists()]

    def delete(self, folder: FolderPath, target_ids: Sequence[str]) -> None:
        for tid in target_ids:
            (self.root / tid).unlink(missing_ok=True)
        self._index.forget(folder)

    def inventory(self, folder: FolderPath) -> Iterator[TargetItem]:
        for entry in _entries(self._dirs.get(folder, self._dir_for(folder))):
            try:
                raw = entry.path.read_bytes()
            except OSError as e:  # a directory, dangling link or unreadable file in cur/:
                # what it holds cannot be compared; an internal error (exit 70) named no cause
                raise TargetReadError(entry.path, e.strerror or str(e)) from e
            yield target_item(str(entry.path.relative_to(self.root)), raw)

    def close(self) -> None:
        self._index.close()


if TYPE_CHECKING:
    from pstkit.protocols import Sink, Source

    _source: type[Source] = MaildirSource
    _sink: type[Sink] = MaildirSink
