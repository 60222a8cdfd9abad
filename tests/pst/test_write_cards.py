"""Stored contacts, lists, events and tasks -> Outlook properties (`pst.write.items`,
`cards`, `events`), read back by the reader's own pure functions (`pst.cards`,
`pst.ical`): a card or calendar in the form the reader writes comes back line for line.
And the distribution list checksum against the one Outlook wrote."""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import pytest

from pstkit.converters.pst.cards import contact_vcard, distlist_vcard, note_text
from pstkit.converters.pst.ical import event_ics, task_ics
from pstkit.converters.pst.named import NAMED
from pstkit.converters.pst.props import Props, decode_props
from pstkit.converters.pst.write.cards import dl_checksum
from pstkit.converters.pst.write.items import UID, to_item
from pstkit.converters.pst.write.mapi import Message
from pstkit.converters.pst.write.namemap import NameMap
from pstkit.model import ItemKind

CONTACT = """BEGIN:VCARD
VERSION:3.0
FN:Margaret J. Tolle
N:Tolle;Margaret;J.;Dr.;Jr.
ORG:Contoso\\, Ltd.;Research
EMAIL;TYPE=INTERNET:margaret@example.com
EMAIL;TYPE=INTERNET:mt@example.org
EMAIL;TYPE=INTERNET:m.tolle@example.net
TEL;TYPE=VOICE,PREF:+1 555 0100
TEL;TYPE=WORK,VOICE:+1 555 0101
TEL;TYPE=WORK,VOICE:+1 555 0102
TEL;TYPE=HOME,VOICE:+1 555 0103
TEL;TYPE=CELL:+1 555 0104
TEL;TYPE=WORK,FAX:+1 555 0105
TITLE:Chief Ünterhaltungsoffizier
NICKNAME:Maggie
URL:https://example.com/mt
ADR;TYPE=WORK:PO 12;;1 Main St;Springfield;IL;62701;USA
LABEL;TYPE=WORK:1 Main St\\nSpringfield IL 62701
ADR;TYPE=HOME:;;2 Elm St;Shelbyville;IL;62565;USA
BDAY:1970-04-01
NOTE:Met at the conference\\; likes tea.
CATEGORIES:Work,VIP
REV:20140525T135828Z
END:VCARD
"""
GROUP = """BEGIN:VCARD
VERSION:3.0
FN:test dist list
N:test dist list;;;;
X-ADDRESSBOOKSERVER-KIND:group
X-ADDRESSBOOKSERVER-MEMBER:mailto:contact1@example.com
X-PSTKIT-MEMBER-NAME:contact name 1
X-ADDRESSBOOKSERVER-MEMBER:mailto:dist1@example.com
X-PSTKIT-MEMBER-NAME:dist name 1
REV:20140525T135741Z
END:VCARD
"""
TZ = """BEGIN:VTIMEZONE
TZID:Pacific Standard Time
BEGIN:STANDARD
DTSTART:16011028T020000
TZOFFSETFROM:-0700
TZOFFSETTO:-0800
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU;UNTIL=20061029T090000Z
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010401T020000
TZOFFSETFROM:-0800
TZOFFSETTO:-0700
RRULE:FREQ=YEARLY;BYMONTH=4;BYDAY=1SU;UNTIL=20060402T100000Z
END:DAYLIGHT
BEGIN:STANDARD
DTSTART:20071104T020000
TZOFFSETFROM:-0700
TZOFFSETTO:-0800
RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:20070311T020000
TZOFFSETFROM:-0800
TZOFFSETTO:-0700
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU
END:DAYLIGHT
END:VTIMEZONE
"""
SERIES = """BEGIN:VEVENT
UID:pst-2097348
DTSTAMP:20160802T002639Z
DTSTART;TZID=Pacific Standard Time:20160802T080000
DTEND;TZID=Pacific Standard Time:20160802T083000
SUMMARY:Weekly sync
LOCATION:Room 1
DESCRIPTION:Agenda\\nfirst line
TRANSP:OPAQUE
X-MICROSOFT-CDO-BUSYSTATUS:OOF
CREATED:20160802T002639Z
LAST-MODIFIED:20160802T025058Z
CATEGORIES:Work
RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=TU;COUNT=10;WKST=SU
EXDATE;TZID=Pacific Standard Time:20160809T080000
BEGIN:VALARM
ACTION:DISPLAY
DESCRIPTION:Reminder
TRIGGER:-PT15M
END:VALARM
END:VEVENT
"""
SINGLE = """BEGIN:VEVENT
UID:pst-77
DTSTAMP:20110919T211207Z
DTSTART:20110919T221037Z
DTEND:20110919T224037Z
SUMMARY:One-off
LOCATION:meeting request
TRANSP:OPAQUE
X-MICROSOFT-CDO-BUSYSTATUS:TENTATIVE
CREATED:20110919T211207Z
END:VEVENT
"""
ALLDAY = """BEGIN:VEVENT
UID:pst-78
DTSTAMP:20200101T000000Z
DTSTART;VALUE=DATE:20200214
DTEND;VALUE=DATE:20200215
SUMMARY:Holiday
TRANSP:TRANSPARENT
X-MICROSOFT-CDO-BUSYSTATUS:FREE
CREATED:20200101T000000Z
END:VEVENT
"""
TODO = """BEGIN:VTODO
UID:pst-99
DTSTAMP:20200101T100000Z
SUMMARY:File taxes
DTSTART:20200301T000000Z
DUE:20200415T000000Z
STATUS:IN-PROCESS
PERCENT-COMPLETE:40
DESCRIPTION:Forms in the drawer
CREATED:20200101T100000Z
END:VTODO
"""


def crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


def calendar(*parts: str) -> str:
    return crlf("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//pstkit//PST export//EN\n"
                + "".join(parts) + "END:VCALENDAR\n")


def stored(cls: str, subject: str, body: str, name: str, ctype: str, text: str) -> bytes:
    """A stored item as the PST reader makes it (`pst.items.wrap_item`)."""
    card = base64.encodebytes(text.encode("utf-8")).decode("ascii")
    return crlf(
        f"Date: Sun, 25 May 2014 13:58:28 +0000\nSubject: {subject}\n"
        f"X-Pstkit-Item-Class: {cls}\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="b"\n\n--b\n'
        'Content-Type: text/plain; charset="utf-8"\nContent-Transfer-Encoding: 8bit\n\n'
        f"{body}\n--b\nContent-Type: {ctype}; charset=utf-8; name={name}\n"
        f"Content-Transfer-Encoding: base64\nContent-Disposition: attachment; "
        f"filename={name}\n\n{card}--b--\n").encode("utf-8")


def read_back(m: Message, names: NameMap) -> Props:
    """The message's properties as the reader sees them (named ones by `NAMED`)."""
    by_id = {pid: NAMED[name] for name, pid in names.ids.items() if name in NAMED}
    by_id |= {pid: "Keywords" for name, pid in names.ids.items() if name[1] == "Keywords"}
    by_id |= {pid: "PstkitTzid" for name, pid in names.ids.items() if name[1] == "Tzid"}
    return decode_props([(by_id.get(pid, pid), t, raw) for pid, t, raw in m.props], "cp1252")


def test_contact_comes_back_line_for_line() -> None:
    names = NameMap()
    raw = stored("IPM.Contact", "Margaret J. Tolle", "Met at the conference; likes tea.",
                 "contact.vcf", "text/vcard", crlf(CONTACT))
    m, _notes = to_item(raw, ItemKind.CONTACT, ["seen"], None, names.id)
    p = read_back(m, names)
    keywords = (names.id(("00020329-0000-0000-c000-000000000046", "Keywords")), 0x101F)
    assert keywords[0] not in {x[0] for x in m.props}  # categories: the writer adds them
    p = Props({**p.values, "Keywords": ("Work", "VIP")})
    assert contact_vcard(p) == crlf(CONTACT)
    assert p.text("FileUnder") == "Tolle, Margaret J."
    assert p.text(0x001A) == "IPM.Contact" and p.integer(0x0E07) == 1


def test_group_comes_back_with_members_and_checksum() -> None:
    names = NameMap()
    raw = stored("IPM.DistList", "test dist list", "", "distlist.vcf", "text/vcard",
                 crlf(GROUP))
    m, _notes = to_item(raw, ItemKind.DISTLIST, [], None, names.id)
    p = read_back(m, names)
    assert distlist_vcard(p) == crlf(GROUP)
    members = {pid: raw for pid, t, raw in m.props if t == 0x1102}
    assert len(members) == 2 and len(set(members.values())) == 1
    count = struct.unpack_from("<I", next(iter(members.values())))[0]
    assert count == 2


@pytest.mark.parametrize("text", [calendar(TZ, SERIES), calendar(SINGLE), calendar(ALLDAY)])
def test_event_comes_back_line_for_line(text: str) -> None:
    names = NameMap()
    body = "Agenda\nfirst line" if "Agenda" in text else ""
    raw = stored("IPM.Appointment", "x", body, "event.ics", "text/calendar", text)
    m, _notes = to_item(raw, ItemKind.EVENT, [], None, names.id)
    p = read_back(m, names)
    uid = next(raw_.decode("utf-16-le") for pid, _t, raw_ in m.props if pid == names.id(UID))
    p = Props({**p.values, "Keywords": ("Work",)} if "CATEGORIES" in text else p.values)
    assert event_ics(p, uid) == text


