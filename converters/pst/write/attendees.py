"""An event's organizer and attendees -> the recipients of an Outlook appointment or
meeting item, and whose meeting it is. Pure. The inverse of `pst.attendees`.

[MS-OXOCAL] 2.2.4.10: the organizer is a recipient flagged recipOrganizer; required
attendees are To, optional ones Cc, resources Bcc; each attendee's PARTSTAT is its
PidTagRecipientTrackStatus (2.2.4.10.2, [MS-OXCICAL] 2.1.3.1.1.20.2).

What [MS-OXCICAL] has no form for comes back from pstkit's own X- names (`pst.attendees`
writes them): an attendee's counter proposal on the organizer's item (X-PSTKIT-PROPOSED,
-PROPOSED-START, -PROPOSED-END -> PidTagRecipientProposed, ...StartTime, ...EndTime,
2.2.4.10.4-2.2.4.10.6) and the count of open ones (X-PSTKIT-PROPOSALS ->
PidLidAppointmentProposalNumber); a Meeting Forward Notification's forwardees
(X-PSTKIT-FORWARDED-TO -> PidLidForwardNotificationRecipients, 2.2.9, `recipient_rows`;
X-PSTKIT-UNSENDABLE -> PidLidAppointmentUnsendableRecipients, 2.2.1.25, the same form).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pstkit.converters.pim.content import Line
from pstkit.converters.pst.named import PSETID_APPOINTMENT, RESPONSE_STATUS, TRACK_STATUS
from pstkit.converters.pst.recipient_rows import Recipient, encode

from .mapi import Prop, binary, long, one_off, unicode
from .values import boolean, systime

if TYPE_CHECKING:
    from .events import Component

Ids = Callable[[tuple[str, str | int]], int]


def _named(ids: Ids, lid: int, value: Prop) -> Prop:
    return ids((PSETID_APPOINTMENT, lid)), value[1], value[2]


def _who(line: Line) -> tuple[str, str, str]:
    """(name, address, native address type or "") of a party's line: a party known only
    by a native address (X-PSTKIT-ADDRTYPE, as pst.attendees writes an Exchange DN) keeps
    its type and has no SMTP address."""
    addr = line.text()
    addr = addr[7:] if addr.lower().startswith("mailto:") else addr
    return line.param("CN") or addr, addr, line.param("X-PSTKIT-ADDRTYPE").upper()


def _party(line: Line, kind: int, flags: int, track: int = 0) -> list[Prop]:
    name, addr, native = _who(line)
    kind_props = [unicode(0x3002, native)] if native else [unicode(0x3002, "SMTP"),
                                                            unicode(0x39FE, addr)]
    return [long(0x0C15, kind), unicode(0x3001, name), *kind_props,
            unicode(0x3003, addr), long(0x0FFE, 6),
            long(0x5FFD, flags), long(0x5FFF, track), binary(0x0FFF, one_off(name, addr)),
            binary(0x300B, f"{native or 'SMTP'}:{addr.upper()}\0".encode("ascii", "replace")),
            *_proposal(line)]


def _kind(line: Line) -> int:
    """PidTagRecipientType of an attendee: required To, optional Cc, resources Bcc."""
    if line.param("ROLE").upper() == "OPT-PARTICIPANT":
        return 2
    return 3 if line.param("CUTYPE").upper() in ("RESOURCE", "ROOM") else 1


def _utc(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _proposal(line: Line) -> list[Prop]:
    """PidTagRecipientProposed and the proposed times of an attendee's row."""
    flag = line.param("X-PSTKIT-PROPOSED").upper()
    out = [boolean(0x5FE1, flag == "TRUE")] if flag in ("TRUE", "FALSE") else []
    for pid, name in ((0x5FE3, "X-PSTKIT-PROPOSED-START"), (0x5FE4, "X-PSTKIT-PROPOSED-END")):
        when = _utc(line.param(name))
        if when is not None:
            out.append(systime(pid, when))
    return out


def parties(c: Component) -> list[list[Prop]]:
    """The organizer (recipient flags: sendable + organizer) and attendees (2.2.4.10):
    required ones To, optional Cc, resources Bcc, each with its PARTSTAT as track status."""
    out = []
    org = c.first("ORGANIZER")
    if org is not None and org.text():
        out.append(_party(org, 1, 0x0003))
    for att in (x for x in c.lines if x.name == "ATTENDEE" and x.text()):
        track = TRACK_STATUS.get(att.param("PARTSTAT").upper(), 0)
        out.append(_party(att, _kind(att), 0x0001, track))
    return out


def forward_recipients(c: Component, ids: Ids) -> list[Prop]:
    """PidLidForwardNotificationRecipients (PSETID_Appointment 0x8261) of a Meeting Forward
    Notification from its X-PSTKIT-FORWARDED-TO lines; nothing when it has none."""
    return _rows(c, ids, "X-PSTKIT-FORWARDED-TO", 0x8261)


def unsendable_recipients(c: Component, ids: Ids) -> list[Prop]:
    """PidLidAppointmentUnsendableRecipients (PSETID_Appointment 0x825D, [MS-OXOCAL]
    2.2.1.25) of an appointment from its X-PSTKIT-UNSENDABLE lines; nothing without."""
    return _rows(c, ids, "X-PSTKIT-UNSENDABLE", 0x825D)


def _rows(c: Component, ids: Ids, name: str, lid: int) -> list[Prop]:
    """A recipient-row list property (`recipient_rows`) from the component's `name` lines."""
    rows = []
    for line in (x for x in c.lines if x.name == name and x.text()):
        who, addr, native = _who(line)
        rows.append(Recipient(who, addr, native or "SMTP", _kind(line),
                              "" if native else addr, b"" if native else one_off(who, addr)))
    return [_named(ids, lid, binary(0, encode(rows)))] if rows else []


def meeting_state(c: Component, ids: Ids, meeting: bool) -> list[Prop]:
    """PidLidAppointmentStateFlags (2.2.1.10) and PidLidResponseStatus (2.2.1.11): an
    appointment with attendees is the organizer's meeting (asfMeeting, respOrganized)
    unless the calendar says it is an attendee's copy (asfMeeting | asfReceived)."""
    if not meeting:
        return [_named(ids, 0x8217, long(0, 0)), *proposal_number(c, ids)]
    response = RESPONSE_STATUS.get(c.text("X-PSTKIT-RESPONSE-STATUS").upper(), 1)
    return [_named(ids, 0x8217, long(0, 1 if response in (0, 1) else 3)),
            _named(ids, 0x8218, long(0, response)), *proposal_number(c, ids)]


def proposal_number(c: Component, ids: Ids) -> list[Prop]:
    """PidLidAppointmentProposalNumber (0x8259): X-PSTKIT-PROPOSALS as the item had it,
    else the attendees whose proposal is open (X-PSTKIT-PROPOSED=TRUE), else 0, which
    Outlook keeps on every appointment, with attendees or without (the reader writes no
    line for it)."""
    given = c.text("X-PSTKIT-PROPOSALS").strip()
    if given.isascii() and given.isdigit():  # (not "²", which int() refuses)
        return [_named(ids, 0x8259, long(0, int(given)))]
    open_ = sum(1 for x in c.lines if x.name == "ATTENDEE"
                and x.param("X-PSTKIT-PROPOSED").upper() == "TRUE")
    return [_named(ids, 0x8259, long(0, open_))]
