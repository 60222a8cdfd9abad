"""Meeting responses, counter proposals, cancellations and forward notifications as
Outlook's own classes ([MS-OXOCAL] 2.2.7-2.2.9), with the meeting properties of each, and
back: the reader's iCalendar of such an item gives the iTIP message again ([MS-OXCICAL]),
so PST -> store -> PST keeps them. Table tests of both pure translations, then a PST
holding them as Outlook does (no calendar part; the properties only) read by pstkit's
checker, libpff, readpst and pstkit's reader, and written again from the store."""

from __future__ import annotations

import base64
import email
import email.policy
import shutil
import struct
import subprocess
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pstkit.converters.pst.meeting_ics import goid_uid
from pstkit.converters.pst.named import PSETID_MEETING, meeting_method
from pstkit.converters.pst.props import Props
from pstkit.converters.pst.write.check import check
from pstkit.converters.pst.write.events import PSETID_APPOINTMENT
from pstkit.converters.pst.write.mapi import Message, to_mapi
from pstkit.converters.pst.write.meeting import mail_or_meeting
from pstkit.converters.pst.write.meeting_props import global_object_id
from pstkit.converters.pst.write.messaging import PstWriter
from pstkit.converters.pst.write.namemap import NameMap
from pstkit.converters.pst.write.values import filetime
from pstkit.store import Store
from tests.helpers import cli

A, M = PSETID_APPOINTMENT, PSETID_MEETING
STAMP = "DTSTAMP:20261202T081500Z"


def imip(method: str, *lines: str, body: str = "See you.", head: str = "") -> bytes:
    """An iMIP mail (RFC 6047) of `method` ("" for none) whose VEVENT has `lines`."""
    ics = "\r\n".join([
        "BEGIN:VCALENDAR", "VERSION:2.0", *([f"METHOD:{method}"] if method else []),
        *([head] if head else []), "BEGIN:VEVENT", "UID:meet-7", "SEQUENCE:3", STAMP,
        "SUMMARY:Plan", "LOCATION:Room 4", "ORGANIZER;CN=Ann:mailto:ann@x.org", *lines,
        "END:VEVENT", "END:VCALENDAR", ""])
    param = f"; method={method}" if method else ""
    return ("From: Bob <bob@x.org>\r\nTo: ann@x.org\r\nSubject: Plan\r\n"
            "Date: Wed, 02 Dec 2026 08:15:00 +0000\r\nMessage-ID: <r1@x.org>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
            f"--b\r\nContent-Type: text/plain\r\n\r\n{body}\r\n"
            f"--b\r\nContent-Type: text/calendar; charset=utf-8{param}\r\n\r\n"
            f"{ics}--b--\r\n").encode()


WHEN = ["DTSTART:20261210T140000Z", "DTEND:20261210T150000Z"]
BOB = "ATTENDEE;CN=Bob;PARTSTAT={}:mailto:bob@x.org"
#: name -> (mail, class Outlook gives it)
CASES: dict[str, tuple[bytes, str]] = {
    # an answer to one occurrence of a weekly series, without text (PidLidIsSilent)
    "accept": (imip("REPLY", "RECURRENCE-ID:20261217T140000Z", "DTSTART:20261217T140000Z",
                    "DTEND:20261217T150000Z", BOB.format("ACCEPTED"), body=""),
               "IPM.Schedule.Meeting.Resp.Pos"),
    "decline": (imip("REPLY", *WHEN, BOB.format("DECLINED")), "IPM.Schedule.Meeting.Resp.Neg"),
    "counter": (imip("COUNTER", "DTSTART:20261211T090000Z", "DTEND:20261211T103000Z",
                     "X-MS-OLK-ORIGINALSTART:20261210T140000Z",
                     "X-MS-OLK-ORIGINALEND:20261210T150000Z", BOB.format("TENTATIVE")),
                "IPM.Schedule.Meeting.Resp.Tent"),
    "cancel": (imip("CANCEL", *WHEN, "ATTENDEE;CN=Bob;ROLE=REQ-PARTICIPANT:mailto:bob@x.org",
                    "ATTENDEE;CN=Cy;ROLE=OPT-PARTICIPANT:mailto:cy@x.org", "STATUS:CANCELLED"),
               "IPM.Schedule.Meeting.Canceled"),
    "forward": (imip("", *WHEN, "ATTENDEE;CN=Bob:mailto:bob@x.org",
                     head="X-PSTKIT-MESSAGE-CLASS:IPM.Schedule.Meeting.Notification.Forward"),
                "IPM.Schedule.Meeting.Notification.Forward"),
}


