"""Contacts: field by field against readpst's vCards, for every corpus contact (issue 14).

Before, the primary telephone number (0x3A1A) and the addresses Outlook keeps in named
properties (PidLidWorkAddress "Im Astenfeld 59 8580 EDELSCHROTT"…) were missing from
pstkit's vCards while readpst wrote them. Where the two differ by readpst's fault, the
normalisation below says so.
"""

from __future__ import annotations

import email
import shutil
import subprocess
from collections import Counter
from email.policy import default
from pathlib import Path

import pytest

from pstkit.converters.pst.cards import contact_vcard
from pstkit.converters.pst.props import Props
from pstkit.model import ItemKind
from tests.pst.test_source import export_all, fetched

FILES = ("aspose_SampleContacts.pst", "aspose_source.pst", "dist-list.pst")
#: properties both write; readpst also writes VERSION and AGENT, pstkit REV, UID and X-…
COMPARED = {"FN", "N", "NICKNAME", "EMAIL", "BDAY", "ADR", "LABEL", "TEL", "TITLE", "ROLE",
            "ORG", "NOTE", "CATEGORIES"}

Field = tuple[str, str, str]  # property, sorted lower-case types, value


def card_fields(text: str) -> Counter[Field]:
    """A vCard's compared properties, normalised where the two writers differ only in form:
    TEL types ("phone" is readpst's word for "voice", and "voice" is implied), EMAIL's
    TYPE=INTERNET, BDAY as a date, CATEGORIES' separators, ORG without an empty unit."""
    out: Counter[Field] = Counter()
    for line in text.replace("\r\n ", "").replace("\n ", "").splitlines():
        head, _, value = line.partition(":")
        name, *params = head.split(";")
        name = name.upper()
        if name not in COMPARED:
            continue
        types = {t.lower() for p in params if p.upper().startswith("TYPE=")
                 for t in p[5:].split(",")} - {"voice", "phone", "internet"}
        if name == "BDAY":
            value = value[:10]
        elif name == "CATEGORIES":
            value = ",".join(v.strip() for v in value.split(","))
        elif name == "ORG":
            value = value.rstrip(";")
        out[(name, ",".join(sorted(types)), value)] += 1
    return out


def _readpst_cards(pst: Path, out: Path) -> list[Counter[Field]]:
    subprocess.run(["readpst", "-j", "0", "-D", "-M", "-o", str(out), str(pst)],
                   capture_output=True, timeout=300, check=True)
    texts = [p.read_text("utf-8", "replace") for p in sorted(out.rglob("*")) if p.is_file()]
    return [card_fields(t) for t in texts if t.lstrip().startswith("BEGIN:VCARD")
            and "X-ADDRESSBOOKSERVER-KIND" not in t]


def _readpst_faults(theirs: Counter[Field], ours: Counter[Field]) -> Counter[Field]:
    """readpst's own mistakes, taken out of its card before comparing: it writes the
    file-as name (PidLidFileUnder, "Tolle, Margaret J.") as FN, and "FN:(null)" when there
    is none (a NULL pointer printed); FN is the formatted name (RFC 6350 6.2.1), which
    pstkit takes from PR_DISPLAY_NAME ("Margaret J. Tolle"), as Outlook shows it."""
    fixed = Counter(theirs)
    names = [f[2].split(";") for f in theirs if f[0] == "N"]
    sur, given, middle = (names[0] + ["", "", ""])[:3] if names else ("", "", "")
    file_as = f"{sur}\\, {' '.join(x for x in (given, middle) if x)}"
    for field in list(fixed):
        if field[0] == "FN" and field[2] in ("(null)", file_as):
            del fixed[field]
            fixed.update(f for f in ours if f[0] == "FN")
    return fixed


def _our_cards(pst: Path) -> list[Counter[Field]]:
    cards = []
    for results in export_all(pst).values():
        for r in fetched(results):
            if r.meta.kind is ItemKind.CONTACT:
                msg = email.message_from_bytes(r.raw, policy=default)
                part = next(p for p in msg.walk() if p.get_content_type() == "text/vcard")
                data = part.get_payload(decode=True)
                assert isinstance(data, bytes)
                cards.append(card_fields(data.decode("utf-8")))
    return cards


@pytest.mark.skipif(shutil.which("readpst") is None, reason="readpst (pst-utils) not installed")
@pytest.mark.parametrize("name", FILES)
def test_every_contact_has_readpsts_fields(corpus: Path, tmp_path: Path, name: str) -> None:
    ours = _our_cards(corpus / "pst" / name)
    theirs = _readpst_cards(corpus / "pst" / name, tmp_path)
    assert len(ours) == len(theirs) > 0
    by_email = {tuple(sorted(f for f in c if f[0] in ("EMAIL", "TEL", "ORG"))): c for c in ours}
    for their in theirs:
        key = tuple(sorted(f for f in their if f[0] in ("EMAIL", "TEL", "ORG")))
        assert key in by_email, (their, list(by_email))
        our = by_email[key]
        assert our == _readpst_faults(their, our)


def test_primary_phone_named_addresses_and_emails() -> None:
    props = Props({0x3001: "Bertha A. Buell", 0x3A1A: "06605045265", 0x3A23: "0660 1",
                   "WorkAddress": "Im Astenfeld 59\r\n8580 EDELSCHROTT", "WorkStreet":
                   "Im Astenfeld 59", "WorkCity": "Edelschrott", "WorkPostalCode": "8580",
                   "Email1": "bertha@example.com", "Email2": "b2@example.com",
                   0x3A63: "Other street 1", 0x3A46: "Engineer"})
    fields = card_fields(contact_vcard(props))
    assert fields[("TEL", "pref", "06605045265")] == 1
    assert fields[("TEL", "fax,pref", "0660 1")] == 1
    assert fields[("ADR", "work", ";;Im Astenfeld 59;Edelschrott;;8580;")] == 1
    assert fields[("LABEL", "work", "Im Astenfeld 59\\n8580 EDELSCHROTT")] == 1
    assert fields[("ADR", "postal", ";;Other street 1;;;;")] == 1
    assert {f[2] for f in fields if f[0] == "EMAIL"} == {"bertha@example.com", "b2@example.com"}
    assert fields[("ROLE", "", "Engineer")] == 1
