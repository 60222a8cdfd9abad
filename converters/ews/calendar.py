"""Pure translation for the EWS sink: an iCalendar VEVENT -> the t:CalendarItem fields.

For imports from other systems Microsoft recommends Exchange item types over
MIME streams ("Exporting and importing items by using EWS in Exchange": an
iCalendar/vCard stream carries a limited property set and its conversion is
costly); its import guide ("Import items by using EWS in Exchange") says to set
the properties on a CalendarItem, and its CreateItem examples set Subject,
Body, Start, End, Location, Recurrence and the time zone as elements. gromox 3.10 refuses a
CalendarItem whose only content is iCalendar MimeContent ("missing required
child element 'Start'"). So the event's fields are read here and sent as
elements; the card is not sent.

Times go out in UTC. A time with a TZID is converted with the calendar's own
VTIMEZONE (the shape `pim.ical_tz` writes: Windows zone names, which zoneinfo
does not know) or else zoneinfo; the zone itself goes out as StartTimeZone /
EndTimeZone, so a series keeps its wall-clock time across daylight saving.
What CreateItem cannot carry is listed in `notes` and reported with the item:
deleted and changed occurrences (EXDATE, RECURRENCE-ID: made afterwards by
deleting/updating occurrences, which this sink does not do) and rules EWS has no
pattern for (the first occurrence is created).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pstkit.converters.ews.cards import unescape, unfold
from pstkit.converters.pim.ical_tz import zones_in
from pstkit.converters.pim.tzrules import Zone

DAY_NAMES = {"SU": "Sunday", "MO": "Monday", "TU": "Tuesday", "WE": "Wednesday",
             "TH": "Thursday", "FR": "Friday", "SA": "Saturday"}  # fmt: skip
WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")  # date.weekday() order
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")  # fmt: skip
INDEX = {1: "First", 2: "Second", 3: "Third", 4: "Fourth", -1: "Last", 5: "Last"}
FREE_BUSY = {"FREE": "Free", "TENTATIVE": "Tentative", "BUSY": "Busy", "OOF": "OOF",
             "WORKINGELSEWHERE": "WorkingElsewhere"}  # fmt: skip


class Unsupported(ValueError):
    """An RRULE that EWS has no recurrence pattern for."""


@dataclass(frozen=True)
class Line:
    name: str
    params: dict[str, str]
    value: str


@dataclass(frozen=True)
class Recurrence:
    """t:Recurrence: a pattern element and a range element, children in schema order."""

    pattern: str  # e.g. "WeeklyRecurrence"
    pattern_fields: tuple[tuple[str, str], ...]
    range: str  # "NoEndRecurrence", "EndDateRecurrence" or "NumberedRecurrence"
    range_fields: tuple[tuple[str, str], ...]  # StartDate first


@dataclass(frozen=True)
class CalendarFields:
    subject: str
    start: datetime  # aware UTC
    end: datetime
    all_day: bool = False
    body: str = ""
    location: str = ""
    free_busy: str = ""  # LegacyFreeBusyType, "" = unset
    reminder: int | None = None  # minutes before the start; None = no reminder
    recurrence: Recurrence | None = None
    zone: Zone | None = None  # for StartTimeZone/EndTimeZone; None = UTC
    notes: tuple[str, ...] = ()  # what is not carried


def content_lines(text: str) -> list[Line]:
    out = []
    for raw in unfold(text):
        head, _, value = raw.partition(":")
        name, *params = head.split(";")
        pairs = (p.partition("=") for p in params)
        out.append(Line(name.upper(), {k.upper(): v.strip('"') for k, _, v in pairs}, value))
    return out


def master_event(lines: list[Line]) -> list[Line] | None:
    """The lines of the first VEVENT without RECURRENCE-ID (nested VALARMs included)."""
    event: list[Line] | None = None
    depth = 0
    for line in lines:
        if line.name == "BEGIN" and line.value.upper() == "VEVENT" and event is None:
            event, depth = [], 1
        elif event is not None and line.name == "BEGIN":
            depth += 1
            event.append(line)
        elif event is not None and line.name == "END":
            depth -= 1
            if depth == 0:
                if not any(x.name == "RECURRENCE-ID" for x in event):
                    return event
                event = None
            else:
                event.append(line)
        elif event is not None:
            event.append(line)
    return None


def _zone_of(tzid: str, zones: dict[str, Zone]) -> Zone | ZoneInfo | None:
    if tzid in zones:
        return zones[tzid]
    try:
        return ZoneInfo(tzid)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _moment(line: Line, zones: dict[str, Zone], notes: list[str]) -> tuple[datetime, bool]:
    """(aware UTC moment, is a DATE) of a DTSTART/DTEND line."""
    raw = line.value.strip()
    if line.params.get("VALUE", "").upper() == "DATE" or len(raw) == 8:
        return datetime.strptime(raw[:8], "%Y%m%d").replace(tzinfo=UTC), True
    local = datetime.strptime(raw.rstrip("Zz")[:15], "%Y%m%dT%H%M%S")
    tzid = line.params.get("TZID", "")
    if raw.upper().endswith("Z") or not tzid:
        return local.replace(tzinfo=UTC), False  # floating times are taken as UTC
    zone = _zone_of(tzid, zones)
    if isinstance(zone, Zone):
        return zone.to_utc(local), False
    if zone is not None:
        return local.replace(tzinfo=zone).astimezone(UTC), False
    notes.append(f"time zone {tzid!r} unknown: its times taken as UTC")
    return local.replace(tzinfo=UTC), False


def duration(text: str) -> timedelta:
    """RFC 5545 dur-value, e.g. -PT15M, P1D, PT1H30M."""
    t = text.strip().upper()
    sign = -1 if t.startswith("-") else 1
    units = {"W": timedelta(weeks=1), "D": timedelta(days=1), "H": timedelta(hours=1),
             "M": timedelta(minutes=1), "S": timedelta(seconds=1)}  # fmt: skip
    total, num = timedelta(), ""
    for c in t.lstrip("+-").removeprefix("P"):
        if c.isdigit():
            num += c
        elif c in units and num:
            total, num = total + int(num) * units[c], ""
        elif c != "T":
            raise ValueError(text)
    return sign * total


def event_fields(text: str) -> CalendarFields | str:
    """The CalendarItem fields of an iCalendar object's master VEVENT, or why not."""
    lines = content_lines(text)
    event = master_event(lines)
    if event is None:
        return "the iCalendar object has no VEVENT"
    first: dict[str, Line] = {}
    for line in event:
        first.setdefault(line.name, line)
    if "DTSTART" not in first:
        return "the event has no start (DTSTART)"
    zones, notes = zones_in(text), list[str]()
    try:
        start, all_day = _moment(first["DTSTART"], zones, notes)
    except (ValueError, OverflowError):
        return f"the event's start (DTSTART:{first['DTSTART'].value}) is unreadable"
    end = _end(first, start, all_day, zones, notes)
    tzid = first["DTSTART"].params.get("TZID", "")
    zone = zones.get(tzid)
    if all_day and zone is not None:  # an all-day event starts at midnight in its zone
        start, end = (zone.to_utc(t.replace(tzinfo=None)) for t in (start, end))
    recurrence = None
    if "RRULE" in first:
        try:
            local_start = zone.to_local(start) if zone else _local(start, tzid)
            recurrence = rrule_recurrence(first["RRULE"].value, local_start.date())
        except (ValueError, OverflowError) as e:  # Unsupported, or a value beyond reading
            notes.append(f"recurrence not carried ({e}): the first occurrence only")
    notes += _not_carried(lines, event)
    return CalendarFields(
        subject=unescape(first["SUMMARY"].value) if "SUMMARY" in first else "",
        start=start, end=end, all_day=all_day,
        body=unescape(first["DESCRIPTION"].value) if "DESCRIPTION" in first else "",
        location=unescape(first["LOCATION"].value) if "LOCATION" in first else "",
        free_busy=_free_busy(first), reminder=_reminder(event), recurrence=recurrence,
        zone=zone, notes=tuple(notes),
    )  # fmt: skip


