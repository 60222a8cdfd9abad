"""pst_ical: appointments/tasks -> iCalendar, Outlook recurrence blobs -> RRULE. Tables."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest

from pstkit.converters.pst.ical import (
    RecurrenceError,
    escape,
    event_ics,
    exdates,
    fold,
    parse_recurrence,
    task_ics,
)
from pstkit.converters.pst.named import meeting_method
from pstkit.converters.pst.props import Props

T1 = datetime(2016, 8, 2, 15, 0, tzinfo=UTC)
T2 = datetime(2016, 8, 2, 15, 30, tzinfo=UTC)
DAILY, WEEKLY, MONTHLY, YEARLY = 0x200A, 0x200B, 0x200C, 0x200D
NEVER, AFTER_COUNT, AFTER_DATE = 0x2023, 0x2022, 0x2021


def minutes(dt: datetime) -> int:
    return int((dt - datetime(1601, 1, 1)).total_seconds()) // 60


def recur_blob(freq: int, ptype: int, period: int, spec: bytes = b"", *, end: int = NEVER,
               count: int = 10, first_dow: int = 0, deleted: tuple[datetime, ...] = (),
               modified: tuple[datetime, ...] = (), start_offset: int | None = None) -> bytes:
    blob = struct.pack("<HHHHHIII", 0x3004, 0x3004, freq, ptype, 0, 0, period, 0) + spec
    blob += struct.pack("<IIII", end, count, first_dow, len(deleted))
    blob += b"".join(struct.pack("<I", minutes(d)) for d in deleted)
    blob += struct.pack("<I", len(modified)) + b"".join(struct.pack("<I", minutes(d))
                                                        for d in modified)
    blob += struct.pack("<II", 0, 0)
    if start_offset is not None:
        blob += struct.pack("<IIII", 0x3006, 0x3009, start_offset, start_offset + 30)
    return blob


@pytest.mark.parametrize(("blob", "rrule"), [
    (recur_blob(DAILY, 0, 2880, end=AFTER_COUNT, count=5), "FREQ=DAILY;INTERVAL=2;COUNT=5;WKST=SU"),
    (recur_blob(WEEKLY, 1, 1, struct.pack("<I", 0x2A), first_dow=1),
     "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,WE,FR;WKST=MO"),
    (recur_blob(MONTHLY, 2, 3, struct.pack("<I", 15), end=AFTER_DATE, count=4),
     "FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=15;COUNT=4;WKST=SU"),
    (recur_blob(MONTHLY, 3, 1, struct.pack("<II", 0x20, 5)),
     "FREQ=MONTHLY;INTERVAL=1;BYDAY=FR;BYSETPOS=-1;WKST=SU"),
    (recur_blob(MONTHLY, 4, 1, struct.pack("<I", 0)),
     "FREQ=MONTHLY;INTERVAL=1;BYMONTHDAY=-1;WKST=SU"),
    (recur_blob(YEARLY, 2, 12, struct.pack("<I", 29)),
     "FREQ=YEARLY;INTERVAL=1;BYMONTH=1;BYMONTHDAY=29;WKST=SU"),  # (StartDate: 1601-01-01)
])
def test_rrule(blob: bytes, rrule: str) -> None:
    assert parse_recurrence(blob).rrule == rrule


@pytest.mark.parametrize("blob", [
    b"", recur_blob(WEEKLY, 1, 1, struct.pack("<I", 4))[:30],
    b"\x05\x30" + recur_blob(WEEKLY, 1, 1, struct.pack("<I", 4))[2:],  # unknown version
    recur_blob(0x2099, 1, 1, struct.pack("<I", 4)),  # unknown frequency
])
def test_bad_recurrence(blob: bytes) -> None:
    with pytest.raises(RecurrenceError):
        parse_recurrence(blob)


def test_exdates_skip_changed_occurrences() -> None:
    # Occurrences at 17:00 local = 15:00 UTC (UTC+2); Aug 9 deleted, Aug 23 changed.
    blob = recur_blob(WEEKLY, 1, 1, struct.pack("<I", 4), start_offset=17 * 60,
                      deleted=(datetime(2016, 8, 9), datetime(2016, 8, 23)),
                      modified=(datetime(2016, 8, 23),))
    rec = parse_recurrence(blob)
    assert exdates(rec, T1) == (datetime(2016, 8, 9, 15, 0, tzinfo=UTC),)


def test_exdates_across_midnight() -> None:
    # 01:00 local (UTC+2) is 23:00 UTC the day before.
    blob = recur_blob(DAILY, 0, 1440, start_offset=60, deleted=(datetime(2016, 8, 10),))
    start = datetime(2016, 8, 2, 23, 0, tzinfo=UTC)
    assert exdates(parse_recurrence(blob), start) == (datetime(2016, 8, 9, 23, 0, tzinfo=UTC),)


def test_recurring_event_with_exception() -> None:
    blob = recur_blob(WEEKLY, 1, 1, struct.pack("<I", 4), start_offset=17 * 60,
                      deleted=(datetime(2016, 8, 9), datetime(2016, 8, 23)),
                      modified=(datetime(2016, 8, 23),))
    series = Props({0x0037: "Weekly", "Start": T1, "End": T2, "Recurring": True,
                    "AppointmentRecur": blob, "Location": "Room 1"})
    moved = Props({"ExceptionReplaceTime": datetime(2016, 8, 23, 15, 0, tzinfo=UTC),
                   "Start": datetime(2016, 8, 23, 16, 0, tzinfo=UTC),
                   "End": datetime(2016, 8, 23, 16, 30, tzinfo=UTC), 0x1000: "later"})
    ics = event_ics(series, "u1", "", (moved,))
    assert ics.count("BEGIN:VEVENT") == 2 and ics.count("UID:u1\r\n") == 2
    for line in ("RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=TU;WKST=SU", "EXDATE:20160809T150000Z",
                 "RECURRENCE-ID:20160823T150000Z", "DTSTART:20160823T160000Z",
                 "DESCRIPTION:later"):
        assert f"\r\n{line}\r\n" in ics
    assert ics.count("SUMMARY:Weekly") == 2 and ics.count("LOCATION:Room 1") == 2  # inherited


def test_unreadable_recurrence_is_marked() -> None:
    props = Props({"Start": T1, "Recurring": True, "AppointmentRecur": b"\x00"})
    assert "X-PSTKIT-RECURRING:TRUE" in event_ics(props, "u")
@pytest.mark.parametrize(("text", "escaped"), [
    ("a,b;c\\d", "a\\,b\\;c\\\\d"), ("l1\r\nl2\nl3", "l1\\nl2\\nl3"), ("plain", "plain"),
])
def test_escape(text: str, escaped: str) -> None:
    assert escape(text) == escaped


def test_fold_counts_octets_and_keeps_characters_whole() -> None:
    line = "SUMMARY:" + "日本" * 40
    folded = fold(line)
    parts = folded.removesuffix("\r\n").split("\r\n")
    assert all(len(p.encode()) <= 75 for p in parts)
    assert "".join(p.removeprefix(" ") if i else p for i, p in enumerate(parts)) == line


def test_event_ics() -> None:
    props = Props({0x0037: "\x01\x01Weekly", "Start": T1, "End": T2, "Location": "Room 1",
                   0x1000: "agenda", 0x3007: T1})
    ics = event_ics(props, "pst-1")
    for line in ("BEGIN:VCALENDAR", "BEGIN:VEVENT", "UID:pst-1", "DTSTART:20160802T150000Z",
                 "DTEND:20160802T153000Z", "SUMMARY:Weekly", "LOCATION:Room 1",
                 "DESCRIPTION:agenda", "END:VEVENT", "END:VCALENDAR"):
        assert f"{line}\r\n" in ics
    assert "METHOD" not in ics
    assert "METHOD:REQUEST\r\n" in event_ics(props, "pst-1", "REQUEST")
    all_day = event_ics(Props({"Start": T1, "End": T2, "AllDay": True}), "u")
    assert "DTSTART;VALUE=DATE:20160802" in all_day


@pytest.mark.parametrize(("cls", "method"), [
    ("IPM.Schedule.Meeting.Request", "REQUEST"), ("IPM.Schedule.Meeting.Canceled", "CANCEL"),
    ("IPM.Schedule.Meeting.Resp.Pos", "REPLY"), ("IPM.Note", ""),
])
def test_meeting_method(cls: str, method: str) -> None:
    assert meeting_method(cls) == method


def test_task_ics() -> None:
    ics = task_ics(Props({0x0037: "Do it", "TaskDue": T2, "TaskStatus": 2,
                          "PercentComplete": 1.0}), "t1")
    for line in ("BEGIN:VTODO", "SUMMARY:Do it", "DUE:20160802T153000Z", "STATUS:COMPLETED",
                 "PERCENT-COMPLETE:100"):
        assert f"{line}\r\n" in ics




def test_reminder_categories_and_item_times() -> None:
    props = Props({"Start": T1, "End": T2, "ReminderSet": True, "ReminderDelta": 15,
                   "Keywords": ("Red", "Work, urgent"), 0x3007: T1, 0x3008: T2,
                   "Recurring": True, "AppointmentRecur": recur_blob(DAILY, 0, 1440)})
    ics = event_ics(props, "u")
    lines = ics.split("\r\n")
    for line in ("CREATED:20160802T150000Z", "LAST-MODIFIED:20160802T153000Z",
                 "CATEGORIES:Red,Work\\, urgent", "TRIGGER:-PT15M"):
        assert line in lines
    # the alarm component comes after every property of the event (RFC 5545 3.6.1)
    assert lines.index("BEGIN:VALARM") > lines.index("RRULE:FREQ=DAILY;INTERVAL=1;WKST=SU")
    assert lines.index("END:VALARM") == lines.index("END:VEVENT") - 1
    assert "VALARM" not in event_ics(Props({"Start": T1, "ReminderDelta": 15}), "u")


@pytest.mark.parametrize("size", [0, 1, 74, 75, 76, 148, 149, 150, 223, 224, 1000])
def test_fold_ascii_first_line_75_then_space_and_74(size: int) -> None:
    line = "".join(chr(0x21 + i % 90) for i in range(size))
    parts = fold(line).removesuffix("\r\n").split("\r\n")
    assert fold(line).endswith("\r\n")
    assert len(parts[0]) == min(size, 75)
    assert all(p.startswith(" ") and 2 <= len(p) <= 75 for p in parts[1:])
    assert all(len(p) == 75 for p in parts[:-1])
    assert "".join(p.removeprefix(" ") if i else p for i, p in enumerate(parts)) == line
