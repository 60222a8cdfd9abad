"""Pure translation for the EWS sink: a vCard -> the t:Contact fields.

Microsoft's import guide ("Import items by using EWS in Exchange") says to set
the properties on a Contact; its CreateItem examples set GivenName, Surname,
CompanyName, EmailAddresses, PhysicalAddresses and PhoneNumbers as elements.
gromox 3.10 creates a Contact whose only content is vCard MimeContent, but
empty (no name, no address). So the card's fields are read here and sent as
elements; the card is not sent.

A t:Contact holds three e-mail addresses, one business/home/other postal
address and one number per phone kind; what does not fit, and vCard
properties EWS has no field for, are listed in `notes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pstkit.converters.ews.cards import unescape, unfold

#: vCard TEL/FAX TYPE sets (sorted, without VOICE/PREF) -> PhoneNumberKeyType
PHONE_KEYS = {
    ("WORK",): "BusinessPhone", ("HOME",): "HomePhone", ("CELL",): "MobilePhone",
    ("FAX", "WORK"): "BusinessFax", ("FAX", "HOME"): "HomeFax", ("FAX",): "OtherFax",
    ("PAGER",): "Pager", ("CAR",): "CarPhone", ("ISDN",): "Isdn", (): "OtherTelephone",
    ("CELL", "WORK"): "MobilePhone", ("CELL", "HOME"): "MobilePhone",
}  # fmt: skip
ADDRESS_KEYS = {"WORK": "Business", "HOME": "Home"}  # anything else: "Other"
#: card properties that describe the card, not the contact
METADATA = {"BEGIN", "END", "VERSION", "REV", "PRODID", "UID", "KIND", "SOURCE", "CLASS",
            "X-ADDRESSBOOKSERVER-KIND", "SORT-STRING", "LABEL", "CATEGORIES"}  # fmt: skip
MAX_EMAILS = 3


@dataclass(frozen=True)
class Address:
    key: str  # PhysicalAddressKeyType: Business, Home, Other
    street: str = ""
    city: str = ""
    state: str = ""
    country: str = ""
    postal_code: str = ""


@dataclass(frozen=True)
class ContactFields:
    display_name: str
    given: str = ""
    middle: str = ""
    surname: str = ""
    nickname: str = ""
    company: str = ""
    department: str = ""
    job_title: str = ""
    emails: tuple[str, ...] = ()  # EmailAddress1..3, in order
    phones: tuple[tuple[str, str], ...] = ()  # (PhoneNumberKeyType, number)
    addresses: tuple[Address, ...] = ()
    birthday: datetime | None = None
    home_page: str = ""
    body: str = ""  # NOTE, as the item's Body
    notes: tuple[str, ...] = ()  # what is not carried


def _types(params: list[str]) -> list[str]:
    out: list[str] = []
    for p in params:
        key, _, value = p.partition("=")
        if key.upper() == "TYPE":
            out += [v.upper() for v in value.strip('"').split(",")]
        elif not value:  # vCard 2.1: bare types ("TEL;WORK;VOICE")
            out.append(key.upper())
    return out


def _phone_key(name: str, types: list[str]) -> str:
    kinds = {t for t in types if t not in ("VOICE", "PREF", "INTERNET", "MSG")}
    if name == "FAX":
        kinds.add("FAX")
    return PHONE_KEYS.get(tuple(sorted(kinds)), "OtherTelephone")


def _fields(value: str, n: int) -> list[str]:
    """The `n` ;-separated parts of a structured value, unescaped."""
    parts, cur, i = [], "", 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            cur += value[i : i + 2]
            i += 2
            continue
        if value[i] == ";":
            parts.append(cur)
            cur = ""
        else:
            cur += value[i]
        i += 1
    parts.append(cur)
    return [unescape(p) for p in (parts + [""] * n)[:n]]


@dataclass
class _Card:
    values: dict[str, str]
    emails: list[str]
    phones: list[tuple[str, str]]
    addresses: list[Address]
    notes: list[str]


def _take(card: _Card, name: str, params: list[str], value: str) -> None:
    if name in ("TEL", "FAX"):
        key = _phone_key(name, _types(params))
        if any(k == key for k, _ in card.phones):
            card.notes.append(f"a second {key} ({unescape(value)})")
        else:
            card.phones.append((key, unescape(value)))
    elif name == "EMAIL":
        card.emails.append(unescape(value))
    elif name == "ADR":
        types = _types(params)
        key = next((ADDRESS_KEYS[t] for t in types if t in ADDRESS_KEYS), "Other")
        _, _, street, city, state, code, country = _fields(value, 7)
        if any(a.key == key for a in card.addresses):
            card.notes.append(f"a second {key} address")
        else:
            card.addresses.append(Address(key, street, city, state, country, code))
    elif name in ("FN", "N", "ORG", "TITLE", "NICKNAME", "URL", "BDAY", "NOTE"):
        card.values.setdefault(name, value)
    elif name not in METADATA and not name.startswith("X-"):
        card.notes.append(f"vCard {name}")


def contact_fields(text: str) -> ContactFields:
    card = _Card({}, [], [], [], [])
    for line in unfold(text):
        head, _, value = line.partition(":")
        name, *params = head.split(";")
        _take(card, name.split(".")[-1].upper(), params, value)  # "item1.EMAIL" (Apple)
    v = card.values
    surname, given, middle = _fields(v.get("N", ""), 3)
    company, department = _fields(v.get("ORG", ""), 2)
    if len(card.emails) > MAX_EMAILS:
        card.notes.append(f"e-mail addresses after the third: {', '.join(card.emails[3:])}")
    return ContactFields(
        display_name=unescape(v.get("FN", "")) or " ".join(x for x in (given, surname) if x),
        given=given, middle=middle, surname=surname, nickname=unescape(v.get("NICKNAME", "")),
        company=company, department=department, job_title=unescape(v.get("TITLE", "")),
        emails=tuple(card.emails[:MAX_EMAILS]), phones=tuple(card.phones),
        addresses=tuple(card.addresses), birthday=_birthday(v.get("BDAY", "")),
        home_page=unescape(v.get("URL", "")), body=unescape(v.get("NOTE", "")),
        notes=tuple(card.notes),
    )  # fmt: skip


def _birthday(value: str) -> datetime | None:
    digits = value.strip().replace("-", "")[:8]
    try:
        return datetime.strptime(digits, "%Y%m%d")
    except ValueError:
        return None
