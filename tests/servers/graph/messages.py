"""Message resources: validate what a client sends, store it, render it back.

Behaviour taken from Microsoft's documentation of the message resource:
- JSON create (POST …/mailFolders/{id}/messages) makes a *draft* unless
  PR_MESSAGE_FLAGS (Integer 0x0E07) is set at creation without MSGFLAG_UNSENT;
  receivedDateTime/sentDateTime are not writable (the server keeps its own),
  only PR_MESSAGE_DELIVERY_TIME (0x0E06) / PR_CLIENT_SUBMIT_TIME (0x0039) set
  at creation change them.
- internetMessageHeaders may carry only headers named "x-…"/"X-…".
- Unknown JSON properties are refused (400 RequestBodyRead), as OData does.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parsedate_to_datetime
from typing import Any

from tests.servers.graph.core import bad_request
from tests.servers.graph.odata import check_prop_value, norm_prop_id
from tests.servers.graph.state import Attachment, Message, State

FLAGS, DELIVERY, SUBMIT, SIZE = (
    "Integer 0xe07",
    "SystemTime 0xe06",
    "SystemTime 0x39",
    "Integer 0xe08",
)
MSGFLAG_READ, MSGFLAG_UNSENT = 0x1, 0x8
RECIPIENT_LISTS = ("toRecipients", "ccRecipients", "bccRecipients", "replyTo")
WRITABLE = {
    "@odata.type",
    "subject",
    "body",
    "from",
    "sender",
    *RECIPIENT_LISTS,
    "isRead",
    "isDeliveryReceiptRequested",
    "isReadReceiptRequested",
    "importance",
    "inferenceClassification",
    "internetMessageId",
    "internetMessageHeaders",
    "categories",
    "flag",
    "singleValueExtendedProperties",
    "attachments",
    "receivedDateTime",
    "sentDateTime",
}
FLAG_STATUS = {"notflagged": "notFlagged", "flagged": "flagged", "complete": "complete"}


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _type_error(name: str, want: str) -> Exception:
    return bad_request(
        f"Cannot convert the literal in property '{name}' to the expected type '{want}'.",
        "RequestBodyRead",
    )


def _recipient(name: str, value: Any) -> dict[str, Any]:
    addr = value.get("emailAddress") if isinstance(value, dict) else None
    if not isinstance(addr, dict) or not isinstance(addr.get("address", ""), str):
        raise _type_error(name, "microsoft.graph.recipient")
    return {"emailAddress": {"name": str(addr.get("name", "")), "address": addr.get("address", "")}}


def _check_common(body: dict[str, Any], out: dict[str, Any]) -> None:
    for key in ("isRead",):
        if key in body and not isinstance(body[key], bool):
            raise _type_error(key, "Edm.Boolean")
        if key in body:
            out[key] = body[key]
    if "categories" in body:
        cats = body["categories"]
        if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
            raise _type_error("categories", "Collection(Edm.String)")
        out["categories"] = list(cats)
    if "flag" in body:
        status = body["flag"].get("flagStatus") if isinstance(body["flag"], dict) else None
        if not isinstance(status, str) or status.lower() not in FLAG_STATUS:
            raise bad_request(f"Requested value '{status}' was not found.", "RequestBodyRead")
        out["flag"] = {"flagStatus": FLAG_STATUS[status.lower()]}


def ext_props(body: dict[str, Any]) -> dict[str, str]:
    raw = body.get("singleValueExtendedProperties", [])
    if not isinstance(raw, list):
        raise _type_error(
            "singleValueExtendedProperties",
            "Collection(microsoft.graph.singleValueLegacyExtendedProperty)",
        )
    out = {}
    for item in raw:
        if not isinstance(item, dict) or set(item) - {"id", "value"} or "id" not in item:
            raise bad_request(
                "An extended property needs exactly 'id' and 'value'.", "RequestBodyRead"
            )
        pid = norm_prop_id(str(item["id"]))
        out[pid] = check_prop_value(pid, item.get("value"))
    return out


def _x_headers(state: State, raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list):
        raise _type_error(
            "internetMessageHeaders", "Collection(microsoft.graph.internetMessageHeader)"
        )
    total = 0
    for h in raw:
        if not isinstance(h, dict) or not isinstance(h.get("name"), str):
            raise _type_error("internetMessageHeaders", "microsoft.graph.internetMessageHeader")
        if not h["name"].lower().startswith("x-"):
            raise bad_request(
                f"The internet message header name '{h['name']}' should start with 'x-' or 'X-'.",
                "InvalidInternetMessageHeader",
            )
        total += len(h["name"]) + len(str(h.get("value", "")))
    if total > state.limits.max_header_bytes:
        raise bad_request(
            "Maximum size of internet message headers exceeded.",
            "InvalidInternetMessageHeaderCollection",
        )
    return [{"name": h["name"], "value": str(h.get("value", ""))} for h in raw]


def file_attachment(state: State, a: Any) -> Attachment:
    if not isinstance(a, dict) or a.get("@odata.type") != "#microsoft.graph.fileAttachment":
        raise bad_request(
            "Only #microsoft.graph.fileAttachment is supported here.", "RequestBodyRead"
        )
    name, data = a.get("name"), a.get("contentBytes")
    if not isinstance(name, str) or not isinstance(data, str):
        raise bad_request("A file attachment needs 'name' and 'contentBytes'.", "RequestBodyRead")
    try:
        raw = base64.b64decode(data, validate=True)
    except binascii.Error as e:
        raise _type_error("contentBytes", "Edm.Binary") from e
    return Attachment(
        state.new_id("AAMkAtt"),
        name,
        str(a.get("contentType") or "application/octet-stream"),
        raw,
        bool(a.get("isInline", False)),
        a.get("contentId"),
    )


def create_json(state: State, folder_id: str, body: Any) -> Message:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", "RequestBodyRead")
    unknown = sorted(set(body) - WRITABLE)
    if unknown:
        raise bad_request(
            f"The property '{unknown[0]}' does not exist on type "
            "'microsoft.graph.message'. Make sure to only use property names that "
            "are defined by the type.",
            "RequestBodyRead",
        )
    props: dict[str, Any] = {
        "subject": str(body.get("subject") or ""),
        "categories": [],
        "flag": {"flagStatus": "notFlagged"},
    }
    _check_common(body, props)
    b = body.get("body", {"contentType": "text", "content": ""})
    if not isinstance(b, dict) or str(b.get("contentType", "")).lower() not in ("text", "html"):
        raise _type_error("body", "microsoft.graph.itemBody")
    props["body"] = {"contentType": b["contentType"].lower(), "content": str(b.get("content", ""))}
    for key in RECIPIENT_LISTS:
        value = body.get(key, [])
        if not isinstance(value, list):
            raise _type_error(key, "Collection(microsoft.graph.recipient)")
        props[key] = [_recipient(key, r) for r in value]
    for key in ("from", "sender"):
        if key in body:
            props[key] = _recipient(key, body[key])
    props["internetMessageId"] = str(
        body.get("internetMessageId") or f"<{state.new_id('gen')}@test>"
    )
    props["internetMessageHeaders"] = _x_headers(state, body.get("internetMessageHeaders", []))
    ext = ext_props(body)
    atts = [file_attachment(state, a) for a in body.get("attachments", [])]
    msg = Message(state.new_id(), folder_id, props, ext, None, "json", atts)
    _apply_mapi(msg, "isRead" in body)
    return msg


def _apply_mapi(msg: Message, read_given: bool) -> None:
    flags = int(msg.ext[FLAGS]) if FLAGS in msg.ext else None
    msg.props["isDraft"] = flags is None or bool(flags & MSGFLAG_UNSENT)
    if not read_given:
        msg.props["isRead"] = True if flags is None else bool(flags & MSGFLAG_READ)
    now = iso(datetime.now(UTC))
    msg.props["receivedDateTime"] = msg.ext.get(DELIVERY, msg.props.get("receivedDateTime", now))
    sent = msg.ext.get(SUBMIT, msg.props.get("sentDateTime"))
    msg.props["sentDateTime"] = sent if sent or msg.props["isDraft"] else now
    for key in (DELIVERY, SUBMIT):
        if key in msg.ext:
            msg.ext[key] = iso(datetime.fromisoformat(msg.ext[key].replace("Z", "+00:00")))


def _decode_mime(text: bytes) -> bytes:
    """The documented answer to a body that is not base64 MIME (create message, sendMail)."""
    try:
        mime = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as e:
        raise bad_request(
            "Invalid base64 string for MIME content.", "ErrorMimeContentInvalidBase64String"
        ) from e
    if not mime.strip():
        raise bad_request("Invalid base64 string for MIME content.",
                          "ErrorMimeContentInvalidBase64String")  # fmt: skip
    return mime


def create_mime_draft(state: State, folder_id: str, body: bytes) -> Message:
    """v1.0 "create message in MIME format": base64 MIME as text/plain; always a draft."""
    mime = _decode_mime(body)
    props = props_from_mime(mime)
    props.update(isDraft=True, isRead=True, receivedDateTime=iso(datetime.now(UTC)))
    return Message(state.new_id(), folder_id, props, {}, mime, "mimeDraft")


def create_import(state: State, folder_id: str, body: bytes) -> Message:
    """beta "mailFolder: importMime": the whole body is the base64 MIME (text/plain).

    A non-draft item that keeps the MIME exactly. What the page leaves open is
    marked ASSUMED (see README): receivedDateTime is the import time (as in
    Microsoft's MIME-create sample, where it equals createdDateTime), and the
    item arrives unread, as delivered mail does.
    """
    mime = _decode_mime(body)
    props = props_from_mime(mime)
    now = iso(datetime.now(UTC))
    props.update(isDraft=False, isRead=False, receivedDateTime=now, createdDateTime=now)
    return Message(state.new_id(), folder_id, props, {FLAGS: "0"}, mime, "importMime")


def _header(msg: email.message.Message, name: str) -> str:
    try:
        return str(msg.get(name, "") or "")
    except Exception:
        return ""


def props_from_mime(mime: bytes) -> dict[str, Any]:
    parsed = email.message_from_bytes(mime, policy=email.policy.default)

    def addrs(name: str) -> list[dict[str, Any]]:
        pairs = getaddresses([_header(parsed, name)])
        return [{"emailAddress": {"name": n, "address": a}} for n, a in pairs if a]

    try:
        sent = iso(parsedate_to_datetime(_header(parsed, "Date")))
    except (TypeError, ValueError, IndexError):
        sent = iso(datetime.now(UTC))
    frm = addrs("From")
    return {
        "subject": _header(parsed, "Subject"),
        "toRecipients": addrs("To"),
        "ccRecipients": addrs("Cc"),
        "bccRecipients": addrs("Bcc"),
        "replyTo": addrs("Reply-To"),
        "from": frm[0] if frm else None,
        "sender": frm[0] if frm else None,
        "internetMessageId": _header(parsed, "Message-ID").strip(),
        "sentDateTime": sent,
        "categories": [],
        "flag": {"flagStatus": "notFlagged"},
        "isRead": False,
        "body": {"contentType": "text", "content": ""},
        "internetMessageHeaders": [],
    }


def synth_mime(msg: Message) -> bytes:
    """What Exchange would hand out as $value for a message created from JSON."""
    if msg.mime is not None:
        return msg.mime
    p = msg.props
    out = EmailMessage()

    def fmt(r: dict[str, Any]) -> str:
        e = r["emailAddress"]
        return f'"{e["name"]}" <{e["address"]}>' if e.get("name") else str(e["address"])

    for key, header in (("from", "From"), ("toRecipients", "To"), ("ccRecipients", "Cc")):
        value = p.get(key)
        rs = value if isinstance(value, list) else [value] if value else []
        if rs:
            out[header] = ", ".join(fmt(r) for r in rs)
    out["Subject"] = p.get("subject", "")
    out["Message-ID"] = p["internetMessageId"]
    if p.get("sentDateTime"):
        out["Date"] = format_datetime(
            datetime.fromisoformat(p["sentDateTime"].replace("Z", "+00:00"))
        )
    for h in p.get("internetMessageHeaders", []):
        out[h["name"]] = h["value"]
    subtype = "html" if p["body"]["contentType"] == "html" else "plain"
    out.set_content(p["body"]["content"], subtype=subtype)
    for a in msg.attachments:
        maintype, _, sub = a.content_type.partition("/")
        out.add_attachment(
            a.data,
            maintype=maintype or "application",
            subtype=sub or "octet-stream",
            filename=a.name,
        )
    return out.as_bytes(policy=email.policy.SMTP)


def render(msg: Message, select: list[str], expand: list[str]) -> dict[str, Any]:
    full: dict[str, Any] = {
        "id": msg.id,
        "parentFolderId": msg.folder_id,
        "hasAttachments": bool(msg.attachments) or _mime_has_att(msg),
        "@odata.etag": f'W/"{msg.id[-8:]}"',
        **msg.props,
    }
    out = {k: v for k, v in full.items() if not select or k in select or k in ("id", "@odata.etag")}
    ext = dict(msg.ext)
    ext[SIZE] = str(len(synth_mime(msg)))
    found = [{"id": pid, "value": ext[pid]} for pid in expand if pid in ext]
    if found:
        out["singleValueExtendedProperties"] = found
    return out


def _mime_has_att(msg: Message) -> bool:
    if msg.mime is None:
        return False
    parsed = email.message_from_bytes(msg.mime, policy=email.policy.default)
    return any(part.get_content_disposition() == "attachment" for part in parsed.walk())
