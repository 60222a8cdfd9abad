"""Outlook items that are not mail -> vCard / iCalendar / text. Pure.

Input is the item's decoded properties (`Props`), where named properties are
keyed by the names in `NAMED` (resolved by `converters.pst` through the
file's name-to-id map). Output is the text of a .vcf or .ics object with CRLF
line ends and 75-octet folding (RFC 6350 / RFC 5545).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import datetime

from converters.pst_ical import content as _lines
from converters.pst_ical import escape, event_ics, item_title, task_ics
from converters.pst_ical import stamp as _stamp
from converters.pst_mime import Address, Attachment, Body, MapiMessage, guess_type
from converters.pst_props import (
    ATTACH_BY_VALUE,
    ATTACH_OLE,
    PR_ADDRTYPE,
    PR_ATTACH_CONTENT_ID,
    PR_ATTACH_FILENAME,
    PR_ATTACH_LONG_FILENAME,
    PR_ATTACH_METHOD,
    PR_ATTACH_MIME_TAG,
    PR_BODY,
    PR_CLIENT_SUBMIT_TIME,
    PR_CREATION_TIME,
    PR_DISPLAY_NAME,
    PR_EMAIL_ADDRESS,
    PR_FLAG_STATUS,
    PR_HTML,
    PR_IMPORTANCE,
    PR_IN_REPLY_TO,
    PR_INTERNET_CPID,
    PR_INTERNET_MESSAGE_ID,
    PR_LAST_MODIFICATION_TIME,
    PR_LAST_VERB_EXECUTED,
    PR_MESSAGE_CLASS,
    PR_MESSAGE_DELIVERY_TIME,
    PR_MESSAGE_FLAGS,
    PR_RECIPIENT_TYPE,
    PR_REFERENCES,
    PR_RTF_COMPRESSED,
    PR_SENDER_ADDRTYPE,
    PR_SENDER_EMAIL,
    PR_SENDER_NAME,
    PR_SENDER_SMTP_ADDRESS,
    PR_SENT_REPRESENTING_ADDRTYPE,
    PR_SENT_REPRESENTING_EMAIL,
    PR_SENT_REPRESENTING_NAME,
    PR_SENT_REPRESENTING_SMTP_ADDRESS,
    PR_SMTP_ADDRESS,
    PR_SUBJECT,
    PR_TRANSPORT_HEADERS,
    Props,
    codepage_name,
    mime_charset,
    strip_subject_prefix,
)
from converters.rtf import RtfError, decompress, deencapsulate_html, is_html_rtf, is_text_rtf
from pstkit.model import Flag, ItemKind, MessageMeta
from pstkit.options import FetchFilter

PSETID_ADDRESS = "00062004-0000-0000-c000-000000000046"
PSETID_APPOINTMENT = "00062002-0000-0000-c000-000000000046"
PSETID_TASK = "00062003-0000-0000-c000-000000000046"
PSETID_LOG = "0006200a-0000-0000-c000-000000000046"
PSETID_COMMON = "00062008-0000-0000-c000-000000000046"

#: (property set, LID) -> the key the item's Props carry it under.
NAMED: dict[tuple[str, int], str] = {
    (PSETID_ADDRESS, 0x8005): "FileUnder",
    (PSETID_ADDRESS, 0x8083): "Email1",
    (PSETID_ADDRESS, 0x8093): "Email2",
    (PSETID_ADDRESS, 0x80A3): "Email3",
    (PSETID_ADDRESS, 0x8053): "DistListName",
    (PSETID_ADDRESS, 0x8054): "DistListOneOff",
    (PSETID_ADDRESS, 0x8055): "DistListMembers",
    (PSETID_APPOINTMENT, 0x820D): "Start",
    (PSETID_APPOINTMENT, 0x820E): "End",
    (PSETID_APPOINTMENT, 0x8208): "Location",
    (PSETID_APPOINTMENT, 0x8215): "AllDay",
    (PSETID_APPOINTMENT, 0x8223): "Recurring",
    (PSETID_APPOINTMENT, 0x8216): "AppointmentRecur",
    (PSETID_APPOINTMENT, 0x8228): "ExceptionReplaceTime",
    (PSETID_APPOINTMENT, 0x8233): "TimeZoneStruct",
    (PSETID_APPOINTMENT, 0x8234): "TimeZoneDescription",
    (PSETID_APPOINTMENT, 0x8260): "TzDefRecur",
    (PSETID_APPOINTMENT, 0x825E): "TzDefStart",
    (PSETID_COMMON, 0x8503): "ReminderSet",
    (PSETID_COMMON, 0x8501): "ReminderDelta",
    (PSETID_TASK, 0x8104): "TaskStart",
    (PSETID_TASK, 0x8105): "TaskDue",
    (PSETID_TASK, 0x8101): "TaskStatus",
    (PSETID_TASK, 0x8102): "PercentComplete",
    (PSETID_TASK, 0x810F): "TaskCompleted",
    (PSETID_LOG, 0x8700): "LogType",
    (PSETID_LOG, 0x8706): "LogStart",
    (PSETID_LOG, 0x8708): "LogEnd",
}

# Contact properties (MS-OXOCNTC) -> vCard property.
_CONTACT_TEXT = (
    (0x3A08, "TEL;TYPE=WORK,VOICE"),
    (0x3A09, "TEL;TYPE=HOME,VOICE"),
    (0x3A1C, "TEL;TYPE=CELL"),
    (0x3A24, "FAX;TYPE=WORK") ,
    (0x3A17, "TITLE"),
    (0x3A4F, "NICKNAME"),
    (0x3A51, "URL"),
)
_WORK_ADR = (0x3A29, 0x3A27, 0x3A28, 0x3A2A, 0x3A26)  # street, city, region, code, country
_HOME_ADR = (0x3A5D, 0x3A59, 0x3A5C, 0x3A5B, 0x3A5A)


def contact_vcard(props: Props) -> str:
    """IPM.Contact -> vCard 3.0."""
    p = props
    surname, given = p.text(0x3A11), p.text(0x3A06)
    fn = p.text(PR_DISPLAY_NAME) or item_title(p) or f"{given} {surname}".strip()
    parts = (surname, given, p.text(0x3A44), p.text(0x3A45), p.text(0x3A05))
    n = ";".join(escape(x) for x in parts)
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"FN:{escape(fn)}", f"N:{n}"]
    org = ";".join(escape(x) for x in (p.text(0x3A16), p.text(0x3A18)) if x)
    if org:
        lines.append(f"ORG:{org}")
    lines += [f"EMAIL;TYPE=INTERNET:{escape(p.text(k))}" for k in ("Email1", "Email2", "Email3")
              if p.text(k)]
    lines += [f"{name}:{escape(p.text(pid))}" for pid, name in _CONTACT_TEXT if p.text(pid)]
    for kind, ids in (("WORK", _WORK_ADR), ("HOME", _HOME_ADR)):
        vals = [p.text(i) for i in ids]
        if any(vals):
            lines.append(f"ADR;TYPE={kind}:;;" + ";".join(escape(v) for v in vals))
    birthday = p.time(0x3A42)
    if birthday is not None:
        lines.append(f"BDAY:{birthday.strftime('%Y-%m-%d')}")
    if p.text(PR_BODY):
        lines.append(f"NOTE:{escape(p.text(PR_BODY))}")
    lines += _card_tail(p)
    return _lines(lines)


def _card_tail(p: Props) -> list[str]:
    tail = [f"CATEGORIES:{','.join(escape(k) for k in p.strings('Keywords'))}"] if p.strings(
        "Keywords") else []
    modified = p.time(PR_LAST_MODIFICATION_TIME)
    return [*tail, *([f"REV:{_stamp(modified)}"] if modified else []), "END:VCARD"]


def one_off_member(entryid: bytes) -> tuple[str, str] | None:
    """A one-off entry id (MS-OXCDATA 2.2.5.1) -> (display name, address)."""
    if len(entryid) < 24:
        return None
    flags = struct.unpack_from("<H", entryid, 22)[0]
    rest = entryid[24:]
    if flags & 0x8000:  # MAPI_UNICODE
        parts = rest.decode("utf-16-le", "replace").split("\0")
    else:
        parts = rest.decode("cp1252", "replace").split("\0")
    if len(parts) < 3:
        return None
    return parts[0], parts[2]


def distlist_vcard(props: Props) -> str:
    """IPM.DistList -> a vCard 3.0 group (KIND/X-ADDRESSBOOKSERVER-KIND group)."""
    name = props.text("DistListName") or item_title(props)
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"FN:{escape(name)}", f"N:{escape(name)};;;;",
             "X-ADDRESSBOOKSERVER-KIND:group"]
    for raw in props.binaries("DistListOneOff"):
        member = one_off_member(raw)
        if member is not None:
            who, addr = member
            lines.append(f"X-ADDRESSBOOKSERVER-MEMBER:mailto:{escape(addr)}")
            lines.append(f"X-PSTKIT-MEMBER-NAME:{escape(who)}")
    lines += _card_tail(props)
    return _lines(lines)


def note_text(props: Props) -> str:
    """IPM.StickyNote / IPM.Activity (journal): title, times and body as plain text."""
    p = props
    head = [item_title(p)]
    if p.text("LogType"):
        head.append(f"Type: {p.text('LogType')}")
    for label, key in (("Start", "LogStart"), ("End", "LogEnd")):
        t = p.time(key)
        if t is not None:
            head.append(f"{label}: {t.isoformat()}")
    return "\r\n".join([*head, "", p.text(PR_BODY)])


# --- mail items: MAPI properties -> MapiMessage --------------------------------

def item_kind(message_class: str) -> ItemKind | None:
    """What an item of this class becomes; None = not a user item (skipped)."""
    c = message_class.lower()
    table = (("ipm.contact", ItemKind.CONTACT), ("ipm.distlist", ItemKind.DISTLIST),
             ("ipm.appointment", ItemKind.EVENT), ("ipm.task", ItemKind.TASK),
             ("ipm.stickynote", ItemKind.NOTE), ("ipm.activity", ItemKind.JOURNAL))
    for prefix, kind in table:
        if c == prefix or c.startswith(prefix + "."):
            return ItemKind.MAIL if c.startswith("ipm.taskrequest") else kind
    if c.startswith(("ipm.microsoft.", "ipm.configuration", "ipc.")):
        return None  # free/busy, settings: Outlook's own data, not a user item
    return ItemKind.MAIL  # IPM.Note*, REPORT.*, IPM.Schedule.*, IPM.Post, unknown IPM.*


def item_flags(props: Props) -> frozenset[Flag]:
    flags = set()
    mflags = props.integer(PR_MESSAGE_FLAGS) or 0
    if mflags & 0x1:
        flags.add(Flag.SEEN)
    if mflags & 0x8:
        flags.add(Flag.DRAFT)
    if props.integer(PR_FLAG_STATUS) == 2:
        flags.add(Flag.FLAGGED)
    verb = props.integer(PR_LAST_VERB_EXECUTED)
    if verb in (102, 103):
        flags.add(Flag.ANSWERED)
    elif verb == 104:
        flags.add(Flag.FORWARDED)
    return frozenset(flags)


def received_time(props: Props) -> datetime | None:
    """Delivery time; items never delivered (sent, drafts, contacts) fall back to older times."""
    for pid in (PR_MESSAGE_DELIVERY_TIME, PR_CLIENT_SUBMIT_TIME, PR_CREATION_TIME):
        t = props.time(pid)
        if t is not None:
            return t
    return None


def _smtp(addrtype: str, email: str, *smtp: str) -> str:
    """The SMTP address when one is known, else the native (e.g. X.500) address."""
    del addrtype  # for SMTP the native address already is the SMTP one
    return next((s for s in smtp if s), email)


def recipient_address(p: Props) -> Address:
    name = p.text(PR_DISPLAY_NAME) or p.text(0x3A20)  # PR_TRANSMITTABLE_DISPLAY_NAME
    email = _smtp(p.text(PR_ADDRTYPE), p.text(PR_EMAIL_ADDRESS), p.text(PR_SMTP_ADDRESS))
    return Address(name, email)


#: PR_DISPLAY_TO, PR_DISPLAY_CC, PR_DISPLAY_BCC: "; "-separated names, by recipient type
_DISPLAY_LISTS = ((0x0E04, 1), (0x0E03, 2), (0x0E02, 3))


def display_recipients(props: Props) -> tuple[Props, ...]:
    """Recipients (names only) from the display lists Outlook keeps on the item itself: what
    is left of To/Cc/Bcc when the recipient table cannot be read."""
    return tuple(Props({PR_DISPLAY_NAME: name.strip(), PR_RECIPIENT_TYPE: rtype})
                 for pid, rtype in _DISPLAY_LISTS
                 for name in props.text(pid).split(";") if name.strip())


def _party(p: Props, name: int, addrtype: int, email: int, smtp: int) -> Address | None:
    addr = Address(p.text(name), _smtp(p.text(addrtype), p.text(email), p.text(smtp)))
    return addr if addr.name or addr.email else None


def mail_bodies(props: Props, rtf: bytes | None, html_charset: str) -> tuple[Body, ...]:
    """Plain, then HTML (PR_HTML, else de-encapsulated from RTF), else real RTF."""
    bodies = []
    text = props.text(PR_BODY)
    if text:
        bodies.append(Body("text/plain", text.encode("utf-8"), "utf-8"))
    html = props.get(PR_HTML)
    if isinstance(html, bytes) and html:
        bodies.append(Body("text/html", html, html_charset))
    elif isinstance(html, str) and html:
        bodies.append(Body("text/html", html.encode("utf-8"), "utf-8"))
    elif rtf is not None and is_html_rtf(rtf):
        bodies.append(Body("text/html", deencapsulate_html(rtf).encode("utf-8"), "utf-8"))
    elif rtf is not None and not is_text_rtf(rtf):
        # Real RTF (not derived from the plain body): keep it as an alternative.
        bodies.append(Body("text/rtf", rtf, "us-ascii" if rtf.isascii() else "windows-1252"))
    return tuple(bodies)


def mail_message(
    props: Props,
    recipients: tuple[Props, ...],
    bodies: tuple[Body, ...],
    attachments: tuple[Attachment, ...],
    notes: tuple[str, ...] = (),
) -> MapiMessage:
    """A mail item's properties -> the MapiMessage pst_mime builds bytes from."""
    sender = _party(props, PR_SENDER_NAME, PR_SENDER_ADDRTYPE, PR_SENDER_EMAIL,
                    PR_SENDER_SMTP_ADDRESS)
    from_ = _party(props, PR_SENT_REPRESENTING_NAME, PR_SENT_REPRESENTING_ADDRTYPE,
                   PR_SENT_REPRESENTING_EMAIL, PR_SENT_REPRESENTING_SMTP_ADDRESS)
    if from_ is not None and sender is not None and not from_.email and from_.name == sender.name:
        from_ = sender  # the same person; only the sender half carries the address
    by_type: dict[int, list[Address]] = {1: [], 2: [], 3: []}
    for r in recipients:
        by_type.setdefault(r.integer(PR_RECIPIENT_TYPE) or 1, []).append(recipient_address(r))
    return MapiMessage(
        subject=strip_subject_prefix(props.text(PR_SUBJECT)),
        sender=sender,
        from_=from_,
        to=tuple(by_type[1]), cc=tuple(by_type[2]), bcc=tuple(by_type[3]),
        date=props.time(PR_CLIENT_SUBMIT_TIME) or received_time(props),
        message_id=props.text(PR_INTERNET_MESSAGE_ID),
        in_reply_to=props.text(PR_IN_REPLY_TO),
        references=props.text(PR_REFERENCES),
        importance=props.integer(PR_IMPORTANCE),
        transport_headers=props.text(PR_TRANSPORT_HEADERS),
        bodies=bodies,
        attachments=attachments,
        extra_headers=tuple(("X-Pstkit-Note", n) for n in notes),
    )


