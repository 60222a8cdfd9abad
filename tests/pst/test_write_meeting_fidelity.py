"""Two things of Outlook's meetings [MS-OXCICAL] has no iCalendar form for, kept by
pstkit's own X- names both ways (issue 17): a Meeting Forward Notification's forwardees
(PidLidForwardNotificationRecipients, [MS-OXOCAL] 2.2.9) and, on the organizer's
appointment, each attendee's counter proposal (PidTagRecipientProposed, ...StartTime,
...EndTime, 2.2.4.10.4-6) with the count of open ones (PidLidAppointmentProposalNumber).
Table tests of both translations, then PST files read by pstkit's checker, libpff, readpst
and pstkit's reader, PST -> store -> PST -> store."""

from __future__ import annotations

import shutil
import struct
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pstkit.converters.pst.attendees import party_lines
from pstkit.converters.pst.ical import event_ics
from pstkit.converters.pst.props import Props
from pstkit.converters.pst.recipient_rows import Recipient, decode, encode
from pstkit.converters.pst.write.check import check
from pstkit.converters.pst.write.events import PSETID_APPOINTMENT, components, event
from pstkit.converters.pst.write.mapi import one_off, to_mapi
from pstkit.converters.pst.write.meeting import mail_or_meeting
from pstkit.converters.pst.write.namemap import NameMap
from pstkit.converters.pst.write.sink import PstSink
from pstkit.converters.pst.write.values import filetime
from pstkit.location import Location
from pstkit.model import Delivered, ItemKind
from pstkit.options import ConnectOptions
from tests.helpers import cli

from .test_write_cards import calendar, stored
from .test_write_fuzz import stored as meta
from .test_write_meeting_resp import WHEN, calendars, imip, named, outlook_like

A = PSETID_APPOINTMENT
FORWARD = "IPM.Schedule.Meeting.Notification.Forward"
#: the people the meeting was forwarded to, as pstkit's reader writes them: To, Cc (a
#: name that needs quotes), one known by address only, one non-ASCII name
FORWARDED = [
    "X-PSTKIT-FORWARDED-TO;CN=Dora Dürr;ROLE=REQ-PARTICIPANT:mailto:dora@y.org",
    'X-PSTKIT-FORWARDED-TO;CN="Eve, Jr.";ROLE=OPT-PARTICIPANT:mailto:eve@y.org',
    "X-PSTKIT-FORWARDED-TO;ROLE=REQ-PARTICIPANT:mailto:fay@y.org",
]
FORWARD_MAIL = imip("", *WHEN, "ATTENDEE;CN=Bob:mailto:bob@x.org", *FORWARDED,
                    head=f"X-PSTKIT-MESSAGE-CLASS:{FORWARD}")
WANT_ROWS = encode([Recipient(name, addr, "SMTP", kind, addr, one_off(name, addr))
                    for name, addr, kind in (("Dora Dürr", "dora@y.org", 1),
                                             ("Eve, Jr.", "eve@y.org", 2),
                                             ("fay@y.org", "fay@y.org", 1))])
#: the organizer's appointment: Bob proposed another time (open), Cy's proposal was
#: answered (the flag off, Outlook keeps the times), Di never proposed
PROPOSED = ";X-PSTKIT-PROPOSED-START=20261211T090000Z;X-PSTKIT-PROPOSED-END=20261211T103000Z"
ATTENDEES = [
    f"ATTENDEE;CN=Bob;ROLE=REQ-PARTICIPANT;PARTSTAT=TENTATIVE;X-PSTKIT-PROPOSED=TRUE{PROPOSED}"
    ":mailto:bob@x.org",
    f"ATTENDEE;CN=Cy;ROLE=OPT-PARTICIPANT;PARTSTAT=ACCEPTED;X-PSTKIT-PROPOSED=FALSE{PROPOSED}"
    ":mailto:cy@x.org",
    "ATTENDEE;CN=Di;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION:mailto:di@x.org",
]
APPOINTMENT = calendar(
    "BEGIN:VEVENT\nUID:meet-9\nDTSTAMP:20261202T081500Z\nDTSTART:20261210T140000Z\n"
    "DTEND:20261210T150000Z\nSUMMARY:Plan\nORGANIZER;CN=Ann:mailto:ann@x.org\n"
    + "".join(f"{x}\n" for x in ATTENDEES) + "X-PSTKIT-PROPOSALS:1\nEND:VEVENT\n")


