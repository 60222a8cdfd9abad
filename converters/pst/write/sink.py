"""`pst:OUT.pst` as a target: a new Unicode PST that Outlook's import and Microsoft's PST
import service take, with the store's folders (roles become Outlook's special folders:
Inbox, Sent Items, Deleted Items, Drafts, Junk E-mail, Outbox...) and its mail.

The file is written to `OUT.pst.pstkit-tmp` as items come and renamed to `OUT.pst` only by
`close`, after the B-trees, maps and header are durable: a killed run leaves the previous
state (no file), never a half-valid PST. The ledger key holds the new file's record key,
so a re-run after a crash delivers everything again into a fresh file; the deliveries of
a file that never got finished are never looked at again. A PST pstkit wrote earlier is
appended to (append.py: carried into the new file, which keeps its record key, so the
ledger key stays; items already there are found by their stable key when the ledger is
lost); a split set gets a new part; a foreign PST is refused. A run that died leaves its
work file, and its ledger rows may name items of a file that never got in place: the next
run gives the set a new record key (so a new ledger key; what the file holds is found by
stable key) and writes the set's first file anew to carry it, even when nothing is new.
Contacts, distribution lists, events, tasks, notes and journal entries become Outlook
items (`items`).

`--opt max-size=20GB` (the CLI's `--max-size`) splits the output into `OUT-001.pst`,
`OUT-002.pst`…, each a complete store that stays under the size (Microsoft recommends at
most 20 GB per PST for its import service); all parts are renamed into place together by
`close`. `--opt purview-csv=FILE` with the mailbox (`--mailbox`) writes Microsoft's PST
import mapping file for the parts (see purview.py).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from pstkit.dupindex import duplicate_key
from pstkit.errors import TargetWriteError, UsageError
from pstkit.fsutil import fsync_path
from pstkit.location import Location
from pstkit.model import Delivered, FolderInfo, FolderPath, ItemKind, Role, StoredMessage
from pstkit.options import ConnectOptions
from pstkit.protocols import BatchLimit, Failed, Sink, TargetItem

from . import fileset
from .append import refuse_foreign, reopen
from .convert import Converter
from .existing import Existing
from .items import to_item
from .mapi import Message
from .meeting import mail_or_meeting
from .messaging import PstWriter
from .ndb import MAX_EOF
from .purview import IMPORT_SERVICE_ITEM_LIMIT, import_request, parse_size
from .purview_file import PurviewFile
from .wire import Job
from .written import Written

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
_ROLES = {path: role.value for path, role in _BY_PATH.items()}
log = logging.getLogger("pstkit")
MIN_PART = 1_000_000  # a part smaller than this could not hold a store's own structure


def _max_size(options: ConnectOptions) -> int | None:
    text = options.extra.get("max-size")
    if not text:
        return None
    try:
        size = parse_size(text)
    except ValueError as e:
        raise UsageError(f"--max-size: {e}") from None
    if size < MIN_PART:
        raise UsageError("--max-size must be at least 1 MB")
    if size > MAX_EOF:
        log.warning("PST parts are kept at %.1f GB, Outlook's default limit for a PST "
                    "(--max-size %s)", MAX_EOF / 1e9, text)
    return min(size, MAX_EOF)


def _dup_key(message_id: str | None, sha256: str) -> str:
    """`duplicate_key` of an earlier item: from its PR_INTERNET_MESSAGE_ID as
    headers.message_id gives it (white space runs as one space), else from the digest
    pstkit wrote beside a mail without one; "" for neither (a file of an earlier version,
    a contact or event: its bytes are not in the file)."""
    mid = " ".join((message_id or "").split())
    return f"id:{mid}" if mid else (f"sha:{sha256}" if sha256 else "")


def _job(msg: StoredMessage, raw: bytes) -> Job:
    """A mail's translation job: the same from the duplicate check (`ahead`), the
    read-ahead (`hint`) and the batch (`map`), which match jobs by it."""
    return raw, frozenset(f.value for f in msg.flags), msg.received


class PstSink:
    """Writes one new PST (or a set of parts); `close` finishes it."""

    def __init__(self, location: Location, options: ConnectOptions) -> None:
        self.path = Path(location.path).absolute()
        if not self.path.parent.is_dir():  # else the error named the work file, not the folder
            raise TargetWriteError(self.path.parent, "no such folder (make it first)")
        self.tmp = fileset.work_name(self.path)  # the work name when the output is one file
        self.max_size = _max_size(options)
        self.max_connections = 1  # one file, one writer
        # messages are written one by one; a batch costs memory (its raw bytes) and saves
        # ledger commits, whose fdatasyncs were a third of the wall time at 50 items / 8 MB
        # (2,000 genmail messages: 448 fdatasyncs, 1.5 s); 12 MiB since the import reads
        # ahead (a batch and part of the next are held)
        self.batch_limit = BatchLimit(max_items=100, max_bytes=12 * 1024 * 1024)
        self.display_name = options.extra.get("display-name", self.path.stem)
        self.purview = PurviewFile.from_options(options)
        self.mailbox = options.mailbox or ""
        self.share = options.extra.get("share", "")  # UNC folder for New-MailboxImportRequest
        #: what Microsoft's import service skips; the CLI names such items before writing
        self.item_limit = (IMPORT_SERVICE_ITEM_LIMIT, "Microsoft's PST import service skips "
                           "items over 150 MB (Outlook and New-MailboxImportRequest take them)")
        self._lock = threading.Lock()
        self.converter = Converter()  # MIME -> MAPI of mail in a second process
        self._files = files = fileset.existing(self.path)
        self._read = fileset.state(files)  # compared when an import begins (_begin)
        self._held: fileset.Held | None = None  # the lock on writing the target
        self._existing = [Existing.open(p) for p in files]
        # parts are numbered in target ids, so that ids of different parts never clash
        self._split = self.max_size is not None or (bool(files) and files[0] != self.path)
        if self._split and self.max_size is None and self._existing:
            self.max_size = self._existing[-1].max_size  # the earlier run's --max-size
            if self.max_size is None:
                log.warning("%s: the parts do not say which --max-size made them (an older "
                            "pstkit); new parts may grow to %.1f GB unless it is given",
                            self.path.name, MAX_EOF / 1e9)
        #: appending to one earlier file: it is carried into the new one (append.py); to a
        #: split set: its last part is carried and filled up to the size, then new parts
        self._carry = bool(files) and not self._split
        self._file: BinaryIO | None = None
        self._writer: PstWriter | None = None
        # parts begun (1-based index of the one being written)
        self._part = len(files) - self._room_in_last() if self._split else 0
        self._filled = 0  # the earlier part carried in this run to be filled up (1-based)
        self._in_part = 0  # items in the part being written
        self.finished: list[tuple[Path, Path, int]] = []  # (work name, final name, items)
        self.written: list[tuple[Path, int]] = []  # after `close`: (file, items)
        self._work_final = (self.path, self.path)
        self._folders: dict[FolderPath, str] = {}  # every folder asked for -> class
        self._nids: dict[FolderPath, int] = {}  # ... made in the part being written
        self._seen = Written()  # items written in this run; earlier files' stable keys
        #: the duplicate keys `find_duplicates` worked out, by the bytes object, for `_put`
        #: (they were parsed twice per mail: 3 % of the writer's thread)
        self._dup_keys: dict[int, tuple[bytes, str]] = {}
        #: a run that died after recording deliveries into a file that never got in place
        #: left its work file: the ledger under the set's record key is not trusted (close)
        self._recover = bool(files) and fileset.leftover(self.path, len(files))
        self._active = False  # an import is writing (plan and verify only read)
        uid = self._existing[0].uid if files and not self._recover else os.urandom(16)
        self._uid = uid
        self.key = f"pst:{self.path}#{uid.hex()}"

    def _room_in_last(self) -> int:
        """1 when a split set's last part has room left (it is carried and filled up before
        a new part is begun), else 0. A part within 2 MiB of the size counts as full: what
        `finish` adds and the next item would pass it, and carrying it would be a copy for
        nothing."""
        if not self._files:
            return 0
        try:
            size = self._files[-1].stat().st_size
        except OSError:
            return 0
        return int(size + 2 * fileset.TAIL < (self.max_size or MAX_EOF))

    def shows_nothing_before_close(self) -> bool:
        """Always: the output is a work file until `close` renames it into place, and a
        run after a kill writes it anew (AtomicSink)."""
        return True

    # --- what exists --------------------------------------------------------------
    def exists(self) -> bool:
        """A file (or a split set's part) of the target is there (`LocalTarget`)."""
        return bool(self._files)

    def folders(self) -> list[FolderInfo]:
        if self._existing:
            paths = {p for e in self._existing for p in e.paths} | set(self._folders)
            return [FolderInfo(p, _BY_PATH.get(p)) for p in sorted(paths)]
        made = [FolderInfo(p, _BY_PATH.get(p)) for p in self._folders]
        return made + [FolderInfo((name,), role) for role, (name, _c) in SPECIAL.items()
                       if (name,) not in self._folders]

    def inventory(self, folder: FolderPath) -> Iterator[TargetItem]:
        for index, e in enumerate(self._existing, 1):
            for item in e.items(folder):
                yield replace(item, target_id=self._id(index, item.target_id, item.stable_key))
        for target_id, key in self._seen.items(folder):
            yield TargetItem(target_id, stable_key=key)

    def missing(self, target_ids: Sequence[str]) -> list[str]:
        """Those of `target_ids` (the ledger's, from `_id`) that no file of the target holds:
        the file was replaced by an older copy, a part of a set deleted, items deleted in
        Outlook. Read from the NIDs of the files as opened, before this run wrote."""
        out = []
        for target_id in target_ids:
            ref = target_id.split("~", 1)[0]
            part, _, nid = ref.rpartition("/")
            try:
                index, number = (int(part) if part else 1), int(nid, 16)
            except ValueError:
                continue  # not an id this sink gives: nothing to say of it
            if not (0 < index <= len(self._existing) and self._existing[index - 1].holds(number)):
                out.append(target_id)
        return out

    def _id(self, part: int, nid: str, key: str) -> str:
        """An item's id: its NID, prefixed by its part's number when the output is split,
        and tagged with a digest of the item's stable key. The tag is there because a NID
        can be handed out twice: a killed append whose work file the user then deleted had
        given NIDs to items the ledger records, and the next run gives the same NIDs to
        other items. Without the tag the ledger would hold two items under one id, and
        verify and --redeliver-missing would take one for the other (re-sending an item
        that is there and losing the one that is not)."""
        tag = f"~{hashlib.sha256(key.encode()).hexdigest()[:12]}" if key else ""
        return f"{part}/{nid}{tag}" if self._split else f"{nid}{tag}"

    # --- writing ------------------------------------------------------------------
    def _open(self) -> PstWriter:
        if self._writer is None:
            if self._split and self._files == [self.path]:
                raise TargetWriteError(self.path, "it exists as one PST: append to it "
                                       "without --max-size, or write the parts to a new name")
            for e, p in zip(self._existing, self._files, strict=True):
                refuse_foreign(e, p)
            self._part += 1
            final = fileset.part_name(self.path, self._part) if self._split else self.path
            work = fileset.work_name(final)
            try:
                self._file = work.open("w+b", buffering=1 << 20)  # blocks are ~8 KiB
            except OSError as e:
                raise TargetWriteError(work, e.strerror or str(e)) from e
            self._work_final = (work, final)
            self._nids, self._in_part = {}, 0
            if self._carry or self._part <= len(self._files):
                return self._carried(work)
            # each part is a store of its own: its own record key, the first keeps the set's
            uid = self._uid if self._part == 1 else os.urandom(16)
            name = self.display_name if self._part == 1 else f"{self.display_name} ({self._part})"
            self._writer = PstWriter(self._file, name, uid)
            if self.max_size is not None:
                self._writer.remember_max_size(self.max_size)
        return self._writer

    def _carried(self, work: Path) -> PstWriter:
        """A writer that first holds an earlier file's folders and items, with their NIDs:
        the one file, or the last part of a split set (filled up; it keeps its own record
        key, part 1 the set's)."""
        index = max(self._part, 1)
        assert self._file is not None
        uid = self._uid if index == 1 else self._existing[index - 1].uid
        try:
            writer, carried = reopen(self._existing[index - 1], self._files[index - 1],
                                     self._file, _ROLES, uid)
        except TargetWriteError:  # refused or unreadable: no work file stays
            self._file.close()
            self._file = None
            work.unlink()
            raise
        if self._split:
            self._filled = index
            if self.max_size is not None:
                writer.remember_max_size(self.max_size)
        self._writer = writer
        self._nids, self._in_part = carried.paths, carried.items
        return writer

    def _finish_part(self) -> None:
        """B-trees, maps and header of the part being written; durable, still at its work
        name (all parts are renamed together by `close`)."""
        writer, f = self._writer, self._file
        self._writer = self._file = None
        if writer is None or f is None:
            return
        try:
            with f:
                writer.finish()
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise TargetWriteError(self._work_final[1], e.strerror or str(e)) from e
        except ValueError as e:  # past Outlook's limit (ndb.MAX_EOF); the work file stays
            raise TargetWriteError(self._work_final[1], str(e)) from e
        self.finished.append((*self._work_final, self._in_part))

    def ensure_folder(self, path: FolderPath, role: Role | None, folder_class: str = "") -> None:
        with self._lock:
            self._begin()
            for depth in range(1, len(path) + 1):
                self._folders.setdefault(path[:depth], folder_class if depth == len(path) else "")
            if self._writer is None and any(path in e.paths for e in self._existing):
                return  # an append opens its file only for something new
            self._nid(path)

    def _begin(self) -> None:
        """An import writes (plan and verify only read, and may read a set with a gap)."""
        if self._active:
            return
        if self._split and self._files and self._files[0] != self.path:
            fileset.refuse_gap(self.path, self._files)
        self._held = fileset.hold(self.path)
        # what this sink read (files, record key, carried parts) is all it writes from:
        # a run that wrote the target since (between this one's start and now, e.g.
        # during a direct import's export) would be undone by this run's rename
        if fileset.state(fileset.existing(self.path)) != self._read:
            raise fileset.TargetBusy(self.path, "it changed since this run read it "
                                     "(another run wrote it meanwhile)")
        self._active = True

    def _nid(self, path: FolderPath) -> int:
        """The folder's NID in the part being written, made (with its parents) if new."""
        writer = self._open()
        for depth in range(1, len(path) + 1):
            sub = path[:depth]
            if sub in self._nids:
                continue
            special = _BY_PATH.get(sub)
            cls = SPECIAL[special][1] if special else (self._folders.get(sub) or "IPF.Note")
            parent = self._nids[sub[:-1]] if depth > 1 else None
            self._nids[sub] = writer.folder(parent, sub[-1], cls, special.value if special else "")
        return self._nids[path]

    def put_batch(self, folder: FolderPath, batch: Sequence[tuple[StoredMessage, bytes]]
                  ) -> list[Delivered | Failed]:
        with self._lock:
            self._begin()
            mail = self.converter.map(
                _job(msg, raw) for msg, raw in batch if msg.kind == ItemKind.MAIL)  # ahead
            try:
                return [self._put(folder, msg, raw, mail) for msg, raw in batch]
            finally:
                self._dup_keys.clear()  # those left are of duplicates the pipeline skipped

    def _put(self, folder: FolderPath, msg: StoredMessage, raw: bytes,
             mail: Iterator[Message | str]) -> Delivered | Failed:
        translated = next(mail) if msg.kind == ItemKind.MAIL else None  # taken in order
        writer = self._open()
        if self._in_part and fileset.projected(writer, len(raw)) > (self.max_size or MAX_EOF):
            if self.max_size is None:
                return Failed(f"the PST would pass {MAX_EOF / 1e9:.1f} GB, Outlook's default "
                              "limit for a PST: write it in parts with --max-size "
                              "(e.g. --max-size 20GB)")
            self._finish_part()  # the part is full: the item opens the next one
            writer = self._open()
        nid = self._nid(folder)
        flags = {f.value for f in msg.flags}
        notes: list[str] = []
        try:
            if isinstance(translated, str):
                raise ValueError(translated)
            if translated is not None:  # mail, translated ahead (convert.py)
                mapi, notes = mail_or_meeting(raw, translated, writer.names.id)
            else:
                mapi, notes = to_item(raw, msg.kind, flags, msg.received, writer.names.id)
            dup = self._dup_key_of(raw)
            digest = dup[4:] if dup.startswith("sha:") and translated is not None else ""
            item = writer.message(nid, mapi, sorted(msg.keywords), msg.stable_key, digest)
        except (ValueError, OverflowError) as e:  # hostile input: one item fails
            return Failed(f"cannot write this item to a PST: {e}")
        self._in_part += 1
        target_id = self._id(self._part, f"{item:#x}", msg.stable_key)
        self._seen.add(folder, dup, target_id, msg.stable_key)
        size_note = _size_note(len(raw), self.max_size)
        return Delivered(target_id, "; ".join(n for n in (*notes, size_note) if n))

    def _dup_key_of(self, raw: bytes) -> str:
        """`duplicate_key(raw)`, taken from `_dup_keys` when find_duplicates made it: the
        entry holds the bytes object itself, so an id used again is never taken for it."""
        known = self._dup_keys.pop(id(raw), None)
        return known[1] if known is not None and known[0] is raw else duplicate_key(raw)

    def upcoming(self, batch: Sequence[tuple[StoredMessage, bytes]]) -> None:
        """The pipeline's next batch (`LookAhead`): its mail goes to the translating child
        as soon as it has room. Not when appending to earlier files: much of what comes
        may be there already (a re-run, the same mail through a new store), and
        translating each duplicate in vain would cost more than the wait it saves."""
        if not self._existing:
            self.converter.hint(_job(msg, raw) for msg, raw in batch
                                if msg.kind == ItemKind.MAIL)

    def find_duplicates(self, msg: StoredMessage, raw: bytes, folder: FolderPath) -> list[str]:
        """Copies written in this run (same duplicate key), and items of the earlier
        file(s) with this item's stable key (a re-run whose ledger is lost delivers nothing
        twice) or, when none has it, with its Message-ID (the same mail exported again
        into a new store: appended once more, every item of the file was doubled)."""
        with self._lock:
            if msg.kind == ItemKind.MAIL:  # translated meanwhile (put_batch takes it)
                self.converter.ahead(_job(msg, raw))
            if not self._seen.has_earlier:
                self._seen.add_earlier(
                    (path, item.stable_key, self._id(index, item.target_id, item.stable_key),
                     _dup_key(item.message_id, item.sha256))
                    for index, e in enumerate(self._existing, 1)
                    for path in e.paths for item in e.items(path))
            dup = self._dup_key_of(raw)
            if len(self._dup_keys) >= self.batch_limit.max_items:
                self._dup_keys.clear()  # a batch before this one had only duplicates
            self._dup_keys[id(raw)] = raw, dup
            earlier = self._seen.earlier(folder, msg.stable_key, dup) if self._existing else []
            return [*earlier, *self._seen.dups(folder, dup)]

    def delete(self, folder: FolderPath, target_ids: Sequence[str]) -> None:
        if target_ids:
            raise TargetWriteError(self.path, "deleting items from a PST is not supported")

    def close(self) -> None:
        """Finish the last part, make every part durable and put them all in place, then
        write the mapping file if one was asked for."""
        try:
            self._close()
        finally:  # after the renames: a run waiting for the target reads what this wrote
            fileset.release(self._held)
            self._held = None

    def _close(self) -> None:
        with self._lock:
            if self._recover and self._active:
                self._new_record_key()
            for e in self._existing:
                e.close()
            self.converter.close()
            self._finish_part()
            done, self.finished = self.finished, []
            try:
                for work, final, _n in done:
                    os.replace(work, final)
                # work files of a killed earlier run that had more parts than this one
                # (not by plan or verify: a work file left tells an import to recover)
                k = self._part + 1
                while self._split and self._active and (stale := fileset.work_name(
                        fileset.part_name(self.path, k))).exists():
                    stale.unlink()
                    k += 1
                if self._split and self._active and self.tmp.exists():
                    self.tmp.unlink()  # a killed single-file run's: parts never use it
                if done:
                    fsync_path(self.path.parent)
            except OSError as e:
                raise TargetWriteError(self.path, e.strerror or str(e)) from e
            self.written = [(final, n) for _w, final, n in done]
            if self.purview is not None and done:
                self.purview.add([final.name for final, _n in self.written])


    def _new_record_key(self) -> None:
        """After a killed run: the set's first file is written anew with the new record
        key (the ledger key of this run), whether or not anything was appended."""
        if self._carry or self._filled == 1 or (self._part == 0 and len(self._files) == 1):
            self._open()  # the first file: carried now if nothing new opened it
            return
        first = self._files[0]
        work = fileset.work_name(first)
        try:
            with work.open("w+b") as f:
                writer, carried = reopen(self._existing[0], first, f, _ROLES, self._uid)
                writer.finish()
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise TargetWriteError(first, e.strerror or str(e)) from e
        self.finished.append((work, first, carried.items))

    def closing_data(self) -> dict[str, object]:
        """The closing lines' content for `--json`: files with bytes and items, the import
        requests, the mapping file (None without one)."""
        share = self.share or "\\\\SERVER\\SHARE"
        return {
            "files": [{"path": str(p), "bytes": p.stat().st_size, "items": n}
                      for p, n in self.written],
            "import_requests": [import_request(self.mailbox, share, p.name, len(self.written))
                                for p, _n in self.written] if self.mailbox else [],
            "purview_csv": str(self.purview.path)
            if self.purview is not None and self.written else None}

    def closing_lines(self) -> list[str]:
        """After `close`: the files written, an import request for each (Exchange on
        premises) when the mailbox is known, and the mapping file."""
        lines = [f"wrote {p} ({p.stat().st_size / 1e6:,.1f} MB, {n} items)"
                 for p, n in self.written]
        if self.mailbox and self.written:
            share = self.share or "\\\\SERVER\\SHARE"
            lines.append("Exchange on premises" + ("" if self.share else " (replace "
                         "\\\\SERVER\\SHARE by the UNC folder holding the files)") + ":")
            lines += ["  " + import_request(self.mailbox, share, p.name, len(self.written))
                      for p, _n in self.written]
        if self.purview is not None and self.written:
            lines.append(f"Purview mapping file: {self.purview.path}")
        return lines


def _size_note(size: int, max_size: int | None) -> str:
    """What an admin must hear about one item before taking the file to Microsoft."""
    notes = []
    if size > IMPORT_SERVICE_ITEM_LIMIT:
        notes.append(f"{size / 1e6:.0f} MB: Microsoft's PST import service skips items over "
                     "150 MB (Outlook and New-MailboxImportRequest take it)")
    if max_size is not None and 2 * size > max_size:
        notes.append(f"{size / 1e6:.0f} MB: the part holding it may be larger than "
                     "--max-size")
    return "; ".join(notes)


if TYPE_CHECKING:
    _: type[Sink] = PstSink
