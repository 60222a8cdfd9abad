"""Contacts and events that did not come from a PST (other vCard/iCalendar shapes: vCard
4.0, zoneinfo TZIDs, dates, DURATION, UNTIL, attendees) written to a PST and read back:
pstkit's reader gives the fields `verify` compares (name, e-mail addresses, start, end)
and the rule; libpff sees the organizer and attendees as recipients."""

from __future__ import annotations

import email
import email.policy
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pstkit.converters.pst.write.sink import PstSink
from pstkit.itemfields import stored_fields
from pstkit.location import Location
from pstkit.model import Delivered, ItemKind
from pstkit.options import ConnectOptions
from pstkit.store import Store
from tests.helpers import cli

from .test_write_cards import stored as wrap
from .test_write_fuzz import stored

pypff = pytest.importorskip("pypff")

CARD4 = ("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Zoë Ämter\r\nN:Ämter;Zoë;;;\r\n"
         "EMAIL;TYPE=work:zoe@example.com\r\nEMAIL:z@example.org\r\n"
         "TEL;TYPE=cell:+49 170 1\r\nTEL;TYPE=\"work,voice\":+49 30 2\r\n"
         "ORG:Beispiel GmbH\r\nBDAY:19800229\r\nEND:VCARD\r\n")
MEETING = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//y//EN\r\nBEGIN:VEVENT\r\n"
           "UID:abc@example.com\r\nDTSTAMP:20240101T000000Z\r\n"
           "DTSTART;TZID=Europe/Berlin:20240305T093000\r\nDURATION:PT1H15M\r\n"
           "RRULE:FREQ=WEEKLY;BYDAY=TU,TH;UNTIL=20240331T235959Z\r\n"
           "SUMMARY:Planning\r\nLOCATION:Raum 3\r\n"
           "ORGANIZER;CN=Ann:mailto:ann@example.com\r\n"
           "ATTENDEE;CN=Bob;ROLE=REQ-PARTICIPANT:mailto:bob@example.com\r\n"
           "ATTENDEE;ROLE=OPT-PARTICIPANT:mailto:carl@example.com\r\n"
           "END:VEVENT\r\nEND:VCALENDAR\r\n")
HOLIDAY = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:h1\r\n"
           "DTSTART;VALUE=DATE:20241225\r\nSUMMARY:Christmas\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


def card_text(raw: bytes) -> str:
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    part = next(p for p in msg.walk() if p.get_content_type() == "text/calendar")
    return bytes(part.get_payload(decode=True)).decode("utf-8")


def test_foreign_items_keep_what_verify_compares(tmp_path: Path) -> None:
    items = [(ItemKind.CONTACT, ("Contacts",), wrap("IPM.Contact", "Zoë Ämter", "",
                                                    "c.vcf", "text/vcard", CARD4)),
             (ItemKind.EVENT, ("Calendar",), wrap("IPM.Appointment", "Planning", "",
                                                  "e.ics", "text/calendar", MEETING)),
             (ItemKind.EVENT, ("Calendar",), wrap("IPM.Appointment", "Christmas", "",
                                                  "h.ics", "text/calendar", HOLIDAY))]
    out = tmp_path / "foreign.pst"
    sink = PstSink(Location("pst", str(out)), ConnectOptions())
    for i, (kind, folder, raw) in enumerate(items):
        sink.ensure_folder(folder, None)
        msg = replace(stored(i), kind=kind, folder=folder)
        result = sink.put_batch(folder, [(msg, raw)])[0]
        assert isinstance(result, Delivered) and not result.note, result
    sink.close()
    code, _o, err = cli("--quiet", "export", str(out), str(tmp_path / "s"))
    assert code == 0, err
    with Store.open(tmp_path / "s") as st:
        back = {row.msg.subject: (row.msg.kind, st.read(row)) for row in st.rows()}
    want = {"Zoë Ämter": {"name": "Zoë Ämter", "emails": "z@example.org,zoe@example.com"},
            # a local time in a zone: verify compares only UTC stamps (see below)
            "Planning": {},
            "Christmas": {}}  # (verify compares no all-day dates)
    for subject, fields in want.items():
        kind, got = back[subject]
        assert stored_fields(kind, got) == fields, subject
    plan = card_text(back["Planning"][1])
    # 09:30 in Berlin (CET) for 1 h 15 min, still in Berlin (zoneinfo's rules,
    # `pim.tzinfo_zone`): before, the series came back as UTC and lost its DST shifts.
    # The PST names the zone as Windows does (Outlook looks the name up); the TZID it
    # came with travels as pstkit's Tzid, so it comes back under that name
    assert "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\n" in plan
    assert "DTSTART;TZID=Europe/Berlin:20240305T093000\r\n" in plan
    assert "DTEND;TZID=Europe/Berlin:20240305T104500\r\n" in plan
    holiday = card_text(back["Christmas"][1])
    assert "DTSTART;VALUE=DATE:20241225\r\nDTEND;VALUE=DATE:20241226\r\n" in holiday
    # ends by date again: UNTIL is the last occurrence's start (Thu 28 March, 09:30 CET)
    assert "RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=TU,TH;UNTIL=20240328T083000Z;WKST=SU" in plan
    f = pypff.file()
    f.open(str(out))

    def folders(folder: Any) -> list[Any]:
        subs = [folder.get_sub_folder(i) for i in range(folder.number_of_sub_folders)]
        return [folder, *(x for sub in subs for x in folders(sub))]

    cal = next(x for x in folders(f.root_folder) if x.name == "Calendar")
    counts = sorted(len(list(cal.get_sub_message(i).recipients.record_sets))
                    if cal.get_sub_message(i).recipients is not None else 0
                    for i in range(cal.number_of_sub_messages))
    f.close()
    assert counts == [0, 3]
