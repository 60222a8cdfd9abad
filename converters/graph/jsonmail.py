"""Pure translations for the Graph sink: store message -> Graph request bodies.

No I/O. Two shapes:
- `import_mime_body` and `state_patch`: Graph's importMime action takes only
  the base64 MIME (`Content-Type: text/plain`, no JSON envelope); what MIME
  cannot carry (read state, flag, categories, last verb, the stamped stable
  key) follows in one PATCH of the created message (`state_patch`);
- `json_message`: the fallback "create message as JSON" body. It cannot keep
  the MIME bytes; it sets PR_MESSAGE_FLAGS (0x0E07) at creation so the item
  is not a draft, PR_MESSAGE_DELIVERY_TIME (0x0E06) and PR_CLIENT_SUBMIT_TIME
  (0x0039) for the dates, and only X- headers (Graph refuses others).
"""

from __future__ import annotations

import base64
import email
import email.policy
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage, Message
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from pstkit.model import Flag, Role, StoredMessage, utc

# A fixed property-set GUID for pstkit's own named properties.
PSTKIT_GUID = "6b0c3e1d-7a2f-4c55-9e0b-2f5d8a61c4e7"
KEY_PROP = f"String {{{PSTKIT_GUID}}} Name PstkitSourceKey"
PR_MESSAGE_FLAGS = "Integer 0x0E07"
PR_MESSAGE_DELIVERY_TIME = "SystemTime 0x0E06"
PR_CLIENT_SUBMIT_TIME = "SystemTime 0x0039"
PR_MESSAGE_SIZE = "Integer 0x0E08"
PR_LAST_VERB_EXECUTED = "Integer 0x1081"

MSGFLAG_READ = 0x1
MSGFLAG_UNMODIFIED = 0x2
MSGFLAG_UNSENT = 0x8
EXCHIVERB_REPLYTOSENDER = 102
EXCHIVERB_FORWARD = 104

INCOMPLETE = "#incomplete"  # key suffix while attachments are still being added
MAX_REQUEST = 4 * 1024 * 1024  # Graph's cap on a plain request body
INLINE_ATTACHMENT_BUDGET = 3 * 1024 * 1024  # base64 bytes of attachments sent with the create
SMALL_ATTACHMENT = 3 * 1024 * 1024  # larger ones go through an upload session

WELL_KNOWN_ROLES: dict[str, Role] = {
    "inbox": Role.INBOX,
    "sentitems": Role.SENT,
    "deleteditems": Role.TRASH,
    "drafts": Role.DRAFTS,
    "junkemail": Role.JUNK,
    "archive": Role.ARCHIVE,
}
ROLE_WELL_KNOWN = {role: name for name, role in WELL_KNOWN_ROLES.items()}


@dataclass(frozen=True)
class AttachmentPart:
    name: str
    content_type: str
    data: bytes
    is_inline: bool = False
    content_id: str | None = None

    def graph(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "@odata.type": "#microsoft.graph.fileAttachment",
            "name": self.name,
            "contentType": self.content_type,
            "contentBytes": base64.b64encode(self.data).decode("ascii"),
            "isInline": self.is_inline,
        }
        if self.content_id:
            out["contentId"] = self.content_id
        return out


@dataclass(frozen=True)
class JsonMessage:
    body: dict[str, Any]
    late: tuple[AttachmentPart, ...]  # to add after creation (too big for the create call)


# --- MAPI values -------------------------------------------------------------


def message_flags(flags: frozenset[Flag]) -> int:
    """PR_MESSAGE_FLAGS at creation: without MSGFLAG_UNSENT the item is not a draft."""
    value = MSGFLAG_UNMODIFIED
    if Flag.SEEN in flags:
        value |= MSGFLAG_READ
    if Flag.DRAFT in flags:
        value |= MSGFLAG_UNSENT
    return value


def flag_status(flags: frozenset[Flag]) -> str:
    return "flagged" if Flag.FLAGGED in flags else "notFlagged"


def last_verb(flags: frozenset[Flag]) -> int | None:
    if Flag.FORWARDED in flags:
        return EXCHIVERB_FORWARD
    if Flag.ANSWERED in flags:
        return EXCHIVERB_REPLYTOSENDER
    return None


def categories(keywords: frozenset[str]) -> list[str]:
    """IMAP keywords become Outlook categories; system keywords ($…, \\…) do not."""
    return sorted(k for k in keywords if k and k[0] not in "$\\")


def systime(dt: datetime) -> str:
    return utc(dt).strftime("%Y-%m-%dT%H:%M:%SZ")


def odata_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def key_filter(key: str) -> str:
    return (
        f"singleValueExtendedProperties/Any(ep: ep/id eq {odata_quote(KEY_PROP)} "
        f"and ep/value eq {odata_quote(key)})"
    )


def expand_props(*ids: str) -> str:
    return (
        "singleValueExtendedProperties($filter="
        + " or ".join(f"id eq {odata_quote(i)}" for i in ids)
        + ")"
    )


_TAG = re.compile(r"^(\w+) 0x([0-9a-fA-F]+)$")


def same_prop(a: str, b: str) -> bool:
    """Graph echoes ids in its own spelling ('Integer 0xe08' for 'Integer 0x0E08')."""
    ma, mb = _TAG.match(a.strip()), _TAG.match(b.strip())
    if ma and mb:
        return ma.group(1).lower() == mb.group(1).lower() and int(ma.group(2), 16) == int(
            mb.group(2), 16
        )
    return a.strip().lower() == b.strip().lower()


