"""An IANA zone (the stdlib `zoneinfo`, Debian tzdata) -> a Windows-style `Zone`. Pure.

Outlook keeps a zone as yearly rules ([MS-OXOCAL] 2.2.1.39 PidLidTimeZoneStruct, 2.2.1.41
TZDEFINITION/TZRULE): a standard and a daylight bias and each transition as "the nth
(5 = last) weekday of a month at a local time". An iCalendar whose TZID names an IANA
zone without a VTIMEZONE block (Google exports, many generators, some CalDAV servers)
must still get such rules, or later occurrences of a series lose their DST shifts. The
rules are read off zoneinfo's transitions, one per year, and equal years merge.
The zone keeps its IANA name; the PST writer names it as Windows does (tzwindows.py).
"""

from __future__ import annotations

import calendar as _cal
import zoneinfo
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from pstkit.converters.pim.tzrules import Rule, Transition, Zone

FIRST_YEAR, LAST_YEAR = 1970, 2037  # the years Windows' own zone data covers


def _offset(tz: zoneinfo.ZoneInfo, utc: datetime) -> int:
    delta = utc.astimezone(tz).utcoffset() or timedelta(0)
    return int(delta.total_seconds()) // 60


def _changes(tz: zoneinfo.ZoneInfo, year: int) -> list[tuple[datetime, int, int]]:
    """The (naive UTC moment, offset before, offset after) of each change in `year`."""
    out, t = [], datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    before = _offset(tz, t)
    while t < end:
        step = t + timedelta(hours=6)
        after = _offset(tz, step)
        if after != before:
            lo, hi = t, step  # the change is in (lo, hi]: halve to the second
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                lo, hi = (lo, mid) if _offset(tz, mid) == after else (mid, hi)
            out.append((hi.replace(tzinfo=None), before, after))
            before = after
        t = step
    return out


def transition(local: datetime) -> Transition:
    """A local moment as Windows stores a yearly transition: weekday of month, the
    last one (5) when no same weekday follows in the month."""
    last = local.day + 7 > _cal.monthrange(local.year, local.month)[1]
    return Transition(local.month, (local.weekday() + 1) % 7,
                      5 if last else (local.day - 1) // 7 + 1,
                      local.hour, local.minute, local.second)


def year_rule(tz: zoneinfo.ZoneInfo, year: int,
              changes: list[tuple[datetime, int, int]] | None = None) -> Rule:
    """The rule of `year`: two changes become daylight saving time (the larger offset is
    daylight, so Europe/Dublin's negative DST reads as Windows has it). One change (DST
    begun or ended for good, a new base offset) is daylight time from New Year or until
    New Year's Eve, as Windows' dynamic DST writes such years. No change, or more than
    two (Morocco's Ramadan breaks), the offset in force mid-year (a `rough` year of the
    zone: its times are converted by zoneinfo, and the writer says so)."""
    changes = _changes(tz, year) if changes is None else changes
    if len(changes) == 1:
        (t, b, a), = changes
        at = transition(t + timedelta(minutes=b))
        if a > b:  # daylight until the end of the year
            return Rule(b, a, transition(datetime(year, 12, 31, 23, 59, 59)), at)
        return Rule(a, b, at, transition(datetime(year, 1, 1)))
    if len(changes) != 2:
        mid = _offset(tz, datetime(year, 7, 1, tzinfo=UTC))
        return Rule(mid, mid)
    (t1, b1, a1), (t2, b2, _a2) = changes
    std, dst = min(b1, a1), max(b1, a1)
    up, down = ((t1, b1), (t2, b2)) if a1 > b1 else ((t2, b2), (t1, b1))
    return Rule(std, dst, transition(down[0] + timedelta(minutes=down[1])),
                transition(up[0] + timedelta(minutes=up[1])))


@lru_cache(maxsize=64)
def iana_zone(tzid: str) -> Zone | None:
    """The `Zone` of an IANA name zoneinfo knows, None for any other name."""
    try:
        tz = zoneinfo.ZoneInfo(tzid)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return None
    rules: list[Rule] = []
    years: list[int] = []
    rough: list[int] = []
    for year in range(FIRST_YEAR, LAST_YEAR + 1):
        changes = _changes(tz, year)
        if len(changes) > 2:
            rough.append(year)
        rule = year_rule(tz, year, changes)
        if not rules or rule != rules[-1]:
            rules.append(rule)
            years.append(year)
    return Zone(tzid, tuple(rules), tuple(years), tuple(rough))


def rough_note(zone: Zone, first: int, last: int) -> list[str]:
    """A note for times from `first` to `last` (years) in a zone with rough years:
    Outlook's yearly rules hold two changes a year, so its blobs approximate them."""
    years = [y for y in zone.rough if first <= y <= last]
    if not years:
        return []
    shown = ", ".join(map(str, years[:4])) + (", ..." if len(years) > 4 else "")
    return [f"time zone {zone.tzid!r} changes more than twice in {shown}: Outlook's "
            "yearly rules hold two changes, so it may show times in those years an hour "
            "off (the times stored are exact)"]
