"""The on-disk store: a self-contained folder (format described in README.md).

    STORE/pstkit-store.json   format marker: name, version, store id, layout
    STORE/catalog.sqlite      the catalog (truth for names, flags, digests)
    STORE/lock                present while a writer runs
    STORE/mail/               Maildir++ tree (default) or mbox tree

Everything else about writing lives in `pstkit.writer`, checking in
`pstkit.check`.
"""

from __future__ import annotations

import enum
import hashlib
import json
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType

from pstkit import lock
from pstkit.catalog import Catalog, FolderRow, MessageRow, now_text
from pstkit.catalog_schema import build_new
from pstkit.errors import (
    IntegrityError,
    StoreError,
    StoreExists,
    StoreNotFound,
    StoreVersionError,
    StoreWriteError,
)
from pstkit.fsutil import write_error, write_new
from pstkit.mboxfmt import unframe
from pstkit.model import FolderInfo, FolderPath, Role
from pstkit.names import escape_segment, fit_folded, maildirpp_dirname

FORMAT_NAME = "pstkit-store"
FORMAT_VERSION = 1
MARKER = "pstkit-store.json"
CATALOG = "catalog.sqlite"
LOCK = "lock"
MAIL = "mail"


class Layout(enum.StrEnum):
    MAILDIR = "maildir"
    MBOX = "mbox"


