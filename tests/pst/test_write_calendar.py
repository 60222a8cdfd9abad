"""Calendar fidelity both ways, PST -> iCalendar (`pst.ical`, `pst.attendees`) and
iCalendar -> PST (`pst.write.events`, `attendees`, `recur`, `items`): busy status, the
recurrence's end by date (UNTIL), deleted and changed occurrences, attendees' responses.

Table tests of the pure translations; a seeded round trip iCalendar -> Outlook item ->
iCalendar whose two calendars python-dateutil (an independent RFC 5545 expander) expands
to the same occurrences; and a written PST read back by pstkit and by libpff."""

from __future__ import annotations

import email
import email.policy
import random
import shutil
import struct
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pstkit.converters.pst.attendees import party_lines
from pstkit.converters.pst.ical import busy_lines, event_ics, parse_recurrence
from pstkit.converters.pst.props import Props
from pstkit.converters.pst.write.events import PSETID_APPOINTMENT, Component, components, event
from pstkit.converters.pst.write.items import UID, to_item
from pstkit.converters.pst.write.mapi import Message, to_mapi
from pstkit.converters.pst.write.meeting import mail_or_meeting
from pstkit.converters.pst.write.namemap import NameMap
from pstkit.converters.pst.write.recur import recurrence_blob
from pstkit.converters.pst.write.sink import PstSink
from pstkit.location import Location
from pstkit.model import Delivered, ItemKind
from pstkit.options import ConnectOptions
from pstkit.store import Store
from tests.helpers import cli

from .test_write_cards import TZ, calendar, read_back, stored
from .test_write_fuzz import stored as meta
from .test_write_pim_foreign import card_text
from .test_write_pim_readers import outlook_named

rr = pytest.importorskip("dateutil.rrule", reason="python-dateutil (dev extra)")

TOKYO = ("BEGIN:VTIMEZONE\nTZID:Tokyo Standard Time\nBEGIN:STANDARD\n"
         "DTSTART:16010101T000000\nTZOFFSETFROM:+0900\nTZOFFSETTO:+0900\nEND:STANDARD\n"
         "END:VTIMEZONE\n")
#: the Windows zones of the VTIMEZONEs above, as zoneinfo knows them (the expander's side)
IANA = {"Pacific Standard Time": "America/Los_Angeles", "Tokyo Standard Time": "Asia/Tokyo"}
A = PSETID_APPOINTMENT


def _vevent(*lines: str) -> str:
    return "BEGIN:VEVENT\n" + "".join(f"{x}\n" for x in lines) + "END:VEVENT\n"


def _through_pst(text: str) -> tuple[str, list[str], Message, NameMap]:
    """A stored event -> the Outlook item the writer makes -> the reader's iCalendar."""
    names = NameMap()
    raw = stored("IPM.Appointment", "x", "", "event.ics", "text/calendar", text)
    m, notes = to_item(raw, ItemKind.EVENT, [], None, names.id)
    uid = next(v.decode("utf-16-le") for pid, _t, v in m.props if pid == names.id(UID))
    inner = tuple(read_back(a.embedded, names) for a in m.attachments if a.embedded)
    recipients = tuple(Props(dict((pid, _value(t, v)) for pid, t, v in r)) for r in m.recipients)
    return event_ics(read_back(m, names), uid, "", inner, recipients), notes, m, names


def _value(ptype: int, raw: bytes) -> object:
    if ptype == 0x0003:
        return struct.unpack("<i", raw)[0]
    return raw.decode("utf-16-le") if ptype == 0x001F else raw


def _long(m: Message, names: NameMap, lid: int) -> int | None:
    pid = names.ids.get((A, lid))
    found = [v for p, _t, v in m.props if p == pid]
    return struct.unpack("<i", found[0])[0] if found else None


# --- busy status --------------------------------------------------------------------


