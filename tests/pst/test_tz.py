"""pst_tz: Outlook time zone blobs -> VTIMEZONE; recurring events keep their local time.

Blobs are built here by hand after MS-OXOCAL 2.2.1.39 (TZSTRUCT) and 2.2.1.41
(TZDEFINITION/TZRULE) with the rules Windows ships for each zone; the zone
they describe is checked against Python's zoneinfo, and the VTIMEZONE written
from it against python-dateutil's independent iCalendar reader.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pstkit.converters.graph.pim.event import event
from pstkit.converters.pim.ical_tz import vtimezone, zones_in
from pstkit.converters.pim.tzrules import Rule, Transition, Zone, ZoneError, clean_tzid
from pstkit.converters.pst.ical import event_ics
from pstkit.converters.pst.props import Props
from pstkit.converters.pst.tz import parse_tzdefinition, parse_tzstruct
from tests.pst.test_ical import WEEKLY, recur_blob
from tests.pst.test_source import export_all, fetched, parse, payload

SUN, FRI = 0, 5


def systemtime(month: int = 0, dow: int = 0, nth: int = 0, hour: int = 0, minute: int = 0,
               year: int = 0) -> bytes:
    return struct.pack("<8H", year, month, dow, nth, hour, minute, 0, 0)


def tzrule(bias: int, dst_bias: int = 0, std: bytes = b"", dst: bytes = b"", *,
           year: int = 0, flags: int = 0, major: int = 2) -> bytes:
    return (struct.pack("<BBHHH", major, 1, 0x3E, flags, year) + bytes(14)
            + struct.pack("<iii", bias, 0, dst_bias)
            + (std or systemtime()) + (dst or systemtime()))  # fmt: skip


def tzdef(name: str, *rules: bytes, guid: bool = False, major: int = 2) -> bytes:
    head = (struct.pack("<H", 2 | (1 if guid else 0)) + (bytes(range(16)) if guid else b"")
            + struct.pack("<H", len(name)) + name.encode("utf-16-le")
            + struct.pack("<H", len(rules)))  # fmt: skip
    return struct.pack("<BBH", major, 1, len(head)) + head + b"".join(rules)


def tzstruct(bias: int, dst_bias: int = 0, std: bytes = b"", dst: bytes = b"") -> bytes:
    return (struct.pack("<iiiH", bias, 0, dst_bias, 0) + (std or systemtime())
            + struct.pack("<H", 0) + (dst or systemtime()))  # fmt: skip


# Windows' rules: name, bias, (standard: month, dow, nth, hour), (daylight: ...), IANA zone
ZONES = {
    "Europe/Berlin": tzdef("W. Europe Standard Time", tzrule(
        -60, -60, systemtime(10, SUN, 5, 3), systemtime(3, SUN, 5, 2))),
    "America/New_York": tzdef("Eastern Standard Time", tzrule(
        300, -60, systemtime(11, SUN, 1, 2), systemtime(3, SUN, 2, 2))),
    "Australia/Sydney": tzdef("AUS Eastern Standard Time", tzrule(
        -600, -60, systemtime(4, SUN, 1, 3), systemtime(10, SUN, 1, 2)), guid=True),
    "Asia/Tokyo": tzdef("Tokyo Standard Time", tzrule(-540)),
}  # fmt: skip


@pytest.mark.parametrize(("iana", "expected"), [
    ("Europe/Berlin", Zone("W. Europe Standard Time", (Rule(
        60, 120, Transition(10, SUN, 5, 3, 0), Transition(3, SUN, 5, 2, 0)),))),
    ("America/New_York", Zone("Eastern Standard Time", (Rule(
        -300, -240, Transition(11, SUN, 1, 2, 0), Transition(3, SUN, 2, 2, 0)),))),
    ("Australia/Sydney", Zone("AUS Eastern Standard Time", (Rule(
        600, 660, Transition(4, SUN, 1, 3, 0), Transition(10, SUN, 1, 2, 0)),))),
    ("Asia/Tokyo", Zone("Tokyo Standard Time", (Rule(540, 540),))),
])  # fmt: skip
def test_parse_tzdefinition(iana: str, expected: Zone) -> None:
    assert parse_tzdefinition(ZONES[iana]) == expected


def test_tzstruct_has_no_name_and_takes_the_given_one() -> None:
    blob = tzstruct(480, -60, systemtime(11, SUN, 1, 2), systemtime(3, SUN, 2, 2))
    assert parse_tzstruct(blob, "Pacific") == Zone("Pacific", (Rule(
        -480, -420, Transition(11, SUN, 1, 2, 0), Transition(3, SUN, 2, 2, 0)),))
    assert parse_tzstruct(tzstruct(-330), "India") == Zone("India", (Rule(330, 330),))


# US Eastern before and from the 2007 change, as Windows' dynamic zone has it
EASTERN = tzdef("Eastern Standard Time",
                tzrule(300, -60, systemtime(10, SUN, 5, 2), systemtime(4, SUN, 1, 2), year=2006),
                tzrule(300, -60, systemtime(11, SUN, 1, 2), systemtime(3, SUN, 2, 2), year=2007))
# Pakistan: no DST, then two years with (different) DST, then none again
PAKISTAN = tzdef("Pakistan Standard Time", tzrule(-300, year=1),
                 tzrule(-300, -60, systemtime(10, FRI, 5, 23), systemtime(5, 6, 5, 23), year=2008),
                 tzrule(-300, -60, systemtime(10, 6, 5, 23), systemtime(4, 2, 2, 23), year=2009),
                 tzrule(-300, year=2010))  # fmt: skip


def test_each_year_has_its_rule() -> None:
    zone = parse_tzdefinition(EASTERN)
    assert zone.years == (0, 2007)
    for year, month in ((1990, 4), (2006, 4), (2007, 3), (2030, 3)):
        to_daylight = zone.rule(year).to_daylight
        assert to_daylight is not None and to_daylight.month == month
    assert parse_tzdefinition(PAKISTAN).years == (0, 2008, 2009, 2010)


def test_eastern_across_the_2007_change_agrees_with_zoneinfo() -> None:
    zone, ref = parse_tzdefinition(EASTERN), ZoneInfo("America/New_York")
    start = datetime(2005, 1, 1, tzinfo=UTC)
    for hour in range(0, 4 * 366 * 24, 1):
        utc = start + timedelta(hours=hour)
        assert zone.to_local(utc) == utc.astimezone(ref).replace(tzinfo=None), utc


@pytest.mark.parametrize("blob", [
    b"", b"\x02\x01", ZONES["Asia/Tokyo"][:-10],
    tzdef("X", tzrule(-60), major=3), tzdef("X", tzrule(-60, major=1)), tzdef("X"),
    tzdef("X", tzrule(-60, -60, systemtime(10, SUN, 5, 3), systemtime(3, SUN, 5, 2, year=2024))),
    tzdef("X", tzrule(-60, -60, systemtime(10, SUN, 5, 3))),  # one transition only
    tzdef("X", tzrule(-60, -60, systemtime(13, SUN, 5, 3), systemtime(3, SUN, 5, 2))),
    tzdef("X", tzrule(-60, -60, systemtime(10, SUN, 6, 3), systemtime(3, SUN, 5, 2))),
    tzdef("X", tzrule(100_000)),
    tzdef("X", tzrule(-60, year=2010), tzrule(-60, year=2009)),  # rules out of order
    tzdef("X", tzrule(-60, year=2010), tzrule(-60, year=10_000)),  # no such year
])  # fmt: skip
def test_bad_tzdefinition(blob: bytes) -> None:
    with pytest.raises(ZoneError):
        parse_tzdefinition(blob)


def test_bad_tzstruct() -> None:
    with pytest.raises(ZoneError):
        parse_tzstruct(tzstruct(-60)[:40], "X")


@pytest.mark.parametrize(("name", "tzid"), [
    ("W. Europe Standard Time", "W. Europe Standard Time"),
    ("(UTC-08:00) Pacific Time (US & Canada)", "(UTC-08 00) Pacific Time (US & Canada)"),
    ('a"b;c\r\nd', "a b c d"), ("  ", ""),
])  # fmt: skip
def test_clean_tzid(name: str, tzid: str) -> None:
    assert clean_tzid(name) == tzid


@pytest.mark.parametrize("iana", sorted(ZONES))
def test_zone_agrees_with_zoneinfo_every_hour(iana: str) -> None:
    zone, ref = parse_tzdefinition(ZONES[iana]), ZoneInfo(iana)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for hour in range(366 * 24):
        utc = start + timedelta(hours=hour)
        local = utc.astimezone(ref).replace(tzinfo=None)
        assert zone.to_local(utc) == local, utc
        wall = datetime(2025, 1, 1) + timedelta(hours=hour, minutes=30)  # gaps, overlaps too
        assert zone.to_utc(wall) == wall.replace(tzinfo=ref).astimezone(UTC), wall


def _their_zone(zone: Zone) -> tzinfo:
    """python-dateutil's reading of the VTIMEZONE we write for `zone`."""
    tz = pytest.importorskip("dateutil.tz", reason="python-dateutil (dev extra)")
    text = "\r\n".join(["BEGIN:VCALENDAR", *vtimezone(zone), "END:VCALENDAR", ""])
    theirs = tz.tzical(io.StringIO(text)).get(zone.tzid)
    assert isinstance(theirs, tzinfo)
    return theirs


