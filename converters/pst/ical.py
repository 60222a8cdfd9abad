"""Outlook calendar items -> iCalendar (RFC 5545), and the text helpers vCard shares. Pure.

Recurring appointments carry their rule in PidLidAppointmentRecur
(MS-OXOCAL 2.2.1.44): the series becomes an RRULE, deleted occurrences
EXDATEs, and changed occurrences (exception items, attached to the series as
embedded messages) extra VEVENTs with the series' UID and a RECURRENCE-ID.

A recurring series is written in its own time zone when the item carries a
readable one (`pst_tz`): a VTIMEZONE, and every time of the series and its
exceptions as `;TZID=…` local time, so that occurrences keep their wall-clock
time across daylight-saving changes. Other events are written in UTC.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from pstkit.converters.pim.content import escape
from pstkit.converters.pim.ical_tz import local_stamp, utc_stamp, vtimezone
from pstkit.converters.pim.tzrules import DAYS, Zone, ZoneError, clean_tzid
from pstkit.converters.pst.attendees import party_lines
from pstkit.converters.pst.meeting_ics import MeetingView, meeting_view
from pstkit.converters.pst.named import BUSY_STATUS
from pstkit.converters.pst.props import (
    PR_BODY,
    PR_CREATION_TIME,
    PR_DISPLAY_NAME,
    PR_LAST_MODIFICATION_TIME,
    PR_MESSAGE_CLASS,
    PR_SUBJECT,
    Props,
    strip_subject_prefix,
)
from pstkit.converters.pst.tz import parse_tzdefinition, parse_tzstruct

_FREQ = {0x200A: "DAILY", 0x200B: "WEEKLY", 0x200C: "MONTHLY", 0x200D: "YEARLY"}
_END_AFTER_DATE, _END_AFTER_COUNT = 0x2021, 0x2022
_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
_NEVER = 0x5AE980DF  # EndDate of a series without end (4500-08-31)


# --- content lines (shared with vCard) --------------------------------------


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
    return utc_stamp(dt or datetime(1970, 1, 1, tzinfo=UTC))


def item_title(props: Props) -> str:
    return strip_subject_prefix(props.text(PR_SUBJECT)) or props.text(PR_DISPLAY_NAME)


# --- recurrence ------------------------------------------------------------


@dataclass(frozen=True)
class Recurrence:
    rrule: str  # the RRULE value, e.g. "FREQ=WEEKLY;INTERVAL=1;BYDAY=TU;WKST=SU"
    deleted: tuple[datetime, ...]  # local midnight of each deleted or changed occurrence
    modified: tuple[datetime, ...]  # local midnight of each changed occurrence (in `deleted`)
    start_offset: int  # minutes after local midnight at which occurrences start
    #: local midnight of EndDate when the series ends by a date (EndType 0x2021): the
    #: date of its last occurrence ([MS-OXOCAL] 2.2.1.44.1); `rrule` then has the count
    #: Outlook computed, `event_ics` writes UNTIL instead
    until: datetime | None = None
    #: local midnight of each changed occurrence's *original* start (ExceptionInfo's
    #: OriginalStartDate, 2.2.1.44.2); None when the exceptions could not be read
    originals: tuple[datetime, ...] | None = None

    def gone(self) -> list[datetime]:
        """The deleted occurrences that are not changed ones: DeletedInstanceDates holds
        both (by original date), ModifiedInstanceDates the changed ones' new dates, which
        differ from the original when an occurrence moved to another day."""
        changed = set(self.modified if self.originals is None else self.originals)
        return [d for d in self.deleted if d not in changed]


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
    pos += 4 + 4 * n_modified  # changed dates
    start_date, end_date = struct.unpack_from("<II", blob, pos)
    pos += 8
    start_offset = struct.unpack_from("<I", blob, pos + 8)[0] if len(blob) >= pos + 12 else 0
    originals = _originals(blob, pos + 16)
    if originals is not None and not set(originals) <= set(_dates(deleted)):
        originals = None  # misread (each changed occurrence is also a deleted one)
    parts = [f"FREQ={_FREQ[freq]}", f"INTERVAL={_interval(freq, period)}", *_by(ptype, spec)]
    if freq == 0x200D:  # yearly: in the start's month (without BYMONTH, RFC 5545 would
        # take BYMONTHDAY/BYDAY in every month of the year)
        parts.insert(2, f"BYMONTH={_dates((start_date,))[0].month}")
    if end_type in (_END_AFTER_DATE, _END_AFTER_COUNT) and count:
        parts.append(f"COUNT={count}")  # Outlook computes the count for end-by-date too
    parts.append(f"WKST={DAYS[first_dow % 7]}")
    until = _dates((end_date,))[0] if end_type == _END_AFTER_DATE and end_date < _NEVER else None
    return Recurrence(";".join(parts), _dates(deleted), _dates(modified), start_offset, until,
                      originals)


#: ExceptionInfo's optional fields by override flag, in order: their fixed sizes, or -1
#: for a string (two lengths, then the 8-bit text) ([MS-OXOCAL] 2.2.1.44.2)
_ARO_FIELDS = ((0x0001, -1), (0x0002, 4), (0x0004, 4), (0x0008, 4), (0x0010, -1),
               (0x0020, 4), (0x0040, 4), (0x0080, 4), (0x0100, 4))


def _originals(blob: bytes, pos: int) -> tuple[datetime, ...] | None:
    """The local midnights of the changed occurrences' original starts, read from the
    ExceptionInfo list that follows the start and end offsets; None if it is cut short."""
    try:
        (count,) = struct.unpack_from("<H", blob, pos)
        pos += 2
        found = []
        for _ in range(count):
            _start, _end, original, flags = struct.unpack_from("<IIIH", blob, pos)
            pos += 14
            for flag, size in _ARO_FIELDS:
                if flags & flag:
                    pos += 4 + struct.unpack_from("<H", blob, pos + 2)[0] if size < 0 else size
            found.append(original - original % 1440)
    except struct.error:
        return None
    return _dates(tuple(found))


def rrule_until(rec: Recurrence, until: str) -> str:
    """The RRULE with UNTIL=`until` in place of the count (RFC 5545 3.3.10: before WKST,
    as pstkit writes its parts; COUNT and UNTIL never together)."""
    parts = [x for x in rec.rrule.split(";") if not x.startswith("COUNT=")]
    at = next((i for i, x in enumerate(parts) if x.startswith("WKST=")), len(parts))
    return ";".join([*parts[:at], f"UNTIL={until}", *parts[at:]])


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
    return ",".join(day for i, day in enumerate(DAYS) if mask & (1 << i)) or "MO"


def exdates(rec: Recurrence, start_utc: datetime) -> tuple[datetime, ...]:
    """Deleted (not changed) occurrences in UTC, with the series start's UTC offset (DST
    not applied). Changed ones are overridden by RECURRENCE-ID events instead."""
    return tuple(_fixed_utc(rec, start_utc, d) for d in rec.gone())


def _fixed_utc(rec: Recurrence, start_utc: datetime, day: datetime) -> datetime:
    """The UTC start of the occurrence on local `day`, with the series start's offset."""
    offset = timedelta(minutes=rec.start_offset)
    naive = start_utc.astimezone(UTC).replace(tzinfo=None)
    shift = datetime.combine(naive.date(), datetime.min.time()) + offset - naive
    shift -= timedelta(days=round(shift / timedelta(days=1)))  # local - UTC, within ±12 h
    return (day + offset - shift).replace(tzinfo=UTC)


