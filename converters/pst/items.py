"""Outlook items -> what the store keeps: mail as a `MapiMessage`, other kinds wrapped. Pure.

Mail: MAPI properties -> `MapiMessage` (bodies, parties, attachments), built into MIME by
`pst.mime`. Contacts, lists and notes are made in `pst.cards`, calendar items and tasks in
`pst.ical`; `wrap_item` puts each into its own MIME message.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from pstkit.converters.pst.mime import Address, Attachment, Body, MapiMessage, guess_type
from pstkit.converters.pst.props import (
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
from pstkit.converters.pst.rtf import (
    RtfError,
    decompress,
    deencapsulate_html,
    is_html_rtf,
    is_text_rtf,
)
from pstkit.model import Flag, ItemKind, MessageMeta
from pstkit.options import FetchFilter

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
              notes: tuple[str, ...] = (), exceptions: tuple[Props, ...] = (),
              recipients: tuple[Props, ...] = ()) -> MapiMessage:
    """A non-mail item as a message carrying its vCard/iCalendar (or its text); an
    appointment's recipients are its organizer and attendees."""
    # Imported here: a mailbox of plain mail never needs the vCard/iCalendar writers.
    from pstkit.converters.pst.cards import contact_vcard, distlist_vcard, note_text  # noqa: PLC0415
    from pstkit.converters.pst.ical import event_ics, item_title, task_ics  # noqa: PLC0415

    card: tuple[str, str, str] | None = None
    body = props.text(PR_BODY)
    if kind is ItemKind.CONTACT:
        card = ("contact.vcf", "text/vcard", contact_vcard(props))
    elif kind is ItemKind.DISTLIST:
        card = ("distlist.vcf", "text/vcard", distlist_vcard(props))
    elif kind is ItemKind.EVENT:
        card = ("event.ics", "text/calendar", event_ics(props, uid, "", exceptions, recipients))
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
        message_id=props.text("PstkitMessageId"),  # an item pstkit wrote: as it was stored
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