def translated(raw: bytes, names: NameMap) -> tuple[Message, list[str]]:
    return mail_or_meeting(raw, to_mapi(raw), names.id)


def named(msg: Message, names: NameMap) -> dict[tuple[str, int | str], bytes]:
    by_id = {v: k for k, v in names.ids.items()}
    return {by_id[p[0]]: p[2] for p in msg.props if p[0] in by_id}


def _int(raw: bytes) -> int:
    return int(struct.unpack("<I", raw[:4])[0])


def _time(raw: bytes) -> datetime | None:
    return filetime(raw)


def _utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


@pytest.mark.parametrize("name", sorted(CASES))
def test_class_and_properties_of_each_kind(name: str) -> None:
    raw, cls = CASES[name]
    names = NameMap()
    msg, notes = translated(raw, names)
    props = {p[0]: p[2] for p in msg.props}
    got = named(msg, names)
    assert props[0x001A].decode("utf-16-le") == cls
    assert notes == []
    assert got[(M, 0x0003)] == global_object_id("meet-7", None if name != "accept"
                                                else datetime(2026, 12, 17).date())
    assert got[(M, 0x0023)] == global_object_id("meet-7")  # clean: no date
    assert _int(got[(A, 0x8201)]) == 3  # PidLidAppointmentSequence
    assert got[(M, 0x0002)].decode("utf-16-le") == "Room 4"  # PidLidWhere
    reply = name in ("accept", "decline", "counter")
    # DTSTAMP: the attendee's critical change in a reply or counter, else the owner's
    critical = (M, 0x0001) if reply else (M, 0x001A)
    assert _time(got[critical]) == _utc("20261202T081500Z")
    assert ((M, 0x001A) if reply else (M, 0x0001)) not in got
    if reply:
        assert _int(got[(A, 0x8218)]) == 0  # respNone
        assert got[(M, 0x0004)][0] == (name == "accept")  # PidLidIsSilent: no text
        assert got[(A, 0x8257)][0] == (name == "counter")  # PidLidAppointmentCounterProposal
    assert got[(M, 0x000A)][0] == (name == "accept")  # PidLidIsException
    state = _int(got[(A, 0x8217)])
    assert state == (7 if name == "cancel" else 3)  # asfMeeting|asfReceived(|asfCanceled)


def test_an_answer_to_one_occurrence_names_it() -> None:
    """[MS-OXOCAL] 2.2.1.27: the GOID carries the occurrence's original date (big-endian
    year, month, day); PidLidExceptionReplaceTime its original start."""
    names = NameMap()
    got = named(translated(CASES["accept"][0], names)[0], names)
    assert got[(M, 0x0003)][16:20] == bytes([0x07, 0xEA, 12, 17])
    assert _time(got[(A, 0x8228)]) == _utc("20261217T140000Z")
    assert _time(got[(A, 0x820D)]) == _utc("20261217T140000Z")


def test_a_counter_proposal_keeps_both_times() -> None:
    names = NameMap()
    msg, _n = translated(CASES["counter"][0], names)
    got = named(msg, names)
    props = {p[0]: p[2] for p in msg.props}
    assert _time(got[(A, 0x8250)]) == _utc("20261211T090000Z")  # ProposedStartWhole
    assert _time(got[(A, 0x8251)]) == _utc("20261211T103000Z")  # ProposedEndWhole
    assert _int(got[(A, 0x8256)]) == 90  # ProposedDuration
    assert _time(got[(A, 0x820D)]) == _utc("20261210T140000Z")  # the meeting's own
    assert _time(got[(A, 0x820E)]) == _utc("20261210T150000Z")
    assert _time(props[0x0060]) == _utc("20261210T140000Z")  # PidTagStartDate
    # without the original times ([MS-OXCICAL] 2.1.3.1.1.20.10) DTSTART is both
    bare = imip("COUNTER", "DTSTART:20261211T090000Z", "DTEND:20261211T103000Z")
    got = named(translated(bare, names)[0], names)
    assert got[(A, 0x8250)] == got[(A, 0x820D)]


