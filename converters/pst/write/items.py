"""A stored contact, list, event, task or note -> the Outlook item's MAPI properties. Pure.

The store keeps such an item as a message carrying its vCard or iCalendar part (see
`pst.items.wrap_item`, whose inverse this is): the class in X-Pstkit-Item-Class, the
title as subject, the body as the plain part, the item's own attachments beside the
card. `to_item` reads that message back into the properties Outlook shows (`cards`,
`events`), so PST -> store -> PST -> store gives the same store. Exceptions of a series
become exception attachments ([MS-OXOCAL] 2.2.10): when the stored item carries an
attached message made from the exception (same creation time), that message is reused.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
from collections.abc import Iterable
from datetime import datetime
from email.message import Message as PyMessage

from pstkit.converters.pim.content import lines
from pstkit.converters.pim.tzrules import Zone
from pstkit.converters.pst.named import EXCEPTION_CLASS
from pstkit.converters.pst.props import PS_PSTKIT
from pstkit.model import ItemKind

from .cards import Ids, contact_props, distlist_props
from .events import (
    PSETID_APPOINTMENT,
    Component,
    calendar_zones,
    common,
    components,
    event,
    moment,
    times,
    when_props,
)
from .mapi import (
    MSGFLAG_HASATTACH,
    MSGFLAG_READ,
    MSGFLAG_UNSENT,
    Attachment,
    Message,
    Prop,
    boolean,
    header_text,
    long,
    part_attachment,
    systime,
    unicode,
)
from .parts import data_of, split_parts
from .tasks import task

CLASSES = {ItemKind.CONTACT: "IPM.Contact", ItemKind.DISTLIST: "IPM.DistList",
           ItemKind.EVENT: "IPM.Appointment", ItemKind.TASK: "IPM.Task",
           ItemKind.NOTE: "IPM.StickyNote", ItemKind.JOURNAL: "IPM.Activity"}
UID = (PS_PSTKIT, "Uid")  # the iCalendar UID, so that a round trip keeps it
MESSAGE_ID = (PS_PSTKIT, "MessageId")  # and the stored form's Message-ID
PSETID_NOTE = "0006200e-0000-0000-c000-000000000046"
PSETID_LOG = "0006200a-0000-0000-c000-000000000046"
_CARD = ("text/vcard", "text/x-vcard", "text/directory", "text/calendar")


def to_item(raw: bytes, kind: ItemKind, flags: Iterable[str], received: datetime | None,
            ids: Ids) -> tuple[Message, list[str]]:
    """The MAPI form of one stored non-mail item and what of it could not be kept;
    ValueError when it cannot be made at all."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    plain, _html, parts = split_parts(msg)
    card = next((p for p in parts if p.get_content_type() in _CARD), None)
    rest = [p for p in parts if p is not card]
    # vCard and iCalendar are UTF-8 unless the part says otherwise (RFC 6350 3.1, 5545 3.1.4)
    text = data_of(card).decode(card.get_content_charset() or "utf-8", "replace") if \
        card is not None else ""
    if kind in (ItemKind.NOTE, ItemKind.JOURNAL):
        changed = _dateheader_text(msg)
        parts_: Parts = (note_props(kind, plain or "", ids) + (
            [systime(0x3008, changed)] if changed is not None else []), [], [], [])
    else:
        parts_ = _kind_props(kind, text, rest, ids)
    own, recipients, exceptions, notes = parts_
    if msg.get("Message-ID"):
        own.append(unicode(ids(MESSAGE_ID), str(msg.get("Message-ID")).strip()))
    attachments = [part_attachment(p, i, 0) for i, p in enumerate(rest)]
    for i, att in exceptions:
        if i is None:
            attachments.append(att)
        else:
            attachments[i] = att
    # an empty body is no body (readpst would show an empty NOTE); a note's is in `own`
    body = None if kind in (ItemKind.NOTE, ItemKind.JOURNAL) else plain or None
    cls = str(msg.get("X-Pstkit-Item-Class", "") or CLASSES[kind]).strip()
    # the class the item had in its PST wins over the kind's (IPM.Appointment.Custom...)
    own = [p for p in own if p[0] != 0x001A] if msg.get("X-Pstkit-Item-Class") else own
    props = _envelope(msg, cls, body, received, set(flags), bool(attachments)) + own
    if received is not None and not any(p[0] == 0x3007 for p in props):
        props.append(systime(0x3007, received))
    return Message(_unique(props), recipients, attachments), notes