def _utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def _unfolded(text: str) -> str:
    return text.replace("\r\n ", "")


# --- forward notification: the translations ------------------------------------------


def test_the_writer_makes_the_forwardees_list() -> None:
    names = NameMap()
    msg, notes = mail_or_meeting(FORWARD_MAIL, to_mapi(FORWARD_MAIL), names.id)
    got = named(msg, names)
    assert notes == []
    assert got[(A, 0x8261)] == WANT_ROWS  # PidLidForwardNotificationRecipients
    assert msg.recipients == to_mapi(FORWARD_MAIL).recipients  # its own: the mail's
    # a forward notification without forwardees has no list; other classes never have one
    bare = imip("", *WHEN, head=f"X-PSTKIT-MESSAGE-CLASS:{FORWARD}")
    assert (A, 0x8261) not in named(mail_or_meeting(bare, to_mapi(bare), names.id)[0], names)
    request = imip("REQUEST", *WHEN, *FORWARDED)
    assert (A, 0x8261) not in named(mail_or_meeting(request, to_mapi(request), names.id)[0],
                                    names)


def _notification(blob: bytes) -> str:
    props = Props({0x001A: FORWARD, 0x0037: "Plan", "Start": _utc("20261210T140000Z"),
                   "End": _utc("20261210T150000Z"), "ForwardNotificationRecipients": blob,
                   0x0042: "Bob", 0x0064: "SMTP", 0x0065: "bob@x.org"})  # the sender
    return _unfolded(event_ics(props, "pst-1", ""))


def test_the_reader_gives_the_forwardees_back() -> None:
    text = _notification(WANT_ROWS)
    assert [x for x in text.split("\r\n") if x.startswith("X-PSTKIT-FORWARDED-TO")] == FORWARDED
    assert "X-PSTKIT-NOTE" not in text and "ATTENDEE;CN=Dora" not in text
    # an Exchange user without SMTP address keeps its native one, as attendees do
    dn = "/O=EXAMPLE/OU=SITE/CN=RECIPIENTS/CN=GUS"
    text = _notification(encode([Recipient("Gus", dn, "EX", 2)]))
    assert f"X-PSTKIT-FORWARDED-TO;CN=Gus;X-PSTKIT-ADDRTYPE=EX;ROLE=OPT-PARTICIPANT:{dn}" in text


@pytest.mark.parametrize("cut", [0, 7, 8, 30, len(WANT_ROWS) - 1])
def test_a_damaged_list_is_a_note(cut: int) -> None:
    text = _notification(WANT_ROWS[:cut])
    notes = [x for x in text.split("\r\n") if x.startswith("X-PSTKIT-NOTE:")]
    assert len(notes) == 1 and "forward notification recipients unreadable (" in notes[0]
    kept = len(decode(WANT_ROWS[:cut]).recipients)
    assert [x for x in text.split("\r\n") if x.startswith("X-PSTKIT-FORWARDED")] == \
        FORWARDED[:kept]


# --- counter proposals on the organizer's appointment: the translations ---------------


def _rows(ev_recipients: list[list[tuple[int, int, bytes]]]) -> list[dict[int, bytes]]:
    return [{p[0]: p[2] for p in r} for r in ev_recipients]