@pytest.mark.parametrize(("blob", "iana", "first"), [
    *((ZONES[iana], iana, 2024) for iana in sorted(ZONES)),
    (EASTERN, "America/New_York", 2004),  # 2004-2006: the old rule, then the new one
])  # fmt: skip
def test_vtimezone_read_by_dateutil_matches_zoneinfo(blob: bytes, iana: str, first: int) -> None:
    zone, ref = parse_tzdefinition(blob), ZoneInfo(iana)
    theirs = _their_zone(zone)
    for day in range(0, 5 * 365):
        local = datetime(first, 1, 1, 9, 0) + timedelta(days=day)
        assert local.replace(tzinfo=theirs).utcoffset() == local.replace(tzinfo=ref).utcoffset()


def test_rules_that_end_read_by_dateutil_as_we_read_them() -> None:
    # zoneinfo's Asia/Karachi has the real 2008/2009 dates, not Windows' approximation
    zone = parse_tzdefinition(PAKISTAN)
    theirs = _their_zone(zone)
    for day in range(0, 5 * 365):
        local = datetime(2006, 1, 1, 12, 0) + timedelta(days=day)
        ours = timedelta(minutes=zone.offset_at(zone.to_utc(local)))
        assert local.replace(tzinfo=theirs).utcoffset() == ours, local
    assert {zone.offset_at(datetime(y, 7, 1, tzinfo=UTC)) for y in (2007, 2010)} == {300}
    assert {zone.offset_at(datetime(y, 7, 1, tzinfo=UTC)) for y in (2008, 2009)} == {360}