@pytest.mark.parametrize(("status", "name", "transp"), [
    (0, "FREE", "TRANSPARENT"), (1, "TENTATIVE", "OPAQUE"), (2, "BUSY", "OPAQUE"),
    (3, "OOF", "OPAQUE"), (4, "WORKINGELSEWHERE", "TRANSPARENT"),  # [MS-OXCICAL] .20.25
])  # fmt: skip
def test_busy_status_both_ways(status: int, name: str, transp: str) -> None:
    lines = busy_lines(Props({"BusyStatus": status}))
    assert lines == [f"TRANSP:{transp}", f"X-MICROSOFT-CDO-BUSYSTATUS:{name}"]
    names = NameMap()
    vevent = _vevent("UID:u", "DTSTART:20261210T140000Z", "DTEND:20261210T150000Z", *lines)
    ev = event(components(calendar(vevent))[0], {}, [], names.id)
    assert _long(Message(ev.props, [], []), names, 0x8205) == status
    assert busy_lines(Props({})) == []  # no status, no line


# --- attendees ----------------------------------------------------------------------


def _recipient(name: str, addr: str, kind: int, flags: int, track: int | None) -> Props:
    values: dict[int | str, object] = {0x3001: name, 0x3002: "SMTP", 0x3003: addr,
                                       0x39FE: addr, 0x0C15: kind, 0x5FFD: flags}
    return Props(values if track is None else {**values, 0x5FFF: track})


@pytest.mark.parametrize(("track", "partstat"), [
    (None, "NEEDS-ACTION"), (0, "NEEDS-ACTION"), (2, "TENTATIVE"), (3, "ACCEPTED"),
    (4, "DECLINED"),
])  # fmt: skip
def test_partstat_both_ways(track: int | None, partstat: str) -> None:
    item = Props({0x001A: "IPM.Appointment", "ResponseStatus": 1})
    people = (_recipient("Ann", "ann@x.org", 1, 3, 0),
              _recipient("Bob, Jr.", "bob@x.org", 2, 1, track))
    lines = party_lines(item, people)
    assert lines == ["ORGANIZER;CN=Ann:mailto:ann@x.org",
                     f'ATTENDEE;CN="Bob, Jr.";ROLE=OPT-PARTICIPANT;PARTSTAT={partstat}:'
                     "mailto:bob@x.org"]
    names = NameMap()
    vevent = _vevent("UID:u", "DTSTART:20261210T140000Z", *lines)
    ev = event(components(calendar(vevent))[0], {}, [], names.id)
    got = [{p[0]: p[2] for p in r} for r in ev.recipients]
    assert [struct.unpack("<i", r[0x5FFF])[0] for r in got] == [0, track or 0]
    assert [struct.unpack("<i", r[0x5FFD])[0] for r in got] == [3, 1]  # organizer flag
    assert [struct.unpack("<i", r[0x0C15])[0] for r in got] == [1, 2]  # To, Cc
    assert got[1][0x3001].decode("utf-16-le") == "Bob, Jr."


@pytest.mark.parametrize(("line", "state", "response"), [
    ("", 1, 1),  # the organizer's meeting: asfMeeting, respOrganized
    ("X-PSTKIT-RESPONSE-STATUS:DECLINED", 3, 4),  # an attendee's copy: | asfReceived
    ("X-PSTKIT-RESPONSE-STATUS:TENTATIVE", 3, 2),
    ("X-PSTKIT-RESPONSE-STATUS:NONE", 1, 0),  # respNone stays so (not made the organizer's)
])  # fmt: skip
def test_whose_meeting(line: str, state: int, response: int) -> None:
    names = NameMap()
    vevent = _vevent("UID:u", "DTSTART:20261210T140000Z", "ORGANIZER:mailto:a@x.org",
                     "ATTENDEE;PARTSTAT=ACCEPTED:mailto:b@x.org", *([line] if line else []))
    ev = event(components(calendar(vevent))[0], {}, [], names.id)
    m = Message(ev.props, [], [])
    assert (_long(m, names, 0x8217), _long(m, names, 0x8218)) == (state, response)
    item = Props({0x001A: "IPM.Appointment", "ResponseStatus": response})
    back = party_lines(item, (_recipient("b", "b@x.org", 1, 1, 3),))
    assert (line in back) if line else not any("RESPONSE-STATUS" in x for x in back)


