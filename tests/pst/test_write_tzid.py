"""A TZID that names an IANA zone without a VTIMEZONE (Google exports, generators, some
CalDAV servers): the writer takes Outlook's zone rules from zoneinfo
(`pim.tzinfo_zone`, [MS-OXOCAL] 2.2.1.39/2.2.1.41), so every occurrence keeps its local
wall-clock time across DST changes; an unknown TZID is reported, not silently UTC."""

from __future__ import annotations

import io
import random
import re
import shutil
import struct
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, available_timezones

import pytest

from pstkit.converters.pim.tzinfo_zone import iana_zone
from pstkit.converters.pim.tzrules import Transition
from pstkit.converters.pim.tzwindows import description, windows_key
from pstkit.converters.pst.props import PS_PSTKIT
from pstkit.converters.pst.tz import parse_tzdefinition, parse_tzstruct
from pstkit.converters.pst.write.check import check
from pstkit.converters.pst.write.events import PSETID_APPOINTMENT, components
from pstkit.converters.pst.write.sink import PstSink
from pstkit.location import Location
from pstkit.model import Delivered, ItemKind
from pstkit.options import ConnectOptions
from pstkit.store import Store
from tests.helpers import cli

from .test_write_calendar import _through_pst, _vevent
from .test_write_cards import calendar, stored
from .test_write_fuzz import stored as meta
from .test_write_pim_foreign import card_text
from .test_write_pim_readers import outlook_named

rr = pytest.importorskip("dateutil.rrule", reason="python-dateutil (dev extra)")
dtz = pytest.importorskip("dateutil.tz", reason="python-dateutil (dev extra)")


@pytest.mark.parametrize(("tzid", "years"), [
    ("Europe/Berlin", range(1996, 2031)),
    ("America/New_York", range(2000, 2031)),  # the 2007 US rule change inside
    ("Australia/Sydney", range(2008, 2031)),  # southern hemisphere
    ("Asia/Kolkata", range(1990, 2031)),  # no DST
    ("Europe/Moscow", range(1997, 2031)),  # DST abolished 2011, +3 again 2014
    ("America/Sao_Paulo", range(2010, 2031)),  # southern, DST abolished 2019
    # Ramadan breaks: 4 changes a year 2012-2018, two Ramadans in 2029 and 2033 (rough
    # years, converted by zoneinfo), one break a year in between (a southern-style rule)
    ("Africa/Casablanca", range(2011, 2036)),
])
def test_rules_match_zoneinfo(tzid: str, years: range) -> None:
    zone, tz = iana_zone(tzid), ZoneInfo(tzid)
    assert zone is not None
    for year in years:
        t = datetime(year, 1, 1, tzinfo=UTC)
        while t.year == year:
            # the hours around New Year pick a year's rule by the zone's first standard
            # offset (`tzrules.Zone.offset_at`): a year that ends on another offset than
            # it began (Moscow 2011) is off there, as Windows' own per-year rules are
            new_year = t.timetuple().tm_yday == 1 or (t.month, t.day) == (12, 31)
            assert new_year or zone.to_local(t) == t.astimezone(tz).replace(tzinfo=None), (tzid, t)
            t += timedelta(hours=5, minutes=30)


def test_rules_as_windows_stores_them() -> None:
    berlin, ny, sydney = (iana_zone(n) for n in ("Europe/Berlin", "America/New_York",
                                                   "Australia/Sydney"))
    assert berlin and ny and sydney
    b = berlin.rule(2026)
    assert (b.standard, b.daylight) == (60, 120)
    assert b.to_daylight == Transition(3, 0, 5, 2, 0)
    assert b.to_standard == Transition(10, 0, 5, 3, 0)
    assert ny.rule(2006).to_daylight == Transition(4, 0, 1, 2, 0)
    assert ny.rule(2007).to_daylight == Transition(3, 0, 2, 2, 0)
    assert sydney.rule(2026).to_standard == Transition(4, 0, 1, 3, 0)
    assert iana_zone("Asia/Kolkata") is not None and iana_zone("Nowhere/Else") is None


def _wall_times(text: str) -> list[datetime]:
    """The series' occurrences in UTC, as dateutil expands them with the calendar's own
    VTIMEZONE when there is one, else zoneinfo."""
    ev = next(c for c in components(text) if c.name == "VEVENT")
    start = ev.first("DTSTART")
    assert start is not None
    tzid = start.param("TZID")
    tz = dtz.tzical(io.StringIO(text)).get(tzid) if "BEGIN:VTIMEZONE" in text else ZoneInfo(tzid)
    first = datetime.strptime(start.value, "%Y%m%dT%H%M%S").replace(tzinfo=tz)
    return [d.astimezone(UTC) for d in rr.rrulestr(ev.text("RRULE"), dtstart=first)]


