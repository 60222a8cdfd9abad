"""Time zone rules as Windows defines them, and local <-> UTC with them. Pure.

A `Zone` is a name and its `Rule`s by first year (one per change of the zone's rules,
e.g. US zones before and from 2007), each a standard offset, optionally a daylight
offset and the two yearly transitions ("the nth (5 = last) weekday of a month at a
local time"). Outlook's blobs become Zones in `pst.tz`; `pim.ical_tz`
writes a Zone as a VTIMEZONE and reads one back (the Graph sink reads them from any
iCalendar text), so this model belongs to neither side.
"""

from __future__ import annotations

import calendar as _cal
import re
import zoneinfo
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

#: iCalendar weekday codes by Windows/MAPI day number (0 = Sunday)
DAYS = ("SU", "MO", "TU", "WE", "TH", "FR", "SA")


class ZoneError(ValueError):
    """A time zone blob this module does not understand."""


@dataclass(frozen=True)
class Transition:
    """A yearly change: the `nth` (1-4, 5 = last) `weekday` (0 = Sunday) of `month`,
    at `hour:minute:second` local time before the change."""

    month: int
    weekday: int
    nth: int
    hour: int
    minute: int
    second: int = 0

    def on(self, year: int) -> datetime:
        """The local (naive) moment of this transition in `year`."""
        first_weekday = (_cal.weekday(year, self.month, 1) + 1) % 7  # 0 = Sunday
        day = 1 + (self.weekday - first_weekday) % 7 + 7 * (self.nth - 1)
        while day > _cal.monthrange(year, self.month)[1]:  # "5th" = the last one
            day -= 7
        return datetime(year, self.month, day, self.hour, self.minute, self.second)

    def rrule(self) -> str:
        nth = -1 if self.nth == 5 else self.nth
        return f"FREQ=YEARLY;BYMONTH={self.month};BYDAY={nth}{DAYS[self.weekday]}"


@dataclass(frozen=True)
class Rule:
    """One Windows time zone rule: the offsets and, with daylight saving time, the two
    yearly transitions."""

    standard: int  # minutes east of UTC outside daylight saving time
    daylight: int  # minutes east of UTC during daylight saving time
    to_standard: Transition | None = None  # None for both: no daylight saving time
    to_daylight: Transition | None = None

    def offset_at(self, naive_utc: datetime) -> int:
        """Minutes east of UTC in force at the (naive) UTC time `naive_utc`."""
        if self.to_standard is None or self.to_daylight is None:
            return self.standard
        # Windows reads each transition on the clocks in force just before it.
        std_clock = naive_utc + timedelta(minutes=self.standard)
        dst_clock = naive_utc + timedelta(minutes=self.daylight)
        year = std_clock.year  # one year for both: the clocks differ by an hour at New Year
        begun = std_clock >= self.to_daylight.on(year)
        ongoing = dst_clock < self.to_standard.on(year)
        if self.to_daylight.month < self.to_standard.month:  # northern: summer in one year
            return self.daylight if begun and ongoing else self.standard
        return self.daylight if begun or ongoing else self.standard  # southern


@dataclass(frozen=True)
class Zone:
    """A named zone: its rules, each in force from its first year (`years`, ascending;
    the first rule also applies before its year, as Windows does). `rough`: years whose
    changes no yearly rule holds (more than two, as Morocco's Ramadan breaks); the rule
    of such a year is an approximation for Outlook's blobs, so times in them are
    converted by zoneinfo under `tzid` (a zone read off zoneinfo has its IANA name)."""

    tzid: str
    rules: tuple[Rule, ...]
    years: tuple[int, ...] = (0,)
    rough: tuple[int, ...] = ()

    def rule(self, year: int) -> Rule:
        return self.rules[max(bisect_right(self.years, year) - 1, 0)]

    def offset_at(self, utc: datetime) -> int:
        """Minutes east of UTC in force at the aware moment `utc`."""
        naive = utc.astimezone(UTC).replace(tzinfo=None)
        year = (naive + timedelta(minutes=self.rules[0].standard)).year
        if year in self.rough:
            delta = utc.astimezone(zoneinfo.ZoneInfo(self.tzid)).utcoffset()
            return int((delta or timedelta(0)).total_seconds()) // 60
        return self.rule(year).offset_at(naive)

    def to_local(self, utc: datetime) -> datetime:
        """The naive wall-clock time of the aware moment `utc`."""
        naive = utc.astimezone(UTC).replace(tzinfo=None)
        return naive + timedelta(minutes=self.offset_at(utc))

    def to_utc(self, local: datetime) -> datetime:
        """The aware UTC moment of the naive wall-clock time `local`. As zoneinfo does
        with fold=0: a time the clocks pass twice is the first one, a time they skip is
        read with the offset before the change."""
        if local.year in self.rough:
            return local.replace(tzinfo=zoneinfo.ZoneInfo(self.tzid)).astimezone(UTC)
        rule = self.rule(local.year)
        fits = [o for o in (rule.daylight, rule.standard)
                if self.offset_at((local - timedelta(minutes=o)).replace(tzinfo=UTC)) == o]
        offset = fits[0] if fits else rule.standard
        return (local - timedelta(minutes=offset)).replace(tzinfo=UTC)


def clean_tzid(name: str) -> str:
    """A name usable as a TZID parameter value without quoting (RFC 5545 3.2: no
    control characters, no `"`, `;`, `:` or `,`)."""
    text = re.sub(r'[\x00-\x1f\x7f";:,]+', " ", name)
    return " ".join(text.split())