def test_a_party_without_smtp_address_keeps_its_native_one() -> None:
    dn = "/O=HOME ORGANIZATION/OU=EXCHANGE/CN=RECIPIENTS/CN=ADMINISTRATOR"
    admin = Props({0x3001: "Administrator", 0x3002: "EX", 0x3003: dn, 0x0C15: 1,
                   0x5FFD: 3})
    lines = party_lines(Props({0x001A: "IPM.Appointment"}), (admin,))
    assert lines == [f"ORGANIZER;CN=Administrator;X-PSTKIT-ADDRTYPE=EX:{dn}"]
    ev = event(components(calendar(_vevent("UID:u", *lines)))[0], {}, [], NameMap().id)
    got = {p[0]: p[2] for p in ev.recipients[0]}
    assert got[0x3002].decode("utf-16-le") == "EX" and 0x39FE not in got
    assert got[0x3003].decode("utf-16-le") == dn


def test_a_meeting_response_names_who_answered() -> None:
    reply = Props({0x001A: "IPM.Schedule.Meeting.Resp.Tent", 0x0042: "Bob",
                   0x0064: "SMTP", 0x0065: "bob@x.org"})
    lines = party_lines(reply, (_recipient("Ann", "ann@x.org", 1, 1, None),))
    assert lines == ["ORGANIZER;CN=Ann:mailto:ann@x.org",
                     "ATTENDEE;CN=Bob;PARTSTAT=TENTATIVE:mailto:bob@x.org"]


# --- end by date --------------------------------------------------------------------


def _blob_end(blob: bytes) -> tuple[int, int]:
    return struct.unpack_from("<II", blob, 26)  # weekly: EndType, OccurrenceCount


def test_until_east_of_greenwich_keeps_the_last_occurrence() -> None:
    # 08:00 in Tokyo is 23:00 UTC the day before: the UTC UNTIL's date is the day before
    # the last occurrence's local date (the writer compared dates and lost it)
    text = calendar(TOKYO, _vevent(
        "UID:t", "DTSTAMP:20260101T000000Z", "DTSTART;TZID=Tokyo Standard Time:20260105T080000",
        "DTEND;TZID=Tokyo Standard Time:20260105T090000", "SUMMARY:x",
        "RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20260125T230000Z"))
    back, notes, m, names = _through_pst(text)
    blob = next(v for p, _t, v in m.props if p == names.ids[(A, 0x8216)])
    assert _blob_end(blob) == (0x2021, 4) and notes == []
    assert "RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=MO;UNTIL=20260125T230000Z;WKST=SU" in back


@pytest.mark.parametrize(("props", "rule"), [
    ({"AllDay": True}, "UNTIL=20161025;"),  # DTSTART is a date: so is UNTIL
    ({}, "UNTIL=20161025T150000Z;"),  # UTC series: the last start with the series' offset
    ({"TimeZoneDescription": "x"}, "UNTIL=20161025T150000Z;"),  # (no readable zone)
])  # fmt: skip
def test_reader_writes_until_for_end_by_date(props: dict[str, object], rule: str) -> None:
    blob = recurrence_blob("FREQ=WEEKLY;BYDAY=TU;UNTIL=20161025", datetime(2016, 8, 2, 8),
                           datetime(2016, 8, 2, 9))
    assert parse_recurrence(blob).until == datetime(2016, 10, 25)
    start = datetime(2016, 8, 2, 15, tzinfo=UTC)
    p = Props({"Recurring": True, "AppointmentRecur": blob, "Start": start,
               "End": start + timedelta(hours=1), **props})
    out = event_ics(p, "u")
    assert rule in out and "COUNT=" not in out


