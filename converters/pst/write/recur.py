"""RRULE -> PidLidAppointmentRecur, and time zones -> Outlook's time zone blobs. Pure.

The inverse of `pst.ical.parse_recurrence` and `pst.tz`:

- `recurrence_blob` writes an AppointmentRecurrencePattern ([MS-OXOCAL] 2.2.1.44.2): the
  RecurrencePattern (2.2.1.44.1: frequency, pattern type, period, end, first day of the
  week, deleted and modified occurrence dates, start and end date), the start and end
  offsets of an occurrence, one ExceptionInfo per changed occurrence and, as writer
  version 0x3009 asks, one ExtendedException (2.2.1.44.3) with Unicode subject/location.
  Dates are local (the series' zone), minutes since 1601-01-01.
- `tzdefinition` writes a TZDEFINITION (2.2.1.41: PidLidAppointmentTimeZoneDefinitionRecur,
  StartDisplay, EndDisplay) with all of a zone's rules; `tzstruct` the older TZSTRUCT
  (2.2.1.39: PidLidTimeZoneStruct), the rule in force in a given year.

Rules Outlook cannot express (HOURLY, several BYMONTHDAYs, BYMONTH other than the start's
month...) raise `RecurrenceError`; the caller then writes the first occurrence and says so.
"""

from __future__ import annotations

import calendar as _cal
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from pstkit.converters.pim.content import parse_rrule
from pstkit.converters.pim.tzrules import DAYS, Rule, Transition, Zone
from pstkit.converters.pim.tzwindows import windows_key

DAILY, WEEKLY, MONTHLY, YEARLY = 0x200A, 0x200B, 0x200C, 0x200D
PT_DAY, PT_WEEK, PT_MONTH, PT_MONTH_NTH, PT_MONTH_END = 0, 1, 2, 3, 4
END_DATE, END_COUNT, END_NEVER = 0x2021, 0x2022, 0x2023
#: TZRULE's 14 unused bytes, as Outlook fills them (a January 1st)
_X = struct.pack("<7H", 1, 0, 1, 0, 0, 0, 0)
NEVER_DATE = 0x5AE980DF  # EndDate of a series without end (2.2.1.44.1)
_EPOCH = datetime(1601, 1, 1)
_MAX_OCCURRENCES = 10_000  # expanding a rule to find its count or last date stops here
ARO_SUBJECT, ARO_LOCATION, ARO_EXCEPTIONAL_BODY = 0x0001, 0x0010, 0x0200


class RecurrenceError(ValueError):
    """A rule Outlook's recurrence blob cannot express."""


@dataclass(frozen=True)
class Changed:
    """A changed occurrence: its original local start, its new local start and end, and
    the subject/location it overrides (None: the series' own)."""

    original: datetime
    start: datetime
    end: datetime
    subject: str | None = None
    location: str | None = None
    body: bool = False  # the occurrence has its own body (in its exception item)


@dataclass(frozen=True)
class Pattern:
    freq: int
    ptype: int
    period: int
    specific: bytes
    first_dow: int  # 0 = Sunday


