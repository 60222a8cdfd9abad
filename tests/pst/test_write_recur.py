"""The recurrence and time zone blobs the PST writer makes (`pst.write.recur`), read back
by the reader's decoders (`pst.ical.parse_recurrence`, `pst.tz`): table tests and seeded
random rules."""

from __future__ import annotations

import random
import struct
from datetime import date, datetime, timedelta

import pytest

from pstkit.converters.pim.tzrules import Rule, Transition, Zone
from pstkit.converters.pst.ical import parse_recurrence
from pstkit.converters.pst.tz import parse_tzdefinition, parse_tzstruct
from pstkit.converters.pst.write.recur import (
    Changed,
    RecurrenceError,
    occurrences,
    pattern,
    recurrence_blob,
    series_end,
    tzdefinition,
    tzstruct,
)

START, END = datetime(2016, 8, 2, 8, 0), datetime(2016, 8, 2, 8, 30)  # a Tuesday


@pytest.mark.parametrize(("rule", "read"), [
    ("FREQ=WEEKLY;INTERVAL=1;BYDAY=TU;WKST=SU", "FREQ=WEEKLY;INTERVAL=1;BYDAY=TU;WKST=SU"),
    ("FREQ=DAILY;INTERVAL=2;COUNT=5", "FREQ=DAILY;INTERVAL=2;COUNT=5;WKST=SU"),
    ("FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;WKST=MO",
     "FREQ=DAILY;INTERVAL=1;BYDAY=MO,TU,WE,TH,FR;WKST=MO"),
    ("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR;UNTIL=20160901T000000Z",
     "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,FR;COUNT=4;WKST=SU"),  # Outlook keeps a count
    ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=2;UNTIL=20170101",
     "FREQ=MONTHLY;INTERVAL=1;BYDAY=MO;BYSETPOS=2;COUNT=5;WKST=SU"),
    ("FREQ=MONTHLY;BYDAY=-1FR;COUNT=3",
     "FREQ=MONTHLY;INTERVAL=1;BYDAY=FR;BYSETPOS=-1;COUNT=3;WKST=SU"),
    ("FREQ=MONTHLY;BYMONTHDAY=15", "FREQ=MONTHLY;INTERVAL=1;BYMONTHDAY=15;WKST=SU"),
    ("FREQ=MONTHLY", "FREQ=MONTHLY;INTERVAL=1;BYMONTHDAY=2;WKST=SU"),
    ("FREQ=YEARLY;BYMONTHDAY=-1", "FREQ=YEARLY;INTERVAL=1;BYMONTH=8;BYMONTHDAY=-1;WKST=SU"),
    ("FREQ=YEARLY;INTERVAL=2;BYMONTH=8;BYDAY=1TU",
     "FREQ=YEARLY;INTERVAL=2;BYMONTH=8;BYDAY=TU;BYSETPOS=1;WKST=SU"),
])  # fmt: skip
def test_rules_read_back(rule: str, read: str) -> None:
    rec = parse_recurrence(recurrence_blob(rule, START, END))
    assert rec.rrule == read
    assert rec.start_offset == 8 * 60


@pytest.mark.parametrize("rule", ["FREQ=HOURLY", "FREQ=WEEKLY;BYHOUR=3", "FREQ=YEARLY;BYMONTH=3",
                                  "FREQ=MONTHLY;BYDAY=3MO,1TU", "FREQ=DAILY;INTERVAL=0",
                                  "FREQ=MONTHLY;BYMONTHDAY=1,15", "FREQ=DAILY;COUNT=0"])
def test_rules_outlook_cannot_express_are_refused(rule: str) -> None:
    with pytest.raises(RecurrenceError):
        recurrence_blob(rule, START, END)


def test_deleted_and_changed_occurrences() -> None:
    moved = Changed(datetime(2016, 8, 23, 8), datetime(2016, 8, 23, 9),
                    datetime(2016, 8, 23, 9, 30), "Später", "Room 2")
    blob = recurrence_blob("FREQ=WEEKLY;BYDAY=TU;COUNT=10", START, END, [date(2016, 8, 9)], [moved])
    rec = parse_recurrence(blob)
    assert rec.deleted == (datetime(2016, 8, 9), datetime(2016, 8, 23))
    assert rec.modified == (datetime(2016, 8, 23),)
    # the ExtendedException carries the subject in UTF-16 ([MS-OXOCAL] 2.2.1.44.3)
    assert "Später".encode("utf-16-le") in blob and "Room 2".encode("utf-16-le") in blob
    assert blob.endswith(b"\0\0\0\0")


