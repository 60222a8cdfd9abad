"""Extensions of exchangelib for the EWS sink, and the plain-HTTP pieces its modules share.

Kept apart from ews_client.py for size: pstkit's MAPI properties registered
on exchangelib's item classes, the "archive" distinguished folder, typed
folders for CreateFolder, TLS verification pinned per protocol, and a
CreateItem that serialises MIME (or list/task fields) + properties directly.
"""

from __future__ import annotations

import base64
import re
import ssl
import threading
from typing import Any

import requests
import requests.adapters
from exchangelib import (
    CalendarItem,
    Contact,
    DistributionList,
    ExtendedProperty,
    Folder,
    Message,
    Task,
)
from exchangelib.errors import ResponseMessageError
from exchangelib.folders.known_folders import Messages
from exchangelib.protocol import BaseProtocol
from exchangelib.services import CreateItem
from exchangelib.services.common import folder_ids_element
from exchangelib.util import create_element

from pstkit.converters.ews import kinds as ews_kinds
from pstkit.converters.ews import pimxml
from pstkit.converters.ews import props as ews_props

_REGISTER_LOCK = threading.Lock()


#: item classes the sink creates; each must know pstkit's properties, so that
#: a lookup by source key works in calendar and contacts folders too.
ITEM_MODELS = (Message, CalendarItem, Contact, DistributionList, Task)


def register_props() -> None:
    """Register pstkit's MAPI properties on exchangelib's item classes.

    exchangelib knows extended properties only through class registration, so
    this is process-wide by necessity. It is idempotent and adds only
    `pstkit_*` attributes, used for lookups (creation builds its own XML).
    """
    with _REGISTER_LOCK:
        for model in ITEM_MODELS:
            known = {f.name for f in model.FIELDS}
            for prop in ews_props.PROPS:
                if prop.attr not in known:
                    model.register(prop.attr, _prop_class(prop))


def _prop_class(prop: ews_props.PropDef) -> type[ExtendedProperty]:
    attrs: dict[str, Any] = {"property_type": prop.type}
    if prop.tag is not None:
        attrs["property_tag"] = prop.tag
    else:
        attrs |= {"property_set_id": ews_props.PSTKIT_PROPERTY_SET, "property_name": prop.name}
    return type(f"_{prop.attr}", (ExtendedProperty,), attrs)


class _CalendarFolder(Folder):  # type: ignore[misc]
    ELEMENT_NAME = "CalendarFolder"


class _ContactsFolder(Folder):  # type: ignore[misc]
    ELEMENT_NAME = "ContactsFolder"


class _TasksFolder(Folder):  # type: ignore[misc]
    ELEMENT_NAME = "TasksFolder"


_FOLDER_SPECS: dict[str, type[Folder]] = {
    "CalendarFolder": _CalendarFolder,
    "ContactsFolder": _ContactsFolder,
    "TasksFolder": _TasksFolder,
}


def folder_spec(root: Any, name: str, container_class: str) -> Any:
    """The CreateFolder element for a new folder: t:CalendarFolder, t:ContactsFolder,
    t:TasksFolder or t:Folder (exchangelib itself always sends t:Folder). The
    class-less subclasses leave exchangelib's own folder-class lookup alone."""
    cls = _FOLDER_SPECS.get(ews_props.FOLDER_ELEMENTS.get(container_class, ""), Folder)
    return cls(root=root, name=name, folder_class=container_class)


class Archive(Messages):  # type: ignore[misc]
    """The "Archive" folder (distinguished id "archive"), unknown to exchangelib."""

    DISTINGUISHED_FOLDER_ID = "archive"


class _PinnedVerifyAdapter(requests.adapters.HTTPAdapter):
    """Verifies TLS against one CA file (or not at all, for --insecure).

    Set on the adapter because requests lets REQUESTS_CA_BUNDLE override a
    session's `verify`, and exchangelib's adapter class is process-wide.
    """

    def __init__(self, verify: bool | str) -> None:
        self._verify = verify
        super().__init__(pool_block=True, pool_connections=1, pool_maxsize=1, max_retries=0)

    def cert_verify(self, conn: Any, url: str, verify: bool | str, cert: Any) -> None:
        super().cert_verify(conn, url, self._verify, cert)

    def get_connection_with_tls_context(
        self, request: Any, verify: bool | str | None, proxies: Any = None, cert: Any = None
    ) -> Any:
        return super().get_connection_with_tls_context(request, self._verify, proxies, cert)


