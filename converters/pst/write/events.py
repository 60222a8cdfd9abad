"""iCalendar -> the MAPI properties of Outlook appointments and tasks. Pure.

The inverse of `pst.ical`. A VEVENT becomes an IPM.Appointment ([MS-OXOCAL]): start and
end (PidLidAppointmentStartWhole/EndWhole 2.2.1.5/2.2.1.6, PidTagStartDate/EndDate,
PidLidCommonStart/End), duration, all-day (PidLidAppointmentSubType 2.2.1.9), location,
busy status (2.2.1.2), reminder (PidLidReminderSet/Delta), organizer and attendees as
recipients (2.2.4.10). A series also gets PidLidRecurring, PidLidAppointmentRecur
(`recur.recurrence_blob`), PidLidRecurrenceType and clip start/end (2.2.1.13-15), and its
zone: PidLidTimeZoneStruct, PidLidTimeZoneDescription (2.2.1.39-40),
PidLidAppointmentTimeZoneDefinitionRecur / StartDisplay / EndDisplay (2.2.1.41-43).
Occurrences with their own VEVENT (RECURRENCE-ID) become ExceptionInfo in the blob and
exception items (2.2.10) built by the caller from `Event.changed`. VTODOs: `tasks`.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

from pstkit.converters.pim.content import Line, lines, parse_rrule
from pstkit.converters.pim.ical_tz import zones_in
from pstkit.converters.pim.tzinfo_zone import LAST_YEAR, iana_zone, rough_note
from pstkit.converters.pim.tzrules import Zone, ZoneError
from pstkit.converters.pim.tzwindows import description, windows_key
from pstkit.converters.pst.named import BUSY_STATUS
from pstkit.converters.pst.props import PS_PSTKIT

from .attendees import meeting_state, parties, unsendable_recipients
from .mapi import Prop, boolean, long, systime, unicode
from .recur import (
    Changed,
    RecurrenceError,
    recurrence_blob,
    series_end,
    tzdefinition,
    tzstruct,
)

PSETID_APPOINTMENT = "00062002-0000-0000-c000-000000000046"
PSETID_COMMON = "00062008-0000-0000-c000-000000000046"
Ids = Callable[[tuple[str, str | int]], int]
NEVER = datetime(4500, 8, 31, 23, 59)  # clip end of a series without end (local)
_RECUR_TYPE = {"DAILY": 1, "WEEKLY": 2, "MONTHLY": 3, "YEARLY": 4}


@dataclass
class Component:
    name: str
    lines: list[Line] = field(default_factory=list)
    children: list[Component] = field(default_factory=list)

    def first(self, name: str) -> Line | None:
        return next((x for x in self.lines if x.name == name), None)

    def text(self, name: str) -> str:
        line = self.first(name)
        return line.text() if line is not None else ""


def components(text: str) -> list[Component]:
    """The top-level components inside a VCALENDAR (VEVENT, VTODO, VTIMEZONE...)."""
    stack = [Component("")]
    for line in lines(text):
        if line.name == "BEGIN":
            child = Component(line.value.strip().upper())
            stack[-1].children.append(child)
            stack.append(child)
        elif line.name == "END" and len(stack) > 1:
            stack.pop()
        else:
            stack[-1].lines.append(line)
    roots = stack[0].children
    return [c for r in roots for c in (r.children if r.name == "VCALENDAR" else [r])]


@dataclass(frozen=True)
class When:
    utc: datetime
    local: datetime  # naive, in `zone` (UTC when None)
    all_day: bool
    zone: Zone | None


def moment(line: Line, zones: dict[str, Zone]) -> When:
    """A DTSTART/DTEND/RECURRENCE-ID/EXDATE value (its first, for lists); ValueError with
    the line's name when it is no date or time."""
    try:
        return _moment(line, zones)
    except ValueError as e:
        raise ValueError(f"{line.name} is not a date or time ({line.value[:40]!r})") from e


