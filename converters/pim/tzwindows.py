"""An IANA zone name -> the name Windows gives the zone (its registry key). Pure.

Outlook looks a TZDEFINITION's key name ([MS-OXOCAL] 2.2.1.41) up among the zones
Windows knows, to show the zone's name and to follow later rule changes; "Europe/Berlin"
is no Windows key, "W. Europe Standard Time" is. The table is Unicode CLDR's
windowsZones data (Unicode license) as the `tzlocal` package ships it (a dependency:
a table of our own would go stale as zones change, as Alberta and British Columbia did
in 2026). The rules pstkit writes do not depend on the name: a zone Windows lacks
still converts times correctly.
"""

from __future__ import annotations

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
