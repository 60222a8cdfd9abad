"""Occurrences of a recurring event: expansion, `…/instances`, and changing one.

As Graph documents it: `GET /events/{series}/instances?startDateTime=…&endDateTime=…`
(both required) lists the occurrences starting in that window, each with
`type` ("occurrence" or "exception"), `seriesMasterId` and `originalStart`
(UTC); `DELETE /events/{occurrence}` cancels one, `PATCH` makes it an
exception. Pattern dates are the series' local dates in its start time
zone (IANA names and "UTC"; a Windows zone name is taken as UTC here).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tests.servers.graph.core import GraphError, bad_request

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
INDEX = {"first": 0, "second": 1, "third": 2, "fourth": 3, "last": -1}
MAX_DAYS = 366 * 30  # how far a series is followed


#: the Windows names Graph takes (pim_checks.WINDOWS_ZONES) as the IANA zones they mean
WINDOWS_IANA = {"W. Europe Standard Time": "Europe/Berlin",
                "Pacific Standard Time": "America/Los_Angeles",
                "Eastern Standard Time": "America/New_York", "GMT Standard Time": "Europe/London"}


def zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(WINDOWS_IANA.get(name, name))
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _nth(day: date, days: set[str], index: str) -> date | None:
    last = calendar.monthrange(day.year, day.month)[1]
    hits = [
        date(day.year, day.month, n)
        for n in range(1, last + 1)
        if WEEKDAYS[date(day.year, day.month, n).weekday()] in days
    ]
    pos = INDEX.get(index, 0)
    return hits[pos] if hits and (pos < len(hits)) else None


def _week_start(day: date, first: str) -> date:
    shift = (day.weekday() - WEEKDAYS.index(first)) % 7
    return day - timedelta(days=shift)


def matches(p: dict[str, Any], day: date, first: date) -> bool:
    n, kind = int(p.get("interval", 1)), p["type"]
    months = (day.year - first.year) * 12 + day.month - first.month
    days = set(p.get("daysOfWeek", []))
    if kind == "daily":
        return (day - first).days % n == 0
    if kind == "weekly":
        fdw = p.get("firstDayOfWeek", "sunday")
        weeks = (_week_start(day, fdw) - _week_start(first, fdw)).days // 7
        return WEEKDAYS[day.weekday()] in days and weeks % n == 0
    if kind == "absoluteMonthly":
        return bool(day.day == p["dayOfMonth"]) and months % n == 0
    if kind == "relativeMonthly":
        return months % n == 0 and day == _nth(day, days, p.get("index", "first"))
    years = day.year - first.year
    if day.month != p["month"] or years % n:
        return False
    if kind == "absoluteYearly":
        return bool(day.day == p["dayOfMonth"])
    return day == _nth(day, days, p.get("index", "first"))


def expand(series: dict[str, Any], until: datetime) -> Iterator[tuple[datetime, datetime]]:
    """(UTC original start, local start) of each occurrence starting before `until`."""
    rec = series["recurrence"]
    pattern, rng = rec["pattern"], rec["range"]
    tz = zone(series["start"]["timeZone"])
    start = datetime.fromisoformat(series["start"]["dateTime"])
    first = date.fromisoformat(rng["startDate"])
    end = date.fromisoformat(rng["endDate"]) if rng["type"] == "endDate" else None
    count = rng.get("numberOfOccurrences") if rng["type"] == "numbered" else None
    seen = 0
    for offset in range(MAX_DAYS):
        day = first + timedelta(days=offset)
        if end is not None and day > end:
            return
        if not matches(pattern, day, first):
            continue
        local = datetime.combine(day, start.time())
        original = local.replace(tzinfo=tz).astimezone(UTC)
        if original >= until:
            return
        seen += 1
        if count is not None and seen > count:
            return
        yield original, local


def window(query: dict[str, str]) -> tuple[datetime, datetime]:
    try:
        lo, hi = query["startDateTime"], query["endDateTime"]
        return _parse(lo), _parse(hi)
    except KeyError as e:
        raise bad_request(
            "This request requires a time window specified by the query string parameters "
            "StartDateTime and EndDateTime.",
            "ErrorInvalidParameter",
        ) from e


def _parse(value: str) -> datetime:
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise GraphError(400, "ErrorInvalidParameter", f"Invalid date {value!r}.") from e
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
