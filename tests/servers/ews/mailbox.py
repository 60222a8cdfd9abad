"""The in-memory mailbox behind the EWS test server.

What Exchange derives when an item is created from MIME is modelled here:
IsDraft and IsRead come from PR_MESSAGE_FLAGS (0x0E07) when the same
CreateItem sets it, and otherwise the item is an unsent draft (MSGFLAG_UNSENT)
— it cannot be changed afterwards; DateTimeReceived comes from
PR_MESSAGE_DELIVERY_TIME (0x0E06), else the creation time; DateTimeSent from
PR_CLIENT_SUBMIT_TIME (0x0039), else the Date header; Subject and
InternetMessageId are parsed from the MIME headers. Only a Message is read from
MimeContent; calendar items, contacts, lists and tasks are made from their
elements (see derive_card_item), and a calendar item without Start and End is
refused.
"""

from __future__ import annotations

import base64
import email.header
import email.parser
import email.policy
import email.utils
import itertools
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

MSGFLAG_READ = 0x1
MSGFLAG_UNSENT = 0x8
PR_MESSAGE_FLAGS = 0x0E07
PR_MESSAGE_DELIVERY_TIME = 0x0E06
PR_CLIENT_SUBMIT_TIME = 0x0039

#: (distinguished id, parent distinguished id, folder class, English name, German name)
DEFAULT_FOLDERS: tuple[tuple[str, str, str, str, str], ...] = (
    (
        "msgfolderroot",
        "root",
        "IPF.Note",
        "Top of Information Store",
        "Oberste Ebene des Informationsspeichers",
    ),
    ("inbox", "msgfolderroot", "IPF.Note", "Inbox", "Posteingang"),
    ("sentitems", "msgfolderroot", "IPF.Note", "Sent Items", "Gesendete Elemente"),
    ("deleteditems", "msgfolderroot", "IPF.Note", "Deleted Items", "Gelöschte Elemente"),
    ("drafts", "msgfolderroot", "IPF.Note", "Drafts", "Entwürfe"),
    ("junkemail", "msgfolderroot", "IPF.Note", "Junk Email", "Junk-E-Mail"),
    ("outbox", "msgfolderroot", "IPF.Note", "Outbox", "Postausgang"),
    ("archive", "msgfolderroot", "IPF.Note", "Archive", "Archiv"),
    ("calendar", "msgfolderroot", "IPF.Appointment", "Calendar", "Kalender"),
    ("contacts", "msgfolderroot", "IPF.Contact", "Contacts", "Kontakte"),
    ("tasks", "msgfolderroot", "IPF.Task", "Tasks", "Aufgaben"),
    ("notes", "msgfolderroot", "IPF.StickyNote", "Notes", "Notizen"),
    ("journal", "msgfolderroot", "IPF.Journal", "Journal", "Journal"),
)

# A property is keyed by its tag, or by (property set, name) / (property set, id).
PropKey = tuple[str, ...]


@dataclass(frozen=True)
class PropValue:
    type: str  # EWS MapiPropertyTypeType, e.g. "Integer", "SystemTime", "String"
    value: str  # as on the wire


@dataclass(frozen=True)
class Folder:
    id: str
    parent_id: str
    name: str
    folder_class: str = "IPF.Note"
    distinguished: str | None = None


@dataclass(frozen=True)
class Attached:
    """An attachment created with its item: a file, or an item made from MIME."""

    name: str
    content_type: str
    data: bytes  # the file's bytes, or the attached item's MimeContent
    is_item: bool


@dataclass(frozen=True)
class Item:
    id: str
    folder_id: str
    mime: bytes
    props: dict[PropKey, PropValue]
    categories: tuple[str, ...]
    subject: str
    message_id: str
    is_read: bool
    is_draft: bool
    received: datetime
    sent: datetime | None
    created: datetime
    item_class: str = "IPM.Note"
    element: str = "Message"  # CalendarItem, Contact, DistributionList: see derive_card_item
    start: datetime | None = None  # CalendarItem
    end: datetime | None = None  # CalendarItem
    uid: str = ""  # CalendarItem
    is_recurring: bool = False  # CalendarItem
    display_name: str = ""  # Contact, DistributionList
    emails: tuple[str, ...] = ()  # Contact
    members: tuple[tuple[str, str], ...] = ()  # DistributionList: (name, address)
    attachments: tuple[Attached, ...] = ()  # as created with the item (t:Attachments)
    task: dict[str, str] = field(default_factory=dict)  # Task: TaskType element -> text
    #: CalendarItem/Contact: the elements they were created with (props.item_fields)
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.mime)


