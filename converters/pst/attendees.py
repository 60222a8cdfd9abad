"""An Outlook calendar item's recipients -> iCalendar ORGANIZER and ATTENDEE lines. Pure.

[MS-OXOCAL] 2.2.4.10: the organizer is the recipient flagged recipOrganizer
(PidTagRecipientFlags 0x0002); attendees are required (To), optional (Cc) or resources
(Bcc), and each carries the response the organizer's item tracks
(PidTagRecipientTrackStatus, 2.2.4.10.2) -> PARTSTAT ([MS-OXCICAL] 2.1.3.1.1.20.2). A
meeting response is the other way round: its sender is the attendee who answered
(PARTSTAT from the class, 2.2.7) and its recipient the organizer. The item's own
PidLidResponseStatus (2.2.1.11) is written as X-PSTKIT-RESPONSE-STATUS when it is an
attendee's copy (or respNone); the organizer's (respOrganized) is what the writer assumes
for a meeting.

Three things Outlook keeps have no iCalendar form in [MS-OXCICAL], so they are pstkit's own
X- names, which the writer (write/attendees.py) reads back and other programs ignore:
- on the organizer's item, an attendee's counter proposal (PidTagRecipientProposed,
  PidTagRecipientProposedStartTime/EndTime, 2.2.4.10.4-2.2.4.10.6: the attendee asked for
  another time) as ATTENDEE parameters X-PSTKIT-PROPOSED=TRUE|FALSE and
  X-PSTKIT-PROPOSED-START/-END (UTC), and PidLidAppointmentProposalNumber (the proposals
  not yet accepted or rejected) as X-PSTKIT-PROPOSALS;
- on a Meeting Forward Notification (2.2.9), the people the meeting was forwarded to
  (PidLidForwardNotificationRecipients, `recipient_rows`) as X-PSTKIT-FORWARDED-TO lines;
- on any calendar item, the attendees its meeting messages do not go to
  (PidLidAppointmentUnsendableRecipients, 2.2.1.25, the same list form) as
  X-PSTKIT-UNSENDABLE lines.
"""

from __future__ import annotations

from pstkit.converters.pim.content import escape
from pstkit.converters.pim.ical_tz import utc_stamp
from pstkit.converters.pst.named import FORWARD_CLASS, RESPONSE_STATUS, TRACK_STATUS
from pstkit.converters.pst.props import (
    PR_ADDRTYPE,
    PR_DISPLAY_NAME,
    PR_EMAIL_ADDRESS,
    PR_MESSAGE_CLASS,
    PR_RECIPIENT_TYPE,
    PR_SENT_REPRESENTING_ADDRTYPE,
    PR_SENT_REPRESENTING_EMAIL,
    PR_SENT_REPRESENTING_NAME,
    PR_SENT_REPRESENTING_SMTP_ADDRESS,
    PR_SMTP_ADDRESS,
    Props,
)
from pstkit.converters.pst.recipient_rows import decode as decode_rows

PR_RECIPIENT_FLAGS, PR_RECIPIENT_TRACKSTATUS = 0x5FFD, 0x5FFF
#: PidTagRecipientProposed, PidTagRecipientProposedStartTime, ...EndTime (2.2.4.10.4-6)
PR_RECIPIENT_PROPOSED, PR_RECIPIENT_PROPOSED_START, PR_RECIPIENT_PROPOSED_END = \
    0x5FE1, 0x5FE3, 0x5FE4
RECIP_ORGANIZER = 0x0002
#: PidTagRecipientTrackStatus -> PARTSTAT; respNone (0) and anything else: NEEDS-ACTION
PARTSTAT = {code: name for name, code in TRACK_STATUS.items()}
#: PidLidResponseStatus other than the organizer's respOrganized: an attendee's copy
#: (respTentative .. respNotResponded), or respNone
RESPONSE = {code: name for name, code in RESPONSE_STATUS.items()}
_REPLY = {"pos": "ACCEPTED", "neg": "DECLINED", "tent": "TENTATIVE"}


def _param(text: str) -> str:
    """A parameter value (RFC 5545 3.1: quoted when it holds ':', ';' or ','; a DQUOTE
    cannot appear in one)."""
    text = text.replace('"', "'").replace("\r", " ").replace("\n", " ")
    return f'"{text}"' if any(c in text for c in ":;,") else text


def _line(prop: str, r: Props, params: list[str]) -> str:
    """The line of one party: `mailto:` its SMTP address; a party Outlook knows only by
    its native address (an Exchange X.500 DN) keeps that, with its type, so that nothing
    is dropped and the writer can put it back (write/attendees.py)."""
    name, addr = r.text(PR_DISPLAY_NAME), _address(r)
    cn = [f"CN={_param(name)}"] if name and name != addr else []
    if addr:
        return ";".join([prop, *cn, *params]) + f":mailto:{addr}"
    kind = r.text(PR_ADDRTYPE) or "EX"
    return ";".join([prop, *cn, f"X-PSTKIT-ADDRTYPE={_param(kind)}", *params]) + \
        f":{r.text(PR_EMAIL_ADDRESS)}"


def _address(r: Props) -> str:
    addr = r.text(PR_SMTP_ADDRESS) or r.text(PR_EMAIL_ADDRESS)
    return addr if "@" in addr else ""


def _known(r: Props) -> bool:
    return bool(_address(r) or r.text(PR_EMAIL_ADDRESS))