@pytest.mark.parametrize("blob", [*ZONES.values(), EASTERN, PAKISTAN])
def test_vtimezone_reads_back(blob: bytes) -> None:
    zone = parse_tzdefinition(blob)
    assert zones_in("\r\n".join(vtimezone(zone))) == {zone.tzid: zone}


def test_vtimezone_lines() -> None:
    assert vtimezone(parse_tzdefinition(ZONES["Europe/Berlin"])) == [
        "BEGIN:VTIMEZONE", "TZID:W. Europe Standard Time",
        "BEGIN:STANDARD", "DTSTART:16011028T030000", "TZOFFSETFROM:+0200", "TZOFFSETTO:+0100",
        "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU", "END:STANDARD",
        "BEGIN:DAYLIGHT", "DTSTART:16010325T020000", "TZOFFSETFROM:+0100", "TZOFFSETTO:+0200",
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU", "END:DAYLIGHT", "END:VTIMEZONE"]  # fmt: skip


def test_zones_in_reads_what_vtimezone_writes_and_skips_other_shapes() -> None:
    berlin, tokyo = (parse_tzdefinition(ZONES[z]) for z in ("Europe/Berlin", "Asia/Tokyo"))
    # Outlook-style zones with fixed dates only (no RRULE), as Aspose writes them
    fixed = ["BEGIN:VTIMEZONE", "TZID:Pakistan Standard Time", "BEGIN:STANDARD",
             "DTSTART:16010101T000000", "TZOFFSETFROM:+0600", "TZOFFSETTO:+0500", "END:STANDARD",
             "BEGIN:DAYLIGHT", "DTSTART:16010101T000000", "TZOFFSETFROM:+0500",
             "TZOFFSETTO:+0600", "END:DAYLIGHT", "END:VTIMEZONE"]  # fmt: skip
    text = "\r\n".join(["BEGIN:VCALENDAR", *vtimezone(berlin), *fixed, *vtimezone(tokyo),
                         "BEGIN:VEVENT", "TZID:not a zone", "END:VEVENT", "END:VCALENDAR"])
    folded = text.replace("TZID:W. Europe", "TZID:W.\r\n  Europe")
    assert zones_in(folded) == {berlin.tzid: berlin, tokyo.tzid: tokyo}


def _usable(blob: bytes) -> None:
    """A blob either is refused with ZoneError or gives a zone that works throughout."""
    try:
        zone = parse_tzdefinition(blob, "fallback")
    except ZoneError:
        return
    assert zones_in("\r\n".join(vtimezone(zone))).get(zone.tzid, zone) == zone
    for utc in (datetime(1990, 3, 1, tzinfo=UTC), datetime(2024, 10, 27, 1, tzinfo=UTC)):
        zone.to_utc(zone.to_local(utc))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([*ZONES.values(), EASTERN, PAKISTAN]), st.data())
