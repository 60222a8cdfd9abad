"""`pst:OUT.pst` as a target: a new Unicode PST that Outlook's import and Microsoft's PST
import service take, with the store's folders (roles become Outlook's special folders:
Inbox, Sent Items, Deleted Items, Drafts, Junk E-mail, Outbox...) and its mail.

The file is written to `OUT.pst.pstkit-tmp` as items come and renamed to `OUT.pst` only by
`close`, after the B-trees, maps and header are durable: a killed run leaves the previous
state (no file), never a half-valid PST. The ledger key holds the new file's record key,
so a re-run after a crash delivers everything again into a fresh file; the deliveries of
a file that never got finished are never looked at again. Appending to an existing PST is
not built yet: a target file that exists is refused (plan and verify read it).
Contacts, distribution lists, events, tasks, notes and journal entries become Outlook
items (`items`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from pstkit.dupindex import duplicate_key
from pstkit.errors import TargetWriteError
from pstkit.fsutil import fsync_path
from pstkit.location import Location
from pstkit.model import Delivered, FolderInfo, FolderPath, ItemKind, Role, StoredMessage
from pstkit.options import ConnectOptions
from pstkit.protocols import BatchLimit, Failed, Sink, TargetItem

from .existing import Existing
from .items import to_item
from .mapi import to_mapi
from .messaging import PstWriter

#: Outlook's special folders: role -> (English name, container class)
SPECIAL: dict[Role, tuple[str, str]] = {
    Role.INBOX: ("Inbox", "IPF.Note"), Role.SENT: ("Sent Items", "IPF.Note"),
    Role.TRASH: ("Deleted Items", "IPF.Note"), Role.DRAFTS: ("Drafts", "IPF.Note"),
    Role.JUNK: ("Junk E-mail", "IPF.Note"), Role.OUTBOX: ("Outbox", "IPF.Note"),
    Role.CALENDAR: ("Calendar", "IPF.Appointment"), Role.CONTACTS: ("Contacts", "IPF.Contact"),
    Role.TASKS: ("Tasks", "IPF.Task"), Role.NOTES: ("Notes", "IPF.StickyNote"),
    Role.JOURNAL: ("Journal", "IPF.Journal"),
}
_BY_PATH: dict[FolderPath, Role] = {(name,): role for role, (name, _c) in SPECIAL.items()}


class PstSink:
    """Writes one new PST; `close` finishes it."""

    def __init__(self, location: Location, options: ConnectOptions) -> None:
        self.path = Path(location.path).absolute()
        self.tmp = self.path.with_name(self.path.name + ".pstkit-tmp")
        self.max_connections = 1  # one file, one writer
        # small batches: messages are written one by one, a batch only costs memory
        self.batch_limit = BatchLimit(max_items=50, max_bytes=8 * 1024 * 1024)
        self.display_name = options.extra.get("display-name", self.path.stem)
        self._lock = threading.Lock()
        self._existing = Existing.open(self.path) if self.path.exists() else None
        self._file: BinaryIO | None = None
        self._writer: PstWriter | None = None
        self._nids: dict[FolderPath, int] = {}
        self._dups: dict[tuple[FolderPath, str], list[str]] = {}  # (folder, dup key) -> ids
        self._written: dict[FolderPath, list[tuple[str, str]]] = {}  # (target id, stable key)
        uid = self._existing.uid if self._existing else os.urandom(16)
        self._uid = uid
        self.key = f"pst:{self.path}#{uid.hex()}"

    # --- what exists --------------------------------------------------------------
    def folders(self) -> list[FolderInfo]:
        if self._existing is not None:
            return [FolderInfo(p, _BY_PATH.get(p)) for p in sorted(self._existing.paths)]
        made = [FolderInfo(p, _BY_PATH.get(p)) for p in self._nids]
        return made + [FolderInfo((name,), role) for role, (name, _c) in SPECIAL.items()
                       if (name,) not in self._nids]

    def inventory(self, folder: FolderPath) -> Iterator[TargetItem]:
        if self._existing is not None:
            yield from self._existing.items(folder)
        for target_id, key in list(self._written.get(folder, ())):
            yield TargetItem(target_id, stable_key=key)

    # --- writing ------------------------------------------------------------------
    def _open(self) -> PstWriter:
        if self._writer is None:
            if self._existing is not None:
                raise TargetWriteError(self.path, "the file exists; appending to a PST is "
                                       "not built yet (remove it or give a new name)")
            try:
                self._file = self.tmp.open("w+b")
            except OSError as e:
                raise TargetWriteError(self.tmp, e.strerror or str(e)) from e
            self._writer = PstWriter(self._file, self.display_name, self._uid)
        return self._writer

    def ensure_folder(self, path: FolderPath, role: Role | None, folder_class: str = "") -> None:
        with self._lock:
            writer = self._open()
            for depth in range(1, len(path) + 1):
                sub = path[:depth]
                if sub in self._nids:
                    continue
                special = _BY_PATH.get(sub)
                cls = SPECIAL[special][1] if special else (folder_class or "IPF.Note")
                parent = self._nids[sub[:-1]] if depth > 1 else None
                self._nids[sub] = writer.folder(parent, sub[-1], cls,
                                                special.value if special else "")

    def put_batch(self, folder: FolderPath, batch: Sequence[tuple[StoredMessage, bytes]]
                  ) -> list[Delivered | Failed]:
        with self._lock:
            writer = self._open()
            nid = self._nids[folder]
            out: list[Delivered | Failed] = []
            for msg, raw in batch:
                flags = {f.value for f in msg.flags}
                notes: list[str] = []
                try:
                    if msg.kind == ItemKind.MAIL:
                        mapi = to_mapi(raw, flags, msg.received)
                    else:
                        mapi, notes = to_item(raw, msg.kind, flags, msg.received,
                                              writer.names.id)
                    item = writer.message(nid, mapi, sorted(msg.keywords), msg.stable_key)
                except (ValueError, OverflowError) as e:  # hostile input: one item fails
                    out.append(Failed(f"cannot write this item to a PST: {e}"))
                    continue
                self._dups.setdefault((folder, duplicate_key(raw)), []).append(f"{item:#x}")
                self._written.setdefault(folder, []).append((f"{item:#x}", msg.stable_key))
                out.append(Delivered(f"{item:#x}", "; ".join(notes)))
            return out

    def find_duplicates(self, msg: StoredMessage, raw: bytes, folder: FolderPath) -> list[str]:
        return list(self._dups.get((folder, duplicate_key(raw)), []))

    def delete(self, folder: FolderPath, target_ids: Sequence[str]) -> None:
        if target_ids:
            raise TargetWriteError(self.path, "deleting items from a PST is not supported")

    def close(self) -> None:
        """Finish the file (B-trees, maps, header), make it durable and put it in place."""
        with self._lock:
            if self._existing is not None:
                self._existing.close()
            writer, f = self._writer, self._file
            self._writer = self._file = None
            if writer is None or f is None:
                return
            try:
                with f:
                    writer.finish()
                os.replace(self.tmp, self.path)
                fsync_path(self.path.parent)
            except OSError as e:
                raise TargetWriteError(self.path, e.strerror or str(e)) from e
            except ValueError as e:  # a limit of the format (FPMap files); the work file stays
                raise TargetWriteError(self.path, str(e)) from e


if TYPE_CHECKING:
    _: type[Sink] = PstSink