def parse_system_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _headers(mime: bytes) -> tuple[str, str, datetime | None]:
    parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
    msg = parser.parsebytes(mime)
    subject = str(email.header.make_header(email.header.decode_header(msg.get("Subject", ""))))
    date: datetime | None = None
    try:
        parsed = email.utils.parsedate_to_datetime(msg.get("Date", ""))
        date = parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (TypeError, ValueError, IndexError):
        date = None
    return " ".join(subject.split()), (msg.get("Message-ID") or "").strip(), date


def derive_item(
    item_id: str,
    folder_id: str,
    mime: bytes,
    props: dict[PropKey, PropValue],
    explicit_read: bool | None,
    categories: tuple[str, ...],
    now: datetime,
) -> Item:
    """Build the stored item as Exchange would from CreateItem(MimeContent)."""
    flags_prop = props.get(("tag", str(PR_MESSAGE_FLAGS)))
    # Without PR_MESSAGE_FLAGS in the same request, Exchange saves an unsent draft.
    flags = int(flags_prop.value) if flags_prop else MSGFLAG_READ | MSGFLAG_UNSENT
    if explicit_read is not None:
        flags = (flags | MSGFLAG_READ) if explicit_read else (flags & ~MSGFLAG_READ)
    received_prop = props.get(("tag", str(PR_MESSAGE_DELIVERY_TIME)))
    sent_prop = props.get(("tag", str(PR_CLIENT_SUBMIT_TIME)))
    subject, message_id, date = _headers(mime)
    return Item(
        id=item_id,
        folder_id=folder_id,
        mime=mime,
        props={**props, ("tag", str(PR_MESSAGE_FLAGS)): PropValue("Integer", str(flags))},
        categories=categories,
        subject=subject,
        message_id=message_id,
        is_read=bool(flags & MSGFLAG_READ),
        is_draft=bool(flags & MSGFLAG_UNSENT),
        received=parse_system_time(received_prop.value) if received_prop else now,
        sent=parse_system_time(sent_prop.value) if sent_prop else date,
        created=now,
    )


class CardError(ValueError):
    """A CalendarItem/Contact lacking what Exchange needs to create it."""


def derive_card_item(
    base: Item,
    element: str,
    display_name: str = "",
    members: tuple[tuple[str, str], ...] = (),
    task: dict[str, str] | None = None,
    fields: dict[str, str] | None = None,
) -> Item:
    """A CalendarItem/Contact/DistributionList/Task as Exchange makes it from the
    item's elements (`fields`: local name -> text, see props.item_fields). Their
    MimeContent is not read: Microsoft recommends item types over iCalendar/vCard
    streams for imports, whose property set is limited ("Exporting and importing
    items by using EWS in Exchange"), and gromox 3.10 refuses or empties them; a
    sink that relies on them must fail here."""
    base = replace(base, is_draft=False, is_read=True)  # no mail flags on these
    got = dict(fields or {})
    if element == "CalendarItem":
        return _calendar_item(base, got)
    if element == "Task":  # built from elements: Exchange has no VTODO import
        return replace(
            base, element=element, item_class="IPM.Task", subject=display_name,
            task=dict(task or {}),
        )  # fmt: skip
    if element == "Contact":
        emails = tuple(v for k, v in sorted(got.items()) if k.startswith("EmailAddress"))
        name = got.get("DisplayName", "")
        return replace(
            base, element=element, item_class="IPM.Contact", subject=name,
            display_name=name, emails=emails, fields=got,
        )  # fmt: skip
    return replace(
        base, element=element, item_class="IPM.DistList", subject=display_name,
        display_name=display_name, members=members,
    )  # fmt: skip