def anonymous_post(url: str, verify: bool | str, timeout: float) -> requests.Response:
    """One empty, unauthenticated SOAP POST, not following redirects: how the EWS and
    autodiscover endpoints are probed for the auth schemes they offer."""
    return requests.post(
        url,
        data=b"",
        timeout=timeout,
        verify=verify,
        allow_redirects=False,
        headers={"Content-Type": "text/xml; charset=utf-8"},
    )


def reason(e: Exception) -> str:
    """A one-line reason from a requests/exchangelib error, without its noise: no
    "(_ssl.c:1006)" (which a cut at the first ")" used to leave half-open)."""
    text = re.sub(r" ?\(_ssl\.c:\d+\)", "", str(e))
    found = re.search(r"certificate verify failed[^'\")]*|\[Errno -?\d+\] [^'\")]+", text)
    return found.group(0).strip() if found else type(e).__name__


#: what a connection that was up and then went away looks like, at any depth of the
#: chain requests/urllib3/exchangelib wrap it in (a refused certificate is none of these)
_DROPS = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError, BrokenPipeError)


def dropped(e: BaseException) -> ssl.SSLError | OSError | None:
    """The dropped-connection error at the root of `e`, if that is what `e` is.

    exchangelib re-raises every requests.SSLError as a TransportError (it takes them
    all for certificate problems, never worth a retry), but an SSLEOFError on a
    connection that was up is a drop: the server closed it in the middle of a request.
    """
    seen: set[int] = set()
    todo: list[object] = [e]
    while todo:
        cur = todo.pop()
        if not isinstance(cur, BaseException) or id(cur) in seen:
            continue
        seen.add(id(cur))
        if isinstance(cur, _DROPS):
            return cur
        todo += [cur.__cause__, cur.__context__, getattr(cur, "reason", None), *cur.args]
    return None


def verify_with(protocol: BaseProtocol, verify: bool | str) -> None:
    """Make this protocol's sessions (only) verify TLS against `verify`."""
    original = protocol.raw_session

    def raw_session(prefix: str, *args: Any, **kwargs: Any) -> Any:
        session = original(prefix, *args, **kwargs)
        session.mount(prefix, _PinnedVerifyAdapter(verify))
        return session

    protocol.raw_session = raw_session


class MimeCreateItem(CreateItem):  # type: ignore[misc]
    """CreateItem for (MIME, ItemProps) pairs, serialised directly.

    exchangelib's generic serialiser spends about 2 ms per item on extended
    properties; building these few elements here keeps the client far below
    the server's cost. Answers and errors still go through exchangelib.
    """

    # Every per-item refusal (ErrorQuotaExceeded, per-item ErrorServerBusy…) comes back
    # as that item's result; exchangelib would raise most of them for the whole batch.
    ERRORS_TO_CATCH_IN_RESPONSE = (*CreateItem.ERRORS_TO_CATCH_IN_RESPONSE, ResponseMessageError)

    def get_payload(
        self,
        items: list[tuple[bytes, ews_props.ItemProps]],
        folder: Any,
        message_disposition: str,
        send_meeting_invitations: str,
    ) -> Any:
        # SendMeetingInvitations is sent on every request (the client passes
        # "SendToNone"): "This property is required for calendar items"
        # (Microsoft Learn, CreateItemType.SendMeetingInvitations), and an
        # imported appointment must not mail its attendees.
        payload = create_element(
            "m:CreateItem",
            attrs={
                "MessageDisposition": message_disposition,
                "SendMeetingInvitations": send_meeting_invitations,
            },
        )
        payload.append(
            folder_ids_element([folder], self.account.version, tag="m:SavedItemFolderId")
        )
        container = create_element("m:Items")
        for raw, props in items:
            container.append(item_xml(raw, props))
        payload.append(container)
        return payload