class Store:
    """An open store. Use `Store.open`/`Store.create`, and close it (or `with`)."""

    def __init__(
        self, root: Path, marker: dict[str, object], writable: bool, catalog: Catalog | None = None
    ) -> None:
        self.root = root
        self.id = str(marker["id"])
        self.layout = Layout(str(marker["layout"]))
        self.writable = writable
        self.mail = root / MAIL
        self.catalog = catalog if catalog is not None else Catalog(root / CATALOG)

    # --- opening -----------------------------------------------------------

    @classmethod
    def create(cls, root: Path, layout: Layout = Layout.MAILDIR, command: str = "") -> Store:
        if _marked(root):
            return cls.open(root, writable=True, command=command)
        if root.exists() and (not root.is_dir() or _foreign(root)):
            raise StoreExists(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise write_error(root, e) from e
        # Two runs creating one store at once (a batch submitted twice): the
        # second meets the lock (StoreLocked), never a half-made store.
        lock.acquire(root / LOCK, str(root), command or "pstkit")
        try:
            if not _marked(root):
                # The new store is opened under the lock that made it, with the catalog
                # that made it: releasing and taking the lock again cost an fsync of a
                # new lock file (and let another run slip in between).
                marker, catalog = _make(root, layout)
                return cls(root, marker, writable=True, catalog=catalog)
        except BaseException:
            lock.release(root / LOCK)
            raise
        lock.release(root / LOCK)  # made meanwhile by another run: open it as any store
        return cls.open(root, writable=True, command=command)

    @classmethod
    def open(cls, root: Path, writable: bool = False, command: str = "") -> Store:
        marker = read_marker(root)
        if writable:
            lock.acquire(root / LOCK, str(root), command or "pstkit")
        try:
            store = cls(root, marker, writable)
        except BaseException:
            if writable:
                lock.release(root / LOCK)
            raise
        return store

    def close(self) -> None:
        self.catalog.close()
        if self.writable:
            lock.release(self.root / LOCK)

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- folders -----------------------------------------------------------

    def folders(self) -> list[FolderRow]:
        return self.catalog.folders()

    def folder(self, path: FolderPath) -> FolderRow | None:
        return next(iter(self.catalog.folders(path)), None)

    def ensure_folders(self, infos: Sequence[FolderInfo]) -> list[FolderRow]:
        """The rows of these folders, the missing ones created in one catalog
        transaction: one durable commit instead of one per folder (and parent),
        ~20 FULL syncs that were most of a small export's fixed cost. Each
        folder's directories are made before the commit, so a committed row
        never names a directory that is not there; a failure commits none."""
        with self.catalog.transaction():
            known = _Folders(self.folders())
            return [self._ensure(info, known) for info in infos]

    def ensure_folder(self, info: FolderInfo) -> FolderRow:
        """The folder's row, creating it (and its parents) if needed."""
        return self._ensure(info, _Folders(self.folders()))

    def _ensure(self, info: FolderInfo, known: _Folders) -> FolderRow:
        existing = known.rows.get(info.path)
        if existing is not None:
            if info.role and existing.info.role is None:
                self.catalog.set_folder_role(existing.id, info.role)
            if info.selectable and not existing.info.selectable:
                self.catalog.set_folder_selectable(existing.id)
            return existing
        if len(info.path) > 1:
            # A parent the source did not list is only a name in the tree (like
            # IMAP \Noselect): targets create it only if something needs it.
            self._ensure(FolderInfo(path=info.path[:-1], selectable=False), known)
        dirname = self._allocate_dirname(info, known)
        self._make_folder_dir(dirname)
        self.catalog.add_folder(info, dirname)
        row = self.folder(info.path)
        assert row is not None
        known.add(row)
        return row

    def _allocate_dirname(self, info: FolderInfo, known: _Folders) -> str:
        if self.layout is Layout.MAILDIR:  # Maildir++: one flat directory of folders
            if info.role is Role.INBOX and len(info.path) == 1 and "" not in known.taken(""):
                return ""  # Maildir++: the root maildir is the INBOX
            return fit_folded(maildirpp_dirname(info.path), known.taken(""))
        parent = known.rows.get(info.path[:-1]) if len(info.path) > 1 else None
        prefix = f"{parent.dirname}.sbd/" if parent else ""
        return prefix + fit_folded(escape_segment(info.path[-1]), known.taken(prefix))

    def _make_folder_dir(self, dirname: str) -> None:
        try:
            if self.layout is Layout.MAILDIR:
                for sub in ("cur", "new", "tmp"):
                    (self.mail / dirname / sub).mkdir(parents=True, exist_ok=True)
            else:
                (self.mail / dirname).parent.mkdir(parents=True, exist_ok=True)
                (self.mail / dirname).touch()
        except OSError as e:
            raise write_error(self.mail / dirname, e) from e

    # --- messages ----------------------------------------------------------

    def rows(
        self, folder_id: int | None = None, undelivered_to: str | None = None
    ) -> Iterator[MessageRow]:
        for row in self.catalog.messages(folder_id, undelivered_to):
            yield replace(row, msg=replace(row.msg, store_id=self.id))

    def rows_for_target(
        self, folder_id: int, sink_key: str, target: str, planned: bool
    ) -> Iterator[tuple[MessageRow, str]]:
        """`Catalog.rows_for_target`, with this store's id on each message."""
        for row, target_id in self.catalog.rows_for_target(folder_id, sink_key, target, planned):
            yield replace(row, msg=replace(row.msg, store_id=self.id)), target_id

    def read(self, row: MessageRow, verify: bool = True) -> bytes:
        """A message's exact bytes; with `verify`, checked against the catalog."""
        path = self.mail / row.file
        try:
            if row.offset is None:
                data = path.read_bytes()
            else:
                with open(path, "rb") as f:
                    f.seek(row.offset)
                    data = unframe(f.read(row.length or 0), row.msg.size)
        except OSError as e:
            raise IntegrityError(f"{row.file}: {e.strerror or e}") from e
        if verify:
            verify_bytes(row, data)
        return data

    def message_path(self, row: MessageRow) -> Path:
        return self.mail / row.file


def _foreign(root: Path) -> bool:
    """Content that is neither a store nor one being created (its lock is there)."""
    return any(root.iterdir()) and not (root / LOCK).exists() and not (root / MARKER).exists()


def _make(root: Path, layout: Layout) -> tuple[dict[str, object], Catalog]:
    """A new store's files; its marker and its open catalog."""
    marker: dict[str, object] = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "id": str(uuid.uuid4()),
        "layout": layout.value,
        "created": now_text(),
    }
    try:
        (root / MAIL).mkdir(parents=True, exist_ok=True)
        if (root / CATALOG).exists():
            # Never replaced: a catalog without a marker may hold rows (an
            # older store whose marker was lost); SCHEMA only adds what is missing.
            catalog = Catalog(root / CATALOG, create=True)
        else:
            build_new(root / CATALOG)
            catalog = Catalog(root / CATALOG)
    except OSError as e:
        raise write_error(root, e) from e
    except sqlite3.Error as e:  # a full disk while the new catalog is built
        raise StoreWriteError(root / CATALOG, str(e)) from e
    try:
        # The marker comes last: a folder without it is not (yet) a store. As
        # before, the writer's first sync makes it durable (syncfs, or the
        # fallback's fsync of the marker and the root). Here it would cost 2 more
        # syncs (the file, the root again): one root fsync for both the catalog's
        # rename and the marker could, on a file system without ordered metadata
        # (FAT), keep the marker and lose the catalog. Written whole under another name
        # and renamed: a run killed while it wrote left an empty marker, and every later
        # run refused the store as unreadable.
        write_new(root / MARKER, root / (MARKER + ".tmp"),
                  (json.dumps(marker, indent=2) + "\n").encode("utf-8"))
    except StoreWriteError:  # write_new's, for the marker's path
        catalog.close()
        raise
    return marker, catalog