def test_damaged_blobs_are_refused_or_usable(blob: bytes, data: st.DataObject) -> None:
    at = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
    value = data.draw(st.integers(min_value=0, max_value=255))
    _usable(blob[:at] + bytes([value]) + blob[at + 1 :])
    _usable(blob[:at])


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_blobs_never_break_an_event(blob: bytes) -> None:
    _usable(blob)
    props = weekly_friday(blob, datetime(2024, 1, 5, 8, 0, tzinfo=UTC))
    assert event_ics(props, "f").endswith("END:VCALENDAR\r\n")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="BEGIN:VTIMEZONESTANDARDDAYLIGHTZOFFSET RULEFREQ=;+-0123456789\r\n",
               max_size=400))
def test_zones_in_takes_any_text(text: str) -> None:
    zones_in("BEGIN:VTIMEZONE\r\nTZID:x\r\n" + text)


# --- recurring events ------------------------------------------------------------------

BERLIN = "W. Europe Standard Time"


def weekly_friday(zone_blob: bytes | None, start: datetime, *, deleted: tuple[datetime, ...] = (),
                  modified: tuple[datetime, ...] = (), **extra: object) -> Props:
    local = start.astimezone(ZoneInfo("Europe/Berlin"))
    blob = recur_blob(WEEKLY, 1, 1, struct.pack("<I", 1 << FRI), deleted=deleted,
                      modified=modified, start_offset=local.hour * 60 + local.minute)
    values: dict[str | int, object] = {
        0x0037: "Weekly", "Start": start, "End": start + timedelta(hours=1), "Recurring": True,
        "AppointmentRecur": blob}
    values.update(extra)
    if zone_blob is not None:
        values["TzDefRecur"] = zone_blob
    return Props(values)


