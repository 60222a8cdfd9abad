"""Calendar gaps of the PST writer: iTIP mails as Outlook meeting items ([MS-OXOCAL]
2.2.6-2.2.8), UNTIL as "end by date", RDATE/EXRULE said rather than dropped, busy status.
Table tests of the pure translation, then a written file read back by libpff and by
pstkit's reader (Outlook's own meeting requests of SampleOstFile.ost, store -> PST)."""

from __future__ import annotations

import base64
import email
import email.policy
import struct
from datetime import datetime
from pathlib import Path

import pypff
import pytest

from pstkit.converters.pst.named import PSETID_MEETING
from pstkit.converters.pst.write import convert
from pstkit.converters.pst.write.events import PSETID_APPOINTMENT, components, event
from pstkit.converters.pst.write.mapi import to_mapi
from pstkit.converters.pst.write.meeting import mail_or_meeting, meeting_class
from pstkit.converters.pst.write.meeting_props import global_object_id
from pstkit.converters.pst.write.namemap import NameMap
from pstkit.converters.pst.write.recur import recurrence_blob
from pstkit.model import ItemKind
from pstkit.store import Store
from tests.helpers import run_pstkit


@pytest.mark.parametrize(("method", "partstat", "cls"), [
    ("REQUEST", "", "IPM.Schedule.Meeting.Request"),
    ("request", "NEEDS-ACTION", "IPM.Schedule.Meeting.Request"),
    ("CANCEL", "", "IPM.Schedule.Meeting.Canceled"),
    ("REPLY", "ACCEPTED", "IPM.Schedule.Meeting.Resp.Pos"),
    ("REPLY", "DECLINED", "IPM.Schedule.Meeting.Resp.Neg"),
    ("REPLY", "TENTATIVE", "IPM.Schedule.Meeting.Resp.Tent"),
    ("REPLY", "NEEDS-ACTION", ""),  # no Outlook class: stays mail
    ("COUNTER", "", "IPM.Schedule.Meeting.Resp.Tent"),  # Outlook's "propose new time"
    ("COUNTER", "DECLINED", "IPM.Schedule.Meeting.Resp.Neg"),
    ("PUBLISH", "", ""), ("REFRESH", "", ""), ("DECLINECOUNTER", "", ""),
])
def test_meeting_class(method: str, partstat: str, cls: str) -> None:
    assert meeting_class(method, partstat) == cls


def test_global_object_id_is_the_one_exchange_makes() -> None:
    # [MS-ASEMAIL] 4.3, example 2: a UID that is not Outlook's becomes a "vCal-Uid" id
    want = base64.b64decode("BAAAAIIA4AB0xbcQGoLgCAAAAAAAAAAAAAAAAAAAAAAAAAAAMwAAAHZDYWwtVWlk"
                            "AQAAAHs4MTQxMkQzQy0yQTI0LTRFOUQtQjIwRS0xMUY3QkJFOTI3OTl9AA==")
    assert global_object_id("{81412D3C-2A24-4E9D-B20E-11F7BBE92799}") == want
    # example 1: Outlook's own id, hex in the UID, is taken as it is
    outlook = ("040000008200E00074C5B7101A82E00800000000E040C9C12685C4010000000000000000"
               "100000000BF0ED4B6E4EE94E9E39E3867B378EF3")
    assert global_object_id(outlook) == bytes.fromhex(outlook)


def _imip(method: str, extra: str = "", attendee: str = "ATTENDEE;RSVP=TRUE:mailto:b@x.org"
          ) -> bytes:
    ics = "\r\n".join([
        "BEGIN:VCALENDAR", "VERSION:2.0", f"METHOD:{method}", "BEGIN:VEVENT", "UID:meet-1",
        "SEQUENCE:2", "DTSTAMP:20261201T100000Z", "DTSTART:20261210T140000Z",
        "DTEND:20261210T150000Z", "SUMMARY:Plan", "LOCATION:Room 4",
        "ORGANIZER;CN=Ann:mailto:a@x.org", attendee, *([extra] if extra else []),
        "END:VEVENT", "END:VCALENDAR", ""])
    return ("From: Ann <a@x.org>\r\nTo: b@x.org\r\nSubject: Plan\r\n"
            "Date: Tue, 01 Dec 2026 10:00:00 +0000\r\nMessage-ID: <m1@x.org>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
            "--b\r\nContent-Type: text/plain\r\n\r\nLet us plan.\r\n"
            f"--b\r\nContent-Type: text/calendar; charset=utf-8; method={method}\r\n\r\n"
            f"{ics}--b--\r\n").encode()


