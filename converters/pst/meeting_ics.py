"""What a meeting item's iCalendar shows beyond an appointment's: the UID its global
object id carries, SEQUENCE, DTSTAMP, the one occurrence it is about, a counter
proposal's times, and the class of a forward notification. Pure; the inverse of the PST
writer's write/meeting_props.py.

[MS-OXCICAL]: UID from PidLidGlobalObjectId (2.1.3.1.1.20.26; [MS-ASEMAIL] 3.1.4.7: the
"vCal-Uid" form carries the UID, Outlook's own id is its hex with the date zeroed);
SEQUENCE is PidLidAppointmentSequence; DTSTAMP is PidLidAttendeeCriticalChange in a
REPLY or COUNTER, PidLidOwnerCriticalChange otherwise (2.1.3.1.1.20.9); a COUNTER's
DTSTART/DTEND are PidLidAppointmentProposedStartWhole/EndWhole and
X-MS-OLK-ORIGINALSTART/END the meeting's own times (2.1.3.1.1.20.59/.60); an item about
one occurrence has its PidLidExceptionReplaceTime as RECURRENCE-ID. iTIP has no method
for a forward notification ([MS-OXOCAL] 2.2.9): its calendar has none and names the class
in X-PSTKIT-MESSAGE-CLASS, which the writer reads back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pstkit.converters.pim.ical_tz import utc_stamp as stamp
from pstkit.converters.pst.named import GOID_HEAD, clean_global_object_id, is_meeting
from pstkit.converters.pst.props import PR_MESSAGE_CLASS, Props

_VCAL = b"vCal-Uid"


@dataclass(frozen=True)
class MeetingView:
    props: Props  # the item as its VEVENT shows it (a counter proposal: the proposed times)
    uid: str = ""
    stamp: datetime | None = None
    lines: list[str] = field(default_factory=list)  # extra VEVENT lines
    head: list[str] = field(default_factory=list)  # extra VCALENDAR lines


def goid_uid(goid: bytes | None) -> str:
    """The iCalendar UID of a PidLidGlobalObjectId, "" when it is none."""
    if goid is None or len(goid) < 40 or goid[:16] != GOID_HEAD:
        return ""
    size = int.from_bytes(goid[36:40], "little")
    data = goid[40 : 40 + size]
    if data.startswith(_VCAL) and len(data) > 12:
        return data[12:].split(b"\0", 1)[0].decode("utf-8", "replace")
    return clean_global_object_id(goid).hex().upper()


def meeting_view(props: Props, method: str) -> MeetingView | None:
    """The meeting item's view for its iCalendar with iTIP `method`; None for other items."""
    cls = props.text(PR_MESSAGE_CLASS)
    if not is_meeting(cls):
        return None
    reply = method in ("REPLY", "COUNTER")
    when = props.time("AttendeeCriticalChange" if reply else "OwnerCriticalChange")
    lines = [f"SEQUENCE:{props.integer('AppointmentSequence')}"] \
        if props.integer("AppointmentSequence") is not None else []
    original = props.time("ExceptionReplaceTime")
    if original is not None:
        lines.append(f"RECURRENCE-ID:{stamp(original)}")
    if method == "CANCEL":  # [MS-OXCICAL] 2.1.3.1.1.20.23: a cancellation's status
        lines.append("STATUS:CANCELLED")
    shown = props
    start, end = props.time("ProposedStart"), props.time("ProposedEnd")
    if method == "COUNTER" and start is not None and end is not None:
        lines += [f"X-MS-OLK-ORIGINAL{name}:{stamp(t)}" for name, t in
                  (("START", props.time("Start")), ("END", props.time("End"))) if t]
        shown = Props({**props.values, "Start": start, "End": end})
    head = [] if method else [f"X-PSTKIT-MESSAGE-CLASS:{cls}"]
    return MeetingView(shown, goid_uid(props.binary("GlobalObjectId")), when, lines, head)
