"""Pure translation for the EWS sink: store flags/dates/keywords -> MAPI properties.

Exchange turns a MIME-created item into an unsent draft unless
PR_MESSAGE_FLAGS is set in the same CreateItem, and shows the import date
unless PR_MESSAGE_DELIVERY_TIME / PR_CLIENT_SUBMIT_TIME are set; neither can
be repaired afterwards, so everything is decided here, before the request.
Also pure helpers the sink needs: splitting batches by request size,
backoff delays, and folder paths from a flat folder list.
"""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pstkit.converters.ews.calendar import CalendarFields
from pstkit.converters.ews.contact import ContactFields
from pstkit.converters.ews.kinds import Attachment, Member, Shape, TaskFields
from pstkit.model import Flag, FolderPath, Role, StoredMessage

MSGFLAG_READ = 0x1
MSGFLAG_UNSENT = 0x8
FLAG_STATUS_FLAGGED = 2  # followupFlagged
FLAG_ICON_RED = 6
VERB_REPLY_TO_SENDER = 102  # NOTEIVERB_REPLYTOSENDER
VERB_FORWARD = 104  # NOTEIVERB_FORWARD
ICON_REPLIED = 0x105
ICON_FORWARDED = 0x106

#: pstkit's own property set for the named "PstkitSourceKey" property.
PSTKIT_PROPERTY_SET = "6c0b1a52-5e7e-4d4f-9d1b-7a8d3f2b9c41"
SOURCE_KEY_NAME = "PstkitSourceKey"


@dataclass(frozen=True)
class PropDef:
    """One MAPI property the sink sets: by tag, or named in pstkit's property set."""

    attr: str  # attribute name on the exchangelib item
    type: str  # EWS MapiPropertyType
    tag: int | None = None
    name: str | None = None


PROPS: tuple[PropDef, ...] = (
    PropDef("pstkit_message_flags", "Integer", tag=0x0E07),  # PR_MESSAGE_FLAGS
    PropDef("pstkit_delivery_time", "SystemTime", tag=0x0E06),  # PR_MESSAGE_DELIVERY_TIME
    PropDef("pstkit_submit_time", "SystemTime", tag=0x0039),  # PR_CLIENT_SUBMIT_TIME
    PropDef("pstkit_flag_status", "Integer", tag=0x1090),  # PR_FLAG_STATUS
    PropDef("pstkit_flag_icon", "Integer", tag=0x1095),  # PR_FLAG_ICON
    PropDef("pstkit_last_verb", "Integer", tag=0x1081),  # PR_LAST_VERB_EXECUTED
    PropDef("pstkit_icon_index", "Integer", tag=0x1080),  # PR_ICON_INDEX
    PropDef("pstkit_source_key", "String", name=SOURCE_KEY_NAME),
)

#: IMAP keywords that are protocol state, not user categories.
SYSTEM_KEYWORDS = frozenset(
    k.casefold()
    for k in (
        "$Forwarded",
        "$MDNSent",
        "$Junk",
        "$NotJunk",
        "Junk",
        "NonJunk",
        "NotJunk",
        "$Phishing",
        "$SubmitPending",
        "$Submitted",
        "$Answered",
        "$Seen",
    )
)
#: Thunderbird's built-in tags, which Outlook users know by name.
THUNDERBIRD_LABELS = {
    "$label1": "Important",
    "$label2": "Work",
    "$label3": "Personal",
    "$label4": "To Do",
    "$label5": "Later",
}

#: EWS distinguished folder ids by role.
DISTINGUISHED: dict[Role, str] = {
    Role.INBOX: "inbox",
    Role.SENT: "sentitems",
    Role.TRASH: "deleteditems",
    Role.DRAFTS: "drafts",
    Role.JUNK: "junkemail",
    Role.ARCHIVE: "archive",
    Role.OUTBOX: "outbox",
    Role.CALENDAR: "calendar",
    Role.CONTACTS: "contacts",
    Role.TASKS: "tasks",
    Role.NOTES: "notes",
    Role.JOURNAL: "journal",
}


