"""Meeting requests, responses, counter proposals, cancellations and forward
notifications: a mail whose MIME carries an iCalendar with an iTIP METHOD (iMIP, RFC 6047;
pstkit's PST reader stores Outlook's meeting items that way too) becomes the Outlook
meeting item it is, not IPM.Note. Pure.
Changed occurrences (RECURRENCE-ID events) become exception attachments (2.2.10), as on
appointments (`items.exception_attachment`).

Per [MS-OXOCAL]: the message class (2.2.6.1 meeting request, 2.2.7 response, 2.2.8
cancellation, 2.2.9 forward notification: IPM.Schedule.Meeting.Request, .Resp.Pos/.Neg/
.Tent, .Canceled, .Notification.Forward), the appointment properties of the event it
carries (start, end, location, recurrence, time zone: events.py) and the meeting
properties of its kind (meeting_props.py: global object ids, sequence, state, critical
change times, the counter proposal's times...). PidTagResponseRequested ([MS-OXOMSG]
2.2.1.46) is RSVP. A forward notification's PidLidForwardNotificationRecipients comes from
its X-PSTKIT-FORWARDED-TO lines (attendees.py).
"""

from __future__ import annotations

import email
import email.policy
import re
from email.message import Message as PyMessage

from pstkit.converters.pim.tzrules import Zone

from .attendees import forward_recipients
from .events import (
    Component,
    Event,
    Ids,
    calendar_zones,
    components,
    event,
)
from .items import exception_attachment, left_out, overrides
from .mapi import Attachment, Message
from .meeting_props import meeting_props
from .parts import own_parts, rtf_body, split_parts
from .values import Prop, unicode

_REPLY = {"ACCEPTED": "Pos", "DECLINED": "Neg", "TENTATIVE": "Tent"}
#: classes iTIP has no method for; pstkit's reader names them in the calendar it makes
#: (X-PSTKIT-MESSAGE-CLASS, pst/ical.py), so a PST -> store -> PST round trip keeps them
FORWARD = "IPM.Schedule.Meeting.Notification.Forward"
MARKED = (FORWARD,)


def meeting_class(method: str, partstat: str = "") -> str:
    """The Outlook class of an iTIP message; "" when it is not one Outlook has (REFRESH,
    PUBLISH, ADD, DECLINECOUNTER stay mail). A COUNTER is what Outlook's "propose new
    time" sends: a tentative response, or a declining one, with the proposal (2.2.7)."""
    method = method.upper()
    if method == "REQUEST":
        return "IPM.Schedule.Meeting.Request"
    if method == "CANCEL":
        return "IPM.Schedule.Meeting.Canceled"
    if method == "REPLY":
        kind = _REPLY.get(partstat.upper())
        return f"IPM.Schedule.Meeting.Resp.{kind}" if kind else ""
    if method == "COUNTER":
        return "IPM.Schedule.Meeting.Resp." + ("Neg" if partstat.upper() == "DECLINED" else "Tent")
    return ""


def calendar_part(msg: PyMessage) -> tuple[str, str] | None:
    """(METHOD, iCalendar text) of the message's text/calendar part, if it has a method
    or names one of the MARKED classes (then the method is "")."""
    for part in own_parts(msg):
        if part.get_content_type() != "text/calendar":
            continue
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        text = data.decode(part.get_content_charset() or "utf-8", "replace")
        found = re.search(r"^METHOD:\s*([A-Za-z-]+)", text, re.MULTILINE)
        method = (found.group(1) if found else str(part.get_param("method") or ""))
        if method or marked_class(text):
            return method.upper(), text
    return None


def marked_class(text: str) -> str:
    """The MARKED class an iCalendar names in X-PSTKIT-MESSAGE-CLASS, else ""."""
    found = re.search(r"^X-PSTKIT-MESSAGE-CLASS:\s*(\S+)", text, re.MULTILINE)
    name = found.group(1) if found else ""
    return next((c for c in MARKED if c.lower() == name.lower()), "")


def mail_or_meeting(raw: bytes, base: Message, ids: Ids) -> tuple[Message, list[str]]:
    """`as_meeting` for a raw mail; messages without a text/calendar part are not parsed
    again (the mail path has its own parser, mapi.py): `base.calendar` says whether its
    tree, the same as the stdlib's (fastmime), has a text/calendar part of its own. Not a
    scan of every message's raw bytes for the name in the writer's process (in base64
    attachments every 64th byte is the "/" such a scan stopped at)."""
    if not base.calendar:
        return base, []
    return as_meeting(email.message_from_bytes(raw, policy=email.policy.compat32), base, ids)


