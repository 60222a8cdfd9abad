"""vCard 3.0/4.0 -> a Graph `contact` request body (pure).

Follows the contact resource of Graph v1.0. What a vCard holds and Graph's
contact cannot (a fourth e-mail address, a fax number, a photo…) is listed
in `notes`, so the sink reports it ("delivered, but …") instead of dropping
it silently. Properties that only describe the card itself (VERSION, REV,
PRODID, UID…) are not content and are not reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pstkit.converters.graph.jsonmail import AttachmentPart
from pstkit.converters.pim.content import Line, lines

MAX_EMAILS = 3  # Graph's contact keeps at most three e-mail addresses
METADATA = {"BEGIN", "END", "VERSION", "REV", "PRODID", "UID", "KIND", "SOURCE", "CLASS",
            "X-ADDRESSBOOKSERVER-KIND", "SORT-STRING", "LABEL", "X-PSTKIT-NOTE"}  # fmt: skip


@dataclass(frozen=True)
class PimItem:
    """A Graph request body and what could not be carried into it."""

    body: dict[str, Any]
    notes: tuple[str, ...] = ()
    #: for events: changes to single occurrences, applied after the series exists
    later: tuple[dict[str, Any], ...] = field(default=())
    #: for events: attachments, added after the series exists
    files: tuple[AttachmentPart, ...] = field(default=())


@dataclass
class _Card:
    body: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    home: list[str] = field(default_factory=list)
    work: list[str] = field(default_factory=list)
    mobile: list[str] = field(default_factory=list)
    ims: list[str] = field(default_factory=list)


def is_group(text: str) -> bool:
    """A vCard group (distribution list): KIND:group (4.0) or Apple's X- form (3.0)."""
    for line in lines(text):
        if line.name in ("KIND", "X-ADDRESSBOOKSERVER-KIND") and line.text().lower() == "group":
            return True
    return False


def contact(text: str) -> PimItem:
    card = _Card()
    for line in lines(text):
        if line.name in METADATA:
            continue
        handler = _HANDLERS.get(line.name)
        if handler is not None:
            handler(card, line)
        elif not line.name.startswith("X-"):
            card.notes.append(f"vCard {line.name} has no Graph contact property")
    _finish(card)
    return PimItem(card.body, tuple(card.notes))


def _finish(card: _Card) -> None:
    name = card.body.get("displayName", "")
    if card.emails:
        card.body["emailAddresses"] = [{"address": a, "name": name} for a in card.emails[:3]]
        if len(card.emails) > MAX_EMAILS:
            extra = ", ".join(card.emails[MAX_EMAILS:])
            card.notes.append(f"Graph keeps 3 e-mail addresses; not kept: {extra}")
    if card.work:
        card.body["businessPhones"] = card.work
    if card.home:
        card.body["homePhones"] = card.home
    if card.mobile:
        card.body["mobilePhone"] = card.mobile[0]
        if len(card.mobile) > 1:
            card.notes.append(
                f"Graph keeps 1 mobile number; not kept: {', '.join(card.mobile[1:])}"
            )
    if card.ims:
        card.body["imAddresses"] = card.ims


def _fn(card: _Card, line: Line) -> None:
    card.body["displayName"] = line.text()


def _n(card: _Card, line: Line) -> None:
    parts = [*line.parts(), "", "", "", "", ""]
    keys = ("surname", "givenName", "middleName", "title", "generation")
    for key, value in zip(keys, parts, strict=False):
        if value:
            card.body[key] = value.replace(",", " ")  # 4.0 lists several values with ","


def _simple(key: str) -> Any:
    def set_value(card: _Card, line: Line) -> None:
        if line.text():
            card.body[key] = line.text()

    return set_value


def _org(card: _Card, line: Line) -> None:
    parts = line.parts()
    if parts and parts[0]:
        card.body["companyName"] = parts[0]
    if len(parts) > 1 and parts[1]:
        card.body["department"] = "; ".join(p for p in parts[1:] if p)


def _email(card: _Card, line: Line) -> None:
    address = line.text().removeprefix("mailto:").strip()
    if address:
        card.emails.append(address)


def _tel(card: _Card, line: Line) -> None:
    number, types = line.text().removeprefix("tel:").strip(), line.types()
    if not number:
        return
    if "FAX" in types or line.name == "FAX":
        card.notes.append(f"Graph's contact has no fax number; not kept: {number}")
    elif "PAGER" in types:
        card.notes.append(f"Graph's contact has no pager number; not kept: {number}")
    elif "CELL" in types:
        card.mobile.append(number)
    elif "HOME" in types:
        card.home.append(number)
    else:  # WORK, VOICE or no type: Outlook's "business" is the default
        card.work.append(number)


def _adr(card: _Card, line: Line) -> None:
    parts = [*line.parts(), "", "", "", "", "", "", ""]
    pobox, ext, street, city, region, code, country = parts[:7]
    street_text = "\n".join(p for p in (pobox, ext, street) if p)
    address = {"street": street_text, "city": city, "state": region, "postalCode": code,
               "countryOrRegion": country}  # fmt: skip
    address = {k: v for k, v in address.items() if v}
    if not address:
        return
    types = line.types()
    key = "homeAddress" if "HOME" in types else "businessAddress" if "WORK" in types else ""
    key = key or "otherAddress"
    if key in card.body:
        card.notes.append(f"Graph keeps one {key}; not kept: {', '.join(address.values())}")
        return
    card.body[key] = address


_DATE = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})")


def _bday(card: _Card, line: Line) -> None:
    m = _DATE.match(line.text().strip())
    if m is None:  # e.g. 4.0's "--0415" (no year): Graph needs a full date
        card.notes.append(f"birthday {line.text()!r} is not a full date; not kept")
        return
    card.body["birthday"] = f"{m.group(1)}-{m.group(2)}-{m.group(3)}T00:00:00Z"


def _categories(card: _Card, line: Line) -> None:
    cats = [c.strip() for c in line.parts(",") if c.strip()]
    card.body["categories"] = [*card.body.get("categories", []), *cats]


def _im(card: _Card, line: Line) -> None:
    value = line.text().strip()
    if value:
        card.ims.append(value)


def _url(card: _Card, line: Line) -> None:
    if "businessHomePage" in card.body:
        card.notes.append(f"Graph keeps one web page; not kept: {line.text()}")
    elif line.text():
        card.body["businessHomePage"] = line.text()


def _note(card: _Card, line: Line) -> None:
    card.body["personalNotes"] = line.text()


_HANDLERS: dict[str, Any] = {
    "FN": _fn,
    "N": _n,
    "NICKNAME": _simple("nickName"),
    "TITLE": _simple("jobTitle"),
    "ROLE": _simple("profession"),
    "ORG": _org,
    "EMAIL": _email,
    "TEL": _tel,
    "FAX": _tel,
    "ADR": _adr,
    "BDAY": _bday,
    "NOTE": _note,
    "CATEGORIES": _categories,
    "IMPP": _im,
    "X-MS-IMADDRESS": _im,
    "URL": _url,
}
