"""Outlook time zone blobs -> time zone rules (`pstkit.converters.pim.tzrules.Zone`). Pure.

A recurring appointment keeps its wall-clock time across daylight-saving
changes only if its times are written in its own zone. Outlook stores that
zone as a TZDEFINITION (PidLidAppointmentTimeZoneDefinitionRecur, MS-OXOCAL
2.2.1.41: header, key name, TZRULEs) or, in older files, as a TZSTRUCT
(PidLidTimeZoneStruct, 2.2.1.39: one rule, no name). Both come down to a
`Zone`: a name and its `Rule`s by first year (a TZDEFINITION holds one per
change of the zone's rules, e.g. US zones before and from 2007), each a
standard offset, optionally a daylight offset and the two yearly transitions
("the nth (5 = last) weekday of a month at a local time").
The Zone model is `pim.tzrules`; `pim.ical_tz` writes a Zone as a
VTIMEZONE.
"""

from __future__ import annotations

import itertools
import struct

from pstkit.converters.pim.tzrules import Rule, Transition, Zone, ZoneError

_SYSTEMTIME = "<8H"  # year, month, day of week, day, hour, minute, second, ms
_TZRULE_SIZE = 66
_FLAG_GUID, _FLAG_KEYNAME = 0x0001, 0x0002


# --- Outlook blobs -------------------------------------------------------------------


def _transition(raw: tuple[int, ...]) -> Transition | None:
    year, month, weekday, day, hour, minute, second, _ms = raw
    if month == 0:
        return None
    if year != 0:  # an absolute date, a one-off change: no yearly rule to write
        raise ZoneError(f"absolute transition date {year}-{month}-{day}")
    if not (1 <= month <= 12 and weekday <= 6 and 1 <= day <= 5 and hour <= 23
            and minute <= 59 and second <= 59):  # fmt: skip
        raise ZoneError(f"bad transition {month}/{weekday}/{day} {hour}:{minute}:{second}")
    return Transition(month, weekday, day, hour, minute, second)


def _rule(bias: int, std_bias: int, dst_bias: int, std: tuple[int, ...],
          dst: tuple[int, ...]) -> Rule:
    """UTC = local + bias (Windows' convention); our offsets are the opposite sign."""
    to_std, to_dst = _transition(std), _transition(dst)
    if (to_std is None) != (to_dst is None):
        raise ZoneError("only one of the two daylight saving transitions is set")
    if abs(bias + std_bias) > 24 * 60 or abs(bias + dst_bias) > 24 * 60:
        raise ZoneError(f"bias out of range ({bias})")
    if to_std is None:
        return Rule(-(bias + std_bias), -(bias + std_bias))
    return Rule(-(bias + std_bias), -(bias + dst_bias), to_std, to_dst)


def parse_tzstruct(blob: bytes, tzid: str) -> Zone:
    """PidLidTimeZoneStruct (MS-OXOCAL 2.2.1.39); it has no name, so `tzid` gives one."""
    try:
        bias, std_bias, dst_bias = struct.unpack_from("<iii", blob, 0)
        std = struct.unpack_from(_SYSTEMTIME, blob, 14)  # after wStandardYear
        dst = struct.unpack_from(_SYSTEMTIME, blob, 32)  # after wDaylightYear
    except struct.error as e:
        raise ZoneError(f"truncated time zone ({e})") from e
    return Zone(tzid, (_rule(bias, std_bias, dst_bias, std, dst),))


def parse_tzdefinition(blob: bytes, fallback_name: str = "") -> Zone:
    """A TZDEFINITION (MS-OXOCAL 2.2.1.41) with all its rules; named by its key name,
    else `fallback_name`."""
    try:
        return _parse_definition(blob, fallback_name)
    except (struct.error, UnicodeDecodeError) as e:
        raise ZoneError(f"truncated time zone ({e})") from e


def _parse_definition(blob: bytes, fallback_name: str) -> Zone:
    major, _minor, header, flags = struct.unpack_from("<BBHH", blob, 0)
    if major != 2:
        raise ZoneError(f"unsupported time zone definition version {major}")
    pos = 6 + (16 if flags & _FLAG_GUID else 0)
    name = fallback_name
    if flags & _FLAG_KEYNAME:
        (chars,) = struct.unpack_from("<H", blob, pos)
        name = blob[pos + 2 : pos + 2 + 2 * chars].decode("utf-16-le")
    (count,) = struct.unpack_from("<H", blob, 4 + header - 2)  # cRules ends the header
    pos = 4 + header
    if count == 0 or len(blob) < pos + count * _TZRULE_SIZE:
        raise ZoneError(f"time zone definition with {count} rules in {len(blob)} bytes")
    raw = [blob[pos + i * _TZRULE_SIZE : pos + (i + 1) * _TZRULE_SIZE] for i in range(count)]
    years = [struct.unpack_from("<H", r, 6)[0] for r in raw]
    if any(b <= a for a, b in itertools.pairwise(years)) or years[-1] > 9999:
        raise ZoneError(f"time zone rules out of order ({years})")
    rules = tuple(_tzrule(r) for r in raw)
    return Zone(name, rules, (0, *years[1:]))  # the first rule also covers earlier years


def _tzrule(rule: bytes) -> Rule:
    major, _minor, _reserved, _flags, _year = struct.unpack_from("<BBHHH", rule, 0)
    if major != 2:
        raise ZoneError(f"unsupported time zone rule version {major}")
    bias, std_bias, dst_bias = struct.unpack_from("<iii", rule, 22)
    std = struct.unpack_from(_SYSTEMTIME, rule, 34)
    dst = struct.unpack_from(_SYSTEMTIME, rule, 50)
    return _rule(bias, std_bias, dst_bias, std, dst)
