"""pst_items: MAPI items -> vCard / iCalendar / text, kinds, flags. Tables."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest

from pstkit.converters.pst.cards import contact_vcard, distlist_vcard, note_text, one_off_member
from pstkit.converters.pst.items import (
    display_recipients,
    item_flags,
    item_kind,
    mail_bodies,
    mail_message,
    received_time,
    wrap_item,
)
from pstkit.converters.pst.mime import Address
from pstkit.converters.pst.props import Props, mime_charset
from pstkit.model import Flag, ItemKind

T1 = datetime(2016, 8, 2, 15, 0, tzinfo=UTC)
T2 = datetime(2016, 8, 2, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize(("cls", "kind"), [
    ("IPM.Note", ItemKind.MAIL), ("IPM.Note.SMIME", ItemKind.MAIL),
    ("REPORT.IPM.Note.NDR", ItemKind.MAIL), ("IPM.Schedule.Meeting.Request", ItemKind.MAIL),
    ("IPM.Post", ItemKind.MAIL), ("IPM.Contact", ItemKind.CONTACT),
    ("ipm.contact", ItemKind.CONTACT), ("IPM.DistList", ItemKind.DISTLIST),
    ("IPM.Appointment", ItemKind.EVENT), ("IPM.Task", ItemKind.TASK),
    ("IPM.TaskRequest", ItemKind.MAIL), ("IPM.StickyNote", ItemKind.NOTE),
    ("IPM.Activity", ItemKind.JOURNAL), ("IPM.Microsoft.ScheduleData.FreeBusy", None),
    ("IPM.Configuration.Foo", None), ("", ItemKind.MAIL), ("IPM.ContactX", ItemKind.MAIL),
])
def test_item_kind(cls: str, kind: ItemKind | None) -> None:
    assert item_kind(cls) is kind


@pytest.mark.parametrize(("values", "flags"), [
    ({}, set()),
    ({0x0E07: 1}, {Flag.SEEN}),
    ({0x0E07: 9}, {Flag.SEEN, Flag.DRAFT}),
    ({0x1090: 2}, {Flag.FLAGGED}),
    ({0x1090: 1}, set()),
    ({0x1081: 102}, {Flag.ANSWERED}),
    ({0x1081: 103}, {Flag.ANSWERED}),
    ({0x1081: 104}, {Flag.FORWARDED}),
])
def test_item_flags(values: dict[int | str, object], flags: set[Flag]) -> None:
    assert item_flags(Props(values)) == flags


def test_received_time_falls_back() -> None:
    assert received_time(Props({0x0E06: T1, 0x0039: T2})) == T1
    assert received_time(Props({0x0039: T2, 0x3007: T1})) == T2
    assert received_time(Props({0x3007: T1})) == T1
    assert received_time(Props({})) is None


def test_contact_vcard() -> None:
    props = Props({0x3001: "Wright, Sebastian", 0x3A11: "Wright", 0x3A06: "Sebastian",
                   0x3A16: "ACME", 0x3A08: "+1 555", "Email1": "s@example.com",
                   0x3A29: "1 Main St", 0x3A27: "Springfield", 0x1000: "note;x",
                   0x3008: T1})
    card = contact_vcard(props)
    assert card.startswith("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Wright\\, Sebastian\r\n")
    for line in ("N:Wright;Sebastian;;;", "ORG:ACME", "EMAIL;TYPE=INTERNET:s@example.com",
                 "TEL;TYPE=WORK,VOICE:+1 555", "ADR;TYPE=WORK:;;1 Main St;Springfield;;;",
                 "NOTE:note\\;x", "REV:20160802T150000Z"):
        assert f"\r\n{line}\r\n" in card
    assert card.endswith("END:VCARD\r\n")


def _one_off(name: str, addr: str) -> bytes:
    text = f"{name}\0SMTP\0{addr}\0".encode("utf-16-le")
    return bytes(4) + bytes(16) + struct.pack("<HH", 0, 0x8000 | 0x0190) + text


def test_distlist_vcard() -> None:
    members = (_one_off("Dist One", "d1@x.org"), _one_off("Dist Two", "d2@x.org"))
    card = distlist_vcard(Props({"DistListName": "team", "DistListOneOff": members}))
    assert "FN:team" in card
    assert "X-ADDRESSBOOKSERVER-MEMBER:mailto:d1@x.org" in card
    assert "X-ADDRESSBOOKSERVER-MEMBER:mailto:d2@x.org" in card
    assert one_off_member(b"short") is None


def test_note_text() -> None:
    assert note_text(Props({0x0037: "Shopping", 0x1000: "milk"})) == "Shopping\r\n\r\nmilk"


def test_wrap_item_carries_card() -> None:
    msg = wrap_item(Props({0x001A: "IPM.Contact", 0x3001: "Bob"}), ItemKind.CONTACT, "u", ())
    assert msg.subject == "Bob"
    assert msg.attachments[0].mime_type == "text/vcard; charset=utf-8"
    assert ("X-Pstkit-Item-Class", "IPM.Contact") in msg.extra_headers
    note = wrap_item(Props({0x0037: "n", 0x1000: "body"}), ItemKind.NOTE, "u", ())
    assert note.attachments == () and note.bodies[0].data == b"n\r\n\r\nbody"


def test_mail_message_addresses() -> None:
    props = Props({
        0x0037: "\x01\x01Re: x", 0x0042: "Alice", 0x0064: "EX", 0x0065: "/o=org/cn=alice",
        0x5D02: "alice@example.com", 0x0C1A: "Alice", 0x0C1F: "/o=org/cn=alice",
        0x0039: T1, 0x1035: "<id@x>", 0x0017: 2,
    })
    recips = (Props({0x3001: "Bob", 0x3003: "/o=org/cn=bob", 0x39FE: "bob@example.com",
                     0x0C15: 1}),
              Props({0x3001: "Carol", 0x3002: "SMTP", 0x3003: "carol@x.org", 0x0C15: 2}),
              Props({0x3001: "Dan", 0x3003: "dan@x.org", 0x0C15: 3}))
    msg = mail_message(props, recips, (), ())
    assert msg.subject == "Re: x"
    assert msg.from_ == Address("Alice", "alice@example.com")
    assert msg.sender == Address("Alice", "/o=org/cn=alice")
    assert msg.to == (Address("Bob", "bob@example.com"),)
    assert msg.cc == (Address("Carol", "carol@x.org"),)
    assert msg.bcc == (Address("Dan", "dan@x.org"),)
    assert msg.date == T1 and msg.message_id == "<id@x>" and msg.importance == 2


def test_unreadable_recipient_table_leaves_the_display_names() -> None:
    """PR_DISPLAY_TO/CC/BCC become name-only recipients, which MIME shows with the
    placeholder address (an address-less mailbox is not valid RFC 5322)."""
    from pstkit.converters.pst.mime import build_headers  # noqa: PLC0415

    props = Props({0x0E04: "Bob Smith; Carol ", 0x0E03: "Dan", 0x0E02: "", 0x0037: "hi"})
    msg = mail_message(props, display_recipients(props), (), ())
    assert msg.to == (Address("Bob Smith", ""), Address("Carol", ""))
    assert msg.cc == (Address("Dan", ""),) and msg.bcc == ()
    head = build_headers(msg, lambda: "<x@y>").decode()
    assert "To: Bob Smith <undisclosed@pst.invalid>, Carol <undisclosed@pst.invalid>" in head
    assert display_recipients(Props({})) == ()


def test_from_borrows_the_sender_address_of_the_same_person() -> None:
    props = Props({0x0042: "Luis", 0x0C1A: "Luis", 0x0C1F: "/o=pf/cn=luis"})
    assert mail_message(props, (), (), ()).from_ == Address("Luis", "/o=pf/cn=luis")


def test_mail_bodies() -> None:
    html_rtf = b"{\\rtf1\\ansi\\fromhtml1 {\\*\\htmltag <p>}hi{\\*\\htmltag </p>}}"
    plain_rtf = b"{\\rtf1\\ansi\\fromtext hi}"
    real_rtf = b"{\\rtf1\\ansi {\\b hi}}"
    assert [b.mime_type for b in mail_bodies(Props({0x1000: "hi"}), None, "utf-8")] == [
        "text/plain"]
    both = mail_bodies(Props({0x1000: "hi", 0x1013: b"<p>hi</p>"}), html_rtf, "windows-1252")
    assert [(b.mime_type, b.charset) for b in both] == [("text/plain", "utf-8"),
                                                       ("text/html", "windows-1252")]
    derived = mail_bodies(Props({}), html_rtf, "us-ascii")
    assert [(b.mime_type, b.data) for b in derived] == [("text/html", b"<p>hi</p>")]
    assert mail_bodies(Props({}), plain_rtf, "us-ascii") == ()
    assert [b.mime_type for b in mail_bodies(Props({}), real_rtf, "x")] == ["text/rtf"]


@pytest.mark.parametrize(("codec", "charset"), [
    ("cp1252", "windows-1252"), ("iso2022_jp", "iso-2022-jp"), ("iso8859_2", "iso-8859-2"),
    ("utf-8", "utf-8"), ("cp1251", "windows-1251"), ("ascii", "us-ascii"),
])
def test_mime_charset(codec: str, charset: str) -> None:
    assert mime_charset(codec) == charset


def test_vcard_categories_and_no_invented_revision() -> None:
    card = contact_vcard(Props({0x3001: "Bob", "Keywords": ("VIP",)}))
    assert "\r\nCATEGORIES:VIP\r\n" in card and "REV:" not in card