def berlin_fridays() -> str:
    """Fridays 09:00 Berlin from 5 Jan 2024 (08:00Z); 5 Jul deleted, 14 Jun moved to 11:00."""
    series = weekly_friday(ZONES["Europe/Berlin"], datetime(2024, 1, 5, 8, 0, tzinfo=UTC),
                           deleted=(datetime(2024, 7, 5), datetime(2024, 6, 14)),
                           modified=(datetime(2024, 6, 14),))
    moved = Props({"ExceptionReplaceTime": datetime(2024, 6, 14, 7, 0, tzinfo=UTC),
                   "Start": datetime(2024, 6, 14, 9, 0, tzinfo=UTC),
                   "End": datetime(2024, 6, 14, 10, 0, tzinfo=UTC)})
    return event_ics(series, "u1", "", (moved,))


def test_winter_series_keeps_its_local_hour_in_summer() -> None:
    ics = berlin_fridays()
    lines = ics.split("\r\n")
    assert lines.index("BEGIN:VTIMEZONE") < lines.index("BEGIN:VEVENT")
    for line in (f"DTSTART;TZID={BERLIN}:20240105T090000", f"DTEND;TZID={BERLIN}:20240105T100000",
                 f"EXDATE;TZID={BERLIN}:20240705T090000",
                 f"RECURRENCE-ID;TZID={BERLIN}:20240614T090000",
                 f"DTSTART;TZID={BERLIN}:20240614T110000"):
        assert line in lines
    assert sum(line.startswith("EXDATE") for line in lines) == 1
    assert not any(line.endswith("Z") and line.startswith(("DTSTART", "DTEND", "EXDATE",
                                                           "RECURRENCE-ID")) for line in lines)
    _occurrences_keep_local_hour(ics, 9)


def _occurrences_keep_local_hour(ics: str, hour: int) -> None:
    """Expand the series with dateutil, reading the VTIMEZONE from the text itself."""
    tz = pytest.importorskip("dateutil.tz", reason="python-dateutil (dev extra)")
    rr = pytest.importorskip("dateutil.rrule", reason="python-dateutil (dev extra)")
    lines = ics.split("\r\n")
    lines = lines[lines.index("BEGIN:VEVENT"):]  # the series, not the VTIMEZONE's rules
    zone = tz.tzical(io.StringIO(ics)).get(BERLIN)
    start = datetime.strptime(next(x for x in lines if x.startswith("DTSTART;"))[-15:],
                              "%Y%m%dT%H%M%S").replace(tzinfo=zone)
    rule = next(x for x in lines if x.startswith("RRULE:")).removeprefix("RRULE:")
    dates = list(rr.rrulestr(rule, dtstart=start).between(start, start + timedelta(days=365)))
    assert len(dates) == 52 and all(d.hour == hour for d in dates)
    offsets = {d.utcoffset() for d in dates}
    assert offsets == {timedelta(hours=1), timedelta(hours=2)}  # across both DST changes


def test_graph_reads_the_zone_back() -> None:
    item = event(berlin_fridays())
    assert item.body["start"] == {"dateTime": "2024-01-05T09:00:00", "timeZone": BERLIN}
    assert item.body["recurrence"]["range"]["recurrenceTimeZone"] == BERLIN
    assert item.notes == ()
    # occurrences are identified by their UTC start: 09:00 Berlin is 07:00Z in summer
    assert [(x["original"], x["patch"] is None) for x in item.later] == [
        ("2024-07-05T07:00:00Z", True), ("2024-06-14T07:00:00Z", False)]
    assert item.later[1]["patch"]["start"] == {"dateTime": "2024-06-14T11:00:00",
                                               "timeZone": BERLIN}


