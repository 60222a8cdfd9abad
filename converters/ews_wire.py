"""Extensions of exchangelib for the EWS sink (used by converters/ews_client.py only).

Kept apart from ews_client.py for size: pstkit's MAPI properties registered
on exchangelib's Message, the "archive" distinguished folder, TLS
verification pinned per protocol, and a CreateItem that serialises
MIME + properties directly.
"""

from __future__ import annotations

import base64
import threading
from typing import Any

import requests.adapters
from exchangelib import ExtendedProperty, Message
from exchangelib.errors import ResponseMessageError
from exchangelib.folders.known_folders import Messages
from exchangelib.protocol import BaseProtocol
from exchangelib.services import CreateItem
from exchangelib.services.common import folder_ids_element
from exchangelib.util import create_element

from converters import ews_props

_REGISTER_LOCK = threading.Lock()


def register_props() -> None:
    """Register pstkit's MAPI properties on exchangelib's Message class.

    exchangelib knows extended properties only through class registration, so
    this is process-wide by necessity. It is idempotent and adds only
    `pstkit_*` attributes, used for lookups (creation builds its own XML).
    """
    with _REGISTER_LOCK:
        known = {f.name for f in Message.FIELDS}
        for prop in ews_props.PROPS:
            if prop.attr in known:
                continue
            attrs: dict[str, Any] = {"property_type": prop.type}
            if prop.tag is not None:
                attrs["property_tag"] = prop.tag
            else:
                attrs |= {
                    "property_set_id": ews_props.PSTKIT_PROPERTY_SET,
                    "property_name": prop.name,
                }
            Message.register(prop.attr, type(f"_{prop.attr}", (ExtendedProperty,), attrs))


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
            container.append(_message_xml(raw, props))
        payload.append(container)
        return payload


def _message_xml(raw: bytes, props: ews_props.ItemProps) -> Any:
    """A t:Message in MessageType's element order: MimeContent, Categories,
    ExtendedProperty…, IsRead (set as well, so it cannot contradict 0x0E07)."""
    msg = create_element("t:Message")
    _text_child(msg, "t:MimeContent", base64.b64encode(raw).decode("ascii"), CharacterSet="UTF-8")
    if props.categories:
        cats = create_element("t:Categories")
        for name in props.categories:
            _text_child(cats, "t:String", name)
        msg.append(cats)
    for attrs, value in ews_props.wire_props(props):
        prop = create_element("t:ExtendedProperty")
        prop.append(create_element("t:ExtendedFieldURI", attrs=attrs))
        _text_child(prop, "t:Value", value)
        msg.append(prop)
    _text_child(msg, "t:IsRead", "true" if props.is_read else "false")
    return msg


def _text_child(parent: Any, tag: str, text: str, **attrs: str) -> None:
    child = create_element(tag, attrs=attrs or None)
    child.text = text
    parent.append(child)