def _props(raw: bytes) -> tuple[dict[int, bytes], NameMap, list[str]]:
    names = NameMap()
    m, notes = mail_or_meeting(raw, to_mapi(raw), names.id)
    return {p[0]: p[2] for p in m.props}, names, notes


def _long(props: dict[int, bytes], names: NameMap, guid: str, lid: int) -> int:
    return int(struct.unpack("<I", props[names.ids[(guid, lid)]])[0])


def test_a_request_gets_the_meeting_properties() -> None:
    props, names, notes = _props(_imip("REQUEST"))
    assert props[0x001A].decode("utf-16-le") == "IPM.Schedule.Meeting.Request"
    assert props[0x1000].decode("utf-16-le").startswith("Let us plan.")  # the mail's body
    a, m = PSETID_APPOINTMENT, PSETID_MEETING
    assert props[names.ids[(m, 0x0003)]] == global_object_id("meet-1")
    assert props[names.ids[(m, 0x0023)]] == global_object_id("meet-1")  # no date in it
    assert _long(props, names, a, 0x8201) == 2  # sequence
    assert _long(props, names, a, 0x8217) == 3  # asfMeeting | asfReceived
    assert _long(props, names, a, 0x8224) == 2  # intended busy
    assert _long(props, names, m, 0x0026) == 1  # mtgRequest
    assert props[0x0063] == b"\x01\0\0\0"  # response requested (RSVP)
    assert props[names.ids[(a, 0x8208)]].decode("utf-16-le") == "Room 4"
    assert names.ids[(a, 0x820D)] in props and names.ids[(a, 0x820E)] in props
    assert notes == []


def test_cancel_reply_and_plain_mail() -> None:
    props, names, _n = _props(_imip("CANCEL"))
    assert props[0x001A].decode("utf-16-le") == "IPM.Schedule.Meeting.Canceled"
    assert _long(props, names, PSETID_APPOINTMENT, 0x8217) == 7  # ... | asfCanceled
    assert _long(props, names, PSETID_APPOINTMENT, 0x8205) == 0  # free
    props, _names, _n = _props(_imip("REPLY", attendee="ATTENDEE;PARTSTAT=DECLINED:mailto:b@x.org"))
    assert props[0x001A].decode("utf-16-le") == "IPM.Schedule.Meeting.Resp.Neg"
    props, _names, _n = _props(_imip("PUBLISH"))
    assert props[0x001A].decode("utf-16-le") == "IPM.Note"
    plain = b"From: a@x.org\r\nSubject: hi\r\n\r\nno calendar here\r\n"
    props, names, _n = _props(plain)
    assert props[0x001A].decode("utf-16-le") == "IPM.Note" and not names.ids


def _wrapped(inner: bytes, outer_type: str) -> bytes:
    return (b"From: c@x.org\r\nSubject: Fwd\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n"
            b"Content-Type: text/plain\r\n\r\nSee the text/calendar part below.\r\n--o\r\n"
            + f"Content-Type: {outer_type}\r\n\r\n".encode() + inner + b"\r\n--o--\r\n")


