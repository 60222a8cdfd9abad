"""Outlook calendar items -> iCalendar (RFC 5545), and the text helpers vCard shares. Pure.

Recurring appointments carry their rule in PidLidAppointmentRecur
(MS-OXOCAL 2.2.1.44): the series becomes an RRULE, deleted occurrences
EXDATEs, and changed occurrences (exception items, attached to the series as
embedded messages) extra VEVENTs with the series' UID and a RECURRENCE-ID.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from converters.pst_props import (
    PR_BODY,
    PR_CREATION_TIME,
    PR_DISPLAY_NAME,
    PR_LAST_MODIFICATION_TIME,
    PR_SUBJECT,
    Props,
    strip_subject_prefix,
)

_DAYS = ("SU", "MO", "TU", "WE", "TH", "FR", "SA")
_FREQ = {0x200A: "DAILY", 0x200B: "WEEKLY", 0x200C: "MONTHLY", 0x200D: "YEARLY"}
_END_AFTER_DATE, _END_AFTER_COUNT = 0x2021, 0x2022
_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
#: message class of an exception item attached to a recurring series
EXCEPTION_CLASS = "ipm.ole.class.{00061055-0000-0000-c000-000000000046}"


# --- content lines (shared with vCard) --------------------------------------


def escape(text: str) -> str:
    """RFC 6350 / RFC 5545 TEXT escaping."""
    text = text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")


def fold(line: str) -> str:
    """Fold one content line at 75 octets without splitting a UTF-8 sequence."""
    if line.isascii():  # one octet a character: cut by slicing (most lines)
        if len(line) <= 75:
            return line + "\r\n"
        rest = [" " + line[i : i + 74] for i in range(75, len(line), 74)]
        return "\r\n".join([line[:75], *rest]) + "\r\n"
    out, cur, size = [], "", 0
    for ch in line:
        n = len(ch.encode("utf-8"))
        if size + n > 75:
            out.append(cur)
            cur, size = " ", 1
        cur += ch
        size += n
    out.append(cur)
    return "\r\n".join(out) + "\r\n"


def content(lines: Iterable[str]) -> str:
    return "".join(fold(line) for line in lines)


def stamp(dt: datetime | None) -> str:
    return (dt or datetime(1970, 1, 1, tzinfo=UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def item_title(props: Props) -> str:
    return strip_subject_prefix(props.text(PR_SUBJECT)) or props.text(PR_DISPLAY_NAME)


# --- recurrence ------------------------------------------------------------


@dataclass(frozen=True)
class Recurrence:
    rrule: str  # the RRULE value, e.g. "FREQ=WEEKLY;INTERVAL=1;BYDAY=TU;WKST=SU"
    deleted: tuple[datetime, ...]  # local midnight of each deleted or changed occurrence
    modified: tuple[datetime, ...]  # local midnight of each changed occurrence (in `deleted`)
    start_offset: int  # minutes after local midnight at which occurrences start


class RecurrenceError(ValueError):
    """A recurrence blob this module does not understand."""


def parse_recurrence(blob: bytes) -> Recurrence:
    """Read a RecurrencePattern (+ the AppointmentRecurrencePattern start offset)."""
    try:
        return _parse(blob)
    except (struct.error, IndexError, OverflowError) as e:
        raise RecurrenceError(f"truncated recurrence ({e})") from e


def _parse(blob: bytes) -> Recurrence:
    reader, _w, freq, ptype, _cal, _first, period, _sliding = struct.unpack_from(
        "<HHHHHIII", blob, 0)
    specific = {0: 0, 1: 4, 2: 4, 4: 4, 3: 8, 0xA: 4, 0xC: 4, 0xB: 8}
    if reader != 0x3004 or freq not in _FREQ or ptype not in specific:
        raise RecurrenceError(f"unsupported recurrence ({reader:#x}/{freq:#x}/{ptype:#x})")
    pos = 22 + specific[ptype]
    spec = blob[22:pos]
    end_type, count, first_dow, n_deleted = struct.unpack_from("<IIII", blob, pos)
    pos += 16
    deleted = struct.unpack_from(f"<{n_deleted}I", blob, pos)
    pos += 4 * n_deleted
    n_modified = struct.unpack_from("<I", blob, pos)[0]
    modified = struct.unpack_from(f"<{n_modified}I", blob, pos + 4)
    pos += 4 + 4 * n_modified + 8  # changed dates, start date, end date
    start_offset = struct.unpack_from("<I", blob, pos + 8)[0] if len(blob) >= pos + 12 else 0
    parts = [f"FREQ={_FREQ[freq]}", f"INTERVAL={_interval(freq, period)}", *_by(ptype, spec)]
    if end_type in (_END_AFTER_DATE, _END_AFTER_COUNT) and count:
        parts.append(f"COUNT={count}")  # Outlook computes the count for end-by-date too
    parts.append(f"WKST={_DAYS[first_dow % 7]}")
    return Recurrence(";".join(parts), _dates(deleted), _dates(modified), start_offset)


def _dates(minutes: tuple[int, ...]) -> tuple[datetime, ...]:
    return tuple((_EPOCH + timedelta(minutes=m)).replace(tzinfo=None) for m in minutes)


def _interval(freq: int, period: int) -> int:
    if freq == 0x200A:  # daily: the period is in minutes
        return max(1, period // 1440)
    if freq == 0x200D:  # yearly: in months
        return max(1, period // 12)
    return max(1, period)


def _by(ptype: int, spec: bytes) -> list[str]:
    if ptype == 1:  # week: a day mask
        return [f"BYDAY={_mask(struct.unpack_from('<I', spec)[0])}"]
    if ptype in (2, 0xA):  # month / Hijri month: day of month
        return [f"BYMONTHDAY={struct.unpack_from('<I', spec)[0]}"]
    if ptype in (4, 0xC):  # last day of the month
        return ["BYMONTHDAY=-1"]
    if ptype in (3, 0xB):  # the Nth (5 = last) given weekday(s) of the month
        mask, nth = struct.unpack_from("<II", spec)
        return [f"BYDAY={_mask(mask)}", f"BYSETPOS={-1 if nth == 5 else nth}"]
    return []


def _mask(mask: int) -> str:
    return ",".join(day for i, day in enumerate(_DAYS) if mask & (1 << i)) or "MO"


def exdates(rec: Recurrence, start_utc: datetime) -> tuple[datetime, ...]:
    """Deleted (not changed) occurrences in UTC, with the series start's UTC offset (DST
    not applied). Changed ones are overridden by RECURRENCE-ID events instead."""
    offset = timedelta(minutes=rec.start_offset)
    naive = start_utc.astimezone(UTC).replace(tzinfo=None)
    shift = datetime.combine(naive.date(), datetime.min.time()) + offset - naive
    shift -= timedelta(days=round(shift / timedelta(days=1)))  # local - UTC, within ±12 h
    gone = [d for d in rec.deleted if d not in rec.modified]
    return tuple((d + offset - shift).replace(tzinfo=UTC) for d in gone)


# --- components ------------------------------------------------------------


def calendar(components: list[str], method: str = "") -> str:
    head = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//pstkit//PST export//EN"]
    return content([*head, *([f"METHOD:{method}"] if method else []), *components,
                    "END:VCALENDAR"])


def meeting_method(message_class: str) -> str:
    """iTIP method of a meeting item (IPM.Schedule.Meeting.*), "" for other classes."""
    c = message_class.lower()
    if not c.startswith("ipm.schedule.meeting."):
        return ""
    if c.startswith("ipm.schedule.meeting.resp."):
        return "REPLY"
    return "CANCEL" if c.startswith("ipm.schedule.meeting.canceled") else "REQUEST"


def _vevent(p: Props, uid: str, extra: list[str]) -> list[str]:
    lines = ["BEGIN:VEVENT", f"UID:{escape(uid)}", f"DTSTAMP:{stamp(p.time(PR_CREATION_TIME))}",
             *extra]
    start, end = p.time("Start"), p.time("End")
    if p.flag("AllDay") and start is not None and end is not None:
        lines += [f"DTSTART;VALUE=DATE:{start:%Y%m%d}", f"DTEND;VALUE=DATE:{end:%Y%m%d}"]
    else:
        lines += [f"DTSTART:{stamp(start)}"] if start else []
        lines += [f"DTEND:{stamp(end)}"] if end else []
    if item_title(p):
        lines.append(f"SUMMARY:{escape(item_title(p))}")
    if p.text("Location"):
        lines.append(f"LOCATION:{escape(p.text('Location'))}")
    if p.text(PR_BODY):
        lines.append(f"DESCRIPTION:{escape(p.text(PR_BODY))}")
    return lines + _details(p)


def _details(p: Props) -> list[str]:
    """Times of the item itself and its categories."""
    out = [f"{name}:{stamp(p.time(pid))}" for name, pid in (
        ("CREATED", PR_CREATION_TIME), ("LAST-MODIFIED", PR_LAST_MODIFICATION_TIME))
        if p.time(pid)]
    if p.strings("Keywords"):
        out.append(f"CATEGORIES:{','.join(escape(k) for k in p.strings('Keywords'))}")
    return out


def _alarm(p: Props) -> list[str]:
    """The reminder; a component, so it comes after all properties (RFC 5545 3.6.1)."""
    delta = p.integer("ReminderDelta")
    if not p.flag("ReminderSet") or delta is None:
        return []
    return ["BEGIN:VALARM", "ACTION:DISPLAY", "DESCRIPTION:Reminder", f"TRIGGER:-PT{delta}M",
            "END:VALARM"]


def event_ics(props: Props, uid: str, method: str = "",
              exceptions: tuple[Props, ...] = ()) -> str:
    """IPM.Appointment (and meeting items) -> VCALENDAR with the series and its exceptions."""
    series = [*_vevent(props, uid, []), *_recurrence(props), *_alarm(props), "END:VEVENT"]
    changed: list[str] = []
    for exc in exceptions:
        original = exc.time("ExceptionReplaceTime")
        if original is not None:  # what the exception leaves out, it inherits from the series
            merged = Props({**props.values, **exc.values})
            recurrence_id = [f"RECURRENCE-ID:{stamp(original)}"]
            changed += [*_vevent(merged, uid, recurrence_id), *_alarm(merged), "END:VEVENT"]
    return calendar(series + changed, method)


def _recurrence(p: Props) -> list[str]:
    blob, start = p.binary("AppointmentRecur"), p.time("Start")
    if not p.flag("Recurring") or blob is None or start is None:
        return []
    try:
        rec = parse_recurrence(blob)
    except RecurrenceError as e:
        return ["X-PSTKIT-RECURRING:TRUE", f"X-PSTKIT-NOTE:{escape(str(e))}"]
    return [f"RRULE:{rec.rrule}", *(f"EXDATE:{stamp(d)}" for d in exdates(rec, start))]


def task_ics(props: Props, uid: str) -> str:
    """IPM.Task -> VTODO."""
    p = props
    lines = ["BEGIN:VTODO", f"UID:{escape(uid)}", f"DTSTAMP:{stamp(p.time(PR_CREATION_TIME))}",
             f"SUMMARY:{escape(item_title(p))}"]
    for name, key in (("DTSTART", "TaskStart"), ("DUE", "TaskDue"),
                      ("COMPLETED", "TaskCompleted")):
        if p.time(key):
            lines.append(f"{name}:{stamp(p.time(key))}")
    status = {0: "NEEDS-ACTION", 1: "IN-PROCESS", 2: "COMPLETED", 4: "CANCELLED"}
    st = p.integer("TaskStatus")
    if st in status:
        lines.append(f"STATUS:{status[st]}")
    pct = p.get("PercentComplete")
    if isinstance(pct, float):
        lines.append(f"PERCENT-COMPLETE:{round(pct * 100)}")
    if p.text(PR_BODY):
        lines.append(f"DESCRIPTION:{escape(p.text(PR_BODY))}")
    return calendar([*lines, *_details(p), *_alarm(p), "END:VTODO"])