def test_an_end_date_before_the_series_keeps_the_count() -> None:
    blob = bytearray(recurrence_blob("FREQ=WEEKLY;BYDAY=TU;UNTIL=20161025",
                                     datetime(2016, 8, 2, 8), datetime(2016, 8, 2, 9)))
    end_at = 26 + 16 + 4 + 4  # EndType..DeletedInstanceCount, ModifiedInstanceCount, StartDate
    struct.pack_into("<I", blob, end_at, 1000)  # EndDate in 1601
    start = datetime(2016, 8, 2, 15, tzinfo=UTC)
    out = event_ics(Props({"Recurring": True, "AppointmentRecur": bytes(blob), "Start": start,
                           "End": start}), "u")
    assert "COUNT=13;" in out and "UNTIL" not in out


# --- round trip, expanded by dateutil ------------------------------------------------


def _aware(line: str, value: str) -> datetime:
    """A DTSTART/EXDATE/RECURRENCE-ID value as an aware time (zoneinfo for a TZID)."""
    naive = datetime.strptime(value[:15], "%Y%m%dT%H%M%S")
    if value.endswith("Z"):
        return naive.replace(tzinfo=UTC)
    tzid = line.split("TZID=", 1)[1].split(":", 1)[0].split(";", 1)[0]
    return naive.replace(tzinfo=ZoneInfo(IANA[tzid]))


def _values(c: Component, name: str) -> list[datetime]:
    out = []
    for x in c.lines:
        if x.name == name:
            head = f"{name};TZID={x.param('TZID')}" if x.param("TZID") else name
            out += [_aware(head, v) for v in x.value.split(",")]
    return out


def occurrences(text: str) -> tuple[set[datetime], dict[datetime, datetime]]:
    """The series' occurrences (EXDATEs taken out) and its overrides (original -> start),
    as dateutil expands the RRULE from DTSTART."""
    events = [c for c in components(text) if c.name == "VEVENT"]
    series = next(c for c in events if c.first("RECURRENCE-ID") is None)
    start = _values(series, "DTSTART")[0]
    rule = rr.rrulestr(series.text("RRULE"), dtstart=start)
    gone = set(_values(series, "EXDATE"))
    moved = {_values(x, "RECURRENCE-ID")[0]: _values(x, "DTSTART")[0]
             for x in events if x is not series}
    return {d for d in rule if d not in gone}, moved


def _random_series(rnd: random.Random, zone: str) -> str:
    days = ("SU", "MO", "TU", "WE", "TH", "FR", "SA")
    kind = rnd.choice(("DAILY", "WEEKLY", "MONTHLY", "NTH", "YEARLY"))
    seed = datetime(2010, 1, 1) + timedelta(days=rnd.randrange(7000),
                                            minutes=15 * rnd.randrange(96))
    n, wkst = rnd.randrange(1, 4), rnd.choice(days)
    body = {"DAILY": f"FREQ=DAILY;INTERVAL={n}",
            "WEEKLY": f"FREQ=WEEKLY;INTERVAL={n};BYDAY="
                      + ",".join(sorted(rnd.sample(days, rnd.randrange(1, 4)), key=days.index)),
            "MONTHLY": f"FREQ=MONTHLY;INTERVAL={n};BYMONTHDAY={rnd.randrange(1, 29)}",
            "NTH": f"FREQ=MONTHLY;INTERVAL={n};BYDAY={rnd.choice(days)};"
                   f"BYSETPOS={rnd.choice((1, 2, 3, 4, -1))}",
            "YEARLY": f"FREQ=YEARLY;BYMONTH={seed.month};BYMONTHDAY={min(seed.day, 28)}",
            }[kind] + f";WKST={wkst}"  # fmt: skip
    tz = ZoneInfo(IANA[zone]) if zone else UTC
    first = list(rr.rrulestr(body + ";COUNT=25", dtstart=seed.replace(tzinfo=tz)))
    start = first[0]  # DTSTART is an occurrence (RFC 5545 3.8.5.3 asks for that)
    dates = list(rr.rrulestr(body + ";COUNT=25", dtstart=start))
    last = dates[rnd.randrange(len(dates))]
    # UNTIL: exactly the last start (inclusive), or some minutes after it
    until = last + timedelta(minutes=rnd.choice((0, 0, 1, 59)))
    gone = rnd.sample(dates[1 : dates.index(last)], min(3, max(0, dates.index(last) - 1)))
    mid = [d for d in dates[1 : dates.index(last)] if d not in gone]

    def when(name: str, d: datetime) -> str:
        if not zone:
            return f"{name}:{d.astimezone(UTC):%Y%m%dT%H%M%SZ}"
        return f"{name};TZID={zone}:{d:%Y%m%dT%H%M%S}"

    length = timedelta(minutes=30 * rnd.randrange(1, 5))
    lines = ["UID:r", "DTSTAMP:20260101T000000Z", when("DTSTART", start),
             when("DTEND", start + length), "SUMMARY:s",
             f"RRULE:{body};UNTIL={until.astimezone(UTC):%Y%m%dT%H%M%SZ}"]
    if gone:  # all in one EXDATE line (RFC 5545 3.8.5.1 allows a list)
        lines.append(when("EXDATE", gone[0]) + "".join(
            "," + when("X", d).split(":", 1)[1] for d in gone[1:]))
    parts = [_vevent(*lines)]
    if mid:
        moved = rnd.choice(mid)
        parts.append(_vevent("UID:r", "DTSTAMP:20260102T000000Z", when("RECURRENCE-ID", moved),
                             when("DTSTART", moved + timedelta(hours=1)),
                             when("DTEND", moved + timedelta(hours=1) + length),
                             "SUMMARY:moved"))
    zones = {"Pacific Standard Time": TZ, "Tokyo Standard Time": TOKYO}
    return calendar(zones.get(zone, ""), *parts)