@pytest.mark.parametrize("seed", range(3))
def test_tzid_only_series_keeps_its_wall_clock(seed: int) -> None:
    rnd = random.Random(seed)
    for _ in range(12):
        tzid = rnd.choice(("Europe/Berlin", "America/New_York", "Australia/Sydney",
                           "Asia/Kolkata", "America/Sao_Paulo"))
        # not 02:00-03:59, the hours DST skips or repeats: there the two expanders
        # (zoneinfo, dateutil's tzical) differ by design, not the written rules
        start = datetime(2015, 1, 1, 4) + timedelta(days=rnd.randrange(3000),
                                                    minutes=15 * rnd.randrange(80))
        days = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
        rule = rnd.choice((f"FREQ=WEEKLY;BYDAY={days[start.weekday()]}", "FREQ=DAILY;INTERVAL=3"))
        text = calendar("", _vevent(
            "UID:z", "DTSTAMP:20260101T000000Z", f"DTSTART;TZID={tzid}:{start:%Y%m%dT%H%M%S}",
            f"DTEND;TZID={tzid}:{start + timedelta(hours=1):%Y%m%dT%H%M%S}", "SUMMARY:s",
            f"RRULE:{rule};COUNT=150"))
        back, notes, _m, _n = _through_pst(text)
        assert notes == [], (seed, tzid, notes)
        assert "BEGIN:VTIMEZONE" in back
        want = _wall_times(text)
        assert want[-1] - want[0] > timedelta(days=365)  # 2+ DST changes in the series
        assert _wall_times(back) == want, (seed, tzid, start)


def test_unknown_tzid_is_reported() -> None:
    text = calendar("", _vevent(
        "UID:u", "DTSTAMP:20260101T000000Z", "DTSTART;TZID=Mars/Olympus:20260105T090000",
        "DTEND;TZID=Mars/Olympus:20260105T100000", "SUMMARY:s", "RRULE:FREQ=WEEKLY;COUNT=3"))
    _back, notes, _m, _n = _through_pst(text)
    assert any("Mars/Olympus" in n and "unknown" in n for n in notes), notes


@pytest.mark.parametrize(("day", "offset", "rough"), [
    ("20290201T100000", 0, True),  # inside the first of 2029's two Ramadan breaks
    ("20150615T100000", 0, True),  # DST and a Ramadan break in one year
    ("20260105T090000", 60, False),  # one break a year: a rule holds it
])
def test_a_year_no_rule_holds_keeps_exact_times_and_is_reported(
        day: str, offset: int, rough: bool) -> None:
    """A year with more changes than Outlook's yearly rule holds: the times written are
    zoneinfo's (the mid-year rule would put a Ramadan-break meeting an hour off), and
    the delivery says Outlook's blobs approximate that year."""
    start = datetime.strptime(day, "%Y%m%dT%H%M%S")
    assert ZoneInfo("Africa/Casablanca").utcoffset(start) == timedelta(minutes=offset)
    text = calendar("", _vevent(
        "UID:c", "DTSTAMP:20260101T000000Z", f"DTSTART;TZID=Africa/Casablanca:{day}",
        f"DTEND;TZID=Africa/Casablanca:{start + timedelta(hours=1):%Y%m%dT%H%M%S}",
        "SUMMARY:s"))
    back, notes, _m, _n = _through_pst(text)
    utc = start - timedelta(minutes=offset)
    assert f"DTSTART:{utc:%Y%m%dT%H%M%S}Z" in back, back
    said = [n for n in notes if "changes more than twice" in n and day[:4] in n]
    assert bool(said) == rough, notes


def test_written_pst_has_the_zone(tmp_path: Path) -> None:
    """PstSink -> file: libpff reads the time zone struct and definitions the writer took
    from zoneinfo, and pstkit's export gives the same occurrences."""
    pytest.importorskip("pypff")
    text = calendar("", _vevent(
        "UID:b", "DTSTAMP:20260101T000000Z", "DTSTART;TZID=Europe/Berlin:20260105T090000",
        "DTEND;TZID=Europe/Berlin:20260105T100000", "SUMMARY:Weekly",
        "RRULE:FREQ=WEEKLY;COUNT=110"))
    out = tmp_path / "tz.pst"
    sink = PstSink(Location("pst", str(out)), ConnectOptions())
    sink.ensure_folder(("Calendar",), None)
    raw = stored("IPM.Appointment", "Weekly", "", "event.ics", "text/calendar", text)
    msg = replace(meta(0), kind=ItemKind.EVENT, folder=("Calendar",))
    result = sink.put_batch(("Calendar",), [(msg, raw)])[0]
    assert isinstance(result, Delivered) and not result.note, result
    sink.close()
    named = outlook_named(out, "IPM.Appointment")
    a = PSETID_APPOINTMENT
    bias, std_bias, dst_bias = struct.unpack_from("<iii", named[(a, 0x8233)][1], 0)
    assert (bias, std_bias, dst_bias) == (-60, 0, -60)  # [MS-OXOCAL] 2.2.1.39, minutes west
    berlin = iana_zone("Europe/Berlin")
    assert berlin is not None
    assert parse_tzstruct(named[(a, 0x8233)][1], "Europe/Berlin").rule(2026) == berlin.rule(2026)
    recur = parse_tzdefinition(named[(a, 0x8260)][1])
    # the key name is the zone's Windows registry key, which Outlook looks up
    assert recur.tzid == "W. Europe Standard Time" and recur.rule(2027) == berlin.rule(2027)
    # display text as Windows shows zones ([MS-OXOCAL] 2.2.1.40), not the IANA name
    assert named[(a, 0x8234)][1].decode("utf-16-le") == "(UTC+01:00) Berlin"
    # the TZID it came with, for the way back
    assert named[(PS_PSTKIT, "Tzid")][1].decode("utf-16-le") == "Europe/Berlin"
    code, _o, err = cli("--quiet", "export", str(out), str(tmp_path / "s"))
    assert code == 0, err
    with Store.open(tmp_path / "s") as st:
        back = next(card_text(st.read(row)) for row in st.rows())
    assert _wall_times(back) == _wall_times(text)
    assert "DTSTART;TZID=Europe/Berlin:20260105T090000" in back
    if shutil.which("readpst"):  # libpst still reads the item
        rp = tmp_path / "rp"
        rp.mkdir()
        subprocess.run(["readpst", "-q", "-j", "0", "-D", "-M", "-o", str(rp), str(out)],
                       check=True, capture_output=True, timeout=120)
        ics = [f.read_text("utf-8", "replace") for f in rp.rglob("*") if f.is_file()]
        assert any("SUMMARY:Weekly" in x and "RRULE:" in x for x in ics), ics
    with out.open("rb") as f:
        assert check(f).findings == []


