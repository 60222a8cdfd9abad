"""Folders and items as EWS XML, elements in the schema's sequence order."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime

from lxml import etree

from tests.servers.ews.mailbox import Folder, Item, Mailbox
from tests.servers.ews.props import prop_key
from tests.servers.ews.soap import sub, t

FOLDER_TAGS = {
    "IPF.Appointment": "CalendarFolder",
    "IPF.Contact": "ContactsFolder",
    "IPF.Task": "TasksFolder",
}
FOLDER_SHAPES = {
    "IdOnly": {"folder:FolderId"},
    "Default": {
        "folder:FolderId",
        "folder:DisplayName",
        "folder:TotalCount",
        "folder:ChildFolderCount",
        "folder:UnreadCount",
    },
    "AllProperties": {
        "folder:FolderId",
        "folder:ParentFolderId",
        "folder:FolderClass",
        "folder:DisplayName",
        "folder:TotalCount",
        "folder:ChildFolderCount",
        "folder:UnreadCount",
    },
}
ITEM_SHAPES = {
    "IdOnly": {"item:ItemId"},
    # those of the GetItem (email message) page's Default response that this server
    # renders (it has no Sensitivity, Body, ResponseObjects, recipients or receipts)
    "Default": {
        "item:ItemId",
        "item:Subject",
        "item:Size",
        "item:DateTimeSent",
        "item:DateTimeCreated",
        "message:IsRead",
    },
    "AllProperties": {
        "item:ItemId",
        "item:ParentFolderId",
        "item:ItemClass",
        "item:Subject",
        "item:DateTimeReceived",
        "item:Size",
        "item:Categories",
        "item:IsDraft",
        "item:DateTimeSent",
        "item:DateTimeCreated",
        "message:InternetMessageId",
        "message:IsRead",
    },
}


def ews_time(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def shape_fields(
    shape: etree._Element | None, table: dict[str, set[str]], base_only: bool = False
) -> tuple[set[str], list[etree._Element]]:
    """(FieldURI names, ExtendedFieldURI elements) an ItemShape/FolderShape asks for
    (`base_only`: those of its BaseShape alone)."""
    if shape is None:
        return set(table["Default"]), []
    fields = set(table.get(shape.findtext(t("BaseShape")) or "Default", table["Default"]))
    extended: list[etree._Element] = []
    if base_only:
        return fields, extended
    if shape.findtext(t("IncludeMimeContent")) in ("true", "1"):  # GetItem (email) page
        fields.add("item:MimeContent")
    extra = shape.find(t("AdditionalProperties"))
    for path in extra if extra is not None else []:
        if path.tag == t("FieldURI"):
            fields.add(path.get("FieldURI", ""))
        elif path.tag == t("ExtendedFieldURI"):
            extended.append(path)
        elif path.tag == t("IndexedFieldURI"):  # one member of a dictionary, e.g.
            # contacts:EmailAddress with FieldIndex EmailAddress2 (see README)
            fields.add(f"{path.get('FieldURI', '')}#{path.get('FieldIndex', '')}")
    return fields, extended


#: FieldURI prefix -> the item elements that have such properties (types.xsd); a
#: property "only available on calendar items … requested in a GetItem operation call
#: for a message" is ErrorInvalidPropertyRequest (ResponseCode page). This server holds
#: no meeting messages or posts, so their prefixes fit none of its items.
FIELD_OWNERS = {
    "message": {"Message"},
    "calendar": {"CalendarItem"},
    "contacts": {"Contact", "DistributionList"},
    "distributionlist": {"DistributionList"},
    "task": {"Task"},
    "meeting": set(),
    "meetingRequest": set(),
    "meetingResponse": set(),
    "meetingCancellation": set(),
    "postitem": set(),
}


def foreign_field(item: Item, fields: set[str]) -> str | None:
    """The first asked FieldURI that `item`'s type does not have, or None."""
    for uri in sorted(fields):
        owners = FIELD_OWNERS.get(uri.split(":", 1)[0])
        if owners is not None and item.element not in owners:
            return uri.split("#", 1)[0]
    return None


def folder_xml(parent: etree._Element, box: Mailbox, folder: Folder, fields: set[str]) -> None:
    tag = FOLDER_TAGS.get(folder.folder_class, "Folder")
    el = sub(parent, t(tag))
    sub(el, t("FolderId"), Id=folder.id, ChangeKey="AQAAAA==")
    if "folder:ParentFolderId" in fields and folder.parent_id:
        sub(el, t("ParentFolderId"), Id=folder.parent_id, ChangeKey="AQAAAA==")
    if "folder:FolderClass" in fields and folder.folder_class:
        sub(el, t("FolderClass"), folder.folder_class)
    if "folder:DisplayName" in fields:
        sub(el, t("DisplayName"), folder.name)
    items = box.items_in(folder.id)
    if "folder:TotalCount" in fields:
        sub(el, t("TotalCount"), str(len(items)))
    if "folder:ChildFolderCount" in fields:
        sub(el, t("ChildFolderCount"), str(len(box.children(folder.id))))
    if "folder:DistinguishedFolderId" in fields and folder.distinguished:
        sub(el, t("DistinguishedFolderId"), folder.distinguished)
    if "folder:UnreadCount" in fields and tag in ("Folder", "TasksFolder"):
        sub(el, t("UnreadCount"), str(sum(not i.is_read for i in items)))