@pytest.mark.parametrize("seed", range(3))
def test_until_series_come_back_with_the_same_occurrences(seed: int) -> None:
    rnd = random.Random(seed)
    for i in range(40):
        zone = ("Pacific Standard Time", "Tokyo Standard Time", "")[i % 3]
        text = _random_series(rnd, zone)
        back, notes, _m, _n = _through_pst(text)
        assert notes == [], (seed, i, notes)
        assert "UNTIL=" in back and "COUNT=" not in back, (seed, i)
        assert occurrences(back) == occurrences(text), (seed, i, text, back)


def test_all_day_until_is_a_date() -> None:
    text = calendar(_vevent("UID:d", "DTSTAMP:20260101T000000Z", "DTSTART;VALUE=DATE:20260105",
                            "DTEND;VALUE=DATE:20260106", "SUMMARY:x",
                            "RRULE:FREQ=DAILY;INTERVAL=2;UNTIL=20260111"))
    back, _notes, _m, _n = _through_pst(text)
    assert "RRULE:FREQ=DAILY;INTERVAL=2;UNTIL=20260111;WKST=SU" in back
    assert [d.date() for d in rr.rrulestr("FREQ=DAILY;INTERVAL=2;UNTIL=20260111",
                                          dtstart=datetime(2026, 1, 5))] == [
        datetime(2026, 1, d).date() for d in (5, 7, 9, 11)]


# --- what one Outlook item cannot hold is said ----------------------------------------


def test_what_an_item_cannot_hold_is_said() -> None:
    series = ("UID:a", "DTSTAMP:20260101T000000Z", "DTSTART:20260105T080000Z",
              "DTEND:20260105T090000Z", "SUMMARY:x", "RRULE:FREQ=DAILY;COUNT=5")
    text = calendar(_vevent(*series), _vevent("UID:b", "DTSTART:20260107T080000Z"),
                    _vevent("UID:c", "RECURRENCE-ID:20260106T080000Z",
                            "DTSTART:20260106T100000Z"),
                    _vevent("UID:a", "RECURRENCE-ID;RANGE=THISANDFUTURE:20260108T080000Z",
                            "DTSTART:20260108T100000Z"))
    _back, notes, m, _names = _through_pst(text)
    assert notes == ["1 other event(s) of the calendar not written: an Outlook item holds "
                     "one event or series",
                     "1 changed occurrence(s) of another UID not written",
                     "1 change(s) to this and future occurrences (RANGE=THISANDFUTURE) "
                     "not written"]
    assert not m.attachments  # neither override became an exception item


