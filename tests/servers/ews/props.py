"""Extended-property keys, FindItem restrictions, CreateItem item checks (pure functions)."""

from __future__ import annotations

import base64
from collections.abc import Callable

from lxml import etree

from tests.servers.ews.mailbox import Attached, Item, PropKey, PropValue, parse_system_time
from tests.servers.ews.soap import t


def prop_key(uri: etree._Element) -> PropKey:
    """The storage key of an ExtendedFieldURI, however the client spelled it."""
    tag = uri.get("PropertyTag")
    if tag is not None:
        return ("tag", str(int(tag, 16) if tag.lower().startswith("0x") else int(tag)))
    pset = (uri.get("PropertySetId") or uri.get("DistinguishedPropertySetId") or "").lower()
    if uri.get("PropertyName") is not None:
        return ("name", pset, uri.get("PropertyName", ""))
    return ("id", pset, uri.get("PropertyId", ""))


def prop_values(prop: etree._Element) -> tuple[etree._Element, PropValue]:
    """(ExtendedFieldURI, value) of a request's t:ExtendedProperty."""
    uri = prop.find(t("ExtendedFieldURI"))
    assert uri is not None  # schema-validated: ExtendedFieldURI is required
    value = prop.findtext(t("Value"))
    if value is None:  # multi-valued: keep them joined, the importer never sends these
        value = "\n".join(v.text or "" for v in prop.iter(t("Value")))
    return uri, PropValue(uri.get("PropertyType", "String"), value)


FIELD_GETTERS: dict[str, Callable[[Item], str]] = {
    "item:Subject": lambda i: i.subject,
    "message:InternetMessageId": lambda i: i.message_id,
    "item:ItemClass": lambda i: i.item_class,
    "message:IsRead": lambda i: "true" if i.is_read else "false",
    "item:IsDraft": lambda i: "true" if i.is_draft else "false",
}


def _operand(item: Item, path: etree._Element) -> tuple[str | None, str]:
    """(value, type) of the field a restriction names, or (None, '') if absent."""
    if path.tag == t("ExtendedFieldURI"):
        prop = item.props.get(prop_key(path))
        return (prop.value, prop.type) if prop else (None, "")
    getter = FIELD_GETTERS.get(path.get("FieldURI", ""))
    return (getter(item), "String") if getter else (None, "")


def _compare(left: str, right: str, type_: str) -> int:
    if type_ in ("Integer", "Long", "Short"):
        a, b = int(left), int(right)
    elif type_ == "SystemTime":
        a2, b2 = parse_system_time(left), parse_system_time(right)
        return (a2 > b2) - (a2 < b2)
    else:
        return (left > right) - (left < right)
    return (a > b) - (a < b)


COMPARISONS: dict[str, Callable[[int], bool]] = {
    "IsEqualTo": lambda c: c == 0,
    "IsNotEqualTo": lambda c: c != 0,
    "IsGreaterThan": lambda c: c > 0,
    "IsGreaterThanOrEqualTo": lambda c: c >= 0,
    "IsLessThan": lambda c: c < 0,
    "IsLessThanOrEqualTo": lambda c: c <= 0,
}


def matches(item: Item, expr: etree._Element) -> bool:
    """Evaluate one SearchExpression (the child of t:Restriction) on `item`."""
    name = etree.QName(expr).localname
    children = [c for c in expr if isinstance(c.tag, str)]
    if name == "And":
        return all(matches(item, c) for c in children)
    if name == "Or":
        return any(matches(item, c) for c in children)
    if name == "Not":
        return not matches(item, children[0])
    value, type_ = _operand(item, children[0])
    if name == "Exists":
        return value is not None
    if value is None:
        return False
    const = expr.find(f"{t('FieldURIOrConstant')}/{t('Constant')}")
    if name == "Contains":
        const = expr.find(t("Constant"))
        wanted = (const.get("Value", "") if const is not None else "").casefold()
        return wanted in value.casefold()
    if const is None or name not in COMPARISONS:
        return False  # comparing two fields is not used by the importer
    return COMPARISONS[name](_compare(value, const.get("Value", ""), type_))


#: item element -> (folder class it needs, Exchange's code when the folder is another kind)
CARD_FOLDERS = {
    "CalendarItem": ("IPF.Appointment", "ErrorCannotCreateCalendarItemInNonCalendarFolder"),
    "Contact": ("IPF.Contact", "ErrorCannotCreateContactInNonContactFolder"),
    "DistributionList": ("IPF.Contact", "ErrorCannotCreateContactInNonContactFolder"),
    "Task": ("IPF.Task", "ErrorCannotCreateTaskInNonTaskFolder"),
}