def test_a_zone_without_windows_name_is_reported() -> None:
    """Antarctica/Troll (zoneinfo has it, CLDR's windowsZones not): the rules are
    written, the name stays the IANA one, and the delivery says so."""
    text = calendar("", _vevent(
        "UID:t", "DTSTAMP:20260101T000000Z", "DTSTART;TZID=Antarctica/Troll:20260105T090000",
        "DTEND;TZID=Antarctica/Troll:20260105T100000", "SUMMARY:s", "RRULE:FREQ=WEEKLY;COUNT=3"))
    back, notes, _m, _n = _through_pst(text)
    assert any("Antarctica/Troll" in n and "no Windows name" in n for n in notes), notes
    assert "BEGIN:VTIMEZONE" in back and "TZID:Antarctica/Troll" in back


@pytest.mark.parametrize(("tzid", "key"), [
    ("Europe/Berlin", "W. Europe Standard Time"), ("America/New_York", "Eastern Standard Time"),
    ("Asia/Kolkata", "India Standard Time"), ("Australia/Sydney", "AUS Eastern Standard Time"),
    ("Europe/Moscow", "Russian Standard Time"), ("Africa/Casablanca", "Morocco Standard Time"),
    ("UTC", "UTC"),
    # not an IANA name: kept as it is
    ("W. Europe Standard Time", "W. Europe Standard Time"), ("Mars/Olympus", "Mars/Olympus")])
def test_windows_key_names(tzid: str, key: str) -> None:
    assert windows_key(tzid) == key


@pytest.mark.parametrize(("tzid", "minutes", "text"), [
    ("Europe/Berlin", 60, "(UTC+01:00) Berlin"),
    ("America/New_York", -300, "(UTC-05:00) New York"),
    ("America/Argentina/Buenos_Aires", -180, "(UTC-03:00) Buenos Aires"),
    ("Asia/Kolkata", 330, "(UTC+05:30) Kolkata"),
    ("America/St_Johns", -210, "(UTC-03:30) St Johns"),
    ("Asia/Kathmandu", 345, "(UTC+05:45) Kathmandu"), ("UTC", 0, "(UTC+00:00) UTC"),
    ("Brazil/Acre", -300, "(UTC-05:00) Acre"), ("Etc/GMT+5", -300, "(UTC-05:00) GMT+5"),
    ("/mozilla.org/20050126_1/America/New_York", -300, "(UTC-05:00) New York"),
    # not an IANA zone: the name as it is
    ("Mars/Olympus", 0, "(UTC+00:00) Mars/Olympus"), ("My Zone_1", 0, "(UTC+00:00) My Zone_1"),
    ("W. Europe Standard Time", 60, "(UTC+01:00) W. Europe Standard Time")])
def test_zone_description_is_display_text(tzid: str, minutes: int, text: str) -> None:
    assert description(tzid, minutes) == text


def test_zone_description_of_every_iana_zone_names_its_place() -> None:
    """Every zone zoneinfo knows gets a description in Windows' format with its place and
    no path or underscore left (a Windows-style display name)."""
    for n, tzid in enumerate(sorted(available_timezones())):
        minutes = (n % 49 - 24) * 30  # offsets from -12:00 to +12:00, the sign's both ways
        text = description(tzid, minutes)
        sign = "-" if minutes < 0 else "+"
        head = f"(UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}) "
        assert text.startswith(head) and re.fullmatch(r"[^/_]+", text[len(head):]), (tzid, text)