def test_a_meeting_requests_changed_occurrences_are_exceptions() -> None:
    ics = "\r\n".join(["BEGIN:VCALENDAR", "METHOD:REQUEST", "BEGIN:VEVENT", "UID:m",
                       "DTSTART:20261210T140000Z", "DTEND:20261210T150000Z",
                       "RRULE:FREQ=WEEKLY;COUNT=4", "ORGANIZER:mailto:a@x.org",
                       "ATTENDEE:mailto:b@x.org", "END:VEVENT", "BEGIN:VEVENT", "UID:m",
                       "RECURRENCE-ID:20261217T140000Z", "DTSTART:20261217T160000Z",
                       "END:VEVENT", "END:VCALENDAR", ""])
    raw = ("From: a@x.org\r\nTo: b@x.org\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/calendar; method=REQUEST\r\n\r\n" + ics).encode()
    names = NameMap()
    m, notes = mail_or_meeting(raw, to_mapi(raw), names.id)
    assert notes == []
    assert any(p[0] == 0x001A and p[2].decode("utf-16-le") == "IPM.Schedule.Meeting.Request"
               for p in m.props)
    # the changed occurrence: in the blob, and as a hidden exception attachment (2.2.10)
    blob = next(v for p, _t, v in m.props if p == names.ids[(A, 0x8216)])
    rec = parse_recurrence(blob)
    assert rec.deleted == rec.originals == (datetime(2026, 12, 17),)
    (att,) = [a for a in m.attachments if a.embedded is not None]
    assert (0x7FFE, 0x000B, b"\1\0\0\0") in att.props
    inner = read_back(att.embedded, names)
    assert inner.time("ExceptionReplaceTime") == datetime(2026, 12, 17, 14, tzinfo=UTC)
    assert inner.time("Start") == datetime(2026, 12, 17, 16, tzinfo=UTC)


# --- a written PST, read back by pstkit and libpff ------------------------------------