def test_changed_occurrence_becomes_an_exception_item() -> None:
    exc = ("BEGIN:VEVENT\nUID:pst-2097348\nDTSTAMP:20160802T004155Z\n"
           "RECURRENCE-ID;TZID=Pacific Standard Time:20160823T080000\n"
           "DTSTART;TZID=Pacific Standard Time:20160823T090000\n"
           "DTEND;TZID=Pacific Standard Time:20160823T093000\n"
           "SUMMARY:Weekly sync (moved)\nCREATED:20160802T004155Z\nEND:VEVENT\n")
    text = calendar(TZ, SERIES, exc)
    names = NameMap()
    raw = stored("IPM.Appointment", "Weekly sync", "Agenda\nfirst line", "event.ics",
                 "text/calendar", text)
    m, _notes = to_item(raw, ItemKind.EVENT, [], None, names.id)
    assert len(m.attachments) == 1 and m.attachments[0].embedded is not None
    inner = read_back(m.attachments[0].embedded, names)
    assert inner.text(0x001A).lower() == "ipm.ole.class.{00061055-0000-0000-c000-000000000046}"
    assert m.attachments[0].props[-4:][0] == (0x7FFE, 0x000B, b"\1\0\0\0")  # hidden
    series = read_back(m, names)
    out = event_ics(series, "pst-2097348", exceptions=(inner,))
    assert "RECURRENCE-ID;TZID=Pacific Standard Time:20160823T080000" in out
    assert "DTSTART;TZID=Pacific Standard Time:20160823T090000" in out
    assert "SUMMARY:Weekly sync (moved)" in out
    assert "EXDATE;TZID=Pacific Standard Time:20160809T080000" in out


def test_task_comes_back_line_for_line() -> None:
    names = NameMap()
    text = calendar(TODO)
    raw = stored("IPM.Task", "File taxes", "Forms in the drawer", "task.ics", "text/calendar",
                 text)
    m, _notes = to_item(raw, ItemKind.TASK, [], None, names.id)
    p = read_back(m, names)
    assert task_ics(p, "pst-99") == text


@pytest.mark.parametrize(("kind", "cls", "text"), [
    (ItemKind.NOTE, "IPM.StickyNote", "Shopping\r\n\r\nmilk\r\neggs"),
    (ItemKind.NOTE, "IPM.StickyNote", "Empty\r\n\r\n"),
    (ItemKind.JOURNAL, "IPM.Activity", "Call with Bob\r\nType: Phone call\r\n"
     "Start: 2024-01-02T10:00:00+00:00\r\nEnd: 2024-01-02T10:30:00+00:00\r\n\r\nabout X"),
])  # fmt: skip
def test_notes_and_journal_come_back(kind: ItemKind, cls: str, text: str) -> None:
    title = text.split("\r\n", maxsplit=1)[0]
    raw = crlf(f"Subject: {title}\nDate: Tue, 02 Jan 2024 11:00:00 +0000\n"
               f"X-Pstkit-Item-Class: {cls}\nContent-Type: text/plain; charset=utf-8\n\n"
               ).encode() + text.encode()
    names = NameMap()
    m, _notes = to_item(raw, kind, [], None, names.id)
    p = read_back(m, names)
    assert note_text(p) == text and p.text(0x001A) == cls
def test_checksum_is_the_one_outlook_writes(corpus: Path) -> None:
    """dist-list.pst (Outlook-made): one of its long properties is the CRC of the member
    entry ids, as `dl_checksum` computes it."""
    pypff = pytest.importorskip("pypff")
    f = pypff.file()
    f.open(str(corpus / "pst" / "dist-list.pst"))

    def items(folder: object) -> list[object]:
        f_ = folder
        subs = [f_.get_sub_folder(i)  # type: ignore[attr-defined]
                for i in range(f_.number_of_sub_folders)]  # type: ignore[attr-defined]
        own = [f_.get_sub_message(i)  # type: ignore[attr-defined]
               for i in range(f_.number_of_sub_messages)]  # type: ignore[attr-defined]
        return own + [x for sub in subs for x in items(sub)]

    found = []
    for item in items(f.root_folder):
        entries = list(item.record_sets[0].entries)  # type: ignore[attr-defined]
        longs = {struct.unpack("<I", e.data[:4])[0] for e in entries
                 if e.value_type == 3 and e.data}
        for e in entries:
            if e.value_type == 0x1102:
                n = struct.unpack_from("<I", e.data)[0]
                offs = [*struct.unpack_from(f"<{n}I", e.data, 4), len(e.data)]
                values = [e.data[offs[k] : offs[k + 1]] for k in range(n)]
                found.append(dl_checksum(values) in longs)
    f.close()
    assert any(found)


def test_what_cannot_be_kept_is_said() -> None:
    """A rule Outlook cannot express: the first occurrence is written, and a note says so
    (the sink passes it on as the delivery's note, recorded as a problem)."""
    hourly = calendar(TZ, SERIES.replace("FREQ=WEEKLY;INTERVAL=1;BYDAY=TU;COUNT=10;WKST=SU",
                                         "FREQ=HOURLY;COUNT=3"))
    raw = stored("IPM.Appointment", "Weekly sync", "", "event.ics", "text/calendar", hourly)
    names = NameMap()
    m, notes = to_item(raw, ItemKind.EVENT, [], None, names.id)
    assert notes == ["recurrence not kept (FREQ=HOURLY): only the first occurrence is written"]
    p = read_back(m, names)
    assert not p.flag("Recurring") and p.time("Start") is not None
    broken = calendar(SINGLE.replace("DTSTART:20110919T221037Z", "DTSTART:2011"))
    with pytest.raises(ValueError, match="DTSTART is not a date or time"):
        to_item(stored("IPM.Appointment", "x", "", "event.ics", "text/calendar", broken),
                ItemKind.EVENT, [], None, names.id)
