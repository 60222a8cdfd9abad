"""Calendar items and contacts are created from their fields, as Microsoft's CreateItem
examples do, not from iCalendar/vCard MimeContent (a limited property set, Microsoft says)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pstkit.converters.ews import calendar, contact
from pstkit.converters.ews.sink import EwsSink
from pstkit.model import ItemKind, Role, StoredMessage
from pstkit.protocols import Delivered
from tests.servers.ews import EwsServer, Item
from tests.servers.ews.testkit import USER, location, options, stored

pytest.importorskip("exchangelib")

BERLIN = (
    "BEGIN:VTIMEZONE\r\nTZID:W. Europe Standard Time\r\n"
    "BEGIN:STANDARD\r\nDTSTART:16011028T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\n"
    "BEGIN:DAYLIGHT\r\nDTSTART:16010325T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n"
)
SERIES = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n" + BERLIN + "BEGIN:VEVENT\r\nUID:series-1\r\n"
    "DTSTART;TZID=W. Europe Standard Time:20240703T090000\r\n"
    "DTEND;TZID=W. Europe Standard Time:20240703T093000\r\n"
    "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=WE,FR;COUNT=10;WKST=MO\r\n"
    "SUMMARY:Stand-up \\, weekly\r\nLOCATION:Room 1\r\nDESCRIPTION:line 1\\nline 2\r\n"
    "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT10M\r\nEND:VALARM\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)
ALL_DAY = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:d\r\nDTSTART;VALUE=DATE:20240501\r\n"
    "DTEND;VALUE=DATE:20240502\r\nSUMMARY:Holiday\r\nTRANSP:TRANSPARENT\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)
CARD = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ann B. Smith\r\nN:Smith;Ann;B.;;\r\nORG:Acme;Sales\r\n"
    "TITLE:Buyer\r\nEMAIL;TYPE=INTERNET:ann@example.com\r\nEMAIL;TYPE=INTERNET:a.s@example.org\r\n"
    "TEL;TYPE=WORK,VOICE:+49 30 1\r\nTEL;TYPE=CELL:+49 170 2\r\nFAX;TYPE=WORK:+49 30 3\r\n"
    "ADR;TYPE=WORK:;;Main St 1;Berlin;BE;10115;Germany\r\nBDAY:1980-02-29\r\n"
    "NOTE:met at the fair\r\nEND:VCARD\r\n"
)


def wrapped(card: str, ctype: str) -> bytes:
    """A stored non-mail item as the PST source stores it: a body part, then the card."""
    return (
        'Subject: x\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
        f"--B\r\nContent-Type: {ctype}; charset=utf-8\r\n\r\n{card}\r\n--B--\r\n"
    ).encode()


def item(kind: ItemKind, card: str, n: int, folder: tuple[str, ...]) -> tuple[StoredMessage, bytes]:
    ctype = "text/calendar" if kind is ItemKind.EVENT else "text/vcard"
    raw = wrapped(card, ctype)
    return dataclasses.replace(stored(raw, n, folder), kind=kind), raw


@pytest.fixture
def sink(server: EwsServer) -> Iterator[EwsSink]:
    s = EwsSink(location(server), options())
    s.ensure_folder(("Calendar",), Role.CALENDAR, "IPF.Appointment")
    s.ensure_folder(("Contacts",), Role.CONTACTS, "IPF.Contact")
    yield s
    s.close()


def made(server: EwsServer, folder: str) -> list[Item]:
    box = server.mailboxes[USER.mailbox]
    found = box.distinguished(folder)
    assert found is not None
    return box.items_in(found.id)


def test_recurring_event_is_created_from_its_fields(server: EwsServer, sink: EwsSink) -> None:
    (result,) = sink.put_batch(("Calendar",), [item(ItemKind.EVENT, SERIES, 1, ("Calendar",))])
    assert isinstance(result, Delivered) and result.note == ""
    (event,) = made(server, "calendar")
    assert event.mime == b""  # no iCalendar MimeContent
    f = event.fields
    assert (f["Subject"], f["Location"], f["Body"]) == (
        "Stand-up , weekly",
        "Room 1",
        "line 1\nline 2",
    )
    assert (f["Start"], f["End"]) == ("2024-07-03T07:00:00Z", "2024-07-03T07:30:00Z")  # CEST
    assert f["IsAllDayEvent"] == "false" and f["ReminderMinutesBeforeStart"] == "10"
    assert f["Recurrence"] == "WeeklyRecurrence/NumberedRecurrence"
    assert (f["Recurrence.Interval"], f["Recurrence.DaysOfWeek"]) == ("2", "Wednesday Friday")
    assert (f["Recurrence.StartDate"], f["Recurrence.NumberOfOccurrences"]) == ("2024-07-03", "10")
    assert f["StartTimeZone"] == f["EndTimeZone"] == "W. Europe Standard Time"


def test_all_day_event_and_contact_in_one_run(server: EwsServer, sink: EwsSink) -> None:
    (day,) = sink.put_batch(("Calendar",), [item(ItemKind.EVENT, ALL_DAY, 1, ("Calendar",))])
    (card,) = sink.put_batch(("Contacts",), [item(ItemKind.CONTACT, CARD, 2, ("Contacts",))])
    assert isinstance(day, Delivered) and isinstance(card, Delivered)
    (event,) = made(server, "calendar")
    assert (event.fields["IsAllDayEvent"], event.fields["LegacyFreeBusyStatus"]) == ("true", "Free")
    assert (event.fields["Start"], event.fields["End"]) == (
        "2024-05-01T00:00:00Z",
        "2024-05-02T00:00:00Z",
    )
    (person,) = made(server, "contacts")
    f = person.fields
    assert (f["DisplayName"], f["GivenName"], f["MiddleName"], f["Surname"]) == (
        "Ann B. Smith", "Ann", "B.", "Smith")  # fmt: skip
    assert (f["CompanyName"], f["Department"], f["JobTitle"]) == ("Acme", "Sales", "Buyer")
    assert person.emails == ("ann@example.com", "a.s@example.org")
    assert (f["Phone:BusinessPhone"], f["Phone:MobilePhone"], f["Phone:BusinessFax"]) == (
        "+49 30 1", "+49 170 2", "+49 30 3")  # fmt: skip
    assert f["Address:Business"] == "Main St 1|Berlin|BE|Germany|10115"
    assert f["Birthday"].startswith("1980-02-29") and f["Body"] == "met at the fair"


def test_event_without_a_start_stays_in_the_store(sink: EwsSink) -> None:
    no_start = ALL_DAY.replace("DTSTART;VALUE=DATE:20240501\r\n", "")
    (result,) = sink.put_batch(("Calendar",), [item(ItemKind.EVENT, no_start, 1, ("Calendar",))])
    assert not isinstance(result, Delivered) and "no start" in result.reason


# --- pure ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "start", "pattern", "fields"),
    [
        ("FREQ=DAILY;INTERVAL=3", date(2024, 1, 1), "DailyRecurrence", {"Interval": "3"}),
        ("FREQ=WEEKLY", date(2024, 1, 3), "WeeklyRecurrence",
         {"Interval": "1", "DaysOfWeek": "Wednesday"}),
        ("FREQ=MONTHLY;BYMONTHDAY=15", date(2024, 1, 15), "AbsoluteMonthlyRecurrence",
         {"Interval": "1", "DayOfMonth": "15"}),
        ("FREQ=MONTHLY;BYDAY=TU;BYSETPOS=2", date(2024, 1, 9), "RelativeMonthlyRecurrence",
         {"Interval": "1", "DaysOfWeek": "Tuesday", "DayOfWeekIndex": "Second"}),
        ("FREQ=MONTHLY;BYMONTHDAY=-1", date(2024, 1, 31), "RelativeMonthlyRecurrence",
         {"Interval": "1", "DaysOfWeek": "Day", "DayOfWeekIndex": "Last"}),
        ("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", date(2024, 1, 31),
         "RelativeMonthlyRecurrence",
         {"Interval": "1", "DaysOfWeek": "Weekday", "DayOfWeekIndex": "Last"}),
        ("FREQ=YEARLY", date(2024, 3, 5), "AbsoluteYearlyRecurrence",
         {"DayOfMonth": "5", "Month": "March"}),
        ("FREQ=YEARLY;BYMONTH=11;BYDAY=4TH", date(2024, 11, 28), "RelativeYearlyRecurrence",
         {"DaysOfWeek": "Thursday", "DayOfWeekIndex": "Fourth", "Month": "November"}),
        ("FREQ=YEARLY;INTERVAL=2", date(2024, 3, 5), "AbsoluteMonthlyRecurrence",
         {"Interval": "24", "DayOfMonth": "5"}),
    ],
)  # fmt: skip
def test_rrule_patterns(rule: str, start: date, pattern: str, fields: dict[str, str]) -> None:
    rec = calendar.rrule_recurrence(rule, start)
    assert (rec.pattern, dict(rec.pattern_fields)) == (pattern, fields)
    assert rec.range == "NoEndRecurrence" and rec.range_fields == (
        ("StartDate", start.isoformat()),
    )


def test_rrule_ranges_and_refusals() -> None:
    until = calendar.rrule_recurrence("FREQ=DAILY;UNTIL=20240110T235959Z", date(2024, 1, 1))
    assert (until.range, until.range_fields[1]) == ("EndDateRecurrence", ("EndDate", "2024-01-10"))
    for bad in ("FREQ=HOURLY", "FREQ=DAILY;BYHOUR=9", "FREQ=MONTHLY;BYDAY=MO;BYSETPOS=7"):
        with pytest.raises(calendar.Unsupported):
            calendar.rrule_recurrence(bad, date(2024, 1, 1))


def test_what_an_event_cannot_carry_is_named() -> None:
    text = SERIES.replace("COUNT=10;", "").replace(
        "END:VEVENT\r\nEND:VCALENDAR",
        "EXDATE;TZID=W. Europe Standard Time:20240717T090000\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:series-1\r\n"
        "RECURRENCE-ID;TZID=W. Europe Standard Time:20240705T090000\r\n"
        "DTSTART;TZID=W. Europe Standard Time:20240705T100000\r\nEND:VEVENT\r\nEND:VCALENDAR",
    )
    fields = calendar.event_fields(text)
    assert isinstance(fields, calendar.CalendarFields)
    assert fields.notes == ("1 deleted occurrence", "1 changed occurrence")
    hourly = calendar.event_fields(SERIES.replace("FREQ=WEEKLY", "FREQ=HOURLY"))
    assert isinstance(hourly, calendar.CalendarFields) and hourly.recurrence is None
    assert hourly.notes[0].startswith("recurrence not carried (FREQ=HOURLY)")


def test_contact_fields_and_what_does_not_fit() -> None:
    four = CARD.replace("NOTE:", "EMAIL:c@x.org\r\nEMAIL:d@x.org\r\nGEO:1;2\r\nNOTE:")
    card = contact.contact_fields(four)
    assert card.emails == ("ann@example.com", "a.s@example.org", "c@x.org")
    assert card.notes == ("vCard GEO", "e-mail addresses after the third: d@x.org")
    assert card.birthday == datetime(1980, 2, 29)
    assert (
        contact.contact_fields("BEGIN:VCARD\r\nN:Doe;Jo;;;\r\nEND:VCARD").display_name == "Jo Doe"
    )


NAMES = (
    "DTSTART",
    "DTEND",
    "DURATION",
    "RRULE",
    "EXDATE",
    "RECURRENCE-ID",
    "TRIGGER",
    "SUMMARY",
    "BEGIN",
    "END",
    "N",
    "ORG",
    "TEL",
    "FAX",
    "ADR",
    "EMAIL",
    "BDAY",
    "X-MICROSOFT-CDO-BUSYSTATUS",
)
LINES = st.tuples(
    st.sampled_from(NAMES),
    st.sampled_from(("", ";TZID=X", ";TZID=Europe/Berlin", ";VALUE=DATE", ";TYPE=WORK,FAX")),
    st.text(alphabet="0123456789TZ:;=-,PDHMSWFREQYLBCOUNTIL\\", max_size=24),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(LINES, max_size=12))
def test_reading_cards_never_raises(lines: list[tuple[str, str, str]]) -> None:
    body = "".join(f"{name}{param}:{value}\r\n" for name, param, value in lines)
    event = f"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:20240101T000000Z\r\n{body}END:VEVENT\r\n"
    assert isinstance(calendar.event_fields(event), calendar.CalendarFields | str)
    assert isinstance(
        contact.contact_fields(f"BEGIN:VCARD\r\n{body}END:VCARD"), contact.ContactFields
    )


def test_all_day_start_is_midnight_utc() -> None:
    fields = calendar.event_fields(ALL_DAY)
    assert isinstance(fields, calendar.CalendarFields) and fields.all_day
    assert fields.start == datetime(2024, 5, 1, tzinfo=UTC)


def test_all_day_series_in_a_zone_starts_at_its_midnight() -> None:
    text = SERIES.replace("DTSTART;TZID=W. Europe Standard Time:20240703T090000", (
        "DTSTART;VALUE=DATE;TZID=W. Europe Standard Time:20240703")).replace(
        "DTEND;TZID=W. Europe Standard Time:20240703T093000",
        "DTEND;VALUE=DATE;TZID=W. Europe Standard Time:20240704")  # fmt: skip
    fields = calendar.event_fields(text)
    assert isinstance(fields, calendar.CalendarFields) and fields.all_day and fields.zone
    assert fields.start == datetime(2024, 7, 2, 22, tzinfo=UTC)  # 00:00 CEST
    assert fields.end == datetime(2024, 7, 3, 22, tzinfo=UTC)
    assert fields.recurrence and fields.recurrence.range_fields[0] == ("StartDate", "2024-07-03")
