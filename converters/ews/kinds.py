"""Pure translation for the EWS sink: which EWS item a stored item becomes.

A PST source stores each non-mail item as a MIME message that carries the
item itself as an iCalendar or vCard part (converters/pst/items.py
`wrap_item`): a body part, the card, then the item's own attachments.
Creating that wrapper as a t:Message would put an e-mail into the Contacts
folder, a silent change. For imports Microsoft recommends item types over
iCalendar/vCard MIME streams, whose property set is limited ("Exporting and
importing items by using EWS in Exchange"), and says to set the item's
properties ("Import items by using EWS in Exchange"), as its CreateItem
examples do; gromox 3.10 refuses or empties card MimeContent.
So an event's or contact's fields are read from the card (ews.calendar,
ews.contact) and sent as t:CalendarItem / t:Contact elements, a distribution
list as a t:DistributionList from the vCard group (FN +
X-ADDRESSBOOKSERVER-MEMBER), a task as t:Task fields from the VTODO.

The card cannot carry the item's attachments (embedded messages, files):
they are counted here and the sink reports them with the delivered item.
"""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import re
from dataclasses import dataclass

from pstkit.converters.ews.calendar import CalendarFields, event_fields
from pstkit.converters.ews.cards import unescape, unfold
from pstkit.converters.ews.contact import ContactFields, contact_fields
from pstkit.model import ItemKind, StoredMessage

#: what Exchange calls the item, per kind that can be created from the card.
ELEMENTS = {
    ItemKind.MAIL: "Message",
    ItemKind.EVENT: "CalendarItem",
    ItemKind.CONTACT: "Contact",
    ItemKind.DISTLIST: "DistributionList",
    ItemKind.TASK: "Task",
}
CARD_TYPES = {
    ItemKind.EVENT: ("text/calendar",),
    ItemKind.TASK: ("text/calendar",),
    ItemKind.CONTACT: ("text/vcard", "text/x-vcard", "text/directory"),
    ItemKind.DISTLIST: ("text/vcard", "text/x-vcard", "text/directory"),
}
CARD_STARTS = {ItemKind.EVENT: b"BEGIN:VCALENDAR", ItemKind.CONTACT: b"BEGIN:VCARD"}
CARD_STARTS[ItemKind.DISTLIST] = CARD_STARTS[ItemKind.CONTACT]
CARD_STARTS[ItemKind.TASK] = CARD_STARTS[ItemKind.EVENT]
#: VTODO STATUS -> EWS TaskStatusType (pst_ical writes MAPI's "deferred" as CANCELLED).
TASK_STATUS = {
    "NEEDS-ACTION": "NotStarted",
    "IN-PROCESS": "InProgress",
    "COMPLETED": "Completed",
    "CANCELLED": "Deferred",
}


@dataclass(frozen=True)
class Member:
    """One member of a distribution list."""

    name: str
    address: str


@dataclass(frozen=True)
class Attachment:
    """An attachment the card cannot carry, sent in the same CreateItem."""

    name: str
    content_type: str
    data: bytes  # a file's bytes, or an embedded message exactly as stored
    is_message: bool  # message/rfc822: an item attachment made from its MIME


@dataclass(frozen=True)
class TaskFields:
    """A VTODO as t:Task fields: Exchange has no iCalendar import for tasks."""

    subject: str
    body: str = ""
    start: str = ""  # EWS dateTime text, "" = unset
    due: str = ""
    completed: str = ""
    status: str = ""  # TaskStatusType, "" = unset
    percent: str = ""  # 0..100
    recurring: bool = False  # an RRULE, which is not carried (see Shape.note)


@dataclass(frozen=True)
class Shape:
    """What one stored item is sent as."""

    element: str  # "Message", "CalendarItem", "Contact" or "DistributionList"
    content: bytes  # the MimeContent to send (b"" for a DistributionList)
    display_name: str = ""
    members: tuple[Member, ...] = ()
    not_carried: int = 0  # attachments that go nowhere (a list cannot hold any)
    lost_members: int = 0  # list members without an address (EWS needs one)
    attachments: tuple[Attachment, ...] = ()
    task: TaskFields | None = None
    calendar: CalendarFields | None = None
    contact: ContactFields | None = None

    @property
    def wire_size(self) -> int:
        """Bytes that go base64-encoded into the request (and text fields, unencoded)."""
        text = self.calendar.body if self.calendar else self.contact.body if self.contact else ""
        return len(self.content) + sum(len(a.data) for a in self.attachments) + len(text) * 3

    @property
    def note(self) -> str:
        """What the pipeline records as a problem for a delivered item ("" = none)."""
        lost = [
            f"{n} {one if n == 1 else many}"
            for n, one, many in (
                (self.not_carried, "attachment", "attachments"),
                (self.lost_members, "member without an address", "members without an address"),
                (int(bool(self.task and self.task.recurring)), "recurrence", ""),
            )
            if n
        ]
        lost += self.calendar.notes if self.calendar else ()
        lost += self.contact.notes if self.contact else ()
        if not lost:
            return ""
        return f"stored, but not carried into the {self.element}: {', '.join(lost)} " + (
            "(kept in the store)"
        )


def unsupported(kind: ItemKind) -> str:
    return f"EWS import of {kind.value} items is not supported yet; the item stays in the store"