def _moment(line: Line, zones: dict[str, Zone]) -> When:
    value = line.value.split(",")[0].strip()
    if line.param("VALUE").upper() == "DATE" or len(value) == 8:
        day = datetime.strptime(value[:8], "%Y%m%d")
        zone = zones.get(line.param("TZID"))
        return When(zone.to_utc(day) if zone else day.replace(tzinfo=UTC), day, True, zone)
    naive = datetime.strptime(value[:15], "%Y%m%dT%H%M%S")
    if value.endswith("Z"):
        return When(naive.replace(tzinfo=UTC), naive, False, None)
    tzid = line.param("TZID")
    if tzid in zones:
        return When(zones[tzid].to_utc(naive), naive, False, zones[tzid])
    try:
        aware = naive.replace(tzinfo=zoneinfo.ZoneInfo(tzid)) if tzid else None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        aware = None
    utc = aware.astimezone(UTC) if aware else naive.replace(tzinfo=UTC)
    return When(utc, utc.replace(tzinfo=None), False, None)


def _duration(text: str) -> timedelta:
    """An RFC 5545 DURATION (P1DT2H, PT30M, P1W...)."""
    total, number, sign = timedelta(), "", -1 if text.startswith("-") else 1
    units = {"W": timedelta(weeks=1), "D": timedelta(days=1), "H": timedelta(hours=1),
             "M": timedelta(minutes=1), "S": timedelta(seconds=1)}
    for ch in text.lstrip("+-").upper():
        if ch.isdigit():
            number += ch
        elif ch in units and number:
            total += int(number) * units[ch]
            number = ""
    return sign * total


@dataclass(frozen=True)
class Event:
    props: list[Prop]
    recipients: list[list[Prop]]
    changed: list[tuple[Component, Changed, When]]  # exception VEVENTs, for exception items
    notes: list[str]


def named_prop(ids: Ids, guid: str, lid: int | str, value: Prop) -> Prop:
    return ids((guid, lid)), value[1], value[2]


def times(c: Component, zones: dict[str, Zone]) -> tuple[When, When] | None:
    start = c.first("DTSTART")
    if start is None:
        return None
    begin = moment(start, zones)
    end_line, dur = c.first("DTEND"), c.first("DURATION")
    if end_line is not None:
        return begin, moment(end_line, zones)
    step = _duration(dur.value) if dur else timedelta(days=1 if begin.all_day else 0)
    return begin, When(begin.utc + step, begin.local + step, begin.all_day, begin.zone)