def test_the_writer_puts_proposals_on_the_attendees_rows() -> None:
    names = NameMap()
    ev = event(components(APPOINTMENT)[0], {}, [], names.id)
    org, bob, cy, di = _rows(ev.recipients)
    assert 0x5FE1 not in org and 0x5FE1 not in di and 0x5FE3 not in di
    assert bob[0x5FE1][0] == 1 and cy[0x5FE1][0] == 0  # PidTagRecipientProposed
    for row in (bob, cy):
        assert filetime(row[0x5FE3]) == _utc("20261211T090000Z")
        assert filetime(row[0x5FE4]) == _utc("20261211T103000Z")
    count = {p[0]: p[2] for p in ev.props}[names.id((A, 0x8259))]
    assert struct.unpack("<i", count)[0] == 1  # PidLidAppointmentProposalNumber
    # without X-PSTKIT-PROPOSALS the open proposals are counted; none open: 0, as Outlook
    counted = APPOINTMENT.replace("X-PSTKIT-PROPOSALS:1\r\n", "")
    closed = counted.replace("X-PSTKIT-PROPOSED=TRUE", "X-PSTKIT-PROPOSED=FALSE")
    for text, want in ((counted, 1), (closed, 0)):
        ev = event(components(text)[0], {}, [], names.id)
        got = {p[0]: p[2] for p in ev.props}.get(names.id((A, 0x8259)))
        assert (None if got is None else struct.unpack("<i", got)[0]) == want


def test_a_plain_appointment_keeps_its_count_of_nought() -> None:
    """Outlook keeps PidLidAppointmentProposalNumber 0 on appointments without attendees
    (dist-list.pst): the writer writes 0 where the calendar gives no count, so the reader
    gives no line for it (none in every appointment's calendar)."""
    names = NameMap()
    plain = calendar("BEGIN:VEVENT\nUID:p\nDTSTART:20261210T140000Z\nEND:VEVENT\n")
    ev = event(components(plain)[0], {}, [], names.id)
    assert ev.recipients == []
    assert {p[0]: p[2] for p in ev.props}[names.id((A, 0x8259))] == b"\0\0\0\0"
    assert party_lines(Props({0x001A: "IPM.Appointment", "ProposalNumber": 0}), ()) == []
    assert party_lines(Props({0x001A: "IPM.Appointment", "ProposalNumber": 2}), ()) == [
        "X-PSTKIT-PROPOSALS:2"]


def test_the_reader_gives_the_proposals_back() -> None:
    def row(name: str, kind: int, flags: int, track: int, **more: object) -> Props:
        return Props({0x3001: name, 0x3002: "SMTP", 0x3003: f"{name.lower()}@x.org",
                      0x39FE: f"{name.lower()}@x.org", 0x0C15: kind, 0x5FFD: flags,
                      0x5FFF: track, **{int(k[1:], 16): v for k, v in more.items()}})

    start, end = _utc("20261211T090000Z"), _utc("20261211T103000Z")
    people = (row("Ann", 1, 3, 0), row("Bob", 1, 1, 2, x5FE1=True, x5FE3=start, x5FE4=end),
              row("Cy", 2, 1, 3, x5FE1=False, x5FE3=start, x5FE4=end), row("Di", 1, 1, 0))
    item = Props({0x001A: "IPM.Appointment", "ResponseStatus": 1, "ProposalNumber": 1})
    assert party_lines(item, people) == ["ORGANIZER;CN=Ann:mailto:ann@x.org", *ATTENDEES,
                                         "X-PSTKIT-PROPOSALS:1"]


# --- through PST files -----------------------------------------------------------------


def _recipient_tables(path: Path, cls: str) -> list[dict[int, tuple[int, bytes]]]:
    """libpff's recipient table of the first item of class `cls`: per row, id -> (type,
    bytes)."""
    pypff = pytest.importorskip("pypff")
    from .test_write_pim_readers import pypff_items  # noqa: PLC0415 - needs pypff

    f = pypff.file()
    f.open(str(path))
    try:
        for item in pypff_items(f.root_folder):
            found = {e.entry_type: e for e in item.record_sets[0].entries}
            if 0x1A in found and found[0x1A].get_data_as_string() == cls:
                return [{e.entry_type: (e.value_type, bytes(e.data or b"")) for e in rs.entries}
                        for rs in item.recipients.record_sets]
    finally:
        f.close()
    raise AssertionError(f"no {cls} in {path}")