def _bool(value: bool) -> str:
    return "true" if value else "false"


# (FieldURI, renderer) in MessageType's sequence order; None = leave the element out.
ITEM_FIELDS: tuple[tuple[str, Callable[[Item], str | None]], ...] = (
    ("item:ItemClass", lambda i: i.item_class),
    ("item:Subject", lambda i: i.subject),
    ("item:DateTimeReceived", lambda i: ews_time(i.received)),
    ("item:Size", lambda i: str(i.size)),
)
LATE_FIELDS: tuple[tuple[str, Callable[[Item], str | None]], ...] = (
    ("item:IsDraft", lambda i: _bool(i.is_draft)),
    ("item:DateTimeSent", lambda i: ews_time(i.sent) if i.sent else None),
    ("item:DateTimeCreated", lambda i: ews_time(i.created)),
)


# Per item type, the fields after ItemType's, in that type's sequence order.
KIND_FIELDS: dict[str, tuple[tuple[str, Callable[[Item], str | None]], ...]] = {
    "Message": (),  # InternetMessageId and IsRead: see item_xml
    "CalendarItem": (
        ("calendar:UID", lambda i: i.uid or None),
        ("calendar:Start", lambda i: ews_time(i.start) if i.start else None),
        ("calendar:End", lambda i: ews_time(i.end) if i.end else None),
        ("calendar:IsRecurring", lambda i: _bool(i.is_recurring)),
    ),
    "Contact": (("contacts:DisplayName", lambda i: i.display_name),),
    "DistributionList": (("contacts:DisplayName", lambda i: i.display_name),),
    "Task": (
        ("task:DueDate", lambda i: i.task.get("DueDate")),
        ("task:Status", lambda i: i.task.get("Status")),
    ),
}


def item_xml(
    parent: etree._Element, item: Item, fields: set[str], extended: list[etree._Element]
) -> None:
    el = sub(parent, t(item.element))
    if "item:MimeContent" in fields:
        sub(el, t("MimeContent"), base64.b64encode(item.mime).decode("ascii"), CharacterSet="UTF-8")
    sub(el, t("ItemId"), Id=item.id, ChangeKey="CQAAAA==")
    if "item:ParentFolderId" in fields:
        sub(el, t("ParentFolderId"), Id=item.folder_id, ChangeKey="AQAAAA==")
    _simple(el, item, fields, ITEM_FIELDS)
    if "item:Categories" in fields and item.categories:
        cats = sub(el, t("Categories"))
        for c in item.categories:
            sub(cats, t("String"), c)
    _simple(el, item, fields, LATE_FIELDS)
    for uri in extended:
        prop = item.props.get(prop_key(uri))
        if prop is not None:
            ext = sub(el, t("ExtendedProperty"))
            ext.append(etree.Element(t("ExtendedFieldURI"), dict(uri.attrib)))
            sub(ext, t("Value"), prop.value)
    _simple(el, item, fields, KIND_FIELDS[item.element])
    if item.element == "Contact":
        _emails(el, item, fields)
    if item.element == "DistributionList" and "distributionlist:Members" in fields:
        _members(el, item)
    if item.element != "Message":
        return
    if "message:InternetMessageId" in fields and item.message_id:
        sub(el, t("InternetMessageId"), item.message_id)
    if "message:IsRead" in fields:
        sub(el, t("IsRead"), _bool(item.is_read))


def _emails(el: etree._Element, item: Item, fields: set[str]) -> None:
    """EmailAddresses (after DisplayName in ContactItemType's sequence; CompanyName, which
    would come between, is not rendered): the entries asked for by IndexedFieldURI."""
    keys = [f"EmailAddress{n}" for n in range(1, len(item.emails) + 1)]
    entries = [
        (k, v)
        for k, v in zip(keys, item.emails, strict=True)
        if f"contacts:EmailAddress#{k}" in fields
    ]
    if entries:
        box = sub(el, t("EmailAddresses"))
        for key, address in entries:
            sub(box, t("Entry"), address, Key=key)


def _members(el: etree._Element, item: Item) -> None:
    if not item.members:
        return
    members = sub(el, t("Members"))
    for name, address in item.members:
        box = sub(sub(members, t("Member")), t("Mailbox"))
        if name:
            sub(box, t("Name"), name)
        sub(box, t("EmailAddress"), address)
        sub(box, t("RoutingType"), "SMTP")


def _simple(
    el: etree._Element,
    item: Item,
    fields: set[str],
    table: tuple[tuple[str, Callable[[Item], str | None]], ...],
) -> None:
    for uri, render in table:
        if uri in fields:
            value = render(item)
            if value is not None:
                sub(el, t(uri.split(":", 1)[1]), value)