Parts = tuple[list[Prop], list[list[Prop]], list[tuple[int | None, Attachment]], list[str]]


def _kind_props(kind: ItemKind, text: str, rest: list[PyMessage], ids: Ids) -> Parts:
    if kind is ItemKind.CONTACT:
        return contact_props(lines(text), ids), [], [], []
    if kind is ItemKind.DISTLIST:
        return distlist_props(lines(text), ids), [], [], []
    comps = components(text)
    if kind is ItemKind.TASK:
        todo = next((c for c in comps if c.name == "VTODO"), None)
        if todo is None:
            raise ValueError("a task without a VTODO")
        return task(todo, ids) + _uid(todo, ids), [], [], []
    return _event(comps, calendar_zones(text), rest, ids)


def note_props(kind: ItemKind, text: str, ids: Ids) -> list[Prop]:
    """A sticky note ([MS-OXONOTE] 2.2.1: color yellow, width, height) or a journal entry
    ([MS-OXOJRNL] 2.2.1: type, start, end) from the text `pst.cards.note_text` made: the
    title line, for a journal its "Type:", "Start:" and "End:" lines, a blank line, then
    the body."""
    head, sep, body = text.replace("\r\n", "\n").partition("\n\n")
    lines = head.split("\n") if sep else [head]
    props = [unicode(0x1000, body.replace("\n", "\r\n"))] if body else []
    if kind is ItemKind.NOTE:
        return [*props, long(ids((PSETID_NOTE, 0x8B00)), 3),
                long(ids((PSETID_NOTE, 0x8B02)), 200), long(ids((PSETID_NOTE, 0x8B03)), 166)]
    for line in lines[1:]:
        label, _, value = line.partition(": ")
        if label == "Type":
            props.append(unicode(ids((PSETID_LOG, 0x8700)), value))
        elif label in ("Start", "End"):
            try:
                when = datetime.fromisoformat(value)
            except ValueError:
                continue
            lid = 0x8706 if label == "Start" else 0x8708
            props.append(systime(ids((PSETID_LOG, lid)), when))
    return props


def _uid(c: Component, ids: Ids) -> list[Prop]:
    return [unicode(ids(UID), c.text("UID"))] if c.text("UID") else []


def _event(comps: list[Component], zones: dict[str, Zone], rest: list[PyMessage], ids: Ids
           ) -> Parts:
    events = [c for c in comps if c.name == "VEVENT"]
    series = next((c for c in events if c.first("RECURRENCE-ID") is None), None)
    if series is None:
        raise ValueError("an event without a VEVENT")
    uid = series.text("UID")
    ev = event(series, zones, overrides(events, uid), ids)
    out = [exception_attachment(series, x, original.utc, rest, zones, ids)
           for x, _ch, original in ev.changed]
    return ev.props + _uid(series, ids), ev.recipients, out, ev.notes + left_out(events, uid)


def overrides(events: list[Component], uid: str) -> list[Component]:
    """The changed occurrences an Outlook item holds: RECURRENCE-ID events of its UID that
    change one occurrence (`left_out` says what else there is)."""
    return [c for c in events if c.first("RECURRENCE-ID") is not None
            and c.text("UID") == uid and not _this_and_future(c)]


def _this_and_future(c: Component) -> bool:
    rid = c.first("RECURRENCE-ID")
    return rid is not None and rid.param("RANGE").upper() == "THISANDFUTURE"