def party_lines(props: Props, recipients: tuple[Props, ...]) -> list[str]:
    """ORGANIZER and ATTENDEE lines of an appointment or meeting item, and a note for
    parties that have no SMTP address (an X.500 address is no calendar user address)."""
    cls = props.text(PR_MESSAGE_CLASS).lower()
    if cls.startswith("ipm.schedule.meeting.resp."):
        return _reply(props, recipients, _REPLY.get(cls.rsplit(".", 1)[-1], ""))
    org = [r for r in recipients if (r.integer(PR_RECIPIENT_FLAGS) or 0) & RECIP_ORGANIZER]
    if not org and cls.startswith("ipm.schedule.meeting."):
        org = [_sender(props)]  # a request or cancellation comes from the organizer
    out = [_line("ORGANIZER", r, []) for r in org if _known(r)]
    attendees = [r for r in recipients if r not in org]
    for r in attendees:
        if _known(r):
            stat = PARTSTAT.get(r.integer(PR_RECIPIENT_TRACKSTATUS) or 0, "NEEDS-ACTION")
            out.append(_line("ATTENDEE", r, [*_role(r.integer(PR_RECIPIENT_TYPE)),
                                             f"PARTSTAT={stat}", *_proposal(r)]))
    missing = sum(1 for r in [*org, *attendees] if not _known(r))
    if missing:
        out.append(f"X-PSTKIT-NOTE:{missing} attendee(s) without an address left out")
    status = props.integer("ResponseStatus")
    if status in RESPONSE and recipients and cls.startswith("ipm.appointment"):
        out.append(f"X-PSTKIT-RESPONSE-STATUS:{RESPONSE[status]}")
    proposals = props.integer("ProposalNumber")
    if proposals:  # 0 is what Outlook keeps on every appointment, and what the writer writes
        out.append(f"X-PSTKIT-PROPOSALS:{proposals}")
    return out + (forward_lines(props) if cls == FORWARD_CLASS else []) + unsendable_lines(props)


def _role(kind: int | None) -> list[str]:
    """ROLE (and CUTYPE) of a recipient type: To required, Cc optional, Bcc a resource."""
    return {2: ["ROLE=OPT-PARTICIPANT"], 3: ["ROLE=NON-PARTICIPANT", "CUTYPE=RESOURCE"]
            }.get(kind or 1, ["ROLE=REQ-PARTICIPANT"])


def _proposal(r: Props) -> list[str]:
    """An attendee's counter proposal as the organizer's item holds it: the flag as the
    row has it (FALSE: answered or withdrawn, its times may stay), and the times."""
    proposed = r.get(PR_RECIPIENT_PROPOSED)
    out = [f"X-PSTKIT-PROPOSED={'TRUE' if proposed else 'FALSE'}"] \
        if isinstance(proposed, bool) else []
    for name, pid in (("START", PR_RECIPIENT_PROPOSED_START), ("END", PR_RECIPIENT_PROPOSED_END)):
        when = r.time(pid)
        if when is not None:
            out.append(f"X-PSTKIT-PROPOSED-{name}={utc_stamp(when)}")
    return out


def forward_lines(props: Props) -> list[str]:
    """The people a Meeting Forward Notification says the meeting was forwarded to, one
    X-PSTKIT-FORWARDED-TO line each (a calendar user address with CN and ROLE as on an
    ATTENDEE line), and a note for a list that could not be read whole.

    Not ATTENDEE lines: this VEVENT's ATTENDEE lines are already the notification's own
    recipients (the organizer it goes to), so the writer could not tell the two apart,
    and a program reading the calendar would take the forwardees for people who were
    invited and answered, which the notification does not say."""
    return _row_lines(props, "ForwardNotificationRecipients", "X-PSTKIT-FORWARDED-TO",
                      "forward notification recipients", "forward recipient(s)")


def unsendable_lines(props: Props) -> list[str]:
    """The attendees an appointment lists as unsendable (PidLidAppointmentUnsendable
    Recipients, [MS-OXOCAL] 2.2.1.25: attendees its meeting messages do not go to), one
    X-PSTKIT-UNSENDABLE line each, as X-PSTKIT-FORWARDED-TO (the same list form); not
    ATTENDEE lines, which would make them invitees."""
    return _row_lines(props, "UnsendableRecipients", "X-PSTKIT-UNSENDABLE",
                      "unsendable recipients", "unsendable recipient(s)")


def _row_lines(props: Props, prop: str, name: str, what: str, who: str) -> list[str]:
    blob = props.binary(prop)
    if blob is None:
        return []
    got = decode_rows(blob, what)
    out = []
    for r in got.recipients:
        row = Props({PR_DISPLAY_NAME: r.name, PR_ADDRTYPE: r.addrtype,
                     PR_EMAIL_ADDRESS: r.address, PR_SMTP_ADDRESS: r.smtp})
        if _known(row):
            out.append(_line(name, row, _role(r.kind)))
    missing = len(got.recipients) - len(out)
    if missing:
        out.append(f"X-PSTKIT-NOTE:{missing} {who} without an address left out")
    return out + [f"X-PSTKIT-NOTE:{escape(n)}" for n in got.notes]


def _sender(props: Props) -> Props:
    return Props({PR_DISPLAY_NAME: props.text(PR_SENT_REPRESENTING_NAME),
                  PR_ADDRTYPE: props.text(PR_SENT_REPRESENTING_ADDRTYPE),
                  PR_SMTP_ADDRESS: props.text(PR_SENT_REPRESENTING_SMTP_ADDRESS),
                  PR_EMAIL_ADDRESS: props.text(PR_SENT_REPRESENTING_EMAIL)})


def _reply(props: Props, recipients: tuple[Props, ...], partstat: str) -> list[str]:
    """A meeting response: the organizer it goes to, the attendee who sent it."""
    out = [_line("ORGANIZER", r, []) for r in recipients[:1] if _known(r)]
    me = _sender(props)
    if _known(me) and partstat:
        out.append(_line("ATTENDEE", me, [f"PARTSTAT={partstat}"]))
    return out