def test_a_cancellation_lists_the_attendees() -> None:
    names = NameMap()
    got = named(translated(CASES["cancel"][0], names)[0], names)
    assert got[(A, 0x8238)].decode("utf-16-le") == "Bob; Cy"  # PidLidAllAttendeesString
    assert got[(A, 0x823B)].decode("utf-16-le") == "Bob"  # To
    assert got[(A, 0x823C)].decode("utf-16-le") == "Cy"  # Cc (optional)
    assert _int(got[(A, 0x8205)]) == 0  # free


def test_no_method_and_no_mark_stays_mail() -> None:
    names = NameMap()
    msg, _n = translated(imip("", *WHEN), names)
    assert dict((p[0], p[2]) for p in msg.props)[0x001A].decode("utf-16-le") == "IPM.Note"
    odd = imip("", *WHEN, head="X-PSTKIT-MESSAGE-CLASS:IPM.Note.Evil")
    msg, _n = translated(odd, names)
    assert dict((p[0], p[2]) for p in msg.props)[0x001A].decode("utf-16-le") == "IPM.Note"


def test_uid_of_a_global_object_id() -> None:
    # [MS-ASEMAIL] 4.3 example 1: Outlook's id, the date bytes zeroed, in hex
    goid = base64.b64decode("BAAAAIIA4AB0xbcQGoLgCAfUCRDgQMnBJoXEAQAAAAAAAAAAEAAAAAvw7UtuTulOnjnjh"
                            "ns3jvM=")
    assert goid_uid(goid) == ("040000008200E00074C5B7101A82E00800000000E040C9C12685C4010000000"
                              "000000000100000000BF0ED4B6E4EE94E9E39E3867B378EF3")
    # example 2: the "vCal-Uid" form carries the UID
    assert goid_uid(global_object_id("{81412D3C-2A24-4E9D-B20E-11F7BBE92799}")) == \
        "{81412D3C-2A24-4E9D-B20E-11F7BBE92799}"
    assert goid_uid(global_object_id("meet-7", datetime(2026, 12, 17).date())) == "meet-7"
    assert goid_uid(b"short") == "" and goid_uid(None) == ""


@pytest.mark.parametrize(("cls", "counter", "method"), [
    ("IPM.Schedule.Meeting.Resp.Tent", True, "COUNTER"),
    ("IPM.Schedule.Meeting.Resp.Neg", True, "COUNTER"),
    ("IPM.Schedule.Meeting.Resp.Pos", False, "REPLY"),
    ("IPM.Schedule.Meeting.Notification.Forward", False, ""),
    ("IPM.Schedule.Meeting.Canceled", False, "CANCEL"),
    ("IPM.Appointment", True, ""),
])
def test_method_of_a_class(cls: str, counter: bool, method: str) -> None:
    assert meeting_method(cls, counter) == method


def test_the_reader_gives_the_counter_back() -> None:
    from pstkit.converters.pst.ical import event_ics  # noqa: PLC0415

    props = Props({0x001A: "IPM.Schedule.Meeting.Resp.Tent", 0x0037: "Plan",
                   "Start": _utc("20261210T140000Z"), "End": _utc("20261210T150000Z"),
                   "ProposedStart": _utc("20261211T090000Z"),
                   "ProposedEnd": _utc("20261211T103000Z"), "CounterProposal": True,
                   "AppointmentSequence": 3, "AttendeeCriticalChange": _utc("20261202T081500Z"),
                   "OwnerCriticalChange": _utc("20261101T000000Z"),
                   "GlobalObjectId": global_object_id("meet-7")})
    ics = event_ics(props, "pst-1", meeting_method("IPM.Schedule.Meeting.Resp.Tent", True))
    for line in ("METHOD:COUNTER", "UID:meet-7", "SEQUENCE:3", "DTSTAMP:20261202T081500Z",
                 "DTSTART:20261211T090000Z", "DTEND:20261211T103000Z",
                 "X-MS-OLK-ORIGINALSTART:20261210T140000Z",
                 "X-MS-OLK-ORIGINALEND:20261210T150000Z"):
        assert f"{line}\r\n" in ics, line
    # a plain appointment is untouched: its own UID, its creation time as DTSTAMP
    plain = event_ics(Props({0x001A: "IPM.Appointment", "Start": _utc("20261210T140000Z"),
                             "GlobalObjectId": global_object_id("meet-7")}), "pst-2")
    assert "UID:pst-2\r\n" in plain and "SEQUENCE" not in plain


# --- a PST with the meeting items as Outlook keeps them -------------------------------