def as_meeting(msg: PyMessage, base: Message, ids: Ids) -> tuple[Message, list[str]]:
    """`base` (the mail's MAPI form) as a meeting item when `msg` is an iTIP message
    Outlook has a class for; unchanged otherwise. Notes say what was not kept."""
    cls_now = next((p[2].decode("utf-16-le", "replace") for p in base.props
                    if p[0] == 0x001A), "IPM.Note")
    found = calendar_part(msg) if cls_now in ("IPM.Note", "") else None  # not reports
    if found is None:
        return base, []
    method, text = found
    comps = components(text)
    series = next((c for c in comps if c.name == "VEVENT" and c.first("RECURRENCE-ID") is None),
                  next((c for c in comps if c.name == "VEVENT"), None))
    if series is None:
        return base, []
    partstat = next((a.param("PARTSTAT") for a in series.lines if a.name == "ATTENDEE"), "")
    cls = marked_class(text) or meeting_class(method, partstat)
    if not cls:
        return base, []
    zones = calendar_zones(text)
    events = [c for c in comps if c.name == "VEVENT"]
    # (a message about one occurrence has only that one: no series to override)
    ev = event(series, zones, [x for x in overrides(events, series.text("UID"))
                               if x is not series], ids)
    attachments = full_calendar_type(msg, _with_exceptions(msg, base, series, ev, zones, ids))
    notes = left_out(events, series.text("UID"))
    have = {p[0] for p in base.props}
    # the appointment's named properties (start, end, location, recurrence, zone...) and
    # PidTagStartDate/EndDate, not its subject or body: the mail's own are kept
    props = [p for p in base.props if p[0] != 0x001A] + [unicode(0x001A, cls)]
    props += [p for p in ev.props if (p[0] >= 0x8000 or p[0] in (0x0060, 0x0061))
              and p[0] not in have]
    silent = not any(p[0] == 0x1000 and p[2].decode("utf-16-le", "replace").strip()
                     for p in base.props)
    kind = meeting_props(series, method, ids, zones, silent)
    if cls == FORWARD:  # the people the meeting was forwarded to (2.2.9)
        kind += forward_recipients(series, ids)
    props = _override(props, kind)
    return Message(props, base.recipients, attachments), ev.notes + notes


def full_calendar_type(msg: PyMessage, attachments: list[Attachment]) -> list[Attachment]:
    """The calendar part's PR_ATTACH_MIME_TAG (PidTagAttachMimeTag) with its `charset`
    and `method` parameters, as they stood (RFC 6047 2.4 puts METHOD there too):
    pstkit's reader takes the tag as the part's Content-Type, so store -> PST -> store
    keeps the part's header; the bare type alone lost both."""
    part = next((p for p in msg.walk() if p.get_content_type() == "text/calendar"), None)
    # the header's own text (get_params re-quotes): `k=v` segments as written
    head = " ".join(str(part.get("Content-Type", "")).split()) if part is not None else ""
    kept = [x.strip() for x in head.split(";")[1:]
            if x.partition("=")[0].strip().lower() in ("charset", "method")]
    if not kept:
        return attachments
    full = "; ".join(["text/calendar", *kept])
    out = []
    for att in attachments:
        tag = next((v for pid, _t, v in att.props if pid == 0x370E), b"")
        bare = att.embedded is None and tag.decode("utf-16-le", "replace") == "text/calendar"
        out.append(Attachment([p for p in att.props if p[0] != 0x370E]
                              + [unicode(0x370E, full)]) if bare else att)
    return out


def _with_exceptions(msg: PyMessage, base: Message, series: Component, ev: Event,
                     zones: dict[str, Zone], ids: Ids) -> list[Attachment]:
    """The mail's attachments with an exception attachment per changed occurrence
    ([MS-OXOCAL] 2.2.10), as a meeting item with exceptions has them: an attached message
    made from the exception (pstkit's reader stores them so) becomes it, else one is added.
    The mail's parts are counted as `mapi.to_mapi` counts them (bodies and an RTF
    alternative are no attachments)."""
    if not ev.changed:
        return list(base.attachments)
    _plain, _html, parts = split_parts(msg)
    _rtf, parts = rtf_body(parts)
    if len(parts) != len(base.attachments):  # the two parsers disagree: reuse nothing
        parts = []
    out = list(base.attachments)
    for x, _changed, original in ev.changed:
        i, att = exception_attachment(series, x, original.utc, parts, zones, ids)
        if i is None:
            out.append(att)
        else:
            out[i] = att
    return out


def _override(props: list[Prop], new: list[Prop]) -> list[Prop]:
    pids = {p[0] for p in new}
    return [p for p in props if p[0] not in pids] + new
