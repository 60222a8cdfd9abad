"""An IANA zone name -> the name Windows gives the zone (its registry key). Pure.

Outlook looks a TZDEFINITION's key name ([MS-OXOCAL] 2.2.1.41) up among the zones
Windows knows, to show the zone's name and to follow later rule changes; "Europe/Berlin"
is no Windows key, "W. Europe Standard Time" is. The table is Unicode CLDR's
windowsZones data (Unicode license) as the `tzlocal` package ships it (a dependency:
a table of our own would go stale as zones change, as Alberta and British Columbia did
in 2026). The rules pstkit writes do not depend on the name: a zone Windows lacks
still converts times correctly.

`description` is the zone's human-readable name for PidLidTimeZoneDescription
([MS-OXOCAL] 2.2.1.40: "a human-readable description of the time zone" of the
TimeZoneStruct): in Windows' display style, "(UTC+01:00) Berlin". Windows' own display
names ("(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna") are not in CLDR
and change with Windows updates (offsets and city lists, e.g. 2022's Kyiv rename); a
copied table would go stale, so the text is made from the zone's standard offset and
its own place name. Outlook finds the zone by the TZDEFINITION's key, not this text.
"""

from __future__ import annotations

import zoneinfo
from functools import cache


@cache
def _table() -> dict[str, str]:
    try:
        from tzlocal.windows_tz import tz_win  # noqa: PLC0415 - only when a zone is written
    except ImportError:  # declared in pyproject; without it the IANA names stay
        return {}
    return dict(tz_win)


def windows_key(tzid: str) -> str:
    """Windows' key name for the IANA zone `tzid`; any other name (a Windows name
    already, an unknown one) as it is."""
    return _table().get(tzid, tzid)


@cache
def _iana_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def description(tzid: str, standard: int) -> str:
    """The zone's display text: its standard offset (`standard`, minutes east of UTC)
    and, for an IANA name, its place ("America/Argentina/Buenos_Aires" -> "Buenos
    Aires"; also behind a prefix such as Mozilla's "/mozilla.org/20050126_1/"); any other
    name (a Windows key, a VTIMEZONE's own TZID) as it is."""
    sign = "-" if standard < 0 else "+"
    hours, minutes = divmod(abs(standard), 60)
    parts = tzid.split("/")
    known = any("/".join(parts[i:]) in _iana_names() for i in range(len(parts)))
    place = parts[-1].replace("_", " ") if known else tzid
    return f"(UTC{sign}{hours:02d}:{minutes:02d}) {place}"