def left_out(events: list[Component], uid: str) -> list[str]:
    """What of a calendar one Outlook item cannot hold, said: other events (an item is one
    series), changed occurrences of another UID, and RANGE=THISANDFUTURE overrides (an
    Outlook exception changes one occurrence, [MS-OXOCAL] 2.2.10)."""
    series = [c for c in events if c.first("RECURRENCE-ID") is None]
    foreign = [c for c in events if c.first("RECURRENCE-ID") is not None
               and c.text("UID") != uid]
    future = [c for c in events if c.text("UID") == uid and _this_and_future(c)]
    out = [f"{len(series) - 1} other event(s) of the calendar not written: an Outlook "
           "item holds one event or series"] if len(series) > 1 else []
    if foreign:
        out.append(f"{len(foreign)} changed occurrence(s) of another UID not written")
    if future:
        out.append(f"{len(future)} change(s) to this and future occurrences "
                   "(RANGE=THISANDFUTURE) not written")
    return out


def exception_attachment(series: Component, x: Component, original: datetime,
                         rest: list[PyMessage],
               zones: dict[str, Zone], ids: Ids) -> tuple[int | None, Attachment]:
    """An exception attachment and its embedded message (2.2.10.1, 2.2.10.2); the
    attached message made from it when the store has one (same Date as its DTSTAMP)."""
    a = PSETID_APPOINTMENT
    stamp = x.first("DTSTAMP")
    created = moment(stamp, {}).utc if stamp is not None else None
    index = next((i for i, p in enumerate(rest) if p.get_content_type() == "message/rfc822"
                  and created is not None and _date(p) == created), None)
    base = part_attachment(rest[index], index, 0) if index is not None else None
    inner = base.embedded if base is not None and base.embedded is not None else Message(
        [], [], [])
    # what equals the series' is left out: the exception inherits it (2.2.10.2)
    same = x.text("SUMMARY") == series.text("SUMMARY")
    skip = {0x0037, 0x0E1D, 0x003D, 0x0070} if same else set()
    own = [p for p in common(x) if p[0] not in skip and not (base and p[0] == 0x1000)]
    props = [p for p in inner.props if p[0] not in skip]
    props += [*own, unicode(0x001A, EXCEPTION_CLASS),
              (ids((a, 0x8228)), 0x0040, systime(0, original)[2])]
    if x.first("LOCATION") is not None:
        props.append((ids((a, 0x8208)), 0x001F, unicode(0, x.text("LOCATION"))[2]))
    span = times(x, zones)
    props += when_props(ids, *span) if span is not None else []
    embedded = Message(_unique(props), inner.recipients, inner.attachments)
    att = [p for p in (base.props if base is not None else [long(0x3705, 5),
           unicode(0x3001, "Untitled")]) if p[0] not in (0x7FFE, 0x3714)]
    att += [boolean(0x7FFE, True), long(0x7FFD, 0x2), systime(0x7FF9, original),
            long(0x3714, 0)]
    return index, Attachment(att, embedded)


def _date(part: PyMessage) -> datetime | None:
    inner = part.get_payload(0) if part.is_multipart() else None
    if not isinstance(inner, PyMessage):
        return None
    value = inner.get("Date")
    try:
        return email.utils.parsedate_to_datetime(str(value)) if value else None
    except (TypeError, ValueError):
        return None


def _envelope(msg: PyMessage, cls: str, body: str | None, received: datetime | None,
              flags: set[str], attached: bool) -> list[Prop]:
    subject = header_text(msg, "Subject")
    out = [unicode(0x001A, cls), unicode(0x0037, subject), unicode(0x0E1D, subject),
           long(0x0E07, (MSGFLAG_READ if "seen" in flags else 0)
                | (MSGFLAG_UNSENT if "draft" in flags else 0)
                | (MSGFLAG_HASATTACH if attached else 0)),
           boolean(0x0E1B, attached), long(0x3FFD, 65001)]
    if body is not None:
        out.append(unicode(0x1000, body))
    if received is not None:  # modification/creation times come from the card or event
        out += [systime(0x0E06, received)]
    return out


def _dateheader_text(msg: PyMessage) -> datetime | None:
    value = msg.get("Date")
    try:
        return email.utils.parsedate_to_datetime(str(value)) if value else None
    except (TypeError, ValueError):
        return None


def _unique(props: list[Prop]) -> list[Prop]:
    """One value per property id, the last given winning."""
    return list({p[0]: p for p in props}.values())