def _marked(root: Path) -> bool:
    """Does `root` hold a store's marker? An empty one is not: a run of an earlier pstkit
    was killed while it wrote it, right after the catalog was made and before anything
    was stored, and the next export finishes making the store (the catalog is kept)."""
    try:
        return (root / MARKER).stat().st_size > 0
    except FileNotFoundError:
        return False


def verify_bytes(row: MessageRow, data: bytes) -> None:
    if len(data) != row.msg.size or hashlib.sha256(data).hexdigest() != row.msg.sha256:
        raise IntegrityError(f"{row.file}: content does not match its SHA-256 in the catalog")


def read_marker(root: Path) -> dict[str, object]:
    if root.is_file():
        raise StoreError(f"{root} is a file, not a store (a store is a folder)")
    try:
        text = (root / MARKER).read_text(encoding="utf-8")
        if not text:
            raise StoreError(f"{root} was not finished: the run that made it was stopped "
                             "before it stored anything; the export finishes it")
        marker = json.loads(text)
    except FileNotFoundError:
        raise StoreNotFound(root) from None
    except (OSError, ValueError) as e:
        raise StoreError(f"{root / MARKER} is unreadable: {e}") from e
    if not isinstance(marker, dict) or marker.get("format") != FORMAT_NAME:
        raise StoreError(f"{root / MARKER} is not a pstkit store marker")
    version = marker.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise StoreVersionError(root, version, FORMAT_VERSION)
    if marker.get("layout") not in {m.value for m in Layout} or not marker.get("id"):
        raise StoreError(f"{root / MARKER} has no valid layout or id")
    return marker


class _Folders:
    """The catalog's folders for a run of `ensure_folder`s, indexed once: each folder
    used to list all of them several times, quadratic in the folder count (10,000
    folders took 22 minutes). `taken(prefix)`: the case-folded names of the
    directories beside one another under `prefix` (mbox: a parent's ".sbd/"; Maildir++:
    "", as its folder directories hold no "/")."""

    def __init__(self, rows: Sequence[FolderRow]) -> None:
        self.rows: dict[FolderPath, FolderRow] = {}
        self._taken: dict[str, set[str]] = {}
        for row in rows:
            self.add(row)

    def add(self, row: FolderRow) -> None:
        self.rows[row.info.path] = row
        cut = row.dirname.rfind("/") + 1
        self._taken.setdefault(row.dirname[:cut], set()).add(row.dirname[cut:].casefold())

    def taken(self, prefix: str) -> set[str]:
        return self._taken.setdefault(prefix, set())
