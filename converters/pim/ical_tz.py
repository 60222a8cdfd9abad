"""Time zones (`tzrules.Zone`) <-> iCalendar VTIMEZONE (RFC 5545 3.6.5). Pure.

`vtimezone` writes a zone the way Outlook does (observances from 1601, yearly
rules by month and "nth weekday"); a zone whose rules changed over the years
gets one STANDARD/DAYLIGHT pair per rule, each ending (UNTIL) before the next
begins. `zones_in` reads back exactly that shape: the Graph sink uses it to
find the UTC start of occurrences whose TZID is a Windows zone name, which
zoneinfo does not know.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from pstkit.converters.pim.tzrules import DAYS, Rule, Transition, Zone, ZoneError

_RULE = re.compile(
    r"^FREQ=YEARLY;BYMONTH=(\d{1,2});BYDAY=(-1|[1-4])(SU|MO|TU|WE|TH|FR|SA)(;UNTIL=\w+)?$")
_FIRST_YEAR = 1601  # Outlook's observances start then (FILETIME's epoch)


def local_stamp(dt: datetime) -> str:
    return f"{dt:%Y%m%dT%H%M%S}"


def utc_stamp(dt: datetime) -> str:
    """An aware time as an iCalendar UTC DATE-TIME (…Z)."""
    return dt.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _utc_offset(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}{mins:02d}"


def _observance(kind: str, start: datetime, before: int, after: int, rule: str) -> list[str]:
    return [f"BEGIN:{kind}", f"DTSTART:{local_stamp(start)}",
            f"TZOFFSETFROM:{_utc_offset(before)}", f"TZOFFSETTO:{_utc_offset(after)}",
            *([f"RRULE:{rule}"] if rule else []), f"END:{kind}"]  # fmt: skip


def vtimezone(zone: Zone) -> list[str]:
    """The VTIMEZONE lines of `zone`. Each observance starts on its rule's first date
    (in 1601 for the first rule, as Outlook writes it), which RFC 5545 asks for."""
    lines = ["BEGIN:VTIMEZONE", f"TZID:{zone.tzid}"]
    for i, rule in enumerate(zone.rules):
        first = zone.years[i] if i else _FIRST_YEAR
        last = zone.years[i + 1] - 1 if i + 1 < len(zone.rules) else None
        lines += _era(rule, first, last, zone.rules[i - 1] if i else rule)
    return [*lines, "END:VTIMEZONE"]


def _era(rule: Rule, first: int, last: int | None, previous: Rule) -> list[str]:
    if rule.to_standard is None or rule.to_daylight is None:
        onset = datetime(first, 1, 1)  # a rule without DST takes over at New Year
        before = previous.offset_at(onset - timedelta(minutes=previous.standard))
        return _observance("STANDARD", onset, before, rule.standard, "")
    out: list[str] = []
    for kind, change, before, after in (
        ("STANDARD", rule.to_standard, rule.daylight, rule.standard),
        ("DAYLIGHT", rule.to_daylight, rule.standard, rule.daylight),
    ):
        until = "" if last is None else (  # UNTIL is UTC in a VTIMEZONE (RFC 5545 3.3.10)
            f";UNTIL={change.on(last) - timedelta(minutes=before):%Y%m%dT%H%M%SZ}")
        out += _observance(kind, change.on(first), before, after, change.rrule() + until)
    return out


# --- reading back ----------------------------------------------------------------------


def _offset_minutes(text: str) -> int:
    m = re.fullmatch(r"([+-])(\d\d)(\d\d)(\d\d)?", text.strip())
    if m is None:
        raise ZoneError(f"bad UTC offset {text!r}")
    minutes = int(m.group(2)) * 60 + int(m.group(3))
    return -minutes if m.group(1) == "-" else minutes


def _start(props: dict[str, str]) -> datetime:
    try:
        return datetime.strptime(props.get("DTSTART", ""), "%Y%m%dT%H%M%S")
    except ValueError as e:
        raise ZoneError(f"bad observance start {props.get('DTSTART')!r}") from e


def _transition(props: dict[str, str]) -> Transition:
    m = _RULE.match(props.get("RRULE", "").upper())
    if m is None:
        raise ZoneError(f"unsupported observance rule {props.get('RRULE')!r}")
    start = _start(props)
    nth = 5 if m.group(2) == "-1" else int(m.group(2))
    if not 1 <= int(m.group(1)) <= 12:
        raise ZoneError(f"bad month in {props.get('RRULE')!r}")
    return Transition(int(m.group(1)), DAYS.index(m.group(3)), nth, start.hour,
                      start.minute, start.second)  # fmt: skip


def _rule(observances: list[tuple[str, dict[str, str]]]) -> Rule:
    """One era: a lone STANDARD without rule, or a STANDARD and a DAYLIGHT with rules."""
    kinds = sorted(kind for kind, _ in observances)
    by_kind = dict(observances)
    std = by_kind.get("STANDARD", {})
    if kinds == ["STANDARD"] and "RRULE" not in std:
        return Rule(_offset_minutes(std.get("TZOFFSETTO", "")),
                    _offset_minutes(std.get("TZOFFSETTO", "")))  # fmt: skip
    if kinds != ["DAYLIGHT", "STANDARD"]:
        raise ZoneError(f"unsupported observances {kinds}")
    dst = by_kind["DAYLIGHT"]
    return Rule(_offset_minutes(std.get("TZOFFSETTO", "")),
                _offset_minutes(dst.get("TZOFFSETTO", "")), _transition(std), _transition(dst))


def zone_from_observances(tzid: str, observances: list[tuple[str, dict[str, str]]]) -> Zone:
    """A Zone from a VTIMEZONE's observances ((kind, properties) in any order) of the
    shape `vtimezone` writes: the observances of one rule start in the same year."""
    years = sorted({_start(props).year for _, props in observances})
    if not years:
        raise ZoneError("a time zone without observances")
    rules = tuple(_rule([o for o in observances if _start(o[1]).year == y]) for y in years)
    return Zone(tzid, rules, (0, *years[1:]))


def zones_in(text: str) -> dict[str, Zone]:
    """The VTIMEZONEs of an iCalendar text that have the shape `vtimezone` writes, by
    TZID; others are left out."""
    zones: dict[str, Zone] = {}
    tzid, observances = "", list[tuple[str, dict[str, str]]]()
    current: dict[str, str] | None = None
    for line in re.sub(r"\r?\n[ \t]", "", text).splitlines():
        head, _, value = line.partition(":")
        name, value = head.split(";", 1)[0].upper(), value.strip()
        if (name, value.upper()) == ("BEGIN", "VTIMEZONE"):
            tzid, observances, current = "", [], None
        elif name == "BEGIN" and value.upper() in ("STANDARD", "DAYLIGHT"):
            current = {}
            observances.append((value.upper(), current))
        elif name == "END" and value.upper() in ("STANDARD", "DAYLIGHT"):
            current = None
        elif (name, value.upper()) == ("END", "VTIMEZONE") and tzid:
            try:
                zones[tzid] = zone_from_observances(tzid, observances)
            except ZoneError:
                continue  # not our shape: left to zoneinfo by name
        elif current is not None:
            current.setdefault(name, value)
        elif name == "TZID":
            tzid = value
    return zones