def shape(msg: StoredMessage, raw: bytes) -> Shape | str:
    """How to create `msg` in Exchange, or why it cannot be (a `Failed` reason)."""
    if msg.kind is ItemKind.MAIL:
        return Shape("Message", raw)
    if msg.kind not in CARD_TYPES:
        return unsupported(msg.kind)
    parsed = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(raw)
    parts: list[email.message.Message] = (
        [p for p in parsed.get_payload() if isinstance(p, email.message.Message)]
        if parsed.is_multipart()
        else [parsed]
    )
    found = _card(parts, CARD_TYPES[msg.kind])
    if found is None:
        return f"the stored {msg.kind.value} carries no {CARD_TYPES[msg.kind][0]} part"
    index, card = found
    if not card.lstrip().upper().startswith(CARD_STARTS[msg.kind]):
        return f"the {CARD_TYPES[msg.kind][0]} part of the stored {msg.kind.value} is not valid"
    # Part 0 is the body, which the card carries too (DESCRIPTION / NOTE).
    extra = [i for i in range(len(parts)) if i not in (0, index)]
    if msg.kind is ItemKind.DISTLIST:
        name, members = parse_group(card.decode("utf-8", "replace"))
        kept = tuple(m for m in members if m.address)
        lost = len(members) - len(kept)
        return Shape("DistributionList", b"", name or msg.subject, kept, len(extra), lost)
    bodies = raw_parts(raw, parsed.get_boundary() or "") if extra else []
    atts = tuple(_attachment(parts[i], bodies[i] if i < len(bodies) else b"") for i in extra)
    text = card.decode("utf-8", "replace")
    if msg.kind is ItemKind.TASK:
        task = parse_vtodo(text)
        if task is None:
            return "the text/calendar part of the stored task has no VTODO"
        return Shape("Task", b"", attachments=atts, task=task)
    if msg.kind is ItemKind.CONTACT:
        return Shape("Contact", b"", attachments=atts, contact=contact_fields(text))
    event = event_fields(text)
    if isinstance(event, str):
        return f"{event}; the item stays in the store"
    return Shape("CalendarItem", b"", attachments=atts, calendar=event)


def _attachment(part: email.message.Message, body: bytes) -> Attachment:
    name = part.get_filename() or part.get_param("name") or "attachment"
    ctype = part.get_content_type()
    if ctype == "message/rfc822":  # sent as stored, not re-serialised by the email package
        return Attachment(str(name), ctype, body, is_message=True)
    data = part.get_payload(decode=True)
    return Attachment(str(name), ctype, data if isinstance(data, bytes) else b"", False)


def raw_parts(raw: bytes, boundary: str) -> list[bytes]:
    """The bodies (after each part's header block) of a multipart's top-level
    parts, byte-exact: the CRLF before a delimiter belongs to the delimiter."""
    if not boundary:
        return []
    chunks = re.split(rb"\r?\n--" + re.escape(boundary.encode()), raw)
    out = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):  # the close delimiter: the epilogue follows
            break
        part = chunk.split(b"\n", 1)[1] if b"\n" in chunk else b""  # rest of delimiter line
        head_end = re.search(rb"\r?\n\r?\n", part)
        out.append(part[head_end.end() :] if head_end else b"")
    return out


def _card(parts: list[email.message.Message], types: tuple[str, ...]) -> tuple[int, bytes] | None:
    """(index, decoded bytes) of the first top-level part of one of `types`."""
    for i, part in enumerate(parts):
        if part.get_content_type() in types:
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return i, payload
    return None


def parse_group(card: str) -> tuple[str, tuple[Member, ...]]:
    """(FN, members) of a vCard group as pstkit writes it: each
    X-ADDRESSBOOKSERVER-MEMBER:mailto:… optionally followed by its
    X-PSTKIT-MEMBER-NAME (the Apple extension has no member names)."""
    name, members = "", []
    for line in unfold(card):
        prop, _, value = line.partition(":")
        key = prop.split(";", 1)[0].upper()
        if key == "FN":
            name = unescape(value)
        elif key in ("X-ADDRESSBOOKSERVER-MEMBER", "MEMBER"):
            address = unescape(value)
            address = address[7:] if address.lower().startswith("mailto:") else address
            members.append(Member("", address))
        elif key == "X-PSTKIT-MEMBER-NAME" and members:
            members[-1] = Member(unescape(value), members[-1].address)
    return name, tuple(members)


def _ews_time(value: str) -> str:
    """An iCalendar DATE-TIME/DATE as EWS dateTime text ("" if unreadable).
    Floating and TZID times are taken as UTC: pst_ical writes UTC only."""
    v = value.strip().rstrip("Z")
    date, _, time = v.partition("T")
    if len(date) != 8 or not date.isdigit() or (time and (len(time) != 6 or not time.isdigit())):
        return ""
    time = time or "000000"
    return f"{date[:4]}-{date[4:6]}-{date[6:]}T{time[:2]}:{time[2:4]}:{time[4:]}Z"


def parse_vtodo(text: str) -> TaskFields | None:
    """The first VTODO of an iCalendar object as t:Task fields, or None."""
    props: dict[str, str] | None = None
    for line in unfold(text):
        head, _, value = line.partition(":")
        name = head.split(";", 1)[0].upper()
        if name == "BEGIN" and value.upper() == "VTODO":
            props = {}
        elif name == "END" and value.upper() == "VTODO" and props is not None:
            return TaskFields(
                unescape(props.get("SUMMARY", "")),
                unescape(props.get("DESCRIPTION", "")),
                _ews_time(props.get("DTSTART", "")),
                _ews_time(props.get("DUE", "")),
                _ews_time(props.get("COMPLETED", "")),
                TASK_STATUS.get(props.get("STATUS", "").upper(), ""),
                props.get("PERCENT-COMPLETE", "").strip(),
                recurring="RRULE" in props,
            )
        elif props is not None:
            props.setdefault(name, value)
    return None
