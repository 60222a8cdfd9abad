"""EWS operations: one function per request element, returning the response element.

Per-message failures are raised as `EwsError` inside the per-item loop and
become `ResponseClass="Error"` messages, as Exchange does; the other items
of the same request still succeed.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import replace

from lxml import etree

from tests.servers.ews import render
from tests.servers.ews.core import (
    Context,
    EwsError,
    RequestFault,
    User,
    _error,
    _kids,
    _messages,
    _ok,
    _page,
    _root,
    _slice,
    resolve_folder,
)
from tests.servers.ews.folders import (
    create_folder,
    find_folder,
    get_folder,
    sync_folder_hierarchy,
)
from tests.servers.ews.mailbox import (
    CardError,
    Folder,
    Item,
    Mailbox,
    derive_card_item,
    derive_item,
)
from tests.servers.ews.props import (
    attachments,
    item_fields,
    kind_refusal,
    matches,
    members,
    parse_props,
    task_fields,
)
from tests.servers.ews.soap import XSI, m, sub, t

__all__ = ["OPERATIONS", "Context", "EwsError", "RequestFault", "User"]


def _converted(object_id: str, fmt: str) -> str:
    """One of our ids in another IdFormatType. The encodings are this server's (no page
    gives Exchange's): the EWS formats are the id itself, the others its bytes."""
    raw = base64.b64decode(object_id)
    if fmt in ("EwsId", "EwsLegacyId"):
        return object_id
    return raw.hex().upper() if fmt == "HexEntryId" else base64.b64encode(raw).decode()


def convert_id(ctx: Context, req: etree._Element) -> etree._Element:
    """ConvertId operation page: an id this server issued (as EwsId) is answered with an
    AlternateId in DestinationFormat, as the page's response example; a malformed one
    (e.g. exchangelib's version probe, or the page's own shortened id) as its error
    example, ErrorInvalidIdMalformed without an AlternateId."""
    resp, messages = _messages("ConvertId")
    dest = req.get("DestinationFormat", "EwsId")
    for source in _kids(req, m("SourceIds")):
        object_id = source.get("Id", "")
        try:
            if source.get("Format") != "EwsId":  # the only format this server issues
                raise EwsError("ErrorInvalidIdMalformed", "Id is malformed.")
            box = ctx.owner_of(object_id)
        except EwsError as e:
            _error(messages, "ConvertId", e)
            continue
        alt = sub(_ok(messages, "ConvertId"), m("AlternateId"))  # t: is the envelope's
        alt.set(f"{{{XSI}}}type", "t:AlternateIdType")
        alt.set("Format", dest)
        alt.set("Id", _converted(object_id, dest))
        alt.set("Mailbox", box.smtp)
    return resp


def _parse_mime(spec: etree._Element) -> bytes:
    mime_text = spec.findtext(t("MimeContent"))
    if not mime_text:
        raise EwsError(
            "ErrorMimeContentConversionFailed", "Content conversion failed: no MIME content."
        )
    try:
        return base64.b64decode(mime_text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise EwsError(
            "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content."
        ) from e


def _create_one(
    ctx: Context, req: etree._Element, box: Mailbox, folder: Folder, spec: etree._Element
) -> Item:
    kind = etree.QName(spec).localname
    refusal = kind_refusal(kind, folder.folder_class, req.get("SendMeetingInvitations"))
    if refusal is not None:
        raise EwsError(*refusal)
    # Only a message is read from MimeContent here: the other kinds are made from their
    # elements, as Microsoft recommends for imports (see mailbox.derive_card_item).
    mime = _parse_mime(spec) if kind == "Message" else b""
    props, explicit_read, cats = parse_props(spec)
    code = ctx.faults.item_error(mime)
    if code is not None:
        raise EwsError(code, f"{code} (injected by the test server)")
    item = derive_item(box.new_id("I"), folder.id, mime, props, explicit_read, cats, ctx.now())
    item = replace(item, attachments=attachments(spec))
    if kind != "Message":
        try:
            name = spec.findtext(t("DisplayName")) or spec.findtext(t("Subject")) or ""
            item = derive_card_item(
                item, kind, name, members(spec), task_fields(spec), item_fields(spec)
            )
        except CardError as e:
            raise EwsError(*e.args) from e
    with box.lock:
        box.items[item.id] = item
    return item


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text)
    except (binascii.Error, ValueError):
        return b""