def wrap_item(props: Props, kind: ItemKind, uid: str, attachments: tuple[Attachment, ...],
              notes: tuple[str, ...] = (), exceptions: tuple[Props, ...] = ()) -> MapiMessage:
    """A non-mail item as a message carrying its vCard/iCalendar (or its text)."""
    card: tuple[str, str, str] | None = None
    body = props.text(PR_BODY)
    if kind is ItemKind.CONTACT:
        card = ("contact.vcf", "text/vcard", contact_vcard(props))
    elif kind is ItemKind.DISTLIST:
        card = ("distlist.vcf", "text/vcard", distlist_vcard(props))
    elif kind is ItemKind.EVENT:
        card = ("event.ics", "text/calendar", event_ics(props, uid, "", exceptions))
    elif kind is ItemKind.TASK:
        card = ("task.ics", "text/calendar", task_ics(props, uid))
    else:
        body = note_text(props)
    atts = attachments
    if card is not None:
        name, ctype, text = card
        atts = (Attachment(name, f"{ctype}; charset=utf-8", text.encode("utf-8")), *attachments)
    headers = (("X-Pstkit-Item-Class", props.text(PR_MESSAGE_CLASS)),
               *(("X-Pstkit-Note", n) for n in notes))
    return MapiMessage(
        subject=item_title(props),
        date=props.time(PR_LAST_MODIFICATION_TIME) or props.time(PR_CREATION_TIME),
        bodies=(Body("text/plain", body.encode("utf-8"), "utf-8"),),
        attachments=atts,
        extra_headers=headers,
    )


