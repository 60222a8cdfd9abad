"""Table tests of the pure vCard/iCalendar -> Graph translations."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from pstkit.converters.graph.pim.contact import contact, is_group
from pstkit.converters.graph.pim.event import duration, event
from pstkit.converters.graph.pim.recur import Unsupported, recurrence
from pstkit.converters.pim.content import find_part, lines, split_unescaped, unescape, unfold
from tests.servers.graph import pim_checks
from tests.servers.graph.core import GraphError


def card(*props: str, version: str = "3.0") -> str:
    return "\r\n".join(["BEGIN:VCARD", f"VERSION:{version}", *props, "END:VCARD", ""])


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("A:b\r\n c\r\n\td", ["A:bcd"]),
        ("A:b\n c\nB:x", ["A:bc", "B:x"]),
        ("A:b\r\rB:c", ["A:b", "B:c"]),
    ],
)
def test_unfold(text: str, want: list[str]) -> None:
    assert unfold(text) == want


@pytest.mark.parametrize(
    ("raw", "want"),
    [(r"a\,b", "a,b"), (r"a\;b", "a;b"), (r"a\nb\Nc", "a\nb\nc"), ("a\\\\n", "a\\n")],
)
def test_unescape(raw: str, want: str) -> None:
    assert unescape(raw) == want


def test_split_keeps_escaped_separators() -> None:
    assert split_unescaped(r"Doe\;Jr;John;;", ";") == [r"Doe\;Jr", "John", "", ""]


def test_quoted_parameter_with_colon_and_qp_charset() -> None:
    (a, b) = lines('ATTENDEE;CN="Doe: J";ROLE=REQ-PARTICIPANT:mailto:j@x\r\n'
                   "NOTE;ENCODING=QUOTED-PRINTABLE;CHARSET=ISO-8859-1:Gr=FC=DFe")  # fmt: skip
    assert a.param("CN") == "Doe: J" and a.value == "mailto:j@x"
    assert b.text() == "Grüße"


CONTACT_CASES: list[tuple[list[str], dict[str, Any]]] = [
    (["FN:Jane Doe", "N:Doe;Jane;Q;Dr.;III"],
     {"displayName": "Jane Doe", "surname": "Doe", "givenName": "Jane", "middleName": "Q",
      "title": "Dr.", "generation": "III"}),
    ([r"FN:Doe\, Jane", r"ORG:Acme\, Inc.;R&D"],
     {"displayName": "Doe, Jane", "companyName": "Acme, Inc.", "department": "R&D"}),
    (["FN:J", "TEL;TYPE=WORK,VOICE:1", "TEL;TYPE=HOME,VOICE:2", "TEL;TYPE=CELL:3", "TEL:4"],
     {"displayName": "J", "businessPhones": ["1", "4"], "homePhones": ["2"],
      "mobilePhone": "3"}),
    (["FN:J", "ADR;TYPE=WORK:;;1 Main St;Springfield;IL;62701;USA"],
     {"displayName": "J", "businessAddress": {"street": "1 Main St", "city": "Springfield",
      "state": "IL", "postalCode": "62701", "countryOrRegion": "USA"}}),
    (["FN:J", "BDAY:1980-04-15", "NOTE:line1\\nline2", "CATEGORIES:A,B\\,C"],
     {"displayName": "J", "birthday": "1980-04-15T00:00:00Z", "personalNotes": "line1\nline2",
      "categories": ["A", "B,C"]}),
    (["FN:J", "TITLE:Engineer", "NICKNAME:Jo", "URL:https://x.example", "IMPP:xmpp:j@x"],
     {"displayName": "J", "jobTitle": "Engineer", "nickName": "Jo",
      "businessHomePage": "https://x.example", "imAddresses": ["xmpp:j@x"]}),
    (["FN:J", "EMAIL;TYPE=INTERNET:a@x", "EMAIL:mailto:b@x"],
     {"displayName": "J", "emailAddresses": [{"address": "a@x", "name": "J"},
                                             {"address": "b@x", "name": "J"}]}),
]  # fmt: skip


@pytest.mark.parametrize(("props", "want"), CONTACT_CASES)
def test_contact(props: list[str], want: dict[str, Any]) -> None:
    item = contact(card(*props))
    assert item.body == want
    assert item.notes == ()
    pim_checks.check_contact(item.body)  # and the test server takes it


@pytest.mark.parametrize(
    ("props", "note"),
    [
        ([f"EMAIL:{n}@x" for n in range(5)], "not kept: 3@x, 4@x"),
        (["FAX;TYPE=WORK:99"], "no fax"),
        (["TEL;TYPE=FAX,WORK:99"], "no fax"),
        (["BDAY:--0415"], "not a full date"),
        (["PHOTO;ENCODING=b:AAAA"], "PHOTO has no Graph"),
        (["TEL;TYPE=CELL:1", "TEL;TYPE=CELL:2"], "1 mobile number; not kept: 2"),
    ],
)
def test_contact_what_graph_cannot_keep_is_a_note(props: list[str], note: str) -> None:
    item = contact(card("FN:J", *props))
    assert any(note in n for n in item.notes), item.notes
    pim_checks.check_contact(item.body)


def test_vcard_4_and_groups() -> None:
    assert is_group(card("FN:G", "KIND:group", version="4.0"))
    assert is_group(card("FN:G", "X-ADDRESSBOOKSERVER-KIND:group"))
    assert not is_group(card("FN:G"))
    assert contact(card("FN:Ann", "EMAIL;TYPE=work:a@x", version="4.0")).body["emailAddresses"] == [
        {"address": "a@x", "name": "Ann"}
    ]


def test_more_than_three_emails_is_refused_by_the_server() -> None:
    with pytest.raises(GraphError) as e:
        pim_checks.check_contact({"emailAddresses": [{"address": f"{n}@x"} for n in range(4)]})
    assert e.value.status == 400


# --- events ----------------------------------------------------------------------


def cal(*props: str, extra: str = "") -> str:
    body = "\r\n".join(["BEGIN:VEVENT", "UID:1", *props, "END:VEVENT"])
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n{body}\r\n{extra}END:VCALENDAR\r\n"


def test_event_fields() -> None:
    item = event(cal(
        "DTSTART;TZID=Europe/Berlin:20240305T090000", "DTEND;TZID=Europe/Berlin:20240305T100000",
        "SUMMARY:Plan\\, review", "LOCATION:Room 1", "DESCRIPTION:a\\nb", "CLASS:PRIVATE",
        "PRIORITY:1", "TRANSP:TRANSPARENT", "CATEGORIES:Work,Blue",
        "BEGIN:VALARM", "TRIGGER:-PT1H30M", "END:VALARM",
    ))  # fmt: skip
    assert item.body == {
        "subject": "Plan, review",
        "body": {"contentType": "text", "content": "a\nb"},
        "start": {"dateTime": "2024-03-05T09:00:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2024-03-05T10:00:00", "timeZone": "Europe/Berlin"},
        "isAllDay": False,
        "isReminderOn": True,
        "reminderMinutesBeforeStart": 90,
        "location": {"displayName": "Room 1"},
        "categories": ["Work", "Blue"],
        "showAs": "free",
        "sensitivity": "private",
        "importance": "high",
    }
    pim_checks.check_event(item.body)


@pytest.mark.parametrize(
    ("props", "start", "end", "all_day"),
    [
        (["DTSTART;VALUE=DATE:20240101", "DTEND;VALUE=DATE:20240102"],
         "2024-01-01T00:00:00", "2024-01-02T00:00:00", True),
        (["DTSTART;VALUE=DATE:20240101"], "2024-01-01T00:00:00", "2024-01-02T00:00:00", True),
        (["DTSTART:20240101T100000Z", "DURATION:PT45M"],
         "2024-01-01T10:00:00", "2024-01-01T10:45:00", False),
    ],
)  # fmt: skip
def test_event_times(props: list[str], start: str, end: str, all_day: bool) -> None:
    body = event(cal(*props)).body
    assert (body["start"]["dateTime"], body["end"]["dateTime"], body["isAllDay"]) == (
        start, end, all_day)  # fmt: skip
    assert body["isReminderOn"] is False
    pim_checks.check_event(body)


def test_html_body_attendees_and_organizer() -> None:
    text = cal("DTSTART:20240101T100000Z", "X-ALT-DESC;FMTTYPE=text/html:<b>x</b>",
               "ORGANIZER;CN=Boss:mailto:boss@x", "ATTENDEE;ROLE=OPT-PARTICIPANT;CN=A:mailto:a@x",
               "ATTENDEE;CUTYPE=ROOM:mailto:room@x")  # fmt: skip
    quiet = event(text)
    assert quiet.body["body"] == {"contentType": "html", "content": "<b>x</b>"}
    assert "attendees" not in quiet.body
    assert any("organizer Boss <boss@x>" in n for n in quiet.notes)
    assert any("attendees not added" in n and "a@x" in n for n in quiet.notes)
    invited = event(text, invite=True)
    assert invited.body["attendees"] == [
        {"type": "optional", "emailAddress": {"address": "a@x", "name": "A"}},
        {"type": "resource", "emailAddress": {"address": "room@x", "name": ""}},
    ]


def test_exdates_and_changed_occurrences_come_back_as_changes() -> None:
    rid = "RECURRENCE-ID;TZID=Europe/Berlin:20240108T110000"  # 10:00 UTC in winter
    changed = "\r\n".join(["BEGIN:VEVENT", "UID:1", rid,
                           "DTSTART:20240108T120000Z", "DTEND:20240108T130000Z", "SUMMARY:moved",
                           "END:VEVENT", ""])  # fmt: skip
    item = event(cal("DTSTART:20240101T100000Z", "RRULE:FREQ=WEEKLY;BYDAY=MO",
                     "EXDATE:20240115T100000Z,20240122T100000Z", extra=changed))  # fmt: skip
    assert item.body["recurrence"]["pattern"]["daysOfWeek"] == ["monday"]
    assert item.notes == ()
    assert [(c["original"], c["patch"] and c["patch"]["subject"]) for c in item.later] == [
        ("2024-01-15T10:00:00Z", None), ("2024-01-22T10:00:00Z", None),
        ("2024-01-08T10:00:00Z", "moved")]  # fmt: skip
    assert item.later[2]["patch"]["start"] == {"dateTime": "2024-01-08T12:00:00", "timeZone": "UTC"}


def test_changes_without_a_graph_series_are_notes() -> None:
    changed = "BEGIN:VEVENT\r\nUID:1\r\nRECURRENCE-ID:20240108T100000Z\r\nEND:VEVENT\r\n"
    item = event(cal("DTSTART:20240101T100000Z", "RRULE:FREQ=HOURLY", "EXDATE:20240101T120000Z",
                     extra=changed))  # fmt: skip
    assert item.later == ()
    assert any("changed occurrence 2024-01-08 10:00 UTC not applied" in n for n in item.notes)
    unknown = event(cal("DTSTART;TZID=Nowhere/City:20240101T100000", "RRULE:FREQ=DAILY",
                        "EXDATE;TZID=Nowhere/City:20240102T100000"))  # fmt: skip
    assert any("unknown time zone" in n for n in unknown.notes)


def test_unsupported_rule_creates_first_occurrence_with_a_note() -> None:
    item = event(cal("DTSTART:20240101T100000Z", "RRULE:FREQ=HOURLY;INTERVAL=2"))
    assert "recurrence" not in item.body
    assert any("no Graph pattern" in n for n in item.notes)


def test_no_master_event_is_an_error() -> None:
    with pytest.raises(ValueError, match="DTSTART"):
        event(cal("SUMMARY:x"))


@pytest.mark.parametrize(
    ("text", "want"),
    [("-PT15M", -timedelta(minutes=15)), ("P1D", timedelta(days=1)),
     ("-P1W", -timedelta(weeks=1)), ("PT1H30M", timedelta(minutes=90))],
)  # fmt: skip
def test_duration(text: str, want: timedelta) -> None:
    assert duration(text) == want


# --- recurrence ------------------------------------------------------------------

TUE = date(2016, 8, 2)  # a Tuesday
TIMES = {
    "start": {"dateTime": "2016-08-02T15:00:00", "timeZone": "UTC"},
    "end": {"dateTime": "2016-08-02T16:00:00", "timeZone": "UTC"},
}
RECUR_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("FREQ=DAILY;INTERVAL=3", {"type": "daily", "interval": 3}, {"type": "noEnd"}),
    ("FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR",
     {"type": "weekly", "interval": 1, "firstDayOfWeek": "monday",
      "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"]}, {"type": "noEnd"}),
    ("FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;WKST=SU;COUNT=10",
     {"type": "weekly", "interval": 2, "daysOfWeek": ["tuesday", "thursday"],
      "firstDayOfWeek": "sunday"}, {"type": "numbered", "numberOfOccurrences": 10}),
    ("FREQ=WEEKLY", {"type": "weekly", "interval": 1, "daysOfWeek": ["tuesday"],
                     "firstDayOfWeek": "monday"}, {"type": "noEnd"}),
    ("FREQ=MONTHLY;BYMONTHDAY=15;UNTIL=20171231T235959Z",
     {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 15},
     {"type": "endDate", "endDate": "2017-12-31"}),
    ("FREQ=MONTHLY;BYDAY=2TU", {"type": "relativeMonthly", "interval": 1,
                                "daysOfWeek": ["tuesday"], "index": "second"}, {"type": "noEnd"}),
    ("FREQ=MONTHLY;BYDAY=-1FR", {"type": "relativeMonthly", "interval": 1,
                                 "daysOfWeek": ["friday"], "index": "last"}, {"type": "noEnd"}),
    ("FREQ=MONTHLY;INTERVAL=2;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=1",
     {"type": "relativeMonthly", "interval": 2, "index": "first",
      "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"]}, {"type": "noEnd"}),
    ("FREQ=MONTHLY;BYMONTHDAY=-1",
     {"type": "relativeMonthly", "interval": 1, "index": "last",
      "daysOfWeek": ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday",
                     "saturday"]}, {"type": "noEnd"}),
    ("FREQ=MONTHLY", {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 2},
     {"type": "noEnd"}),
    ("FREQ=YEARLY;BYMONTH=8;BYMONTHDAY=2", {"type": "absoluteYearly", "interval": 1,
                                            "month": 8, "dayOfMonth": 2}, {"type": "noEnd"}),
    ("FREQ=YEARLY;BYMONTHDAY=2", {"type": "absoluteYearly", "interval": 1, "month": 8,
                                  "dayOfMonth": 2}, {"type": "noEnd"}),
    ("FREQ=YEARLY;BYMONTH=11;BYDAY=4TH", {"type": "relativeYearly", "interval": 1, "month": 11,
                                          "daysOfWeek": ["thursday"], "index": "fourth"},
     {"type": "noEnd"}),
]  # fmt: skip


@pytest.mark.parametrize(("rrule", "pattern", "rng"), RECUR_CASES)
def test_recurrence(rrule: str, pattern: dict[str, Any], rng: dict[str, Any]) -> None:
    rec = recurrence(rrule, TUE, "UTC")
    assert rec["pattern"] == pattern
    assert rec["range"] == {"startDate": "2016-08-02", "recurrenceTimeZone": "UTC", **rng}
    body = {**TIMES, "recurrence": rec}
    pim_checks.check_event(body)  # and the test server takes it


@pytest.mark.parametrize(
    "rrule",
    ["FREQ=HOURLY", "FREQ=DAILY;BYHOUR=9,17", "FREQ=MONTHLY;BYDAY=3MO,1TU",
     "FREQ=MONTHLY;BYDAY=5MO", "FREQ=YEARLY;BYMONTH=1,7", "FREQ=WEEKLY;BYDAY=1MO",
     "FREQ=MONTHLY;BYMONTHDAY=1,15", "FREQ=YEARLY;BYWEEKNO=20", "FREQ=DAILY;INTERVAL=0",
     "FREQ=MONTHLY;BYDAY=TU"],
)  # fmt: skip
def test_recurrence_graph_cannot_express(rrule: str) -> None:
    with pytest.raises(Unsupported):
        recurrence(rrule, TUE, "UTC")


@pytest.mark.parametrize(
    ("rec", "message"),
    [
        ({"pattern": {"type": "weekly", "interval": 1},
          "range": {"type": "noEnd", "startDate": "2016-08-02"}}, "daysOfWeek"),
        ({"pattern": {"type": "daily", "interval": 1},
          "range": {"type": "noEnd", "startDate": "2016-08-03"}}, "startDate"),
        ({"pattern": {"type": "daily", "interval": 1},
          "range": {"type": "numbered", "startDate": "2016-08-02"}}, "numberOfOccurrences"),
    ],
)  # fmt: skip
def test_server_refuses_invalid_recurrence(rec: dict[str, Any], message: str) -> None:
    body = {**TIMES, "recurrence": rec}
    with pytest.raises(GraphError) as e:
        pim_checks.check_event(body)
    assert e.value.status == 400 and message in e.value.message


def test_find_part_decodes_base64_and_charset() -> None:
    raw = (b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain"
           b"\r\n\r\nx\r\n--b\r\nContent-Type: text/vcard; charset=iso-8859-1\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\nRk46SvxyZ2VuDQo=\r\n--b--\r\n")  # fmt: skip
    assert find_part(raw, ("text/vcard",)) == "FN:Jürgen\r\n"
    assert find_part(raw, ("text/calendar",)) is None