def prop_value(item: dict[str, Any], prop: str) -> str | None:
    for p in item.get("singleValueExtendedProperties", []) or []:
        if isinstance(p, dict) and same_prop(str(p.get("id", "")), prop):
            return str(p.get("value"))
    return None


# --- request bodies ----------------------------------------------------------


def _state(msg: StoredMessage, key: str) -> dict[str, Any]:
    props = [{"id": KEY_PROP, "value": key}]
    if msg.received is not None:
        props.append({"id": PR_MESSAGE_DELIVERY_TIME, "value": systime(msg.received)})
    verb = last_verb(msg.flags)
    if verb is not None:
        props.append({"id": PR_LAST_VERB_EXECUTED, "value": str(verb)})
    return {
        "isRead": Flag.SEEN in msg.flags,
        "flag": {"flagStatus": flag_status(msg.flags)},
        "categories": categories(msg.keywords),
        "singleValueExtendedProperties": props,
    }


def import_mime_body(raw: bytes) -> bytes:
    """The whole importMime request body: the MIME bytes in base64, nothing else."""
    return base64.b64encode(raw)


def state_patch(msg: StoredMessage) -> dict[str, Any]:
    """The PATCH that finishes an item made from MIME (importMime, or a draft):
    its state and the stable key. Read state, flag, categories and extended
    properties are not "sensitive" (updatable on non-draft items with Mail.ReadWrite)."""
    props = [{"id": KEY_PROP, "value": msg.stable_key}]
    verb = last_verb(msg.flags)
    if verb is not None:
        props.append({"id": PR_LAST_VERB_EXECUTED, "value": str(verb)})
    return {
        "isRead": Flag.SEEN in msg.flags,
        "flag": {"flagStatus": flag_status(msg.flags)},
        "categories": categories(msg.keywords),
        "singleValueExtendedProperties": props,
    }


def import_size(raw: bytes) -> int:
    """The size of the importMime (or MIME draft) request body."""
    return 4 * ((len(raw) + 2) // 3)


def parse(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def header(msg: Message, name: str) -> str:
    try:
        return str(msg.get(name, "") or "")
    except Exception:
        return ""


def _recipients(msg: Message, name: str) -> list[dict[str, Any]]:
    pairs = getaddresses([header(msg, name)])
    return [{"emailAddress": {"name": n, "address": a}} for n, a in pairs if a]


def sent_time(msg: Message) -> datetime | None:
    try:
        return parsedate_to_datetime(header(msg, "Date"))
    except (TypeError, ValueError, IndexError):
        return None


def _text(part: Message) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
        return content if isinstance(content, str) else ""
    except (LookupError, ValueError, AssertionError):
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""


def _body(msg: EmailMessage) -> dict[str, str]:
    part = msg.get_body(preferencelist=("html", "plain"))
    if part is None:
        return {"contentType": "text", "content": ""}
    kind = "html" if part.get_content_subtype() == "html" else "text"
    return {"contentType": kind, "content": _text(part)}


def attachments(msg: EmailMessage) -> list[AttachmentPart]:
    out = []
    for n, part in enumerate(msg.iter_attachments(), 1):
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = part.get_payload(0)
            data = inner.as_bytes() if isinstance(inner, Message) else b""
            name = part.get_filename() or f"attachment-{n}.eml"
        else:
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            name = part.get_filename() or f"attachment-{n}"
        cid = header(part, "Content-ID").strip("<> ") or None
        out.append(
            AttachmentPart(name, ctype, data, part.get_content_disposition() == "inline", cid)
        )
    return out


def x_headers(msg: Message, budget: int = 4096) -> list[dict[str, str]]:
    """Graph takes only X- headers in internetMessageHeaders; keep them within `budget`."""
    out, used = [], 0
    for name, value in msg.raw_items():
        if not name.lower().startswith("x-"):
            continue
        text = " ".join(str(value).split())
        used += len(name) + len(text)
        if used > budget:
            break
        out.append({"name": name, "value": text})
    return out


def json_message(msg: StoredMessage, raw: bytes, key: str) -> JsonMessage:
    parsed = parse(raw)
    body: dict[str, Any] = {
        "subject": header(parsed, "Subject"),
        "body": _body(parsed),
        "toRecipients": _recipients(parsed, "To"),
        "ccRecipients": _recipients(parsed, "Cc"),
        "bccRecipients": _recipients(parsed, "Bcc"),
        "replyTo": _recipients(parsed, "Reply-To"),
        "internetMessageHeaders": x_headers(parsed),
    }
    sender = _recipients(parsed, "From")
    if sender:
        body["from"] = sender[0]
    if msg.message_id or header(parsed, "Message-ID"):
        body["internetMessageId"] = msg.message_id or header(parsed, "Message-ID").strip()
    inline, late, used = [], [], 0
    for att in attachments(parsed):
        size = 4 * ((len(att.data) + 2) // 3)
        if used + size <= INLINE_ATTACHMENT_BUDGET:
            inline.append(att.graph())
            used += size
        else:
            late.append(att)
    if inline:
        body["attachments"] = inline
    state = _state(msg, key + INCOMPLETE if late else key)
    props = state.pop("singleValueExtendedProperties")
    props.append({"id": PR_MESSAGE_FLAGS, "value": str(message_flags(msg.flags))})
    sent = sent_time(parsed)
    if sent is not None:
        props.append({"id": PR_CLIENT_SUBMIT_TIME, "value": systime(sent)})
    body.update(state, singleValueExtendedProperties=props)
    return JsonMessage(body, tuple(late))