def test_a_meeting_is_found_by_the_mails_own_parts_not_by_its_bytes() -> None:
    """`to_mapi` says whether the tree has a text/calendar part of its own, and only then
    is the mail read as a meeting: the name in a body or in an attached message's parts
    is not one. Also after the child's answer is packed and read back (convert.py)."""
    request = _imip("REQUEST")
    shouting = request.replace(b"Content-Type: text/calendar", b"Content-Type: TEXT/Calendar")
    attached = _wrapped(request, "message/rfc822")  # a forwarded invitation: mail
    named = _wrapped(b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n", "text/plain")
    encoded = (b"From: a@x.org\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream"
               b"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
               + base64.encodebytes(b"text/calendar" * 50).replace(b"\n", b"\r\n"))
    for raw, calendar, cls in ((request, True, "IPM.Schedule.Meeting.Request"),
                               (shouting, True, "IPM.Schedule.Meeting.Request"),
                               (attached, False, "IPM.Note"), (named, False, "IPM.Note"),
                               (encoded, False, "IPM.Note")):
        base = to_mapi(raw)
        assert base.calendar is calendar
        assert convert._unpack(convert._pack(base)) == base
        props, _names, _n = _props(raw)
        assert props[0x001A].decode("utf-16-le") == cls
    # the stdlib's tree, which mail_or_meeting parses for the meeting, agrees
    stdlib = email.message_from_bytes(attached, policy=email.policy.compat32)
    assert [p.get_content_type() for p in stdlib.walk()].count("text/calendar") == 1


def test_rdate_and_exrule_are_said() -> None:
    _p, _names, notes = _props(_imip("REQUEST", "RRULE:FREQ=WEEKLY;COUNT=3\r\n"
                                     "RDATE:20261224T140000Z,20261231T140000Z\r\n"
                                     "EXRULE:FREQ=MONTHLY"))
    assert any("2 extra date(s) (RDATE) not kept" in n for n in notes)
    assert any("1 exclusion rule(s) (EXRULE) not kept" in n for n in notes)


@pytest.mark.parametrize(("line", "busy"), [
    ("", 2), ("TRANSP:TRANSPARENT", 0), ("TRANSP:OPAQUE", 2),
    ("X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE", 1), ("X-MICROSOFT-CDO-BUSYSTATUS:OOF", 3),
])
def test_busy_status(line: str, busy: int) -> None:
    text = "\r\n".join(["BEGIN:VCALENDAR", "BEGIN:VEVENT", "UID:u", "DTSTART:20261210T140000Z",
                        "DTEND:20261210T150000Z", "SUMMARY:s", *([line] if line else []),
                        "END:VEVENT", "END:VCALENDAR", ""])
    names = NameMap()
    ev = event(components(text)[0], {}, [], names.id)
    props = {p[0]: p[2] for p in ev.props}
    assert _long(props, names, PSETID_APPOINTMENT, 0x8205) == busy


@pytest.mark.parametrize(("rule", "end_type", "count"), [
    ("FREQ=WEEKLY;UNTIL=20270105T235959Z", 0x2021, 5),  # end by date (2.2.1.44.1 EndType)
    ("FREQ=WEEKLY;COUNT=5", 0x2022, 5),  # end after n occurrences
    ("FREQ=WEEKLY", 0x2023, 10),  # never (Outlook's count of 10)
])
def test_until_stays_end_by_date(rule: str, end_type: int, count: int) -> None:
    blob = recurrence_blob(rule, datetime(2026, 12, 8, 14), datetime(2026, 12, 8, 15))
    # weekly: 22 bytes of pattern head, 4 of PatternTypeSpecific, then EndType, count
    assert struct.unpack_from("<II", blob, 26) == (end_type, count)


def test_outlook_meeting_requests_are_written_as_meeting_items(corpus: Path,
                                                               tmp_path: Path) -> None:
    """SampleOstFile.ost's six meeting requests (Outlook's) -> store (mail with the event
    as iMIP) -> PST: meeting items again, read so by libpff and pstkit's reader."""
    store, out = tmp_path / "store", tmp_path / "out.pst"
    done = run_pstkit("--quiet", "export", str(corpus / "pst" / "SampleOstFile.ost"), str(store))
    assert done.returncode in (0, 1), done.stderr
    done = run_pstkit("--quiet", "import", str(store), f"pst:{out}")
    assert done.returncode in (0, 1), done.stderr
    classes: list[str] = []
    pst = pypff.file()
    pst.open(str(out))
    try:
        todo = [pst.get_root_folder()]
        while todo:
            folder = todo.pop()
            todo += [folder.get_sub_folder(i) for i in range(folder.number_of_sub_folders)]
            for i in range(folder.number_of_sub_messages):
                rs = folder.get_sub_message(i).get_record_set(0)
                for j in range(rs.number_of_entries):
                    e = rs.get_entry(j)
                    if e.entry_type == 0x001A:
                        classes.append(e.data.decode("utf-16-le").rstrip("\0"))
    finally:
        pst.close()
    assert classes.count("IPM.Schedule.Meeting.Request") == 6
    back = tmp_path / "back"
    done = run_pstkit("--quiet", "export", str(out), str(back))
    assert done.returncode in (0, 1), done.stderr
    # pstkit's reader sees meeting items again: each carries one calendar part, not two
    with Store.open(back) as st:
        mails = [email.message_from_bytes(st.read(row), policy=email.policy.compat32)
                 for row in st.rows() if row.msg.kind == ItemKind.MAIL]
    cals = [[p.get_payload(decode=True) for p in m.walk()
             if p.get_content_type() == "text/calendar"] for m in mails]
    requests = [c for c in cals if any(b"METHOD:REQUEST" in x for x in c if x)]
    assert len(requests) == 7  # the six requests and the NDR that carries one
    assert all(len(c) == 1 for c in requests)