def _local(start: datetime, tzid: str) -> datetime:
    zone = _zone_of(tzid, {}) if tzid else None
    return start.astimezone(zone) if isinstance(zone, ZoneInfo) else start


def _end(
    first: dict[str, Line], start: datetime, all_day: bool, zones: dict[str, Zone],
    notes: list[str],
) -> datetime:  # fmt: skip
    for name in ("DTEND", "DURATION"):
        if name not in first:
            continue
        try:
            if name == "DTEND":
                return _moment(first["DTEND"], zones, notes)[0]
            return start + duration(first["DURATION"].value)
        except (ValueError, OverflowError):
            notes.append(f"unreadable {name} {first[name].value!r}: no duration")
    return start + timedelta(days=1 if all_day else 0)  # RFC 5545 3.6.1


def _free_busy(first: dict[str, Line]) -> str:
    busy = first.get("X-MICROSOFT-CDO-BUSYSTATUS")
    if busy is not None and busy.value.upper() in FREE_BUSY:
        return FREE_BUSY[busy.value.upper()]
    transp = first.get("TRANSP")
    if transp is not None:
        return "Free" if transp.value.upper() == "TRANSPARENT" else "Busy"
    return ""


def _reminder(event: list[Line]) -> int | None:
    for line in event:
        if line.name == "TRIGGER" and line.params.get("VALUE", "").upper() != "DATE-TIME":
            try:
                return max(0, -duration(line.value) // timedelta(minutes=1))
            except ValueError:
                return None
    return None


def _not_carried(lines: list[Line], event: list[Line]) -> list[str]:
    deleted = sum(len(x.value.split(",")) for x in event if x.name == "EXDATE")
    changed = sum(1 for x in lines if x.name == "RECURRENCE-ID")
    out = []
    if deleted:
        out.append(f"{deleted} deleted occurrence{'s' if deleted > 1 else ''}")
    if changed:
        out.append(f"{changed} changed occurrence{'s' if changed > 1 else ''}")
    return out


# --- RRULE -> t:Recurrence -------------------------------------------------------------


def _rule(text: str) -> dict[str, str]:
    return {k.strip().upper(): v.strip().upper() for k, _, v in
            (p.partition("=") for p in text.split(";")) if k.strip()}  # fmt: skip


def _days(rule: dict[str, str]) -> list[tuple[int | None, str]]:
    out = []
    for item in filter(None, rule.get("BYDAY", "").split(",")):
        code, nth = item[-2:], item[:-2]
        if code not in DAY_NAMES or (nth and not nth.lstrip("+-").isdigit()):
            raise Unsupported(f"BYDAY={item}")
        out.append((int(nth) if nth else None, code))
    return out


def _day_of_week(codes: list[str]) -> str:
    """DayOfWeekType for a set of weekdays: one day, "Weekday", "WeekendDay" or "Day"."""
    found = set(codes)
    if len(found) == 1:
        return DAY_NAMES[codes[0]]
    for name, group in (
        ("Weekday", {"MO", "TU", "WE", "TH", "FR"}),
        ("WeekendDay", {"SA", "SU"}),
        ("Day", set(DAY_NAMES)),
    ):
        if found == group:
            return name
    raise Unsupported(f"BYDAY={','.join(codes)} with a position")


def _relative(rule: dict[str, str], start: date) -> tuple[str, str] | None:
    """(DaysOfWeek, DayOfWeekIndex) of "the nth weekday" rules, else None."""
    days = _days(rule)
    if not days:
        return None
    pos = rule.get("BYSETPOS", "")
    nth = days[0][0] if days[0][0] is not None else (int(pos) if pos.lstrip("-").isdigit() else 0)
    if nth not in INDEX:
        raise Unsupported(f"occurrence {nth} of the month")
    return _day_of_week([code for _, code in days]), INDEX[nth]


Fields = list[tuple[str, str]]


def _pattern(rule: dict[str, str], start: date) -> tuple[str, Fields]:
    freq, interval = rule.get("FREQ", ""), rule.get("INTERVAL", "1")
    if not interval.isdigit() or int(interval) < 1:
        raise Unsupported(f"INTERVAL={interval}")
    for part in ("BYHOUR", "BYMINUTE", "BYSECOND", "BYWEEKNO", "BYYEARDAY"):
        if part in rule:
            raise Unsupported(part)
    if freq == "DAILY" and "BYDAY" not in rule:
        return "DailyRecurrence", [("Interval", interval)]
    if freq in ("DAILY", "WEEKLY"):
        codes = [code for _, code in _days(rule)] or [WEEKDAY_CODES[start.weekday()]]
        names = " ".join(DAY_NAMES[c] for c in codes)
        first = DAY_NAMES.get(rule.get("WKST", ""), "")
        return "WeeklyRecurrence", [
            ("Interval", interval),
            ("DaysOfWeek", names),
            *([("FirstDayOfWeek", first)] if first else []),
        ]
    if freq == "YEARLY" and int(interval) == 1:
        return _yearly(rule, start)
    if freq in ("MONTHLY", "YEARLY"):  # every N years: every 12*N months, as Outlook does
        return _monthly(rule, start, int(interval) * (12 if freq == "YEARLY" else 1))
    raise Unsupported(f"FREQ={freq or '?'}")


def _yearly(rule: dict[str, str], start: date) -> tuple[str, Fields]:
    by_month = rule.get("BYMONTH", str(start.month))
    if not by_month.isdigit() or not 1 <= int(by_month) <= 12:
        raise Unsupported(f"BYMONTH={by_month}")
    month = MONTHS[int(by_month) - 1]
    rel = _relative(rule, start)
    if rel is not None:
        return "RelativeYearlyRecurrence", [
            ("DaysOfWeek", rel[0]),
            ("DayOfWeekIndex", rel[1]),
            ("Month", month),
        ]
    return "AbsoluteYearlyRecurrence", [("DayOfMonth", _month_day(rule, start)), ("Month", month)]


def _monthly(rule: dict[str, str], start: date, months: int) -> tuple[str, Fields]:
    rel = _relative(rule, start)
    if rel is None and rule.get("BYMONTHDAY") == "-1":
        rel = ("Day", "Last")
    if rel is not None:
        return "RelativeMonthlyRecurrence", [
            ("Interval", str(months)),
            ("DaysOfWeek", rel[0]),
            ("DayOfWeekIndex", rel[1]),
        ]
    return "AbsoluteMonthlyRecurrence", [
        ("Interval", str(months)),
        ("DayOfMonth", _month_day(rule, start)),
    ]


def _month_day(rule: dict[str, str], start: date) -> str:
    day = rule.get("BYMONTHDAY", str(start.day))
    if not day.isdigit() or not 1 <= int(day) <= 31:
        raise Unsupported(f"BYMONTHDAY={day}")
    return day


def rrule_recurrence(text: str, start: date) -> Recurrence:
    """t:Recurrence for an RRULE whose series starts on the local date `start`."""
    rule = _rule(text)
    pattern, fields = _pattern(rule, start)
    begin = ("StartDate", start.isoformat())
    if rule.get("COUNT", "").isdigit():
        return Recurrence(
            pattern,
            tuple(fields),
            "NumberedRecurrence",
            (begin, ("NumberOfOccurrences", rule["COUNT"])),
        )
    until = rule.get("UNTIL", "")
    if until:
        if len(until) < 8 or not until[:8].isdigit():
            raise Unsupported(f"UNTIL={until}")
        end = datetime.strptime(until[:8], "%Y%m%d").date()
        return Recurrence(
            pattern, tuple(fields), "EndDateRecurrence", (begin, ("EndDate", end.isoformat()))
        )
    return Recurrence(pattern, tuple(fields), "NoEndRecurrence", (begin,))