def item_xml(raw: bytes, props: ews_props.ItemProps) -> Any:
    """The item to create, in its schema type's element order: ItemType's
    MimeContent, Subject, Body, Attachments, Categories, reminder, ExtendedProperty…
    come first in every type, then the type's own: MessageType's IsRead (set as
    well, so it cannot contradict 0x0E07), DistributionListType's DisplayName and
    Members, TaskType's, CalendarItemType's or ContactItemType's fields."""
    msg = create_element(f"t:{props.element}")
    if props.element == "Message":  # the one kind whose MIME carries everything
        content = base64.b64encode(raw).decode("ascii")
        _text_child(msg, "t:MimeContent", content, CharacterSet="UTF-8")
    _head(msg, props)
    if props.attachments:
        msg.append(_attachments_xml(props.attachments))
    if props.categories:
        cats = create_element("t:Categories")
        for name in props.categories:
            _text_child(cats, "t:String", name)
        msg.append(cats)
    if props.calendar is not None:
        pimxml.calendar_reminder(msg, props.calendar)
    for attrs, value in ews_props.wire_props(props):
        prop = create_element("t:ExtendedProperty")
        prop.append(create_element("t:ExtendedFieldURI", attrs=attrs))
        _text_child(prop, "t:Value", value)
        msg.append(prop)
    _tail(msg, props)
    return msg


def _head(msg: Any, props: ews_props.ItemProps) -> None:
    """ItemType's Subject and Body, for the kinds built from fields."""
    if props.task is not None:
        _text_child(msg, "t:Subject", props.task.subject)
        if props.task.body:
            _text_child(msg, "t:Body", props.task.body, BodyType="Text")
    elif props.calendar is not None:
        pimxml.calendar_head(msg, props.calendar)
    elif props.contact is not None:
        pimxml.contact_head(msg, props.contact)


def _tail(msg: Any, props: ews_props.ItemProps) -> None:
    if props.element == "Message":
        _text_child(msg, "t:IsRead", "true" if props.is_read else "false")
    elif props.element == "DistributionList":
        _list_members(msg, props)
    elif props.task is not None:
        _task_fields(msg, props.task)
    elif props.calendar is not None:
        pimxml.calendar_tail(msg, props.calendar)
    elif props.contact is not None:
        pimxml.contact_tail(msg, props.contact)


def _task_fields(item: Any, task: ews_kinds.TaskFields) -> None:
    """TaskType's own elements, in its sequence order."""
    for tag, value in (
        ("t:CompleteDate", task.completed),
        ("t:DueDate", task.due),
        ("t:PercentComplete", task.percent),
        ("t:StartDate", task.start),
        ("t:Status", task.status),
    ):
        if value:
            _text_child(item, tag, value)


def _attachments_xml(attachments: tuple[ews_kinds.Attachment, ...]) -> Any:
    """t:Attachments of a new item: "CreateItem for a new email" adds file and item
    attachments in the same request ("Add attachments by using EWS in Exchange"),
    so an item never exists without them. An embedded message becomes an item
    attachment made from its MIME, a file a file attachment."""
    out = create_element("t:Attachments")
    for att in attachments:
        data = base64.b64encode(att.data).decode("ascii")
        if att.is_message:
            el = create_element("t:ItemAttachment")
            _text_child(el, "t:Name", att.name)
            inner = create_element("t:Message")
            _text_child(inner, "t:MimeContent", data, CharacterSet="UTF-8")
            el.append(inner)
        else:
            el = create_element("t:FileAttachment")
            _text_child(el, "t:Name", att.name)
            _text_child(el, "t:ContentType", att.content_type)
            _text_child(el, "t:Content", data)
        out.append(el)
    return out


def _list_members(item: Any, props: ews_props.ItemProps) -> None:
    _text_child(item, "t:DisplayName", props.display_name)
    if not props.members:
        return
    members = create_element("t:Members")
    for member in props.members:
        box = create_element("t:Mailbox")
        if member.name:
            _text_child(box, "t:Name", member.name)
        _text_child(box, "t:EmailAddress", member.address)
        _text_child(box, "t:RoutingType", "SMTP")
        entry = create_element("t:Member")
        entry.append(box)
        members.append(entry)
    item.append(members)


def _text_child(parent: Any, tag: str, text: str, **attrs: str) -> None:
    child = create_element(tag, attrs=attrs or None)
    child.text = text
    parent.append(child)