def _readpst_reads(path: Path, out: Path, items: int) -> None:
    if shutil.which("readpst") is None:
        return
    out.mkdir()
    subprocess.run(["readpst", "-q", "-j", "0", "-D", "-M", "-o", str(out), str(path)],
                   check=True, capture_output=True, timeout=120)
    assert len([p for p in out.rglob("*") if p.is_file()]) == items


def _round_trip(first: Path, tmp_path: Path) -> tuple[list[tuple[str, str]], Path]:
    """first PST -> store -> second PST -> store; the first store's calendar parts, after
    checking that the second store has the same."""
    assert cli("--quiet", "export", str(first), str(tmp_path / "s"))[0] == 0
    parts = calendars(tmp_path / "s")
    second = tmp_path / "two.pst"
    assert cli("--quiet", "import", str(tmp_path / "s"), f"pst:{second}")[0] == 0
    with second.open("rb") as f:
        assert check(f).findings == []
    assert cli("--quiet", "export", str(second), str(tmp_path / "s2"))[0] == 0
    assert calendars(tmp_path / "s2") == parts
    return parts, second


def test_forward_notification_round_trip(tmp_path: Path) -> None:
    """As Outlook holds it (the properties, no calendar part): pstkit's reader makes the
    calendar from PidLidForwardNotificationRecipients, the writer the list again."""
    pytest.importorskip("pypff")
    from .test_write_pim_readers import outlook_named  # noqa: PLC0415

    first = tmp_path / "one.pst"
    outlook_like(first, [FORWARD_MAIL])
    with first.open("rb") as f:
        assert check(f).findings == []
    assert outlook_named(first, FORWARD)[(A, 0x8261)] == (0x0102, WANT_ROWS)  # libpff
    _readpst_reads(first, tmp_path / "rp", 1)
    parts, second = _round_trip(first, tmp_path)
    text = _unfolded("\n".join(t for _c, t in parts))
    assert [x for x in text.split("\r\n") if x.startswith("X-PSTKIT-FORWARDED-TO")] == FORWARDED
    assert "X-PSTKIT-NOTE" not in text
    assert outlook_named(second, FORWARD)[(A, 0x8261)] == (0x0102, WANT_ROWS)


def _appointment_pst(path: Path, ics: str) -> Path:
    """A PST holding one appointment from the store (its calendar `ics`), as the import
    writes it."""
    sink = PstSink(Location("pst", str(path)), ConnectOptions())
    sink.ensure_folder(("Calendar",), None)
    raw = stored("IPM.Appointment", "Plan", "", "event.ics", "text/calendar", ics)
    result = sink.put_batch(("Calendar",), [(replace(meta(0), kind=ItemKind.EVENT,
                                                     folder=("Calendar",)), raw)])[0]
    assert isinstance(result, Delivered) and not result.note, result
    sink.close()
    return path