def when_props(ids: Ids, begin: When, end: When) -> list[Prop]:
    a = PSETID_APPOINTMENT
    minutes = int((end.utc - begin.utc) // timedelta(minutes=1))
    return [named_prop(ids, a, 0x820D, systime(0, begin.utc)), named_prop(ids, a, 0x820E,
            systime(0, end.utc)), systime(0x0060, begin.utc), systime(0x0061, end.utc),
            named_prop(ids, PSETID_COMMON, 0x8516, systime(0, begin.utc)),
            named_prop(ids, PSETID_COMMON, 0x8517, systime(0, end.utc)),
            named_prop(ids, a, 0x8213, long(0, minutes)),
            named_prop(ids, a, 0x8215, boolean(0, begin.all_day))]  # fmt: skip


def alarm(c: Component, ids: Ids, start: datetime | None) -> list[Prop]:
    """PidLidReminderSet/Delta/Time/SignalTime ([MS-OXORMDR] 2.2.1) from a VALARM."""
    trigger = next((a.first("TRIGGER") for a in c.children if a.name == "VALARM"), None)
    if trigger is None or trigger.value.strip().lstrip("-").upper()[:1] != "P":
        return []
    delta = max(0, int(-_duration(trigger.value.strip()) // timedelta(minutes=1)))
    out = [named_prop(ids, PSETID_COMMON, 0x8503, boolean(0, True)),
           named_prop(ids, PSETID_COMMON, 0x8501, long(0, delta))]
    if start is not None:
        signal = start - timedelta(minutes=delta)
        out += [named_prop(ids, PSETID_COMMON, 0x8502, systime(0, start)),
                named_prop(ids, PSETID_COMMON, 0x8560, systime(0, signal))]
    return out


def common(c: Component) -> list[Prop]:
    """Subject, body and the item's own times."""
    out = [unicode(0x0037, c.text("SUMMARY")), unicode(0x0E1D, c.text("SUMMARY"))]
    if c.first("DESCRIPTION") is not None:
        out.append(unicode(0x1000, c.text("DESCRIPTION")))
    for pid, names in ((0x3007, ("CREATED", "DTSTAMP")), (0x3008, ("LAST-MODIFIED",))):
        line = next((c.first(n) for n in names if c.first(n) is not None), None)
        if line is not None:
            try:
                out.append(systime(pid, moment(line, {}).utc))
            except ValueError:
                continue
    return out


def event(c: Component, zones: dict[str, Zone], exceptions: Sequence[Component],
          ids: Ids) -> Event:
    """A VEVENT (and its RECURRENCE-ID VEVENTs) -> an appointment's properties."""
    a, notes = PSETID_APPOINTMENT, list[str]()
    props = [unicode(0x001A, "IPM.Appointment"), *common(c)]
    span = times(c, zones)
    if c.first("LOCATION") is not None:
        props.append(named_prop(ids, a, 0x8208, unicode(0, c.text("LOCATION"))))
    props.append(named_prop(ids, a, 0x8205, long(0, busy_status(c, "X-MICROSOFT-CDO-BUSYSTATUS"))))
    recipients = parties(c)
    props += meeting_state(c, ids, bool(recipients)) + unsendable_recipients(c, ids)
    changed: list[tuple[Component, Changed, When]] = []
    if span is not None:
        begin, end = span
        props += when_props(ids, begin, end) + alarm(c, ids, begin.utc)
        zone = begin.zone
        if zone is not None:
            props += _zone_props(ids, zone, begin.local.year, c.first("RRULE") is not None)
        if c.first("RRULE") is not None:
            series, changed, why = _series(c, begin, end, zones, exceptions, ids)
            props += series
            notes += why
        else:
            notes += rough_note(zone, begin.local.year, end.local.year) if zone else []
            notes += [f"{len(exceptions)} changed occurrence(s) of an event without RRULE "
                      "left out"] if exceptions else []
        notes += extra_dates(c) + unknown_zone(c, zones)
    else:
        props += alarm(c, ids, None)
    return Event(props, recipients, changed, notes)


BUSY = BUSY_STATUS  # Outlook's busy status values, shared with the reader (pst.named)


def busy_status(c: Component, *names: str) -> int:
    """The first of the `names` properties the event has, as a busy status; when none
    is set or its value is unknown: free for a transparent event (TRANSP), else busy."""
    value = next((v for v in (c.text(n).upper() for n in names) if v), "")
    return BUSY.get(value, 0 if c.text("TRANSP").upper() == "TRANSPARENT" else 2)


def extra_dates(c: Component) -> list[str]:
    """What an Outlook recurrence cannot hold, said rather than dropped: RDATE (extra
    dates) and EXRULE (an exclusion rule). [MS-OXOCAL] 2.2.1.44.1 RecurrencePattern has a
    pattern, an end and deleted/modified instances only; an EXDATE is a deleted instance
    (DeletedInstanceDates) and is kept."""
    rdates = sum(len(x.text().split(",")) for x in c.lines if x.name == "RDATE")
    exrules = sum(1 for x in c.lines if x.name == "EXRULE")
    out = []
    if rdates:
        out.append(f"{rdates} extra date(s) (RDATE) not kept: an Outlook recurrence has "
                   "no extra dates")
    if exrules:
        out.append(f"{exrules} exclusion rule(s) (EXRULE) not kept")
    return out


def _zone_props(ids: Ids, zone: Zone, year: int, recurring: bool) -> list[Prop]:
    """The zone as Outlook keeps it; its key names are Windows' (recur.tzdefinition), so
    the TZID it had, when that differs, goes along as pstkit's Tzid for the reader. The
    description is display text in Windows' style (tzwindows.description); the reader
    names the zone by the definition's key or that Tzid, never by this text."""
    a = PSETID_APPOINTMENT
    start = tzdefinition(zone, year, recurring=False, only_current=True)
    out = [named_prop(ids, a, 0x825E, (0, 0x0102, start)),  # as Outlook: the rule in force
           named_prop(ids, a, 0x825F, (0, 0x0102, tzdefinition(zone, year, recurring=False)))]
    if windows_key(zone.tzid) != zone.tzid:
        out.append(named_prop(ids, PS_PSTKIT, "Tzid", unicode(0, zone.tzid)))
    if recurring:
        out += [named_prop(ids, a, 0x8260, (0, 0x0102, tzdefinition(zone, year))),
                named_prop(ids, a, 0x8233, (0, 0x0102, tzstruct(zone, year))),
                named_prop(ids, a, 0x8234,
                           unicode(0, description(zone.tzid, zone.rule(year).standard)))]
    return out


def _series(c: Component, begin: When, end: When, zones: dict[str, Zone],
            exceptions: Sequence[Component], ids: Ids
            ) -> tuple[list[Prop], list[tuple[Component, Changed, When]], list[str]]:
    """The recurrence properties, the changed occurrences and what could not be kept."""
    a, rrule = PSETID_APPOINTMENT, c.text("RRULE")
    gone = [_local_date(moment(x, zones), begin) for x in each_value(c, "EXDATE")]
    changed = [_changed(c, x, begin, zones) for x in exceptions]
    kept = [(x, ch, w) for x, ch_w in zip(exceptions, changed, strict=True) if ch_w
            for ch, w in [ch_w]]
    notes = [f"{len(changed) - len(kept)} changed occurrence(s) without readable times "
             "left out"] if len(kept) < len(changed) else []
    until = until_local(parse_rrule(rrule).get("UNTIL", ""), begin)
    try:
        blob = recurrence_blob(rrule, begin.local, end.local, gone, [ch for _x, ch, _w in kept],
                               until)
    except RecurrenceError as e:
        return [], [], [f"recurrence not kept ({e}): only the first occurrence is written"]
    kind = _RECUR_TYPE.get(rrule.upper().split("FREQ=")[-1].split(";")[0], 0)
    last = series_end(rrule, begin.local, until)
    if begin.zone is not None:
        notes += rough_note(begin.zone, begin.local.year, LAST_YEAR if last is None else last.year)
    # PidLidClipStart/ClipEnd (2.2.1.14-15): local midnight of the first and last dates,
    # 4500-08-31 23:59 local without end; in UTC, as Outlook writes them
    clip_start = zone_utc(begin, datetime.combine(begin.local.date(), datetime.min.time()))
    clip_end = zone_utc(begin, NEVER if last is None else datetime.combine(
        last, datetime.min.time()))
    props = [named_prop(ids, a, 0x8223, boolean(0, True)), named_prop(ids, a, 0x8216,
             (0, 0x0102, blob)), named_prop(ids, a, 0x8231, long(0, kind)),
             named_prop(ids, a, 0x8235, systime(0, clip_start)),
             named_prop(ids, a, 0x8236, systime(0, clip_end))]  # fmt: skip
    return props, kept, notes


def until_local(value: str, series: When) -> datetime | None:
    """An RRULE's UNTIL as local time of the series (RFC 5545 3.3.10): a UTC time put into
    the series' zone, a date the end of that day, a floating time as it is; None when
    there is none or it is unreadable (`recur` then says why)."""
    value = value.strip()
    try:
        if len(value) == 8:
            return datetime.combine(datetime.strptime(value, "%Y%m%d").date(),
                                    datetime.max.time().replace(microsecond=0))
        naive = datetime.strptime(value[:15], "%Y%m%dT%H%M%S")
    except ValueError:
        return None
    if value.upper().endswith("Z") and series.zone is not None:
        return series.zone.to_local(naive.replace(tzinfo=UTC))
    return naive  # without a zone, the series' local times are UTC (`moment`)


def each_value(c: Component, name: str) -> list[Line]:
    """The `name` lines, one per value: EXDATE (and RDATE) may list several dates on one
    line (RFC 5545 3.8.5.1), each a deleted occurrence ([MS-OXOCAL] 2.2.1.44.1
    DeletedInstanceDates)."""
    return [replace(x, value=v) for x in c.lines if x.name == name
            for v in x.value.split(",") if v.strip()]


def zone_utc(series: When, local: datetime) -> datetime:
    return series.zone.to_utc(local) if series.zone is not None else local.replace(tzinfo=UTC)


def _local_date(w: When, series: When) -> date:
    if series.zone is not None and w.zone is None:
        return series.zone.to_local(w.utc).date()
    return w.local.date()


def _changed(series: Component, x: Component, begin: When, zones: dict[str, Zone]
             ) -> tuple[Changed, When] | None:
    """A RECURRENCE-ID VEVENT: its times in the series' zone, and what it overrides
    (subject, location, body: only where it differs from the series)."""
    rid = x.first("RECURRENCE-ID")
    span = times(x, zones)
    if rid is None or span is None:
        return None
    try:
        original = moment(rid, zones)
    except ValueError:
        return None
    def local(w: When) -> datetime:
        if w.all_day or w.zone is not None or begin.zone is None:
            return w.local if w.all_day or w.zone is not None else w.utc.replace(tzinfo=None)
        return begin.zone.to_local(w.utc)

    def own(name: str) -> str | None:
        differs = x.first(name) is not None and x.text(name) != series.text(name)
        return x.text(name) if differs else None

    return Changed(local(original), local(span[0]), local(span[1]), own("SUMMARY"),
                   own("LOCATION"), own("DESCRIPTION") is not None), original


def calendar_zones(text: str) -> dict[str, Zone]:
    """The calendar's VTIMEZONEs, plus a zone for each TZID that names an IANA zone
    without a VTIMEZONE (rules read off zoneinfo, `pim.tzinfo_zone`; RFC 5545 3.2.19
    leaves such "globally unique" ids to the receiver), so a series keeps its DST
    shifts ([MS-OXOCAL] 2.2.1.39/2.2.1.41)."""
    try:
        zones = zones_in(text)
    except ZoneError:
        zones = {}
    for tzid in set(_TZID.findall(text)) - set(zones):
        known = iana_zone(tzid.strip('"'))
        if known is not None:
            zones[tzid.strip('"')] = known
    return zones


_TZID = re.compile(r';TZID=("[^"]*"|[^;:]*)', re.IGNORECASE)


def unknown_zone(c: Component, zones: dict[str, Zone]) -> list[str]:
    """A note for a DTSTART whose TZID is neither a VTIMEZONE nor an IANA zone: its
    times are read as UTC, said rather than done silently."""
    line = c.first("DTSTART")
    tzid = line.param("TZID") if line is not None else ""
    if tzid in zones and "/" in tzid and windows_key(zones[tzid].tzid) == zones[tzid].tzid:
        return [f"time zone {tzid!r} has no Windows name (CLDR windowsZones): Outlook "
                "shows it as it is"]  # (the rules are written all the same)
    if not tzid or tzid in zones:
        return []
    return [f"time zone {tzid!r} unknown (no VTIMEZONE, not an IANA zone): times "
            "read as UTC, DST shifts of a series not kept"]