def test_written_pst_reads_back(tmp_path: Path) -> None:
    pypff = pytest.importorskip("pypff")
    series = calendar(TOKYO, _vevent(
        "UID:s1", "DTSTAMP:20260101T000000Z",
        "DTSTART;TZID=Tokyo Standard Time:20260105T080000",
        "DTEND;TZID=Tokyo Standard Time:20260105T090000", "SUMMARY:Stand-up",
        "TRANSP:OPAQUE", "X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE",
        "ORGANIZER;CN=Ann:mailto:ann@x.org",
        "ATTENDEE;CN=Bob;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED:mailto:bob@x.org",
        "ATTENDEE;CN=Cy;ROLE=OPT-PARTICIPANT;PARTSTAT=DECLINED:mailto:cy@x.org",
        "RRULE:FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20260128T230000Z",
        "EXDATE;TZID=Tokyo Standard Time:20260107T080000,20260114T080000"),
        _vevent("UID:s1", "DTSTAMP:20260102T000000Z",
                "RECURRENCE-ID;TZID=Tokyo Standard Time:20260119T080000",
                "DTSTART;TZID=Tokyo Standard Time:20260119T100000",
                "DTEND;TZID=Tokyo Standard Time:20260119T110000", "SUMMARY:Stand-up (late)"))
    free = calendar(_vevent("UID:s2", "DTSTAMP:20260101T000000Z", "DTSTART:20260301T100000Z",
                            "DTEND:20260301T110000Z", "SUMMARY:Lunch", "TRANSP:TRANSPARENT",
                            "X-MICROSOFT-CDO-BUSYSTATUS:FREE"))
    out = tmp_path / "cal.pst"
    sink = PstSink(Location("pst", str(out)), ConnectOptions())
    sink.ensure_folder(("Calendar",), None)
    for i, (subject, text) in enumerate((("Stand-up", series), ("Lunch", free))):
        raw = stored("IPM.Appointment", subject, "", "event.ics", "text/calendar", text)
        msg = replace(meta(i), kind=ItemKind.EVENT, folder=("Calendar",))
        result = sink.put_batch(("Calendar",), [(msg, raw)])[0]
        assert isinstance(result, Delivered) and not result.note, result
    sink.close()
    # pstkit: the same occurrences, busy status and responses
    code, _o, err = cli("--quiet", "export", str(out), str(tmp_path / "s"))
    assert code == 0, err
    with Store.open(tmp_path / "s") as st:
        back = {row.msg.subject: card_text(st.read(row)) for row in st.rows()}
    got = back["Stand-up"]
    assert occurrences(got) == occurrences(series)
    assert "X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE" in got
    assert "PARTSTAT=ACCEPTED:mailto:bob@x.org" in got.replace("\r\n ", "")
    assert "PARTSTAT=DECLINED:mailto:cy@x.org" in got.replace("\r\n ", "")
    assert "TRANSP:TRANSPARENT\r\nX-MICROSOFT-CDO-BUSYSTATUS:FREE" in back["Lunch"]
    # libpff: the named properties and the recipient table as written
    named = outlook_named(out, "IPM.Appointment")
    assert struct.unpack("<i", named[(A, 0x8205)][1])[0] == 1  # tentative
    blob = named[(A, 0x8216)][1]
    assert _blob_end(blob) == (0x2021, 8)  # end by date; the count includes deleted ones
    assert parse_recurrence(blob).deleted[:2] == (datetime(2026, 1, 7), datetime(2026, 1, 14))
    f = pypff.file()
    f.open(str(out))
    try:
        tracks = _tracks(f.root_folder, "Stand-up")
    finally:
        f.close()
    assert tracks == [0, 3, 4]  # organizer, accepted, declined


def _parts(raw: bytes) -> list[tuple[str, bytes]]:
    """Each leaf part's type and decoded bytes (an attached message's as it is)."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    out = []
    for part in msg.walk():
        if part.get_content_type() == "message/rfc822":
            out.append(("message/rfc822", part.get_payload(0).as_bytes()))
        elif not part.is_multipart() and not any(
                p.get_content_type() == "message/rfc822" and part in list(p.walk())
                for p in msg.walk() if p is not part):
            out.append((part.get_content_type(), bytes(part.get_payload(decode=True) or b"")))
    return out


def _calendar_type(raw: bytes) -> list[str]:
    """The Content-Type headers of the text/calendar parts, without the name parameter."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    return [" ".join(str(p["Content-Type"]).split()).split("; name=")[0]
            for p in msg.walk() if p.get_content_type() == "text/calendar"]


def _find(folder: Any, subject: str) -> Any:
    for i in range(folder.number_of_sub_messages):
        if folder.get_sub_message(i).subject == subject:
            return folder.get_sub_message(i)
    subs = (_find(folder.get_sub_folder(i), subject) for i in range(folder.number_of_sub_folders))
    return next((x for x in subs if x is not None), None)


def _tracks(folder: Any, subject: str) -> list[int]:
    for i in range(folder.number_of_sub_messages):
        m = folder.get_sub_message(i)
        if m.subject == subject and m.recipients is not None:
            return [next(e.get_data_as_integer() for e in r.entries if e.entry_type == 0x5FFF)
                    for r in m.recipients.record_sets]
    for i in range(folder.number_of_sub_folders):
        found = _tracks(folder.get_sub_folder(i), subject)
        if found:
            return found
    return []


