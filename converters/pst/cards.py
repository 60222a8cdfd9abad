"""Outlook contacts, distribution lists, notes and journal entries -> vCard / text. Pure.

Input is the item's decoded properties (`Props`), where named properties are keyed by the
names in `pst.named.NAMED` (resolved by `pst.source` through the file's name-to-id map). Output is
the text of a .vcf object with CRLF line ends and 75-octet folding (RFC 6350).
"""

from __future__ import annotations

import struct

from pstkit.converters.pim.content import escape
from pstkit.converters.pst.ical import content as _lines
from pstkit.converters.pst.ical import item_title
from pstkit.converters.pst.ical import stamp as _stamp
from pstkit.converters.pst.props import PR_BODY, PR_DISPLAY_NAME, PR_LAST_MODIFICATION_TIME, Props

# Contact properties (MS-OXOCNTC) -> vCard property, every one readpst writes too.
_CONTACT_TEXT = (
    (0x3A1A, "TEL;TYPE=VOICE,PREF"),  # PR_PRIMARY_TELEPHONE_NUMBER
    (0x3A08, "TEL;TYPE=WORK,VOICE"),
    (0x3A1B, "TEL;TYPE=WORK,VOICE"),  # business 2
    (0x3A09, "TEL;TYPE=HOME,VOICE"),
    (0x3A2F, "TEL;TYPE=HOME,VOICE"),  # home 2
    (0x3A1C, "TEL;TYPE=CELL"),
    (0x3A1E, "TEL;TYPE=CAR,VOICE"),
    (0x3A1F, "TEL;TYPE=MSG"),  # other
    (0x3A21, "TEL;TYPE=PAGER"),
    (0x3A1D, "TEL;TYPE=PCS"),  # radio
    (0x3A2D, "TEL;TYPE=ISDN"),
    (0x3A2C, "TEL;TYPE=BBS"),  # telex
    (0x3A23, "TEL;TYPE=FAX,PREF"),
    (0x3A24, "TEL;TYPE=WORK,FAX"),
    (0x3A25, "TEL;TYPE=HOME,FAX"),
    (0x3A17, "TITLE"),
    (0x3A46, "ROLE"),  # profession
    (0x3A4F, "NICKNAME"),
    (0x3A51, "URL"),
)
# pobox, street, city, region, code, country: MAPI ids, then the named ones Outlook also sets
_ADDRESSES = (
    ("WORK", (0x3A2B, 0x3A29, 0x3A27, 0x3A28, 0x3A2A, 0x3A26), "WorkAddress",
     ("WorkPOBox", "WorkStreet", "WorkCity", "WorkState", "WorkPostalCode", "WorkCountry")),
    ("HOME", (0x3A5E, 0x3A5D, 0x3A59, 0x3A5C, 0x3A5B, 0x3A5A), "HomeAddress", ()),
    ("POSTAL", (0x3A64, 0x3A63, 0x3A5F, 0x3A62, 0x3A61, 0x3A60), "OtherAddress", ()),
)


def _addresses(p: Props) -> list[str]:
    """ADR (pobox;ext;street;city;region;code;country) and LABEL (the whole address as
    Outlook shows it) of the work, home and other addresses."""
    out = []
    for kind, ids, label, named in _ADDRESSES:
        vals = [p.text(i) or (p.text(named[n]) if named else "") for n, i in enumerate(ids)]
        whole = p.text(label)
        if any(vals) or whole:
            out.append(f"ADR;TYPE={kind}:{escape(vals[0])};;"
                       + ";".join(escape(v) for v in vals[1:]))
        if whole:
            out.append(f"LABEL;TYPE={kind}:{escape(whole)}")
    return out


def contact_vcard(props: Props) -> str:
    """IPM.Contact -> vCard 3.0."""
    p = props
    surname, given = p.text(0x3A11), p.text(0x3A06)
    fn = p.text(PR_DISPLAY_NAME) or item_title(p) or f"{given} {surname}".strip()
    parts = (surname, given, p.text(0x3A44), p.text(0x3A45), p.text(0x3A05))
    n = ";".join(escape(x) for x in parts)
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"FN:{escape(fn)}", f"N:{n}"]
    org = ";".join(escape(x) for x in (p.text(0x3A16), p.text(0x3A18)) if x)
    if org:
        lines.append(f"ORG:{org}")
    lines += [f"EMAIL;TYPE=INTERNET:{escape(p.text(k))}" for k in ("Email1", "Email2", "Email3")
              if p.text(k)]
    lines += [f"{name}:{escape(p.text(pid))}" for pid, name in _CONTACT_TEXT if p.text(pid)]
    lines += _addresses(p)
    birthday = p.time(0x3A42)
    if birthday is not None:
        lines.append(f"BDAY:{birthday.strftime('%Y-%m-%d')}")
    if p.text(PR_BODY):
        lines.append(f"NOTE:{escape(p.text(PR_BODY))}")
    lines += _card_tail(p)
    return _lines(lines)


def _card_tail(p: Props) -> list[str]:
    tail = [f"CATEGORIES:{','.join(escape(k) for k in p.strings('Keywords'))}"] if p.strings(
        "Keywords") else []
    modified = p.time(PR_LAST_MODIFICATION_TIME)
    return [*tail, *([f"REV:{_stamp(modified)}"] if modified else []), "END:VCARD"]


def one_off_member(entryid: bytes) -> tuple[str, str] | None:
    """A one-off entry id (MS-OXCDATA 2.2.5.1) -> (display name, address)."""
    if len(entryid) < 24:
        return None
    flags = struct.unpack_from("<H", entryid, 22)[0]
    rest = entryid[24:]
    if flags & 0x8000:  # MAPI_UNICODE
        parts = rest.decode("utf-16-le", "replace").split("\0")
    else:
        parts = rest.decode("cp1252", "replace").split("\0")
    if len(parts) < 3:
        return None
    return parts[0], parts[2]


def distlist_vcard(props: Props) -> str:
    """IPM.DistList -> a vCard 3.0 group (KIND/X-ADDRESSBOOKSERVER-KIND group)."""
    name = props.text("DistListName") or item_title(props)
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"FN:{escape(name)}", f"N:{escape(name)};;;;",
             "X-ADDRESSBOOKSERVER-KIND:group"]
    for raw in props.binaries("DistListOneOff"):
        member = one_off_member(raw)
        if member is not None:
            who, addr = member
            lines.append(f"X-ADDRESSBOOKSERVER-MEMBER:mailto:{escape(addr)}")
            lines.append(f"X-PSTKIT-MEMBER-NAME:{escape(who)}")
    lines += _card_tail(props)
    return _lines(lines)


def note_text(props: Props) -> str:
    """IPM.StickyNote / IPM.Activity (journal): title, times and body as plain text."""
    p = props
    head = [item_title(p)]
    if p.text("LogType"):
        head.append(f"Type: {p.text('LogType')}")
    for label, key in (("Start", "LogStart"), ("End", "LogEnd")):
        t = p.time(key)
        if t is not None:
            head.append(f"{label}: {t.isoformat()}")
    return "\r\n".join([*head, "", p.text(PR_BODY)])