def test_counter_proposals_round_trip(tmp_path: Path) -> None:
    """The organizer's appointment from the store, as the import writes it: the attendees'
    rows in the PST's recipient table carry the proposal, and come back the same."""
    pytest.importorskip("pypff")
    from .test_write_pim_readers import outlook_named  # noqa: PLC0415

    first = _appointment_pst(tmp_path / "one.pst", APPOINTMENT)
    with first.open("rb") as f:
        assert check(f).findings == []
    rows = {r[0x3001][1].decode("utf-16-le"): r
            for r in _recipient_tables(first, "IPM.Appointment")}
    assert set(rows) == {"Ann", "Bob", "Cy", "Di"}
    assert rows["Bob"][0x5FE1][0] == 0x000B and rows["Bob"][0x5FE1][1][0] == 1
    # (libpff lists every column of the table; one a row lacks reads as zeros)
    assert rows["Cy"][0x5FE1][1][0] == 0 and rows["Di"].get(0x5FE1, (0, b"\0"))[1][0] == 0
    for name in ("Bob", "Cy"):
        assert rows[name][0x5FE3][0] == 0x0040
        assert filetime(rows[name][0x5FE3][1]) == _utc("20261211T090000Z")
        assert filetime(rows[name][0x5FE4][1]) == _utc("20261211T103000Z")
    assert struct.unpack("<i", outlook_named(first, "IPM.Appointment")[(A, 0x8259)][1])[0] == 1
    _readpst_reads(first, tmp_path / "rp", 1)
    parts, second = _round_trip(first, tmp_path)
    text = _unfolded("\n".join(t for _c, t in parts))
    for line in (*ATTENDEES, "X-PSTKIT-PROPOSALS:1"):
        assert f"\r\n{line}\r\n" in text, line
    again = {r[0x3001][1].decode("utf-16-le"): r
             for r in _recipient_tables(second, "IPM.Appointment")}
    for name in ("Bob", "Cy", "Di"):
        for pid in (0x5FE1, 0x5FE3, 0x5FE4):
            assert again[name].get(pid) == rows[name].get(pid), (name, hex(pid))


# --- unsendable attendees (PidLidAppointmentUnsendableRecipients) ----------------------

UNSENDABLE = [line.replace("X-PSTKIT-FORWARDED-TO", "X-PSTKIT-UNSENDABLE") for line in FORWARDED]
WITH_UNSENDABLE = APPOINTMENT.replace(
    "X-PSTKIT-PROPOSALS:1\r\n", "".join(f"{x}\r\n" for x in ["X-PSTKIT-PROPOSALS:1", *UNSENDABLE]))


def test_the_writer_makes_the_unsendable_list() -> None:
    names = NameMap()
    ev = event(components(WITH_UNSENDABLE)[0], {}, [], names.id)
    got = {p[0]: p[2] for p in ev.props}
    assert got[names.id((A, 0x825D))] == WANT_ROWS  # the same rows as the forwardees'
    assert len(ev.recipients) == 4  # not attendees: the table holds the four it held
    plain = event(components(APPOINTMENT)[0], {}, [], names.id)
    assert names.id((A, 0x825D)) not in {p[0] for p in plain.props}


def test_the_reader_gives_the_unsendable_back() -> None:
    item = Props({0x001A: "IPM.Appointment", "UnsendableRecipients": WANT_ROWS})
    assert party_lines(item, ()) == UNSENDABLE
    damaged = party_lines(Props({0x001A: "IPM.Appointment",
                                 "UnsendableRecipients": WANT_ROWS[:30]}), ())
    assert damaged[-1].startswith("X-PSTKIT-NOTE:unsendable recipients unreadable (")


def test_unsendable_round_trip(tmp_path: Path) -> None:
    """An appointment from the store with unsendable attendees -> PST (the list libpff
    reads is the rows written) -> store -> PST -> store: the same lines each time."""
    pytest.importorskip("pypff")
    from .test_write_pim_readers import outlook_named  # noqa: PLC0415

    first = _appointment_pst(tmp_path / "one.pst", WITH_UNSENDABLE)
    assert outlook_named(first, "IPM.Appointment")[(A, 0x825D)] == (0x0102, WANT_ROWS)
    parts, second = _round_trip(first, tmp_path)
    text = _unfolded("\n".join(t for _c, t in parts))
    assert [x for x in text.split("\r\n") if x.startswith("X-PSTKIT-UNSENDABLE")] == UNSENDABLE
    assert outlook_named(second, "IPM.Appointment")[(A, 0x825D)] == (0x0102, WANT_ROWS)