#: folder element per container class; everything else is a t:Folder of class IPF.Note.
FOLDER_ELEMENTS = {
    "IPF.Appointment": "CalendarFolder",
    "IPF.Contact": "ContactsFolder",
    "IPF.Task": "TasksFolder",
}


def folder_class(source_class: str) -> str:
    """The container class a new folder gets for a source folder's class:
    the calendar/contacts/tasks family it belongs to, else IPF.Note."""
    for family in FOLDER_ELEMENTS:
        if source_class == family or source_class.startswith(family + "."):
            return family
    return "IPF.Note"


@dataclass(frozen=True)
class ItemProps:
    """What one CreateItem sets besides MimeContent."""

    values: dict[str, object]  # PropDef.attr -> int | datetime | str
    categories: tuple[str, ...]
    is_read: bool
    element: str = "Message"  # the EWS item type to create (see ews_kinds)
    display_name: str = ""  # DistributionList only
    members: tuple[Member, ...] = ()  # DistributionList only
    attachments: tuple[Attachment, ...] = ()  # what the iCalendar/vCard cannot carry
    task: TaskFields | None = None  # Task only
    calendar: CalendarFields | None = None  # CalendarItem only
    contact: ContactFields | None = None  # Contact only


def header_date(raw: bytes) -> datetime | None:
    """The Date header as aware UTC, or None. Reads the header block only."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    msg = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)
    value = msg.get("Date")
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def categories(keywords: Iterable[str]) -> tuple[str, ...]:
    """Outlook categories for IMAP keywords (protocol keywords dropped), sorted."""
    out = {
        THUNDERBIRD_LABELS.get(k.casefold(), k)
        for k in keywords
        if k.casefold() not in SYSTEM_KEYWORDS
    }
    return tuple(sorted(c for c in out if c))


def item_props(msg: StoredMessage, raw: bytes) -> ItemProps:
    flags = msg.flags
    sent = header_date(raw)
    received = msg.received or sent
    values: dict[str, object] = {
        "pstkit_message_flags": (MSGFLAG_READ if Flag.SEEN in flags else 0)
        | (MSGFLAG_UNSENT if Flag.DRAFT in flags else 0),
        "pstkit_source_key": msg.stable_key,
    }
    if received is not None:
        values["pstkit_delivery_time"] = received.astimezone(UTC)
    if sent is not None:
        values["pstkit_submit_time"] = sent
    if Flag.FLAGGED in flags:
        values["pstkit_flag_status"] = FLAG_STATUS_FLAGGED
        values["pstkit_flag_icon"] = FLAG_ICON_RED
    # Outlook shows one last verb; a reply is the more telling of the two.
    if Flag.ANSWERED in flags:
        values["pstkit_last_verb"], values["pstkit_icon_index"] = VERB_REPLY_TO_SENDER, ICON_REPLIED
    elif Flag.FORWARDED in flags:
        values["pstkit_last_verb"], values["pstkit_icon_index"] = VERB_FORWARD, ICON_FORWARDED
    return ItemProps(values, categories(msg.keywords), Flag.SEEN in flags)


def shaped_props(msg: StoredMessage, shaped: Shape) -> ItemProps:
    """The properties for `msg` created as `shaped` says.

    A calendar item, contact or list gets only pstkit's source key (so
    duplicate checks and crash recovery find it) and the categories: read
    state, draft bit and delivery times are mail notions, and the card
    carries the item's own dates.
    """
    if shaped.element == "Message":
        return item_props(msg, shaped.content)
    values: dict[str, object] = {"pstkit_source_key": msg.stable_key}
    return ItemProps(
        values,
        categories(msg.keywords),
        is_read=True,
        element=shaped.element,
        display_name=shaped.display_name,
        members=shaped.members,
        attachments=shaped.attachments,
        task=shaped.task,
        calendar=shaped.calendar,
        contact=shaped.contact,
    )


def wire_value(value: object) -> str:
    """An extended property value as EWS wants it on the wire."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def uri_attributes(prop: PropDef) -> dict[str, str]:
    """The ExtendedFieldURI attributes that name `prop`."""
    if prop.tag is not None:
        return {"PropertyTag": f"0x{prop.tag:04x}", "PropertyType": prop.type}
    return {
        "PropertySetId": PSTKIT_PROPERTY_SET,
        "PropertyName": prop.name or "",
        "PropertyType": prop.type,
    }


