"""Hostile contacts and calendars for the PST writer: seeded mutations of real-shaped
vCards/iCalendars (lines dropped, duplicated or cut, values replaced by odd ones) through
`PstSink` are each written or `Failed` with a reason, never an exception; the PST is
clean for the checker and pstkit and libpff count what was written."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from pstkit.converters.pst.write.check import check
from pstkit.converters.pst.write.sink import PstSink
from pstkit.location import Location
from pstkit.model import Delivered, ItemKind
from pstkit.options import ConnectOptions

from .test_write_cards import ALLDAY, CONTACT, GROUP, SERIES, SINGLE, TODO, TZ, calendar, crlf
from .test_write_cards import stored as wrap
from .test_write_fuzz import stored
from .write_readers import libpff_read, pstkit_read

ODD = ["", ";", "\\", "20161301T250000", "00000000", "99991231T235959Z", "-1", "0",
       "FREQ=WEEKLY;BYDAY=XX", "FREQ=MONTHLY;BYSETPOS=9;BYDAY=MO", "FREQ=DAILY;COUNT=999999",
       "FREQ=YEARLY;INTERVAL=99999", "FREQ=DAILY;UNTIL=1601", "P99999999W", "-PT", "𝄞" * 300,
       "x" * 70000, "mailto:", "TZID=Nowhere", "16010101T000000", "\x00\x01"]
SOURCES = [("IPM.Contact", ItemKind.CONTACT, "contact.vcf", "text/vcard", crlf(CONTACT)),
           ("IPM.DistList", ItemKind.DISTLIST, "distlist.vcf", "text/vcard", crlf(GROUP)),
           ("IPM.Appointment", ItemKind.EVENT, "event.ics", "text/calendar",
            calendar(TZ, SERIES)),
           ("IPM.Appointment", ItemKind.EVENT, "event.ics", "text/calendar",
            calendar(SINGLE, ALLDAY)),
           ("IPM.Task", ItemKind.TASK, "task.ics", "text/calendar", calendar(TODO))]


def mutate(text: str, rnd: random.Random) -> str:
    lines = text.split("\r\n")
    for _ in range(rnd.randrange(1, 6)):
        i = rnd.randrange(len(lines))
        action = rnd.randrange(5)
        if action == 0:
            del lines[i]
        elif action == 1:
            lines.insert(i, lines[i])
        elif action == 2:
            lines[i] = lines[i][: rnd.randrange(len(lines[i]) + 1)]
        elif ":" in lines[i]:
            head = lines[i].split(":", 1)[0]
            lines[i] = f"{head}:{rnd.choice(ODD)}"
        else:
            lines[i] = rnd.choice(ODD)
    return "\r\n".join(lines)


@pytest.mark.parametrize("seed", range(4))
def test_hostile_cards_and_calendars(tmp_path: Path, seed: int) -> None:
    rnd = random.Random(seed)
    out = tmp_path / "fuzz.pst"
    sink = PstSink(Location("pst", str(out)), ConnectOptions())
    sink.ensure_folder(("Inbox",), None)
    batch = []
    for i in range(120):
        cls, kind, name, ctype, text = rnd.choice(SOURCES)
        raw = wrap(cls, "s", "b", name, ctype, mutate(text, rnd))
        batch.append((replace(stored(i), kind=kind), raw))
    results = sink.put_batch(("Inbox",), batch)
    sink.close()
    written = [r for r in results if isinstance(r, Delivered)]
    failed = [r for r in results if not isinstance(r, Delivered)]
    assert len(written) > 60 and all(f.reason for f in failed)
    with out.open("rb") as f:
        assert check(f).findings == []
    assert len(pstkit_read(out)[("Inbox",)]) == len(written)
    assert len(libpff_read(out)[("Inbox",)]) == len(written)
