"""The named properties of an Outlook meeting item by its iTIP method: the ones a meeting
request, response, counter proposal, cancellation or forward notification carries besides
the appointment's own (events.py). Pure.

[MS-OXOCAL]: PidLidGlobalObjectId / PidLidCleanGlobalObjectId (2.2.1.27/28; an answer to
one occurrence has that occurrence's original date in bytes 17-20),
PidLidAppointmentSequence (2.2.1.1), PidLidAppointmentStateFlags (2.2.1.10),
PidLidResponseStatus (2.2.1.11), PidLidOwnerCriticalChange (2.2.1.34),
PidLidAttendeeCriticalChange (2.2.5.2), PidLidWhere (2.2.5.3), PidLidIsRecurring
(2.2.5.4), PidLidIsException (2.2.5.5), PidLidIntendedBusyStatus (2.2.6.4),
PidLidMeetingType (2.2.6.5), PidLidAppointmentMessageClass (2.2.6.6), PidLidFInvited
(2.2.6.8), the counter proposal's PidLidAppointmentCounterProposal (2.2.7.6) and
PidLidAppointmentProposedStartWhole/EndWhole/Duration (2.2.7.4/2.2.7.5/2.2.7.7),
PidLidIsSilent (2.2.7.7 of a response without text), PidLidExceptionReplaceTime
(2.2.10.2.5). [MS-OXCICAL]: DTSTAMP is PidLidAttendeeCriticalChange in a REPLY or
COUNTER, PidLidOwnerCriticalChange otherwise (2.1.3.1.1.20.9); a COUNTER's DTSTART/DTEND
are the proposal and X-MS-OLK-ORIGINALSTART/END the meeting's own times
(2.1.3.1.1.20.10, .59, .60).
"""

from __future__ import annotations

import re
import struct
from datetime import date, datetime, timedelta

from pstkit.converters.pim.tzrules import Zone
from pstkit.converters.pst.named import GOID_HEAD, PSETID_MEETING, clean_global_object_id

from .events import (
    PSETID_APPOINTMENT,
    Component,
    Ids,
    When,
    busy_status,
    moment,
    named_prop,
    when_props,
)
from .values import Prop, binary, boolean, long, systime, unicode


def global_object_id(uid: str, instance: date | None = None) -> bytes:
    """PidLidGlobalObjectId (2.2.1.27) of an iCalendar UID: Outlook's own id when the UID
    is one in hex ([MS-OXCICAL] 2.1.3.1.1.20.26), else the "vCal-Uid" form that carries
    the UID itself: head, year/month/day (the original date of the one occurrence it is
    about, else zero), creation time zero, size, data."""
    day = b"\0\0\0\0" if instance is None else struct.pack(
        ">HBB", instance.year, instance.month, instance.day)
    if uid.upper().startswith(GOID_HEAD.hex().upper()) and re.fullmatch(r"[0-9A-Fa-f]+", uid):
        raw = bytes.fromhex(uid)
        if len(raw) >= 40:
            return raw if instance is None else raw[:16] + day + raw[20:]
    data = b"vCal-Uid" + struct.pack("<I", 1) + uid.encode("utf-8") + b"\0"
    return GOID_HEAD + day + b"\0" * 16 + struct.pack("<I", len(data)) + data


def _when(c: Component, name: str, zones: dict[str, Zone]) -> When | None:
    line = c.first(name)
    try:
        return moment(line, zones) if line is not None else None
    except ValueError:
        return None


def _stamp(c: Component, name: str, zones: dict[str, Zone]) -> datetime | None:
    when = _when(c, name, zones)
    return when.utc if when is not None else None


def meeting_props(c: Component, method: str, ids: Ids, zones: dict[str, Zone],
                  silent: bool) -> list[Prop]:
    """The meeting properties of the item `c` (the series, or the one occurrence it is
    about) with iTIP `method` ("" for a forward notification); `silent`: no text body."""
    a, m = PSETID_APPOINTMENT, PSETID_MEETING
    original = _when(c, "RECURRENCE-ID", zones)
    goid = global_object_id(c.text("UID"), original.local.date() if original else None)
    seq = c.text("SEQUENCE")
    reply = method in ("REPLY", "COUNTER")
    state = 0x1 | 0x2 | (0x4 if method == "CANCEL" else 0)  # asfMeeting|asfReceived|asfCanceled
    out = [named_prop(ids, m, 0x0003, binary(0, goid)),
           named_prop(ids, m, 0x0023, binary(0, clean_global_object_id(goid))),
           named_prop(ids, a, 0x8201, long(0, int(seq) if seq.isdigit() else 0)),
           named_prop(ids, a, 0x8217, long(0, state)),
           named_prop(ids, m, 0x0005, boolean(0, c.first("RRULE") is not None)),  # IsRecurring
           named_prop(ids, a, 0x8223, boolean(0, c.first("RRULE") is not None)),  # Recurring
           named_prop(ids, m, 0x000A, boolean(0, original is not None))]  # IsException
    if c.first("LOCATION") is not None:
        out.append(named_prop(ids, m, 0x0002, unicode(0, c.text("LOCATION"))))  # PidLidWhere
    stamp = _stamp(c, "DTSTAMP", zones)
    if stamp is not None:  # Attendee- or OwnerCriticalChange
        out.append(named_prop(ids, m, 0x0001 if reply else 0x001A, systime(0, stamp)))
    if original is not None:
        out.append(named_prop(ids, a, 0x8228, systime(0, original.utc)))  # ExceptionReplaceTime
    return out + _by_method(c, method, ids, zones, silent)