KEPT = [(M, 0x0003), (M, 0x0023), (A, 0x8201), (M, 0x000A), (A, 0x8228), (A, 0x8257),
        (A, 0x8250), (A, 0x8251), (M, 0x0001), (M, 0x001A), (A, 0x820D), (A, 0x820E),
        (A, 0x8205)]


def outlook_like(path: Path, mails: Iterable[bytes] | None = None) -> None:
    """Each mail (each case by default) as Outlook holds it: the meeting item's
    properties, no calendar part."""
    with path.open("w+b") as f:
        w = PstWriter(f, "meetings")
        inbox = w.folder(None, "Inbox", role="inbox")
        for raw in [raw for raw, _cls in CASES.values()] if mails is None else mails:
            msg, _n = mail_or_meeting(raw, to_mapi(raw), w.names.id)
            kept = [a for a in msg.attachments if not any(
                p[0] == 0x370E and p[2].decode("utf-16-le").startswith("text/calendar")
                for p in a.props)]
            w.message(inbox, Message(msg.props, msg.recipients, kept))
        w.finish()


def calendars(store: Path) -> list[tuple[str, str]]:
    """(Content-Type, text) of each mail's calendar part, sorted."""
    out = []
    with Store.open(store) as st:
        for row in st.rows():
            msg = email.message_from_bytes(st.read(row), policy=email.policy.compat32)
            for part in msg.walk():
                if part.get_content_type() == "text/calendar":
                    text = part.get_payload(decode=True)
                    assert isinstance(text, bytes)
                    out.append((str(part.get("Content-Type")), text.decode("utf-8")))
    return sorted(out)


def test_outlook_like_meeting_items_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("pypff")
    from .test_write_pim_readers import outlook_named  # noqa: PLC0415

    first = tmp_path / "one.pst"
    outlook_like(first)
    with first.open("rb") as f:
        assert check(f).findings == []
    for _raw, cls in CASES.values():  # libpff sees each class with its properties
        assert outlook_named(first, cls)[(M, 0x0003)][1][:16] == global_object_id("x")[:16]
    counter = outlook_named(first, "IPM.Schedule.Meeting.Resp.Tent")
    assert counter[(A, 0x8257)][1][:1] == b"\x01"
    if shutil.which("readpst"):  # libpst reads every item
        out = tmp_path / "rp"
        out.mkdir()
        subprocess.run(["readpst", "-q", "-j", "0", "-D", "-M", "-o", str(out), str(first)],
                       check=True, capture_output=True, timeout=120)
        assert len([p for p in out.rglob("*") if p.is_file()]) == len(CASES)
    # PST -> store: each mail carries its iTIP message again
    assert cli("--quiet", "export", str(first), str(tmp_path / "s"))[0] == 0
    parts = calendars(tmp_path / "s")
    text = "\n".join(t for _c, t in parts)
    for ctype in ("method=REPLY", "method=COUNTER", "method=CANCEL"):
        assert sum(ctype in c for c, _t in parts) == (2 if ctype == "method=REPLY" else 1)
    assert sum("method=" not in c for c, _t in parts) == 1  # the forward notification
    for line in ("UID:meet-7", "SEQUENCE:3", "RECURRENCE-ID:20261217T140000Z",
                 "X-MS-OLK-ORIGINALSTART:20261210T140000Z", "DTSTART:20261211T090000Z",
                 "X-PSTKIT-MESSAGE-CLASS:IPM.Schedule.Meeting.Notification.Forward",
                 "ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED:mailto:bob@x.org",
                 "ATTENDEE;CN=Bob;PARTSTAT=TENTATIVE:mailto:bob@x.org", STAMP, "STATUS:CANCELLED"):
        assert line in text, line
    # store -> PST: the same classes and meeting properties as the first file
    second = tmp_path / "two.pst"
    assert cli("--quiet", "import", str(tmp_path / "s"), f"pst:{second}")[0] == 0
    with second.open("rb") as f:
        assert check(f).findings == []
    for _raw, cls in CASES.values():
        want, got = outlook_named(first, cls), outlook_named(second, cls)
        for key in KEPT:
            assert got.get(key) == want.get(key), (cls, key)
    # and PST -> store again: the same calendar parts
    assert cli("--quiet", "export", str(second), str(tmp_path / "s2"))[0] == 0
    assert calendars(tmp_path / "s2") == parts