def wire_props(props: ItemProps) -> list[tuple[dict[str, str], str]]:
    """(ExtendedFieldURI attributes, value) for every property to set, in PROPS order."""
    return [
        (uri_attributes(d), wire_value(props.values[d.attr]))
        for d in PROPS
        if d.attr in props.values
    ]


# --- batching and retry arithmetic ---------------------------------------

#: SOAP envelope and per-item XML around the base64 MIME (generous).
ENVELOPE_OVERHEAD = 4096
ITEM_OVERHEAD = 2048


def request_bytes(raw_sizes: Iterable[int]) -> int:
    """Size of a CreateItem request carrying these messages (base64 adds a third)."""
    return ENVELOPE_OVERHEAD + sum(ITEM_OVERHEAD + 4 * ((n + 2) // 3) for n in raw_sizes)


def max_raw_size(request_limit: int) -> int:
    """The largest message that fits alone into a request of `request_limit` bytes."""
    return max(0, (request_limit - ENVELOPE_OVERHEAD - ITEM_OVERHEAD) * 3 // 4)


def raw_budget(request_limit: int, max_items: int) -> int:
    """MIME bytes a batch of `max_items` may hold and still fit into one request."""
    # +4 per item: base64 rounds each item up to a whole 4-byte group.
    return max(0, (request_limit - ENVELOPE_OVERHEAD - max_items * (ITEM_OVERHEAD + 4)) * 3 // 4)


def split_by_size(sizes: Sequence[int], max_items: int, request_limit: int) -> list[list[int]]:
    """Indexes of `sizes`, grouped into requests within both limits, order kept.

    A message too large for any request gets a group of its own (the server
    then says why it is refused).
    """
    groups: list[list[int]] = []
    current: list[int] = []
    total = ENVELOPE_OVERHEAD
    for i, size in enumerate(sizes):
        cost = request_bytes([size]) - ENVELOPE_OVERHEAD
        if current and (len(current) >= max_items or total + cost > request_limit):
            groups.append(current)
            current, total = [], ENVELOPE_OVERHEAD
        current.append(i)
        total += cost
    if current:
        groups.append(current)
    return groups


def backoff_seconds(attempt: int, server_hint: float | None, cap: float) -> float:
    """Wait before retry `attempt` (1-based): the server's BackOffMilliseconds
    when it sent one, else exponential from 0.5 s; never above `cap`."""
    if server_hint is not None and server_hint > 0:
        return min(float(server_hint), cap)
    return min(0.5 * 2.0 ** (attempt - 1), cap)


def folder_paths(folders: Iterable[tuple[str, str, str]], top_id: str) -> dict[str, FolderPath]:
    """Paths below `top_id` for (id, parent_id, name) triples, any order."""
    parent_of = {fid: (pid, name) for fid, pid, name in folders}
    paths: dict[str, FolderPath] = {}

    def path(fid: str, seen: frozenset[str]) -> FolderPath | None:
        if fid == top_id:
            return ()
        if fid in paths:
            return paths[fid]
        if fid not in parent_of or fid in seen:
            return None  # outside the tree (or a cycle in a broken answer)
        pid, name = parent_of[fid]
        above = path(pid, seen | {fid})
        return None if above is None else (*above, name)

    for fid in parent_of:
        found = path(fid, frozenset())
        if found is not None:
            paths[fid] = found
    return paths