# --- components ------------------------------------------------------------


def calendar(components: list[str], method: str = "") -> str:
    head = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//pstkit//PST export//EN"]
    return content([*head, *([f"METHOD:{method}"] if method else []), *components,
                    "END:VCALENDAR"])


def _when(name: str, dt: datetime, zone: Zone | None, all_day: bool = False) -> str:
    """`name` with the time `dt` (aware): UTC, or local time in `zone`."""
    if zone is None:
        return f"{name};VALUE=DATE:{dt:%Y%m%d}" if all_day else f"{name}:{stamp(dt)}"
    local = zone.to_local(dt)
    if all_day:
        return f"{name};VALUE=DATE:{local:%Y%m%d}"
    return f"{name};TZID={zone.tzid}:{local_stamp(local)}"


def _vevent(p: Props, uid: str, extra: list[str], zone: Zone | None = None,
            made: datetime | None = None) -> list[str]:
    made = made or p.time(PR_CREATION_TIME)
    lines = ["BEGIN:VEVENT", f"UID:{escape(uid)}", f"DTSTAMP:{stamp(made)}", *extra]
    start, end = p.time("Start"), p.time("End")
    all_day = p.flag("AllDay") and start is not None and end is not None
    lines += [_when("DTSTART", start, zone, all_day)] if start else []
    lines += [_when("DTEND", end, zone, all_day)] if end else []
    if item_title(p):
        lines.append(f"SUMMARY:{escape(item_title(p))}")
    if p.text("Location"):
        lines.append(f"LOCATION:{escape(p.text('Location'))}")
    if p.text(PR_BODY):
        lines.append(f"DESCRIPTION:{escape(p.text(PR_BODY))}")
    return lines + busy_lines(p) + _details(p)


