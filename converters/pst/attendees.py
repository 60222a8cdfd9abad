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
"""

from __future__ import annotations

from pstkit.converters.pst.named import RESPONSE_STATUS, TRACK_STATUS
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

PR_RECIPIENT_FLAGS, PR_RECIPIENT_TRACKSTATUS = 0x5FFD, 0x5FFF
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
            kind = r.integer(PR_RECIPIENT_TYPE)
            role = {2: ["ROLE=OPT-PARTICIPANT"], 3: ["ROLE=NON-PARTICIPANT", "CUTYPE=RESOURCE"]
                    }.get(kind or 1, ["ROLE=REQ-PARTICIPANT"])
            stat = PARTSTAT.get(r.integer(PR_RECIPIENT_TRACKSTATUS) or 0, "NEEDS-ACTION")
            out.append(_line("ATTENDEE", r, [*role, f"PARTSTAT={stat}"]))
    missing = sum(1 for r in [*org, *attendees] if not _known(r))
    if missing:
        out.append(f"X-PSTKIT-NOTE:{missing} attendee(s) without an address left out")
    status = props.integer("ResponseStatus")
    if status in RESPONSE and recipients and cls.startswith("ipm.appointment"):
        out.append(f"X-PSTKIT-RESPONSE-STATUS:{RESPONSE[status]}")
    return out


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