def minutes(dt: datetime | date) -> int:
    """Minutes since 1601-01-01 of a naive local time (or a date's midnight)."""
    moment = dt if isinstance(dt, datetime) else datetime(dt.year, dt.month, dt.day)
    return int((moment.replace(tzinfo=None) - _EPOCH) // timedelta(minutes=1))


def _mask(days: str, start: date) -> int:
    mask = 0
    for item in filter(None, days.split(",")):
        code = item.lstrip("+-0123456789")
        if code not in DAYS:
            raise RecurrenceError(f"BYDAY value {item!r}")
        mask |= 1 << DAYS.index(code)
    return mask or 1 << ((start.weekday() + 1) % 7)


def _nth(rule: dict[str, str]) -> int | None:
    """The "nth weekday" of a month rule (5 = last), from BYSETPOS or a BYDAY prefix."""
    prefixes = {d[:-2] for d in rule.get("BYDAY", "").split(",")} - {""}
    if len(prefixes) > 1:
        raise RecurrenceError(f"BYDAY={rule['BYDAY']} (one nth weekday a month)")
    raw = rule.get("BYSETPOS") or (prefixes.pop() if prefixes else "")
    if not raw:
        return None
    n = int(raw) if raw.lstrip("+-").isdigit() else 0
    if n not in (1, 2, 3, 4, -1):
        raise RecurrenceError(f"occurrence {raw} of the month (Outlook knows 1st-4th, last)")
    return 5 if n == -1 else n


def pattern(rrule: str, start: date) -> Pattern:
    """The RecurrencePattern's pattern fields (2.2.1.44.1) of an RRULE from `start`."""
    rule = parse_rrule(rrule)
    freq, interval = rule.get("FREQ", ""), rule.get("INTERVAL", "1")
    if not interval.isdigit() or not 1 <= int(interval) <= 999:
        raise RecurrenceError(f"INTERVAL={interval}")
    n = int(interval)
    wkst = rule.get("WKST", "SU")
    first_dow = DAYS.index(wkst) if wkst in DAYS else 0
    for part in ("BYHOUR", "BYMINUTE", "BYSECOND", "BYWEEKNO", "BYYEARDAY", "RDATE"):
        if part in rule:
            raise RecurrenceError(f"{part} in a recurrence rule")
    if freq == "DAILY":
        if "BYDAY" in rule:  # "every weekday": a weekly pattern of period 1 (2.2.1.44.1)
            mask = _mask(rule["BYDAY"], start)
            return Pattern(DAILY, PT_WEEK, 1, struct.pack("<I", mask), first_dow)
        return Pattern(DAILY, PT_DAY, n * 1440, b"", first_dow)
    if freq == "WEEKLY":
        mask = _mask(rule.get("BYDAY", ""), start)
        return Pattern(WEEKLY, PT_WEEK, n, struct.pack("<I", mask), first_dow)
    if freq in ("MONTHLY", "YEARLY"):
        if freq == "YEARLY" and rule.get("BYMONTH", str(start.month)) != str(start.month):
            raise RecurrenceError(f"BYMONTH={rule['BYMONTH']} is not the start's month")
        code, period = (MONTHLY, n) if freq == "MONTHLY" else (YEARLY, 12 * n)
        return _monthly(rule, start, code, period, first_dow)
    raise RecurrenceError(f"FREQ={freq or '(none)'}")


def _monthly(rule: dict[str, str], start: date, code: int, period: int,
             first_dow: int) -> Pattern:
    nth = _nth(rule)
    if nth is not None and "BYDAY" in rule:
        spec = struct.pack("<II", _mask(rule["BYDAY"], start), nth)
        return Pattern(code, PT_MONTH_NTH, period, spec, first_dow)
    day = rule.get("BYMONTHDAY", str(start.day))
    if day == "-1":
        return Pattern(code, PT_MONTH_END, period, struct.pack("<I", 31), first_dow)
    if not day.isdigit() or not 1 <= int(day) <= 31:
        raise RecurrenceError(f"BYMONTHDAY={day}")
    return Pattern(code, PT_MONTH, period, struct.pack("<I", int(day)), first_dow)


# --- occurrences ---------------------------------------------------------------------


def _add_months(d: date, months: int) -> tuple[int, int]:
    total = d.year * 12 + d.month - 1 + months
    return total // 12, total % 12 + 1


def _in_month(p: Pattern, year: int, month: int) -> date | None:
    last = _cal.monthrange(year, month)[1]
    if p.ptype == PT_MONTH:
        return date(year, month, min(struct.unpack("<I", p.specific)[0], last))
    if p.ptype == PT_MONTH_END:
        return date(year, month, last)
    mask, nth = struct.unpack("<II", p.specific)
    days = [date(year, month, d) for d in range(1, last + 1)
            if mask & (1 << ((date(year, month, d).weekday() + 1) % 7))]
    return days[-1] if nth == 5 or nth > len(days) else days[nth - 1]


def occurrences(p: Pattern, start: date) -> Iterator[date]:
    """The dates of the series from `start`, at most _MAX_OCCURRENCES of them."""
    count = 0
    for d in _candidates(p, start):
        if d >= start:
            yield d
            count += 1
            if count >= _MAX_OCCURRENCES:
                return


def _candidates(p: Pattern, start: date) -> Iterator[date]:
    if p.ptype == PT_DAY:
        step = timedelta(days=p.period // 1440)
        d = start
        while d.year < 4500:
            yield d
            d += step
    elif p.ptype == PT_WEEK:
        mask = struct.unpack("<I", p.specific)[0]
        week = start - timedelta(days=((start.weekday() + 1) % 7 - p.first_dow) % 7)
        weeks = 1 if p.freq == DAILY else p.period
        while week.year < 4500:
            yield from (week + timedelta(days=i) for i in range(7)
                        if mask & (1 << ((week + timedelta(days=i)).weekday() + 1) % 7))
            week += timedelta(weeks=weeks)
    else:
        k = 0
        while start.year + k * p.period // 12 < 4500:
            found = _in_month(p, *_add_months(start, k * p.period))
            if found is not None:
                yield found
            k += 1


def _end(p: Pattern, rule: dict[str, str], start: datetime, until: datetime | None
         ) -> tuple[int, int, int]:
    """EndType, OccurrenceCount and EndDate (minutes) of a rule."""
    if "COUNT" in rule:
        if not rule["COUNT"].isdigit() or int(rule["COUNT"]) < 1:
            raise RecurrenceError(f"COUNT={rule['COUNT']}")
        want = int(rule["COUNT"])
        last = start.date()
        for i, d in enumerate(occurrences(p, start.date()), 1):
            last = d
            if i >= want:
                break
        return END_COUNT, want, minutes(last)
    if "UNTIL" in rule:
        limit = until if until is not None else _until(rule["UNTIL"])
        dates = list(_take_until(p, start, limit))
        if not dates:
            raise RecurrenceError(f"UNTIL={rule['UNTIL']} before the first occurrence")
        # end by date; the count is kept too, as Outlook does (2.2.1.44.1 OccurrenceCount)
        return END_DATE, len(dates), minutes(dates[-1])
    return END_NEVER, 10, NEVER_DATE  # Outlook writes a count of 10 for "no end date"


def series_end(rrule: str, start: date, until: datetime | None = None) -> date | None:
    """The date of the last occurrence; None for a series without end."""
    begin = start if isinstance(start, datetime) else datetime.combine(start, time())
    end_type, _count, end = _end(pattern(rrule, begin.date()), parse_rrule(rrule), begin, until)
    return None if end_type == END_NEVER else (_EPOCH + timedelta(minutes=end)).date()


def _take_until(p: Pattern, start: datetime, until: datetime) -> Iterator[date]:
    """The dates of the occurrences that start at or before `until` (RFC 5545 3.3.10:
    UNTIL is inclusive)."""
    for d in occurrences(p, start.date()):
        if datetime.combine(d, start.time()) > until:
            return
        yield d


def _until(text: str) -> datetime:
    """An UNTIL value as a local time, for a caller that has no zone to put it in: a date
    means the end of that day, a UTC time is taken as it is (`events` converts UTC UNTILs
    into the series' zone and passes the result)."""
    try:
        if len(text.strip()) == 8:
            return datetime.combine(datetime.strptime(text.strip(), "%Y%m%d").date(),
                                    time(23, 59, 59))
        return datetime.strptime(text[:15], "%Y%m%dT%H%M%S")
    except ValueError as e:
        raise RecurrenceError(f"UNTIL={text}") from e


# --- the blob ------------------------------------------------------------------------


def _first_datetime(p: Pattern, start: date) -> int:
    """FirstDateTime (2.2.1.44.1.2): where the period starts, modulo the period."""
    if p.ptype == PT_DAY:
        return minutes(start) % p.period
    if p.ptype == PT_WEEK:
        week = start - timedelta(days=((start.weekday() + 1) % 7 - p.first_dow) % 7)
        return minutes(week) % (p.period * 10080 if p.freq == WEEKLY else 10080)
    months = ((start.year - 1601) * 12 + start.month - 1) % p.period
    return minutes(date(1601 + months // 12, months % 12 + 1, 1))


def recurrence_blob(rrule: str, start: datetime, end: datetime,
                    deleted: Sequence[date] = (), changed: Sequence[Changed] = (),
                    until: datetime | None = None) -> bytes:
    """PidLidAppointmentRecur of a series starting at local `start`, each occurrence
    lasting `end - start`; `deleted` are the local dates of deleted occurrences; `until`
    the rule's UNTIL as local time (else read from the rule, see `_until`)."""
    p = pattern(rrule, start.date())
    end_type, count, end_date = _end(p, parse_rrule(rrule), start, until)
    gone = sorted({minutes(d) for d in deleted} | {minutes(c.original.date()) for c in changed})
    moved = sorted(changed, key=lambda c: c.start)
    head = struct.pack("<HHHHHIII", 0x3004, 0x3004, p.freq, p.ptype, 0,
                       _first_datetime(p, start.date()), p.period, 0)
    out = bytearray(head + p.specific)
    out += struct.pack("<IIII", end_type, count, p.first_dow, len(gone))
    out += struct.pack(f"<{len(gone)}I", *gone)
    out += struct.pack("<I", len(moved))
    out += struct.pack(f"<{len(moved)}I", *(minutes(c.start.date()) for c in moved))
    out += struct.pack("<II", minutes(start.date()), end_date)
    offset = start.hour * 60 + start.minute
    duration = int((end - start) // timedelta(minutes=1))
    out += struct.pack("<IIIIH", 0x3006, 0x3009, offset, offset + duration, len(moved))
    out += b"".join(_exception_info(c) for c in moved)
    out += struct.pack("<I", 0)  # ReservedBlock1Size
    out += b"".join(_extended(c) for c in moved)
    return bytes(out + struct.pack("<I", 0))  # ReservedBlock2Size


def _flags(c: Changed) -> int:
    return (ARO_SUBJECT if c.subject is not None else 0) | (
        ARO_LOCATION if c.location is not None else 0) | (ARO_EXCEPTIONAL_BODY if c.body else 0)


def _ansi(text: str) -> bytes:
    data = text.encode("cp1252", "replace")[:0xFFFE]
    return struct.pack("<HH", len(data) + 1, len(data)) + data


def _exception_info(c: Changed) -> bytes:
    """ExceptionInfo (2.2.1.44.2): times, then the overridden fields in flag order."""
    out = struct.pack("<IIIH", minutes(c.start), minutes(c.end), minutes(c.original),
                      _flags(c))  # (ARO_EXCEPTIONAL_BODY has no data here)
    if c.subject is not None:
        out += _ansi(c.subject)
    if c.location is not None:
        out += _ansi(c.location)
    return out


def _wide(text: str) -> bytes:
    data = text.encode("utf-16-le", "replace")[: 2 * 0xFFFF]
    return struct.pack("<H", len(data) // 2) + data


def _extended(c: Changed) -> bytes:
    """ExtendedException (2.2.1.44.3): no change highlight; Unicode subject/location."""
    out = struct.pack("<III", 4, 0, 0)  # ChangeHighlightSize, Value, ReservedBlockEE1Size
    if _flags(c) & (ARO_SUBJECT | ARO_LOCATION):
        out += struct.pack("<III", minutes(c.start), minutes(c.end), minutes(c.original))
        out += _wide(c.subject) if c.subject is not None else b""
        out += _wide(c.location) if c.location is not None else b""
        out += struct.pack("<I", 0)  # ReservedBlockEE2Size
    return out


# --- time zones ----------------------------------------------------------------------


def _systemtime(t: Transition | None) -> bytes:
    if t is None:
        return b"\0" * 16
    return struct.pack("<8H", 0, t.month, t.weekday, t.nth, t.hour, t.minute, t.second, 0)


def _biases(rule: Rule) -> bytes:
    """lBias, lStandardBias, lDaylightBias: UTC = local + bias (Windows' sign)."""
    dst = rule.daylight - rule.standard if rule.to_standard is not None else 0
    return struct.pack("<iii", -rule.standard, 0, -dst)


def tzstruct(zone: Zone, year: int) -> bytes:
    """PidLidTimeZoneStruct (2.2.1.39): the rule in force in `year`."""
    rule = zone.rule(year)
    return (_biases(rule) + struct.pack("<H", 0) + _systemtime(rule.to_standard)
            + struct.pack("<H", 0) + _systemtime(rule.to_daylight))


def tzdefinition(zone: Zone, year: int, recurring: bool = True, only_current: bool = False
                 ) -> bytes:
    """A TZDEFINITION (2.2.1.41) with the zone's name and its rules (TZRULE, 2.2.1.41.1);
    the rule in force in `year` is flagged as Outlook does (RECUR_CURRENT_TZREG for the
    recurrence's, EFFECTIVE_TZREG for the display ones). `only_current`: that rule alone,
    as Outlook writes PidLidAppointmentTimeZoneDefinitionStartDisplay."""
    current = max(i for i, y in enumerate(zone.years) if i == 0 or y <= year)
    picked = [current] if only_current else list(range(len(zone.rules)))
    name = windows_key(zone.tzid).encode("utf-16-le")[: 2 * 260]  # Outlook's registry key
    header = struct.pack("<HH", 0x0002, len(name) // 2) + name + struct.pack("<H", len(picked))
    out = struct.pack("<BBH", 2, 1, len(header)) + header
    for i in picked:
        rule = zone.rules[i]
        # the first rule's year: the one before the next rule's, else `year` (as Outlook)
        first = zone.years[i] if i else (zone.years[1] - 1 if len(zone.years) > 1 else year)
        flags = (0x0003 if recurring else 0x0002) if i == current else 0
        out += struct.pack("<BBHHH", 2, 1, 0x3E, flags, first) + _X
        out += _biases(rule) + _systemtime(rule.to_standard) + _systemtime(rule.to_daylight)
    return out
