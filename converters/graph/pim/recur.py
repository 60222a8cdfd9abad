"""RFC 5545 RRULE -> Graph `patternedRecurrence` (pure).

Graph's recurrencePattern types: daily, weekly, absoluteMonthly,
relativeMonthly, absoluteYearly, relativeYearly; its recurrenceRange types:
endDate, noEnd, numbered, with startDate equal to the event's start date.
A rule Graph has no pattern for raises `Unsupported` with the reason; the
caller then creates the first occurrence only and reports it.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from pstkit.converters.pim.content import parse_rrule

DAYS = {"SU": "sunday", "MO": "monday", "TU": "tuesday", "WE": "wednesday", "TH": "thursday",
        "FR": "friday", "SA": "saturday"}  # fmt: skip
WEEKDAY = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
INDEX = {1: "first", 2: "second", 3: "third", 4: "fourth", -1: "last"}
#: parts Graph cannot express at all
_NO_GRAPH = ("BYHOUR", "BYMINUTE", "BYSECOND", "BYWEEKNO", "BYYEARDAY")
_BYDAY = re.compile(r"^([+-]?\d{1,2})?(SU|MO|TU|WE|TH|FR|SA)$")


class Unsupported(ValueError):
    """This RRULE has no Graph recurrence pattern."""


def _bydays(rule: dict[str, str]) -> list[tuple[int | None, str]]:
    out = []
    for item in filter(None, rule.get("BYDAY", "").split(",")):
        m = _BYDAY.match(item)
        if m is None:
            raise Unsupported(f"BYDAY value {item!r}")
        out.append((int(m.group(1)) if m.group(1) else None, DAYS[m.group(2)]))
    return out


def _ints(rule: dict[str, str], key: str) -> list[int]:
    try:
        return [int(v) for v in rule.get(key, "").split(",") if v]
    except ValueError as e:
        raise Unsupported(f"{key}={rule[key]}") from e


def _index(n: int) -> str:
    if n not in INDEX:
        raise Unsupported(f"occurrence {n} of the month (Graph knows 1st-4th and last)")
    return INDEX[n]


def _relative(rule: dict[str, str], days: list[tuple[int | None, str]]) -> dict[str, Any]:
    """For "the 2nd Tuesday" (BYDAY=2TU, or BYDAY=TU;BYSETPOS=2): one index for all days."""
    setpos = _ints(rule, "BYSETPOS")
    ordinals = {n for n, _ in days}
    if len(setpos) > 1 or len(ordinals) > 1 or (setpos and ordinals != {None}):
        raise Unsupported("several different ordinals")
    n = setpos[0] if setpos else next(iter(ordinals))
    if n is None:
        raise Unsupported("BYDAY without an ordinal in a monthly/yearly rule")
    return {"daysOfWeek": [d for _, d in days], "index": _index(n)}


def _monthly(rule: dict[str, str], start: date) -> dict[str, Any]:
    days, monthdays = _bydays(rule), _ints(rule, "BYMONTHDAY")
    if days and monthdays:
        raise Unsupported("BYDAY together with BYMONTHDAY")
    if days:
        return {"type": "relativeMonthly", **_relative(rule, days)}
    if monthdays == [-1]:  # Outlook's "last day of the month": last of any weekday
        return {"type": "relativeMonthly", "daysOfWeek": list(DAYS.values()), "index": "last"}
    if len(monthdays) > 1 or (monthdays and not 1 <= monthdays[0] <= 31):
        raise Unsupported(f"BYMONTHDAY={rule['BYMONTHDAY']}")
    return {"type": "absoluteMonthly", "dayOfMonth": monthdays[0] if monthdays else start.day}


def _yearly(rule: dict[str, str], start: date) -> dict[str, Any]:
    months = _ints(rule, "BYMONTH") or [start.month]
    if len(months) > 1:
        raise Unsupported(f"BYMONTH={rule['BYMONTH']}")
    monthly = _monthly(rule, start)
    kind = "relativeYearly" if monthly["type"] == "relativeMonthly" else "absoluteYearly"
    if kind == "relativeYearly" and monthly["daysOfWeek"] == list(DAYS.values()):
        raise Unsupported("the last day of a month, yearly")
    return {**monthly, "type": kind, "month": months[0]}


def _pattern(rule: dict[str, str], start: date) -> dict[str, Any]:
    freq, interval = rule.get("FREQ", ""), int(rule.get("INTERVAL", "1") or 1)
    days = _bydays(rule)
    if freq == "DAILY" and days and interval == 1 and all(n is None for n, _ in days):
        freq = "WEEKLY"  # every weekday is a weekly pattern in Graph
    if freq == "DAILY":
        if days or "BYMONTH" in rule or "BYMONTHDAY" in rule:
            raise Unsupported("a daily rule limited to some days")
        return {"type": "daily", "interval": interval}
    if freq == "WEEKLY":
        if any(n is not None for n, _ in days) or "BYMONTHDAY" in rule or "BYMONTH" in rule:
            raise Unsupported("a weekly rule with ordinals, month days or months")
        names = [d for _, d in days] or [WEEKDAY[start.weekday()]]
        first = DAYS.get(rule.get("WKST", "MO"), "monday")
        return {"type": "weekly", "interval": interval, "daysOfWeek": names,
                "firstDayOfWeek": first}  # fmt: skip
    if freq == "MONTHLY":
        if "BYMONTH" in rule:
            raise Unsupported("a monthly rule limited to some months")
        return {**_monthly(rule, start), "interval": interval}
    if freq == "YEARLY":
        return {**_yearly(rule, start), "interval": interval}
    raise Unsupported(f"FREQ={freq or '(none)'}")


def until_date(value: str) -> date:
    try:
        return datetime.strptime(value[:8], "%Y%m%d").date()
    except ValueError as e:
        raise Unsupported(f"UNTIL={value}") from e


def _range(rule: dict[str, str], start: date, tz: str) -> dict[str, Any]:
    rng: dict[str, Any] = {"startDate": start.isoformat(), "recurrenceTimeZone": tz}
    if "COUNT" in rule:
        count = _ints(rule, "COUNT")
        if not count or count[0] < 1:
            raise Unsupported(f"COUNT={rule['COUNT']}")
        return {**rng, "type": "numbered", "numberOfOccurrences": count[0]}
    if "UNTIL" in rule:
        return {**rng, "type": "endDate", "endDate": until_date(rule["UNTIL"]).isoformat()}
    return {**rng, "type": "noEnd"}


def recurrence(rrule: str, start: date, tz: str) -> dict[str, Any]:
    """The patternedRecurrence for `rrule` on a series starting on `start` (in `tz`)."""
    rule = parse_rrule(rrule)
    for key in _NO_GRAPH:
        if key in rule:
            raise Unsupported(f"{key} (Graph repeats whole days only)")
    if "BYSETPOS" in rule and rule.get("FREQ") not in ("MONTHLY", "YEARLY"):
        raise Unsupported("BYSETPOS outside a monthly/yearly rule")
    try:
        if int(rule.get("INTERVAL", "1") or 1) < 1:
            raise Unsupported(f"INTERVAL={rule['INTERVAL']}")
    except ValueError as e:
        raise Unsupported(f"INTERVAL={rule['INTERVAL']}") from e
    return {"pattern": _pattern(rule, start), "range": _range(rule, start, tz)}
