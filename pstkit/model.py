"""Records that cross module boundaries: frozen, typed, no I/O.

Folder paths are tuples of segments (a segment may contain any character,
including "/", "." and ":"); flags and roles are enums; datetimes are aware UTC.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime

FolderPath = tuple[str, ...]


class Flag(enum.StrEnum):
    """System flags every mail system knows (IMAP \\Seen…, Maildir S…, MAPI bits)."""

    SEEN = "seen"
    ANSWERED = "answered"
    FLAGGED = "flagged"
    DRAFT = "draft"
    DELETED = "deleted"
    FORWARDED = "forwarded"  # IMAP keyword $Forwarded, Maildir "P" (passed)


class Role(enum.StrEnum):
    """What a folder is for, independent of its (localised) name.

    The first group is RFC 6154 SPECIAL-USE plus INBOX; the second group is
    Outlook's default folders, which only PST/Exchange know about.
    """

    INBOX = "inbox"
    SENT = "sent"
    DRAFTS = "drafts"
    TRASH = "trash"
    JUNK = "junk"
    ARCHIVE = "archive"
    ALL = "all"
    FLAGGED = "flagged"
    IMPORTANT = "important"
    OUTBOX = "outbox"
    CALENDAR = "calendar"
    CONTACTS = "contacts"
    TASKS = "tasks"
    NOTES = "notes"
    JOURNAL = "journal"


class ItemKind(enum.StrEnum):
    """What a stored item is. Everything but MAIL comes from PST/OST sources."""

    MAIL = "mail"
    CONTACT = "contact"  # raw = a MIME message carrying a text/vcard part
    DISTLIST = "distlist"
    EVENT = "event"  # text/calendar VEVENT
    TASK = "task"  # text/calendar VTODO
    NOTE = "note"
    JOURNAL = "journal"


class DuplicatePolicy(enum.StrEnum):
    """Outlook import wizard's three choices for items already in the target."""

    SKIP = "skip"  # "Do not import duplicates" (default)
    ALLOW = "allow"  # "Allow duplicates to be created"
    REPLACE = "replace"  # "Replace duplicates with items imported"


def utc(dt: datetime) -> datetime:
    """Return `dt` as aware UTC; a naive datetime is taken to be UTC already."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


@dataclass(frozen=True)
class FolderInfo:
    """A folder as a source or sink sees it.

    `source_name` is the folder's name in the system it came from (e.g. the
    raw IMAP mailbox name with its delimiter) so it can be reported exactly.
    """

    path: FolderPath
    role: Role | None = None
    source_name: str = ""
    message_count: int | None = None
    selectable: bool = True
    container_class: str = ""  # PST/Exchange folder class, e.g. "IPF.Note"


@dataclass(frozen=True)
class MessageMeta:
    """Everything about one message except its bytes.

    `source_id` identifies the message within (source, folder) and must be
    stable across runs (IMAP: UID, POP3: UIDL, PST: node id, Maildir: unique
    part of the file name). `source_epoch` is the namespace of that id
    (IMAP: UIDVALIDITY); when the epoch changes, ids restart and the pipeline
    matches already-stored copies by content instead of by id.
    """

    folder: FolderPath
    source_id: str
    source_epoch: str = ""
    flags: frozenset[Flag] = frozenset()
    keywords: frozenset[str] = frozenset()
    received: datetime | None = None
    size: int | None = None
    kind: ItemKind = ItemKind.MAIL
    subject: str = ""  # for reports only; never used to identify a message


@dataclass(frozen=True)
class LocalFile:
    """The local file a message's bytes were read from, whole, and what it was
    when read: device, inode, size, and modification and change times in ns.

    A store on a local disk may then copy the file in the kernel (as `cp` does)
    instead of writing the bytes, once it has checked, after the copy, that the
    file is still this one, unchanged (pstkit.filecopy)."""

    path: str
    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int


@dataclass(frozen=True)
class Fetched:
    """A message a source read completely. `raw` is passed through untouched.

    `cursor` is the folder cursor that becomes valid once this message (and
    every one before it) is durable in the store; None leaves it unchanged.
    """

    meta: MessageMeta
    raw: bytes
    cursor: str | None = None
    #: what the source could not carry over into `raw` (an unreadable
    #: attachment, say): stored anyway, and recorded as a problem.
    notes: tuple[str, ...] = ()
    #: SHA-256 (hex) of `raw` if the source has it already (a local source hashes on
    #: its read-ahead thread, beside the writer's); "" and the writer hashes.
    sha256: str = ""
    #: the file `raw` is the whole of, if the source read it from a local file that
    #: had been unchanged for a while (see pstkit.filecopy.local_file); else None.
    origin: LocalFile | None = None


@dataclass(frozen=True)
class Skipped:
    """A message a source could not (or was told not to) deliver, with why."""

    meta: MessageMeta
    reason: str
    cursor: str | None = None


FetchResult = Fetched | Skipped


@dataclass(frozen=True)
class StoredMessage:
    """A message as the catalog describes it; what a sink receives with the bytes."""

    id: int
    folder: FolderPath
    sha256: str
    size: int
    flags: frozenset[Flag]
    keywords: frozenset[str]
    received: datetime | None
    message_id: str
    subject: str
    source_id: str
    source_epoch: str
    kind: ItemKind = ItemKind.MAIL
    store_id: str = ""  # the store's uuid; with `id` a globally stable key

    @property
    def stable_key(self) -> str:
        """Identity of this item wherever it goes (stamped on target items)."""
        return f"{self.store_id}:{self.id}"


@dataclass(frozen=True)
class Delivered:
    """What a sink reports after a durable `put`."""

    target_id: str = ""  # e.g. IMAP "UIDVALIDITY:UID", EWS ItemId; "" if unknown
    #: what the target could not keep (e.g. a flag it does not allow); the
    #: pipeline records it as a problem, so no change goes unreported.
    note: str = ""


@dataclass(frozen=True)
class Problem:
    """A skipped or failed item, as recorded in the catalog and reported."""

    stage: str  # "export" | "import" | "check"
    folder: FolderPath
    item: str  # source id or store message id
    reason: str
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: for people: which message this is (reports name items by folder, date, subject)
    subject: str = ""
    date: datetime | None = None