def parse_props(
    spec: etree._Element,
) -> tuple[dict[PropKey, PropValue], bool | None, tuple[str, ...]]:
    props: dict[PropKey, PropValue] = {}
    for prop in spec.findall(t("ExtendedProperty")):
        uri, value = prop_values(prop)
        props[prop_key(uri)] = value
    read_text = spec.findtext(t("IsRead"))
    explicit_read = None if read_text is None else read_text.strip() in ("true", "1")
    cats = tuple(s.text or "" for s in spec.iterfind(f"{t('Categories')}/{t('String')}"))
    return props, explicit_read, cats


def members(spec: etree._Element) -> tuple[tuple[str, str], ...]:
    path = f"{t('Members')}/{t('Member')}/{t('Mailbox')}"
    return tuple(
        (box.findtext(t("Name")) or "", box.findtext(t("EmailAddress")) or "")
        for box in spec.iterfind(path)
    )


def kind_refusal(kind: str, folder_class: str, invitations: str | None) -> tuple[str, str] | None:
    """(code, text) of Exchange's refusal of a new `kind` item before it looks at
    the content, or None."""
    if kind != "Message" and kind not in CARD_FOLDERS:
        return "ErrorInvalidItemForOperationCreateItem", f"{kind} items are not supported here."
    # "This property is required for calendar items" (CreateItemType.SendMeetingInvitations).
    if kind == "CalendarItem" and invitations is None:
        return (
            "ErrorSendMeetingInvitationsRequired",
            "The SendMeetingInvitations attribute is required for calendar items.",
        )
    if kind in CARD_FOLDERS and not folder_class.startswith(CARD_FOLDERS[kind][0]):
        needed, code = CARD_FOLDERS[kind]
        return code, f"{kind} items can only be created in {needed} folders."
    return None


def attachments(spec: etree._Element) -> tuple[Attached, ...]:
    """The t:Attachments of a CreateItem item (file attachments and item
    attachments made from MimeContent; the importer sends no other kind)."""
    out = []
    for att in spec.iterfind(f"{t('Attachments')}/*"):
        name = att.findtext(t("Name")) or ""
        if att.tag == t("FileAttachment"):
            data = base64.b64decode(att.findtext(t("Content")) or "")
            out.append(Attached(name, att.findtext(t("ContentType")) or "", data, False))
        else:
            mime = att.findtext(f"*/{t('MimeContent')}") or ""
            out.append(Attached(name, "message/rfc822", base64.b64decode(mime), True))
    return tuple(out)


TASK_ELEMENTS = ("CompleteDate", "DueDate", "PercentComplete", "StartDate", "Status")


def task_fields(spec: etree._Element) -> dict[str, str]:
    """A t:Task's own elements that the importer sets, by local name."""
    return {n: v for n in TASK_ELEMENTS if (v := spec.findtext(t(n))) is not None}


#: dictionary elements of a Contact, stored as "<Entry kind>:<Key>" (emails by their Key alone)
_DICTIONARIES = {"EmailAddresses": "", "PhoneNumbers": "Phone:", "PhysicalAddresses": "Address:"}
_NOT_FIELDS = {"MimeContent", "ExtendedProperty", "Attachments", "Categories", "Members"}


def item_fields(spec: etree._Element) -> dict[str, str]:
    """A CalendarItem's or Contact's own elements, flat: local name -> text. Recurrence
    is "<pattern>/<range>" plus "Recurrence.<child>" entries, a time zone its Id, a
    postal address its parts joined by "|"."""
    out: dict[str, str] = {}
    for child in spec:
        name = etree.QName(child).localname
        if name in _NOT_FIELDS:
            continue
        if name in _DICTIONARIES:
            for entry in child:
                parts = [e.text or "" for e in entry]
                text = "|".join(parts) if len(entry) else entry.text or ""
                out[_DICTIONARIES[name] + entry.get("Key", "")] = text
        elif name == "Recurrence":
            out[name] = "/".join(etree.QName(part).localname for part in child)
            out |= {f"Recurrence.{etree.QName(g).localname}": g.text or ""
                    for part in child for g in part}  # fmt: skip
        elif name in ("StartTimeZone", "EndTimeZone"):
            out[name] = child.get("Id", "")
        elif len(child) == 0:
            out[name] = child.text or ""
    return out