def create_item(ctx: Context, req: etree._Element) -> etree._Element:
    resp, messages = _messages("CreateItem")
    saved = req.find(m("SavedItemFolderId"))
    specs = _kids(req, m("Items"))
    for spec in specs:
        mime = spec.findtext(t("MimeContent")) or ""
        refusal = ctx.faults.request_fault(etree.tostring(spec) + _b64(mime))
        if refusal is not None:
            raise RequestFault(refusal)
    for spec in specs:
        try:
            # "The attribute is required for e-mail messages. This attribute is only
            # applicable to e-mail messages." (CreateItem element page); the contact
            # page's own example request has none. Send* is refused: this server never sends.
            is_message = etree.QName(spec).localname == "Message"
            if is_message and req.get("MessageDisposition") != "SaveOnly":
                raise EwsError(
                    "ErrorMessageDispositionRequired",
                    "MessageDisposition attribute is required (this server saves only).",
                )
            # "By default, if a destination folder is not specified, task items are
            # created in the Tasks folder" (CreateItem operation (task) page)
            default = "tasks" if etree.QName(spec).localname == "Task" else "drafts"
            ref = (
                saved[0]
                if saved is not None
                else etree.Element(t("DistinguishedFolderId"), Id=default)
            )
            box, folder = resolve_folder(ctx, ref)
            item = _create_one(ctx, req, box, folder, spec)
        except EwsError as e:
            sub(_error(messages, "CreateItem", e), m("Items"))
            continue
        out = sub(sub(_ok(messages, "CreateItem"), m("Items")), t(item.element))
        sub(out, t("ItemId"), Id=item.id, ChangeKey="CQAAAA==")
    return resp


def find_item(ctx: Context, req: etree._Element) -> etree._Element:
    resp, messages = _messages("FindItem")
    fields, extended = render.shape_fields(req.find(m("ItemShape")), render.ITEM_SHAPES)
    restriction = req.find(m("Restriction"))
    for ref in _kids(req, m("ParentFolderIds")):
        try:
            if "item:MimeContent" in fields:
                raise EwsError(
                    "ErrorInvalidPropertyRequest", "MimeContent cannot be requested in FindItem."
                )
            box, folder = resolve_folder(ctx, ref)
        except EwsError as e:
            _error(messages, "FindItem", e)
            continue
        with box.lock:
            # SoftDeleted finds nothing (DeleteItem element page, Remarks); Associated
            # would list folder-associated items, which this server never holds.
            found = [
                i
                for i in box.items_in(folder.id)
                if restriction is None or matches(i, restriction[0])
            ] if req.get("Traversal") == "Shallow" else []  # fmt: skip
            page = _page(req, "IndexedPageItemView", len(found))
            out = sub(_root(_ok(messages, "FindItem"), page, len(found)), t("Items"))
            for item in _slice(found, page):
                render.item_xml(out, item, fields, extended)
    return resp


def get_item(ctx: Context, req: etree._Element) -> etree._Element:
    resp, messages = _messages("GetItem")
    shape = req.find(m("ItemShape"))
    fields, extended = render.shape_fields(shape, render.ITEM_SHAPES)
    asked = fields - render.shape_fields(shape, render.ITEM_SHAPES, base_only=True)[0]
    for ref in _kids(req, m("ItemIds")):
        try:
            item = _item(ctx.owner_of(ref.get("Id", "")), ref.get("Id", ""))
            wrong = render.foreign_field(item, asked)  # BaseShape fits every type
        except EwsError as e:
            sub(_error(messages, "GetItem", e), m("Items"))
            continue
        if wrong is not None:  # the GetItem (email message) page's error example
            msg = _error(messages, "GetItem", EwsError(
                "ErrorInvalidPropertyRequest", "Property is not valid for this object type."
            ))  # fmt: skip
            sub(sub(msg, m("MessageXml")), t("FieldURI"), FieldURI=wrong)
            sub(msg, m("Items"))
            continue
        render.item_xml(sub(_ok(messages, "GetItem"), m("Items")), item, fields, extended)
    return resp


def _item(box: Mailbox, item_id: str) -> Item:
    with box.lock:
        item = box.items.get(item_id)
    if item is None:  # e.g. a folder's id
        raise EwsError("ErrorItemNotFound", "The specified object was not found in the store.")
    return item


def delete_item(ctx: Context, req: etree._Element) -> etree._Element:
    resp, messages = _messages("DeleteItem")
    moving = req.get("DeleteType") == "MoveToDeletedItems"
    for ref in _kids(req, m("ItemIds")):
        try:
            box = ctx.owner_of(ref.get("Id", ""))
            item = _item(box, ref.get("Id", ""))
            # "ErrorCannotDeleteObject … when a delegate tries to delete an item in the
            # principal's mailbox by setting the DisposalType to MoveToDeletedItems"
            # (DeleteItem operation page, Note)
            if moving and box is not ctx.principal:
                raise EwsError("ErrorCannotDeleteObject", "The item cannot be deleted.")
        except EwsError as e:
            _error(messages, "DeleteItem", e)
            continue
        with box.lock:
            trash = box.distinguished("deleteditems")
            if moving and trash and item.folder_id != trash.id:
                box.move_item(item, trash.id)
            else:  # HardDelete; SoftDelete's dumpster is not modelled (gone from view)
                box.items.pop(item.id, None)
        _ok(messages, "DeleteItem")
    return resp


OPERATIONS: dict[str, Callable[[Context, etree._Element], etree._Element]] = {
    "ConvertId": convert_id,
    "GetFolder": get_folder,
    "FindFolder": find_folder,
    "CreateFolder": create_folder,
    "CreateItem": create_item,
    "FindItem": find_item,
    "GetItem": get_item,
    "DeleteItem": delete_item,
    "SyncFolderHierarchy": sync_folder_hierarchy,
}
