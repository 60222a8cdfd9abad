"""vCard -> the MAPI properties of an Outlook contact or distribution list. Pure.

The inverse of `pst.cards` ([MS-OXOCNTC]): a contact's names (2.2.1.1), e-mail addresses
as Outlook keeps them, each with display name, address type, address, original display
name and original entry id (PidLidEmail1*..3*, 2.2.1.2, with the address book provider
list PidLidAddressBookProviderEmailList/ArrayType), company, title, department, phones
by kind (2.2.1.4), the work/home/other postal addresses (2.2.1.3, the work one also in
the named PidLidWork* fields Outlook shows), birthday (2.2.1.5), file-as (2.2.1.1.11).
A group becomes a distribution list (2.2.2.2): its name, one-off entry ids of the
members in PidLidDistributionListMembers and ...OneOffMembers, and their checksum.
Named properties come as (property set, LID) pairs; `ids` turns them into property ids.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from pstkit.converters.pim.content import Line

from .mapi import Prop, binary, long, one_off, systime, unicode
from .messaging import multi_binary

PSETID_ADDRESS = "00062004-0000-0000-c000-000000000046"
Ids = Callable[[tuple[str, str | int]], int]
PT_MV_LONG, PT_MV_BINARY = 0x1003, 0x1102

#: vCard TEL/TITLE/... line -> the MAPI properties it fills, in `pst.cards`' order
_TEXT: dict[str, tuple[int, ...]] = {
    "TEL;TYPE=VOICE,PREF": (0x3A1A,), "TEL;TYPE=WORK,VOICE": (0x3A08, 0x3A1B),
    "TEL;TYPE=HOME,VOICE": (0x3A09, 0x3A2F), "TEL;TYPE=CELL": (0x3A1C,),
    "TEL;TYPE=CAR,VOICE": (0x3A1E,), "TEL;TYPE=MSG": (0x3A1F,), "TEL;TYPE=PAGER": (0x3A21,),
    "TEL;TYPE=PCS": (0x3A1D,), "TEL;TYPE=ISDN": (0x3A2D,), "TEL;TYPE=BBS": (0x3A2C,),
    "TEL;TYPE=FAX,PREF": (0x3A23,), "TEL;TYPE=WORK,FAX": (0x3A24,),
    "TEL;TYPE=HOME,FAX": (0x3A25,), "TITLE": (0x3A17,), "ROLE": (0x3A46,),
    "NICKNAME": (0x3A4F,), "URL": (0x3A51,),
}  # fmt: skip
#: a TEL without one of the exact TYPE sets above: by its main type
_TEL_KIND = (("FAX", 0x3A23), ("CELL", 0x3A1C), ("PAGER", 0x3A21), ("WORK", 0x3A08),
             ("HOME", 0x3A09), ("CAR", 0x3A1E))
# ADR kind -> pobox, street, city, region, code, country (MAPI); the whole-address LID;
# the named work fields (the same order)
_ADR = {"WORK": ((0x3A2B, 0x3A29, 0x3A27, 0x3A28, 0x3A2A, 0x3A26), 0x801B,
                 (0x804A, 0x8045, 0x8046, 0x8047, 0x8048, 0x8049)),
        "HOME": ((0x3A5E, 0x3A5D, 0x3A59, 0x3A5C, 0x3A5B, 0x3A5A), 0x801A, ()),
        "POSTAL": ((0x3A64, 0x3A63, 0x3A5F, 0x3A62, 0x3A61, 0x3A60), 0x801C, ())}
_EMAIL_LIDS = (0x8080, 0x8090, 0x80A0)
#: one-off entry id flags of an Outlook-made contact's addresses: Unicode, no rich text
_OUTLOOK_ONE_OFF = 0x8001  # Email1/2/3 display name; +2 type, +3, +4, +5


def _named(ids: Ids, lid: int, value: Prop) -> Prop:
    return ids((PSETID_ADDRESS, lid)), value[1], value[2]


def _first(card: Sequence[Line], name: str) -> Line | None:
    return next((line for line in card if line.name == name), None)


def _head(line: Line) -> str:
    """The line as `pst.cards` writes its name and parameters ("TEL;TYPE=WORK,VOICE")."""
    types = line.params.get("TYPE", [])
    return f"{line.name};TYPE={','.join(t.upper() for t in types)}" if types else line.name


def contact_props(card: Sequence[Line], ids: Ids) -> list[Prop]:
    """A vCard's lines -> the contact's properties (class and times are the caller's)."""
    props: list[Prop] = []
    fn = _first(card, "FN")
    n = _first(card, "N")
    parts = (n.parts() if n else []) + [""] * 5
    surname, given, middle, prefix, suffix = parts[:5]
    name = fn.text() if fn else " ".join(x for x in (given, surname) if x)
    for pid, value in ((0x3001, name), (0x3A11, surname), (0x3A06, given), (0x3A44, middle),
                       (0x3A45, prefix), (0x3A05, suffix)):
        if value:
            props.append(unicode(pid, value))
    file_as = f"{surname}, {' '.join(x for x in (given, middle) if x)}" if surname and given \
        else name  # Outlook's default: "Last, First Middle"
    props.append(_named(ids, 0x8005, unicode(0, file_as)))
    # PidLidFileUnderId (2.2.1.1.12): "Last, First Middle", else the text of FileUnder
    props.append(_named(ids, 0x8006, long(0, 0x8017 if surname and given else 0xFFFFFFFF)))
    org = _first(card, "ORG")
    if org is not None:
        for pid, value in zip((0x3A16, 0x3A18), org.parts(), strict=False):
            if value:
                props.append(unicode(pid, value))
    props += _emails(card, name, ids) + _texts(card) + _addresses(card, ids)
    rev = _first(card, "REV")
    changed = _stamp(rev.value) if rev else None
    if changed is not None:
        props.append(systime(0x3008, changed))
    bday = _first(card, "BDAY")
    when = _date(bday.value) if bday else None
    if when is not None:
        props.append(systime(0x3A42, when))
    return props


def _emails(card: Sequence[Line], name: str, ids: Ids) -> list[Prop]:
    addrs = [line.text() for line in card if line.name == "EMAIL" and line.text()][:3]
    out: list[Prop] = []
    for lid, addr in zip(_EMAIL_LIDS, addrs, strict=False):
        shown = name or addr  # as in Outlook-made contacts (dist-list.pst)
        out += [_named(ids, lid, unicode(0, shown)), _named(ids, lid + 2, unicode(0, "SMTP")),
                _named(ids, lid + 3, unicode(0, addr)), _named(ids, lid + 4, unicode(0, addr)),
                _named(ids, lid + 5, binary(0, one_off(shown, addr, _OUTLOOK_ONE_OFF)))]
    if addrs:  # PidLidAddressBookProviderEmailList / ...ArrayType (2.2.1.2.12, 2.2.1.2.13)
        slots = list(range(len(addrs)))
        # a fixed-size multi-value is a packed array, no count (MS-PST 2.3.3.4.1)
        out += [(ids((PSETID_ADDRESS, 0x8028)), PT_MV_LONG,
                 b"".join(s.to_bytes(4, "little") for s in slots)),
                _named(ids, 0x8029, long(0, (1 << len(addrs)) - 1))]
    return out


def _texts(card: Sequence[Line]) -> list[Prop]:
    used: set[int] = set()
    out: list[Prop] = []
    for line in card:
        pids = _TEXT.get(_head(line), ())
        if not pids and line.name == "TEL":
            kinds = {t.upper() for t in line.params.get("TYPE", [])}
            pids = tuple(pid for kind, pid in _TEL_KIND if kind in kinds) or (0x3A1F,)
        free = [pid for pid in pids if pid not in used]
        if free and line.text():
            used.add(free[0])
            out.append(unicode(free[0], line.text()))
    return out


def _addresses(card: Sequence[Line], ids: Ids) -> list[Prop]:
    out: list[Prop] = []
    for line in card:
        kind = next((t.upper() for t in line.params.get("TYPE", []) if t.upper() in _ADR), "")
        if not kind:
            continue
        pids, whole, named = _ADR[kind]
        if line.name == "LABEL":
            out.append(_named(ids, whole, unicode(0, line.text())))
        elif line.name == "ADR":
            vals = (line.parts() + [""] * 7)[:7]
            vals = [vals[0], *vals[2:]]  # the extended address has no MAPI field
            out += [unicode(pid, v) for pid, v in zip(pids, vals, strict=True) if v]
            out += [_named(ids, lid, unicode(0, v)) for lid, v in zip(named, vals,
                                                                      strict=False) if v]
    return out


def _date(value: str) -> datetime | None:
    digits = value.replace("-", "")[:8]
    try:
        return datetime.strptime(digits, "%Y%m%d").replace(tzinfo=UTC)
    except ValueError:
        return None


def _stamp(value: str) -> datetime | None:
    try:
        return datetime.strptime(value.strip()[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def members(card: Sequence[Line]) -> list[tuple[str, str]]:
    """(name, address) of a group's members: X-ADDRESSBOOKSERVER-MEMBER (each followed by
    pstkit's X-PSTKIT-MEMBER-NAME) or vCard 4 MEMBER."""
    out: list[tuple[str, str]] = []
    for line in card:
        if line.name in ("X-ADDRESSBOOKSERVER-MEMBER", "MEMBER"):
            addr = line.text()
            out.append(("", addr[7:] if addr.lower().startswith("mailto:") else addr))
        elif line.name == "X-PSTKIT-MEMBER-NAME" and out and not out[-1][0]:
            out[-1] = (line.text(), out[-1][1])
    return [(name or addr, addr) for name, addr in out]


def distlist_props(card: Sequence[Line], ids: Ids) -> list[Prop]:
    """A vCard group -> IPM.DistList properties (2.2.2.2): name, members as one-off entry
    ids in both member lists, and the checksum (2.2.2.2.3)."""
    fn = _first(card, "FN")
    name = fn.text() if fn else ""
    entries = [one_off(who, addr, _OUTLOOK_ONE_OFF) for who, addr in members(card)]
    rev = _first(card, "REV")
    changed = [systime(0x3008, t) for t in [_stamp(rev.value) if rev else None] if t]
    return [*changed, unicode(0x3001, name), _named(ids, 0x8053, unicode(0, name)),
            _named(ids, 0x8005, unicode(0, name)), _named(ids, 0x8006, long(0, 0xFFFFFFFF)),
            (ids((PSETID_ADDRESS, 0x8055)), PT_MV_BINARY, multi_binary(entries)),
            (ids((PSETID_ADDRESS, 0x8054)), PT_MV_BINARY, multi_binary(entries)),
            _named(ids, 0x804C, long(0, dl_checksum(entries)))]


def dl_checksum(entries: Sequence[bytes]) -> int:
    """PidLidDistributionListChecksum: the CRC-32 of the member entry ids one after the
    other, computed as [MS-PST]'s CRC (initial value 0, no final inversion) — what the
    Outlook-made dist-list.pst holds (tests/pst/test_write_cards.py)."""
    return zlib.crc32(b"".join(entries), 0xFFFFFFFF) ^ 0xFFFFFFFF