def test_southern_series_across_new_year() -> None:
    # Sydney: Fridays 09:00 from July (UTC+10); in January (UTC+11) 09:00 is 22:00Z the day before
    start = datetime(2024, 7, 4, 23, 0, tzinfo=UTC)
    blob = recur_blob(WEEKLY, 1, 1, struct.pack("<I", 1 << FRI), start_offset=9 * 60,
                      deleted=(datetime(2025, 1, 10),))
    props = Props({"Start": start, "End": start + timedelta(hours=1), "Recurring": True,
                   "AppointmentRecur": blob, "TzDefRecur": ZONES["Australia/Sydney"]})
    ics = event_ics(props, "s")
    aus = "AUS Eastern Standard Time"
    assert f"DTSTART;TZID={aus}:20240705T090000\r\n" in ics
    assert f"EXDATE;TZID={aus}:20250110T090000\r\n" in ics
    assert [x["original"] for x in event(ics).later] == ["2025-01-09T22:00:00Z"]


def test_tzstruct_with_description_when_there_is_no_definition() -> None:
    pacific = tzstruct(480, -60, systemtime(11, SUN, 1, 2), systemtime(3, SUN, 2, 2))
    start = datetime(2024, 1, 5, 17, 0, tzinfo=UTC)
    props = weekly_friday(None, start, TimeZoneStruct=pacific,
                          TimeZoneDescription="(UTC-08:00) Pacific Time (US & Canada)")
    ics = event_ics(props, "p")
    assert "DTSTART;TZID=(UTC-08 00) Pacific Time (US & Canada):20240105T090000\r\n" in ics
    assert "TZID:(UTC-08 00) Pacific Time (US & Canada)\r\n" in ics
    # without a name to give it, the zone is not used
    nameless = weekly_friday(None, start, TimeZoneStruct=pacific)
    assert "DTSTART:20240105T170000Z\r\n" in event_ics(nameless, "p")


def test_all_day_series_uses_local_dates() -> None:
    # all day from Friday 5 Jan (Berlin midnight = 23:00Z on the 4th)
    start = datetime(2024, 1, 4, 23, 0, tzinfo=UTC)
    blob = recur_blob(WEEKLY, 1, 1, struct.pack("<I", 1 << FRI), start_offset=0,
                      deleted=(datetime(2024, 7, 5),))
    props = Props({"Start": start, "End": start + timedelta(days=1), "AllDay": True,
                   "Recurring": True, "AppointmentRecur": blob,
                   "TzDefRecur": ZONES["Europe/Berlin"]})
    moved = Props({"ExceptionReplaceTime": datetime(2024, 6, 13, 22, 0, tzinfo=UTC),
                   "Start": datetime(2024, 6, 14, 22, 0, tzinfo=UTC),
                   "End": datetime(2024, 6, 15, 22, 0, tzinfo=UTC)})
    ics = event_ics(props, "d", "", (moved,))
    for line in ("DTSTART;VALUE=DATE:20240105", "DTEND;VALUE=DATE:20240106",
                 "EXDATE;VALUE=DATE:20240705", "RECURRENCE-ID;VALUE=DATE:20240614",
                 "DTSTART;VALUE=DATE:20240615"):
        assert f"\r\n{line}\r\n" in ics
    # without the zone: as before, UTC dates and a UTC RECURRENCE-ID
    utc = event_ics(Props({k: v for k, v in props.values.items() if k != "TzDefRecur"}), "d",
                    "", (moved,))  # fmt: skip
    assert "\r\nDTSTART;VALUE=DATE:20240104\r\n" in utc
    assert "\r\nRECURRENCE-ID:20240613T220000Z\r\n" in utc


def test_unreadable_zone_keeps_utc_with_a_note() -> None:
    start = datetime(2024, 1, 5, 8, 0, tzinfo=UTC)
    plain = event_ics(weekly_friday(None, start), "u")
    broken = event_ics(weekly_friday(b"\x02\x01\x30\x00", start), "u")
    assert "DTSTART:20240105T080000Z\r\n" in broken and "VTIMEZONE" not in broken
    assert "X-PSTKIT-NOTE:time zone unreadable (truncated time zone" in broken
    unfolded = broken.replace("\r\n ", "")
    note = next(x for x in unfolded.split("\r\n") if x.startswith("X-PSTKIT-NOTE"))
    assert unfolded.replace(note + "\r\n", "") == plain