def _by_method(c: Component, method: str, ids: Ids, zones: dict[str, Zone],
               silent: bool) -> list[Prop]:
    a, m = PSETID_APPOINTMENT, PSETID_MEETING
    if method in ("REQUEST", ""):  # a request, or the request a forward notification names
        intended = busy_status(c, "X-MICROSOFT-CDO-INTENDEDSTATUS", "X-MICROSOFT-CDO-BUSYSTATUS")
        rsvp = any(x.param("RSVP").upper() == "TRUE" for x in c.lines if x.name == "ATTENDEE")
        return [*attendee_strings(c, ids), named_prop(ids, a, 0x8224, long(0, intended)),
                named_prop(ids, m, 0x0026, long(0, 1)),  # mtgRequest
                named_prop(ids, m, 0x0024, unicode(0, "IPM.Appointment")),
                named_prop(ids, a, 0x8229, boolean(0, True)),  # PidLidFInvited
                named_prop(ids, a, 0x8218, long(0, 5)),  # respNotResponded
                *([boolean(0x0063, rsvp)] if method else [])]
    if method == "CANCEL":
        return [*attendee_strings(c, ids), named_prop(ids, a, 0x8205, long(0, 0)),
                named_prop(ids, a, 0x8224, long(0, 0)),  # free
                named_prop(ids, m, 0x0024, unicode(0, "IPM.Appointment")),
                named_prop(ids, a, 0x8218, long(0, 5))]  # respNotResponded (2.2.1.11)
    out = [named_prop(ids, a, 0x8218, long(0, 0)),  # a response: respNone (2.2.1.11)
           named_prop(ids, m, 0x0004, boolean(0, silent)),  # PidLidIsSilent
           named_prop(ids, a, 0x8257, boolean(0, method == "COUNTER"))]
    return out + (counter_props(c, ids, zones) if method == "COUNTER" else [])


def counter_props(c: Component, ids: Ids, zones: dict[str, Zone]) -> list[Prop]:
    """A counter proposal: DTSTART/DTEND are the proposed times; the meeting's own
    (StartWhole, EndWhole, PidTagStartDate...) come from X-MS-OLK-ORIGINALSTART/END when
    given, else they stay the proposal's (what [MS-OXCICAL] imports then)."""
    a = PSETID_APPOINTMENT
    start, end = _stamp(c, "DTSTART", zones), _stamp(c, "DTEND", zones)
    out: list[Prop] = []
    if start is not None and end is not None:
        minutes = int((end - start) // timedelta(minutes=1))
        out += [named_prop(ids, a, 0x8250, systime(0, start)),
                named_prop(ids, a, 0x8251, systime(0, end)),
                named_prop(ids, a, 0x8256, long(0, minutes))]
    first, last = _when(c, "X-MS-OLK-ORIGINALSTART", zones), _when(c, "X-MS-OLK-ORIGINALEND", zones)
    if first is not None and last is not None:
        out += when_props(ids, first, last)
    return out


def attendee_strings(c: Component, ids: Ids) -> list[Prop]:
    """PidLidAllAttendeesString, PidLidToAttendeesString and PidLidCcAttendeesString
    (2.2.1.16-2.2.1.18): the attendees' names, "; " between them; required ones are To,
    optional ones Cc (what Outlook shows in the item's To and Optional lines)."""
    a = PSETID_APPOINTMENT
    to: list[str] = []
    cc: list[str] = []
    for x in c.lines:
        if x.name == "ATTENDEE":
            name = x.param("CN") or x.value.strip().removeprefix("mailto:").removeprefix("MAILTO:")
            (cc if x.param("ROLE").upper() == "OPT-PARTICIPANT" else to).append(name)
    return [named_prop(ids, a, 0x8238, unicode(0, "; ".join(to + cc))),
            named_prop(ids, a, 0x823B, unicode(0, "; ".join(to))),
            named_prop(ids, a, 0x823C, unicode(0, "; ".join(cc)))]