_BUSY_NAMES = {v: k for k, v in BUSY_STATUS.items()}


def busy_lines(p: Props) -> list[str]:
    """PidLidBusyStatus as TRANSP and X-MICROSOFT-CDO-BUSYSTATUS ([MS-OXCICAL]
    2.1.3.1.1.20.25: free and working elsewhere are TRANSPARENT, the rest OPAQUE;
    2.1.3.1.1.20.31), and a meeting request's PidLidIntendedBusyStatus as
    X-MICROSOFT-CDO-INTENDEDSTATUS (2.1.3.1.1.20.34). Nothing for an item without them."""
    out = []
    status = p.integer("BusyStatus")
    busy = _BUSY_NAMES.get(-1 if status is None else status)
    if busy is not None:
        transp = "TRANSPARENT" if busy in ("FREE", "WORKINGELSEWHERE") else "OPAQUE"
        out += [f"TRANSP:{transp}", f"X-MICROSOFT-CDO-BUSYSTATUS:{busy}"]
    intended = p.integer("IntendedBusyStatus")
    if intended in _BUSY_NAMES and p.text(PR_MESSAGE_CLASS).lower().startswith(
            "ipm.schedule.meeting.request"):
        out.append(f"X-MICROSOFT-CDO-INTENDEDSTATUS:{_BUSY_NAMES[intended]}")
    return out


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
              exceptions: tuple[Props, ...] = (), parties: tuple[Props, ...] = ()) -> str:
    """IPM.Appointment (and meeting items) -> VCALENDAR with the series and its exceptions;
    `parties` are the item's recipients (organizer, attendees: `attendees.party_lines`)."""
    rec = _readable_recurrence(props)
    zone, note = _series_zone(props) if isinstance(rec, Recurrence) else (None, [])
    view = meeting_view(props, method) or MeetingView(props)
    series = [*_vevent(view.props, view.uid or uid, view.lines, zone, view.stamp),
              *_recurrence(props, rec, zone), *note, *party_lines(props, parties),
              *_alarm(props), "END:VEVENT"]  # fmt: skip
    changed: list[str] = []
    all_day = props.flag("AllDay")
    for exc in exceptions:
        original = exc.time("ExceptionReplaceTime")
        if original is not None:  # what the exception leaves out, it inherits from the series
            merged = Props({**props.values, **exc.values})
            # (without a zone, all-day exceptions keep the UTC RECURRENCE-ID of old)
            recurrence_id = [_when("RECURRENCE-ID", original, zone, all_day and zone is not None)]
            changed += [*_vevent(merged, view.uid or uid, recurrence_id, zone), *_alarm(merged),
                        "END:VEVENT"]  # fmt: skip
    return calendar([*view.head, *(vtimezone(zone) if zone else []), *series, *changed], method)