def test_single_events_and_unreadable_recurrences_stay_utc_byte_for_byte() -> None:
    start = datetime(2024, 7, 5, 7, 0, tzinfo=UTC)
    single: dict[str | int, object] = {0x0037: "Once", "Start": start,
                                       "End": start + timedelta(hours=1)}
    zone: dict[str | int, object] = {"TzDefRecur": ZONES["Europe/Berlin"],
                                     "TzDefStart": ZONES["Europe/Berlin"],
                                     "TimeZoneDescription": "Berlin"}
    assert event_ics(Props({**single, **zone}), "x") == event_ics(Props(single), "x")
    bad: dict[str | int, object] = {**single, "Recurring": True, "AppointmentRecur": b"\x00"}
    assert event_ics(Props({**bad, **zone}), "x") == event_ics(Props(bad), "x")


# --- corpus ----------------------------------------------------------------------------


def calendars(path: Path) -> list[str]:
    """The iCalendar text of every event exported from a PST (not .ics files that mails
    carry as attachments)."""
    out = []
    for results in export_all(path).values():
        for r in fetched(results):
            for part in parse(r.raw).walk():
                text = payload(part) if part.get_content_type() == "text/calendar" else b""
                if b"\r\nPRODID:-//pstkit//" in text:
                    out.append(text.decode("utf-8"))
    return out


def test_corpus_only_recurring_events_get_a_zone(corpus: Path) -> None:
    recurring: list[str] = []
    single: list[str] = []
    for pst in sorted((corpus / "pst").glob("*.[po]st")):
        if pst.name.startswith("aspose_Adding"):  # its header is damaged on purpose
            continue
        for ics in calendars(pst):
            (recurring if "\r\nRRULE:" in ics else single).append(ics)
    assert len(recurring) == 1 and "TZID:Pacific Standard Time\r\n" in recurring[0]
    # the SampleOstFile meeting requests and aspose_source's appointment carry zones
    # (Pakistan, Tashkent) but are single events: UTC, as before
    assert len(single) >= 2
    assert all("TZID" not in ics and "\r\nDTSTART:" in ics for ics in single)


def test_dist_list_series_in_pacific_time(corpus: Path, tmp_path: Path) -> None:
    (ics,) = calendars(corpus / "pst" / "dist-list.pst")
    lines = ics.split("\r\n")
    # Pacific time's two rules: until 2006 (April-October), from 2007 (March-November)
    assert [x for x in lines if x.startswith("RRULE:FREQ=YEARLY")] == [
        "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU;UNTIL=20061029T090000Z",
        "RRULE:FREQ=YEARLY;BYMONTH=4;BYDAY=1SU;UNTIL=20060402T100000Z",
        "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU", "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU"]
    pst = "TZID=Pacific Standard Time"
    assert f"DTSTART;{pst}:20160802T080000" in lines
    assert f"EXDATE;{pst}:20160809T080000" in lines
    # the exceptions were written "at 9" and "at 10" local time
    assert f"DTSTART;{pst}:20160823T090000" in lines and f"DTSTART;{pst}:20160830T100000" in lines
    zone = zones_in(ics)["Pacific Standard Time"]
    assert zone.years == (0, 2007)
    assert zone.to_utc(datetime(2016, 8, 2, 8, 0)) == datetime(2016, 8, 2, 15, 0, tzinfo=UTC)
    if shutil.which("readpst") is None:
        return
    subprocess.run(["readpst", "-j", "0", "-D", "-M", "-o", str(tmp_path),
                    str(corpus / "pst" / "dist-list.pst")], check=True, capture_output=True)
    theirs = next(tmp_path.rglob("Calendar/1")).read_text(errors="replace")
    assert "DTSTART;VALUE=DATE-TIME:20160802T150000Z" in theirs  # readpst writes UTC