def test_end_dates() -> None:
    assert series_end("FREQ=WEEKLY;BYDAY=TU;COUNT=3", START.date()) == date(2016, 8, 16)
    assert series_end("FREQ=MONTHLY;BYMONTHDAY=31;COUNT=2", START.date()) == date(2016, 9, 30)
    assert series_end("FREQ=DAILY", START.date()) is None
    p = pattern("FREQ=MONTHLY;BYMONTHDAY=31", date(2016, 1, 31))
    first = list(zip(range(3), occurrences(p, date(2016, 1, 31)), strict=False))
    assert [d for _i, d in first] == [date(2016, 1, 31), date(2016, 2, 29), date(2016, 3, 31)]


@pytest.mark.parametrize("seed", range(5))
def test_random_rules_read_back(seed: int) -> None:
    rnd = random.Random(seed)
    days = ("SU", "MO", "TU", "WE", "TH", "FR", "SA")
    for _ in range(60):
        start = datetime(2000, 1, 1) + timedelta(days=rnd.randrange(12000), minutes=15 *
                                                 rnd.randrange(96))
        end = start + timedelta(minutes=30 * rnd.randrange(1, 10))
        freq = rnd.choice(("DAILY", "WEEKLY", "MONTHLY", "YEARLY"))
        n, count, wkst = rnd.randrange(1, 5), rnd.randrange(1, 30), rnd.choice(days)
        by = ""
        if freq == "WEEKLY":
            picked = sorted(rnd.sample(range(7), rnd.randrange(1, 8)))
            by = ";BYDAY=" + ",".join(days[i] for i in picked)
        elif freq == "MONTHLY" and rnd.random() < 0.5:
            by = f";BYDAY={days[rnd.randrange(7)]};BYSETPOS={rnd.choice((1, 2, 3, 4, -1))}"
        rule = f"FREQ={freq};INTERVAL={n}{by};COUNT={count};WKST={wkst}"
        p = pattern(rule, start.date())
        dates = [d for _i, d in zip(range(count), occurrences(p, start.date()), strict=False)]
        gone = sorted(rnd.sample(dates, min(len(dates), rnd.randrange(3))))
        rec = parse_recurrence(recurrence_blob(rule, start, end, gone))
        expect = rule if freq != "MONTHLY" or by else rule.replace(
            ";COUNT", f";BYMONTHDAY={start.day};COUNT")
        if freq == "YEARLY":
            expect = rule.replace(f"INTERVAL={n}",
                                  f"INTERVAL={n};BYMONTH={start.month};BYMONTHDAY={start.day}")
        assert rec.rrule == expect, (seed, rule)
        assert rec.deleted == tuple(datetime.combine(d, datetime.min.time()) for d in gone)
        assert rec.start_offset == start.hour * 60 + start.minute
        assert len(dates) == count and dates == sorted(set(dates))


US = Rule(-480, -420, Transition(11, 0, 1, 2, 0), Transition(3, 0, 2, 2, 0))
US_OLD = Rule(-480, -420, Transition(10, 0, 5, 2, 0), Transition(4, 0, 1, 2, 0))


@pytest.mark.parametrize("zone", [
    Zone("Pacific Standard Time", (US_OLD, US), (0, 2007)),
    Zone("W. Europe Standard Time", (Rule(60, 120, Transition(10, 0, 5, 3, 0),
                                         Transition(3, 0, 5, 2, 0)),)),
    Zone("India Standard Time", (Rule(330, 330),)),
    Zone("AUS Eastern Standard Time", (Rule(600, 660, Transition(4, 0, 1, 3, 0),
                                           Transition(10, 0, 1, 2, 0)),)),
])  # fmt: skip
def test_time_zone_blobs_read_back(zone: Zone) -> None:
    assert parse_tzdefinition(tzdefinition(zone, 2016)) == zone
    back = parse_tzstruct(tzstruct(zone, 2016), zone.tzid)
    assert back.rules == (zone.rule(2016),)
    assert len(tzstruct(zone, 2016)) == 48
    blob = tzdefinition(zone, 2016)
    flags = [struct.unpack_from("<H", blob, 14 + 2 * len(zone.tzid) + 66 * i)[0]
             for i in range(len(zone.rules))]
    assert flags.count(0x0003) == 1  # the rule in force in 2016 is marked current