def filter_reason(meta: MessageMeta, filt: FetchFilter) -> str:
    """Why --since/--before leave this item out ("" = keep it)."""
    if meta.received is not None and filt.since is not None and meta.received < filt.since:
        return f"received {meta.received:%Y-%m-%d} before --since"
    if meta.received is not None and filt.before is not None and meta.received >= filt.before:
        return f"received {meta.received:%Y-%m-%d} not before --before"
    return ""


def attachment_name(p: Props) -> str:
    return p.text(PR_ATTACH_LONG_FILENAME) or p.text(PR_ATTACH_FILENAME) or p.text(PR_DISPLAY_NAME)


def file_attachment(p: Props, data: bytes, i: int, notes: list[str]) -> Attachment | None:
    """An attachment that is not an embedded message; what it lacks goes into `notes`."""
    name = attachment_name(p)
    method = p.integer(PR_ATTACH_METHOD)
    if method not in (ATTACH_BY_VALUE, ATTACH_OLE, 0, None):
        notes.append(f"attachment {i + 1} ({name}) is a reference (method {method}), "
                     "no data in the PST")
        return None
    if method == ATTACH_OLE:
        notes.append(f"attachment {i + 1} ({name}) is an OLE object, kept as raw bytes")
    mime = p.text(PR_ATTACH_MIME_TAG) or guess_type(name)
    return Attachment(name or f"attachment-{i + 1}", mime, data, p.text(PR_ATTACH_CONTENT_ID))