def _calendar_item(base: Item, got: dict[str, str]) -> Item:
    """Exchange's CreateItem examples for calendar items always set Start and End
    ("Create appointments and meetings by using EWS in Exchange", learn.microsoft.com/
    en-us/exchange/client-developer/exchange-web-services/
    how-to-create-appointments-and-meetings-by-using-ews-in-exchange), and its import
    guide says to set an item's properties (…/how-to-import-items-by-using-ews-in-exchange)
    rather than MIME streams (limited property set); gromox 3.10
    refuses one without (ErrorItemCorrupt, "missing required child element
    'Start'"). types.xsd leaves both optional (minOccurs="0"), so this is checked
    here, not by the schema; the code is gromox's, Exchange's own was not observed."""
    missing = [n for n in ("Start", "End") if n not in got]
    if missing:
        raise CardError("ErrorItemCorrupt", f"A CalendarItem needs {' and '.join(missing)}")
    start, end = parse_system_time(got["Start"]), parse_system_time(got["End"])
    if end < start:
        raise CardError(
            "ErrorCalendarEndDateIsEarlierThanStartDate", "EndDate is earlier than StartDate"
        )
    return replace(
        base, element="CalendarItem", item_class="IPM.Appointment",
        subject=got.get("Subject", ""), start=start, end=end, uid=got.get("UID", ""),
        is_recurring="Recurrence" in got, fields=got,
    )  # fmt: skip


def make_id(kind: str, n: int, owner: str) -> str:
    """Opaque base64 ids, like Exchange's (which are also base64 blobs)."""
    return base64.b64encode(f"{kind}:{owner}:{n:08d}".encode()).decode("ascii")


def is_our_id(text: str) -> bool:
    """Whether `text` has the shape of an id this server hands out (else it is
    "malformed", ErrorInvalidIdMalformed, as the operation pages answer a bad id)."""
    try:
        kind, owner, n = base64.b64decode(text, validate=True).decode().split(":")
    except (ValueError, UnicodeDecodeError):
        return False
    return kind in ("F", "I") and "@" in owner and len(n) == 8 and n.isdigit()


@dataclass
class Mailbox:
    """One mailbox. All access goes through `lock` (the server is threaded)."""

    smtp: str
    language: str = "en"
    folders: dict[str, Folder] = field(default_factory=dict)
    items: dict[str, Item] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        root_id = self.new_id("F")
        self.folders[root_id] = Folder(root_id, "", "root", "", "root")
        by_name = {"root": root_id}
        for dist, parent, cls, en, de in DEFAULT_FOLDERS:
            fid = self.new_id("F")
            name = de if self.language == "de" else en
            self.folders[fid] = Folder(fid, by_name[parent], name, cls, dist)
            by_name[dist] = fid

    def new_id(self, kind: str) -> str:
        return make_id(kind, next(self._ids), self.smtp)

    def distinguished(self, name: str) -> Folder | None:
        return next((f for f in self.folders.values() if f.distinguished == name), None)

    def children(self, folder_id: str) -> list[Folder]:
        return [f for f in self.folders.values() if f.parent_id == folder_id]

    def descendants(self, folder_id: str) -> list[Folder]:
        out: list[Folder] = []
        for child in self.children(folder_id):
            out.append(child)
            out.extend(self.descendants(child.id))
        return out

    def add_folder(self, parent_id: str, name: str, folder_class: str) -> Folder | None:
        """None when a sibling with that name exists (names compare case-insensitively)."""
        if any(f.name.casefold() == name.casefold() for f in self.children(parent_id)):
            return None
        folder = Folder(self.new_id("F"), parent_id, name, folder_class)
        self.folders[folder.id] = folder
        return folder

    def items_in(self, folder_id: str) -> list[Item]:
        return sorted(
            (i for i in self.items.values() if i.folder_id == folder_id),
            key=lambda i: (i.received, i.id),
            reverse=True,  # Exchange's default view: newest received first
        )

    def path_of(self, folder_id: str) -> tuple[str, ...]:
        """Folder names from below msgfolderroot (for tests)."""
        top = self.distinguished("msgfolderroot")
        parts: list[str] = []
        cur = self.folders[folder_id]
        while top is not None and cur.id != top.id and cur.parent_id:
            parts.append(cur.name)
            cur = self.folders[cur.parent_id]
        return tuple(reversed(parts))

    def folder_by_path(self, path: tuple[str, ...]) -> Folder | None:
        cur = self.distinguished("msgfolderroot")
        for name in path:
            if cur is None:
                return None
            cur = next((f for f in self.children(cur.id) if f.name == name), None)
        return cur

    def move_item(self, item: Item, folder_id: str) -> Item:
        moved = replace(item, folder_id=folder_id)
        self.items[item.id] = moved
        return moved