def test_an_outlook_meeting_requests_exceptions_are_read(tmp_path: Path) -> None:
    pypff = pytest.importorskip("pypff")
    """A meeting request with a changed occurrence (an exception attachment, as Outlook
    keeps it: written here from an appointment stored with the request's class) -> the
    reader's iMIP part has the RECURRENCE-ID event, and no EXDATE for it."""
    text = calendar(TZ, _vevent(
        "UID:m1", "DTSTAMP:20260101T000000Z", "DTSTART;TZID=Pacific Standard Time:20260105T160000",
        "DTEND;TZID=Pacific Standard Time:20260105T170000", "SUMMARY:Review",
        "ORGANIZER;CN=Ann:mailto:ann@x.org", "ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:bob@x.org",
        "RRULE:FREQ=DAILY;COUNT=5"), _vevent(
        "UID:m1", "DTSTAMP:20260102T000000Z",
        "RECURRENCE-ID;TZID=Pacific Standard Time:20260107T160000",
        "DTSTART;TZID=Pacific Standard Time:20260108T090000",
        "DTEND;TZID=Pacific Standard Time:20260108T100000", "SUMMARY:Review (moved)"))
    out = tmp_path / "m.pst"
    sink = PstSink(Location("pst", str(out)), ConnectOptions())
    sink.ensure_folder(("Inbox",), None)
    raw = stored("IPM.Schedule.Meeting.Request", "Review", "", "event.ics", "text/calendar", text)
    result = sink.put_batch(("Inbox",), [(replace(meta(0), kind=ItemKind.EVENT,
                                                  folder=("Inbox",)), raw)])[0]
    assert isinstance(result, Delivered), result
    sink.close()
    code, _o, err = cli("--quiet", "export", str(out), str(tmp_path / "s"))
    assert code == 0, err
    with Store.open(tmp_path / "s") as st:
        (row,) = list(st.rows())
        assert row.msg.kind is ItemKind.MAIL
        got = card_text(st.read(row))
    assert "METHOD:REQUEST" in got and "ORGANIZER;CN=Ann:mailto:ann@x.org" in got
    assert "RECURRENCE-ID;TZID=Pacific Standard Time:20260107T160000" in got
    assert "DTSTART;TZID=Pacific Standard Time:20260108T090000" in got
    assert "EXDATE" not in got  # moved to another day: not a deleted occurrence
    assert occurrences(got) == occurrences(text)
    # and again: store (a mail with its iCalendar and the exception as an attached
    # message) -> PST (a meeting request with an exception attachment) -> the same store
    again = tmp_path / "again.pst"
    assert cli("--quiet", "import", str(tmp_path / "s"), f"pst:{again}")[0] == 0
    assert cli("--quiet", "export", str(again), str(tmp_path / "s2"))[0] == 0
    with Store.open(tmp_path / "s") as one, Store.open(tmp_path / "s2") as two:
        first, second = ([_parts(st.read(r)) for r in st.rows()] for st in (one, two))
        heads = [[_calendar_type(st.read(r)) for r in st.rows()] for st in (one, two)]
    assert first == second and len(first[0]) == 3, first
    # the part's Content-Type parameters (charset, method) are kept: the writer puts them
    # into PR_ATTACH_MIME_TAG (`meeting.full_calendar_type`)
    assert heads[0] == heads[1] and "method=REQUEST" in heads[0][0][0], heads
    if shutil.which("readpst"):  # readpst takes the tag as the part's Content-Type, still MIME
        rp = tmp_path / "rp"
        rp.mkdir()
        subprocess.run(["readpst", "-q", "-M", "-o", str(rp), str(again)], check=True)
        (mail,) = [x for x in rp.rglob("*") if x.is_file()]
        assert "text/calendar; charset=utf-8; method=REQUEST" in _calendar_type(
            mail.read_bytes())
    f = pypff.file()
    f.open(str(again))
    try:
        item = _find(f.root_folder, "Review")
        kinds = [item.get_attachment(i).get_record_set(0) for i in
                 range(item.number_of_attachments)]
        hidden = [any(e.entry_type == 0x7FFE and e.data == b"\1" for e in rs.entries)
                  for rs in kinds]
    finally:
        f.close()
    assert hidden == [True, False]  # the exception, in the attached message's place; the
    # mail's iCalendar part
