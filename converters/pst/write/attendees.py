"""An event's organizer and attendees -> the recipients of an Outlook appointment or
meeting item, and whose meeting it is. Pure. The inverse of `pst.attendees`.

[MS-OXOCAL] 2.2.4.10: the organizer is a recipient flagged recipOrganizer; required
attendees are To, optional ones Cc, resources Bcc; each attendee's PARTSTAT is its
PidTagRecipientTrackStatus (2.2.4.10.2, [MS-OXCICAL] 2.1.3.1.1.20.2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pstkit.converters.pim.content import Line
from pstkit.converters.pst.named import PSETID_APPOINTMENT, RESPONSE_STATUS, TRACK_STATUS

from .mapi import Prop, binary, long, one_off, unicode

if TYPE_CHECKING:
    from .events import Component

Ids = Callable[[tuple[str, str | int]], int]


def _named(ids: Ids, lid: int, value: Prop) -> Prop:
    return ids((PSETID_APPOINTMENT, lid)), value[1], value[2]


def _party(line: Line, kind: int, flags: int, track: int = 0) -> list[Prop]:
    addr = line.text()
    addr = addr[7:] if addr.lower().startswith("mailto:") else addr
    name = line.param("CN") or addr
    # a party known only by a native address (X-PSTKIT-ADDRTYPE, as pst.attendees writes
    # an Exchange DN) keeps its type and has no SMTP address
    native = line.param("X-PSTKIT-ADDRTYPE").upper()
    kind_props = [unicode(0x3002, native)] if native else [unicode(0x3002, "SMTP"),
                                                            unicode(0x39FE, addr)]
    return [long(0x0C15, kind), unicode(0x3001, name), *kind_props,
            unicode(0x3003, addr), long(0x0FFE, 6),
            long(0x5FFD, flags), long(0x5FFF, track), binary(0x0FFF, one_off(name, addr)),
            binary(0x300B, f"{native or 'SMTP'}:{addr.upper()}\0".encode("ascii", "replace"))]




def parties(c: Component) -> list[list[Prop]]:
    """The organizer (recipient flags: sendable + organizer) and attendees (2.2.4.10):
    required ones To, optional Cc, resources Bcc, each with its PARTSTAT as track status."""
    out = []
    org = c.first("ORGANIZER")
    if org is not None and org.text():
        out.append(_party(org, 1, 0x0003))
    for att in (x for x in c.lines if x.name == "ATTENDEE" and x.text()):
        role = att.param("ROLE").upper()
        kind = 2 if role == "OPT-PARTICIPANT" else 3 if att.param("CUTYPE").upper() in (
            "RESOURCE", "ROOM") else 1
        out.append(_party(att, kind, 0x0001, TRACK_STATUS.get(att.param("PARTSTAT").upper(), 0)))
    return out


def meeting_state(c: Component, ids: Ids, meeting: bool) -> list[Prop]:
    """PidLidAppointmentStateFlags (2.2.1.10) and PidLidResponseStatus (2.2.1.11): an
    appointment with attendees is the organizer's meeting (asfMeeting, respOrganized)
    unless the calendar says it is an attendee's copy (asfMeeting | asfReceived)."""
    if not meeting:
        return [_named(ids, 0x8217, long(0, 0))]
    response = RESPONSE_STATUS.get(c.text("X-PSTKIT-RESPONSE-STATUS").upper(), 1)
    return [_named(ids, 0x8217, long(0, 1 if response in (0, 1) else 3)),
            _named(ids, 0x8218, long(0, response))]