def _from_text(packed: bytes) -> bool:
    """The RTF header says \\fromtext (decompressing its first KiB is cheap); False when
    even that fails, so that the whole body is tried (and the failure noted)."""
    try:
        # \\fromtext is nearly always among the first control words: look there first
        return is_text_rtf(decompress(packed, 256)) or is_text_rtf(decompress(packed, 1024))
    except RtfError:
        return False


def item_bodies(
    props: Props, notes: list[str], codepage: str,
    fast_rtf: Callable[[bytes], bytes | None] = lambda packed: None,
) -> tuple[Body, ...]:
    """The bodies of an item; `fast_rtf` may decompress RTF faster (libpff), else Python does."""
    charset = mime_charset(codepage_name(props.integer(PR_INTERNET_CPID), codepage))
    packed = props.binary(PR_RTF_COMPRESSED)
    rtf: bytes | None = None
    # Decompressing is the costly step: skip it when PR_HTML already holds the body,
    # and when the RTF header says it was derived from the plain body (\\fromtext).
    if packed and props.get(PR_HTML) is None:
        try:
            if not _from_text(packed):
                rtf = fast_rtf(packed)
                rtf = decompress(packed) if rtf is None else rtf
        except RtfError as e:
            notes.append(f"RTF body unreadable: {e}")
    try:
        return mail_bodies(props, rtf, charset)
    except RtfError as e:
        notes.append(f"RTF body not converted: {e}")
        return mail_bodies(props, None, charset)