def _readable_recurrence(p: Props) -> Recurrence | str | None:
    """The series' recurrence, the reason it is unreadable, or None if not recurring."""
    blob, start = p.binary("AppointmentRecur"), p.time("Start")
    if not p.flag("Recurring") or blob is None or start is None:
        return None
    try:
        return parse_recurrence(blob)
    except RecurrenceError as e:
        return str(e)


def _series_zone(p: Props) -> tuple[Zone | None, list[str]]:
    """The zone a recurring series is written in (None: UTC), and a note if its blob
    could not be read. Recur is the zone Outlook expands the series in; the older
    TimeZoneStruct has the same rule without a name, so it borrows the description."""
    start, name = p.time("Start"), clean_tzid(p.text("TimeZoneDescription"))
    recur, struct_blob = p.binary("TzDefRecur"), p.binary("TimeZoneStruct")
    if start is None or (recur is None and (struct_blob is None or not name)):
        return None, []
    try:
        zone = (parse_tzdefinition(recur, name) if recur is not None
                else parse_tzstruct(struct_blob or b"", name))  # fmt: skip
    except ZoneError as e:
        return None, [f"X-PSTKIT-NOTE:{escape(f'time zone unreadable ({e}): times in UTC')}"]
    # an item pstkit wrote keeps the TZID it came with (Europe/Berlin, not the
    # W. Europe Standard Time Outlook looks up)
    tzid = clean_tzid(p.text("PstkitTzid") or zone.tzid)
    return (replace(zone, tzid=tzid) if tzid else None), []


def _recurrence(p: Props, rec: Recurrence | str | None, zone: Zone | None) -> list[str]:
    start = p.time("Start")
    if rec is None or start is None:
        return []
    if isinstance(rec, str):
        return ["X-PSTKIT-RECURRING:TRUE", f"X-PSTKIT-NOTE:{escape(rec)}"]
    rule = f"RRULE:{_rule(p, rec, zone, start)}"
    if zone is None:
        return [rule, *(f"EXDATE:{stamp(d)}" for d in exdates(rec, start))]
    # Deleted occurrences are local dates; each began at the series' local start time.
    gone = rec.gone()
    if p.flag("AllDay"):
        return [rule, *(f"EXDATE;VALUE=DATE:{d:%Y%m%d}" for d in gone)]
    moments = (_at_start(d, zone.to_local(start)) for d in gone)
    return [rule, *(f"EXDATE;TZID={zone.tzid}:{local_stamp(m)}" for m in moments)]


def _at_start(day: datetime, start: datetime) -> datetime:
    return day.replace(hour=start.hour, minute=start.minute, second=start.second)


def _rule(p: Props, rec: Recurrence, zone: Zone | None, start: datetime) -> str:
    """The RRULE; a series that ends by a date gets UNTIL = the start of its last
    occurrence, in UTC as RFC 5545 3.3.10 asks when DTSTART has a TZID (or is UTC), a
    date when DTSTART is one."""
    first = zone.to_local(start) if zone is not None else start.replace(tzinfo=None)
    if rec.until is None or rec.until.date() < first.date():
        return rec.rrule  # no end date, or one before the series (Outlook's count stands)
    last = zone.to_utc(_at_start(rec.until, first)) if zone is not None else \
        _fixed_utc(rec, start, rec.until)
    if p.flag("AllDay") and p.time("End") is not None:  # the date DTSTART has: local, or UTC
        return rrule_until(rec, f"{rec.until if zone is not None else last:%Y%m%d}")
    return rrule_until(rec, stamp(last))


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
