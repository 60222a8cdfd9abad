"""pstkit's PST reading compared with readpst (pst-utils) on every corpus PST/OST.

readpst always runs with `-j 0 -D` (see corpus/README.md: without -j 0 it randomly
loses items, without -D it drops Deleted Items). Known differences, asserted below:
- readpst writes contacts and appointments with -M as bare vCard/iCalendar text,
  not as messages: their e-mail address, summary, start, end, location and
  recurrence (FREQ and BYDAY: readpst writes no more of the rule) are compared
  with the vCard/iCalendar part pstkit attaches;
- readpst skips distribution lists (dist-list.pst) and free/busy items (pstkit
  reports the latter as skipped);
- readpst puts items of the top-of-store folder in its root directory, named
  after the store (pstkit: a folder named after the top-of-store folder);
- readpst names embedded messages' parts without a file name; pstkit names
  them after the embedded subject: message/rfc822 parts are compared by the
  subjects inside, not by name; their attachments are not compared (readpst
  drops the attachments of embedded messages, pstkit keeps them; readpst also
  starts each embedded message with a stray '>From ' line);
- OLE attachments (attach method 6, e.g. SampleOstFile.ost's "RTF newsletter
  copy" pictures) have no file name: readpst invents a random ATTnnnnn, pstkit
  uses the display name and adds a note: compared by size (readpst writes none
  of them for the Sent Items copy of that message);
- both generate an iCalendar part for meeting requests (readpst with a random
  name and the current time in it): compared by count;
- readpst writes no Date header when the item lacks a client submit time.
"""

from __future__ import annotations

import email
import email.policy
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path

import pytest

pytest.importorskip("pypff")

from pstkit.converters.pim.ical_tz import zones_in
from pstkit.converters.pst.source import PstSource
from pstkit.location import Location
from pstkit.model import Fetched, ItemKind
from pstkit.options import ConnectOptions, FetchFilter

READABLE = [
    "testPST.pst",
    "testPST_variousBodyTypes.pst",
    "pstsdk_sample1.pst",
    "pstsdk_sample2.pst",
    "pstsdk_submessage.pst",
    "dist-list.pst",
    "msgInMsg.pst",
    "attachAndInline.pst",
    "SampleOstFile.ost",
    "aspose_source.pst",
    "aspose_SampleContacts.pst",
    "aspose_PersonalStorage.pst",
]
#: readpst's known misses: file -> {folder: items readpst does not write}
READPST_MISSES: dict[str, dict[tuple[str, ...], int]] = {"dist-list.pst": {("Contacts",): 1}}
#: messages whose OLE attachments readpst does not write at all: (file, folder, subject)
READPST_DROPS_OLE = {("SampleOstFile.ost", ("Sent Items",), "RTF newsletter copy")}

Parties = frozenset[tuple[str, str]]
Summary = tuple[
    str, Parties, Parties, datetime | None, tuple[tuple[str, int], ...], tuple[str, ...]
]


def _emails(msg: EmailMessage, *names: str) -> frozenset[tuple[str, str]]:
    """(display name, SMTP address or "") of each party. Exchange-only (X.500) parties have no
    SMTP address: readpst writes <MAILER-DAEMON> or the bare name, pstkit an IMCEAEX
    @pst.invalid address."""
    values = [str(v) for n in names for v in msg.get_all(n, [])]
    out = set()
    for display, quoted in getaddresses(values):
        addr = quoted.strip("'\"")  # readpst writes Outlook's 'x@y' display names bare
        smtp = "@" in addr and not addr.endswith("@pst.invalid")
        name = (display or ("" if smtp or addr == "MAILER-DAEMON" else addr)).strip("'\"")
        if name or smtp:
            out.add((name.lower(), addr.lower() if smtp else ""))
    return frozenset(out)


def _same_parties(ours: frozenset[tuple[str, str]], theirs: frozenset[tuple[str, str]]) -> bool:
    """Each party readpst names is one of ours, by SMTP address where it has one, else by name;
    and no party of ours is missing from readpst's list."""

    def match(t: tuple[str, str], o: tuple[str, str]) -> bool:
        return t[1] == o[1] if t[1] else t[0] in (o[0], o[1])

    return len(ours) == len(theirs) and all(any(match(t, o) for o in ours) for t in theirs)


def _date(msg: EmailMessage) -> datetime | None:
    try:
        return parsedate_to_datetime(str(msg["Date"])) if msg["Date"] else None
    except (TypeError, ValueError):
        return None


def _walk_top(msg: Message) -> Iterator[Message]:
    """Parts of the message itself, not those inside attached messages (readpst drops the
    attachments of embedded messages; pstkit keeps them)."""
    yield msg
    if msg.get_content_type() == "message/rfc822":
        return
    payload = msg.get_payload()
    if isinstance(payload, list):
        for part in payload:
            if isinstance(part, Message):
                yield from _walk_top(part)


def _inner_subject(part: Message) -> str:
    """The Subject of an attached message. readpst starts embedded messages with a stray
    '>From ' line, which hides their header block from a parser: search the text then."""
    inner = part.get_payload(0)
    subject = inner["Subject"] if isinstance(inner, Message) else None
    if subject is None:
        m = re.search(r"^Subject:[ \t]*(.*(?:\r?\n[ \t].*)*)", str(part), re.MULTILINE)
        subject = str(make_header(decode_header(m.group(1)))) if m else ""
    return " ".join(str(subject).split())


def summarize(raw: bytes) -> Summary:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    files = []
    embedded: list[str] = []
    # OLE attachments (method 6) have no file name; each tool names them its own way.
    ole = {
        m.group(1)
        for note in msg.get_all("X-Pstkit-Note", [])
        for m in re.finditer(r"\((.*?)\) is an OLE object", str(note))
    }
    for part in _walk_top(msg):
        if part.get_content_type() == "message/rfc822":
            embedded.append(_inner_subject(part))
        elif part.get_filename() and part.get_content_maintype() != "multipart":
            payload = part.get_payload(decode=True)
            name = str(part.get_filename())
            if name in ole or re.fullmatch(r"ATT\d{5}", name):
                name = "<unnamed>"  # readpst invents a random ATTnnnnn name
            if name.endswith(".ics"):  # generated by both tools (readpst: random name)
                files.append(("*.ics", 0))
            else:
                files.append((name, len(payload or b"")))
    subject = " ".join(str(msg["Subject"] or "").split())
    return (
        subject,
        _emails(msg, "From"),
        _emails(msg, "To", "Cc"),
        _date(msg),
        tuple(sorted(files)),
        tuple(sorted(embedded)),
    )


def run_readpst(pst: Path, out: Path) -> dict[tuple[str, ...], list[bytes]]:
    subprocess.run(
        ["readpst", "-j", "0", "-D", "-M", "-o", str(out), str(pst)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    roots = [p for p in out.iterdir() if p.is_dir()]
    found: dict[tuple[str, ...], list[bytes]] = {}
    for root in roots:
        for f in sorted(root.rglob("*"), key=lambda p: (p.parent.as_posix(), _num(p.name))):
            if f.is_file():
                found.setdefault(f.parent.relative_to(root).parts, []).append(f.read_bytes())
    return found


def _num(name: str) -> int:
    m = re.match(r"\d+", name)
    return int(m.group()) if m else 0


def run_pstkit(pst: Path) -> dict[tuple[str, ...], list[Fetched]]:
    # readpst also writes Outlook's own folders (Sync Issues…): compare with them included
    src = PstSource(Location("pst", str(pst)), ConnectOptions(extra={"pst_system": "include"}))
    out: dict[tuple[str, ...], list[Fetched]] = {}
    for f in src.folders():
        items = [r for r in src.fetch(f, None, FetchFilter(), set()) if isinstance(r, Fetched)]
        if items:
            out[() if f.path == src.top_folder else f.path] = items
    src.close()
    return out


@pytest.fixture(scope="module")
def have_readpst() -> None:
    if shutil.which("readpst") is None:
        pytest.skip("readpst (pst-utils) not installed")


@pytest.mark.usefixtures("have_readpst")
@pytest.mark.parametrize("name", READABLE)
def test_same_folders_counts_and_fields_as_readpst(corpus: Path, tmp_path: Path, name: str) -> None:
    theirs = run_readpst(corpus / "pst" / name, tmp_path)
    ours = run_pstkit(corpus / "pst" / name)
    misses = READPST_MISSES.get(name, {})
    assert set(theirs) == set(ours)
    for folder, items in ours.items():
        assert len(items) == len(theirs[folder]) + misses.get(folder, 0), folder
        mail = [r for r in items if r.meta.kind is ItemKind.MAIL]
        their_mail = [raw for raw in theirs[folder] if _is_message(raw)]
        assert len(mail) == len(their_mail), folder
        _same_cards(items, theirs[folder])
        for ours_one, theirs_one in zip(
            sorted(summarize(r.raw) for r in mail),
            sorted(summarize(x) for x in their_mail),
            strict=True,
        ):
            _same(ours_one, theirs_one, (name, folder, ours_one[0]) in READPST_DROPS_OLE)


def _card_fields(text: str) -> dict[str, str]:
    """The properties of a vCard/iCalendar text we compare (first value of each). A
    recurring series is in its own zone (VTIMEZONE + TZID) in ours, UTC in readpst's."""
    unfolded = text.replace("\r\n ", "").replace("\n ", "")
    zones = zones_in(unfolded)
    out: dict[str, str] = {}
    lines = unfolded.splitlines()
    if "END:VTIMEZONE" in lines:
        lines = lines[lines.index("END:VTIMEZONE") + 1 :]
    for line in lines:
        name, _, value = line.partition(":")
        key = name.split(";")[0].upper()
        tzid = name.partition(";TZID=")[2]
        if tzid in zones:
            local = datetime.strptime(value, "%Y%m%dT%H%M%S")
            value = f"{zones[tzid].to_utc(local):%Y%m%dT%H%M%SZ}"
        if key == "RRULE":  # readpst writes only FREQ and BYDAY
            value = ";".join(p for p in value.split(";") if p.startswith(("FREQ=", "BYDAY=")))
        if key in ("EMAIL", "SUMMARY", "DTSTART", "DTEND", "LOCATION", "RRULE") and key not in out:
            out[key] = value
    return out


def _same_cards(ours: list[Fetched], theirs: list[bytes]) -> None:
    """Contacts and appointments: readpst's vCard/iCalendar against the part pstkit attaches."""
    their_cards = [_card_fields(raw.decode("utf-8", "replace")) for raw in theirs
                   if raw.lstrip().startswith((b"BEGIN:VCARD", b"BEGIN:VCALENDAR"))]
    our_cards = []
    for r in ours:
        if r.meta.kind in (ItemKind.CONTACT, ItemKind.EVENT):
            msg = email.message_from_bytes(r.raw, policy=email.policy.default)
            part = next(p for p in msg.walk()
                        if p.get_content_type() in ("text/vcard", "text/calendar"))
            data = part.get_payload(decode=True)
            assert isinstance(data, bytes)
            our_cards.append(_card_fields(data.decode("utf-8")))
    assert sorted(sorted(c.items()) for c in our_cards) == sorted(
        sorted(c.items()) for c in their_cards)


def _is_message(raw: bytes) -> bool:
    """readpst -M writes contacts/appointments as bare vCard/iCalendar text."""
    return not raw.lstrip().startswith((b"BEGIN:VCARD", b"BEGIN:VCALENDAR")) and bool(
        email.message_from_bytes(raw).keys()
    )


def _same(ours: Summary, theirs: Summary, drop_ole: bool) -> None:
    subject, frm, to, date, files, embedded = ours
    if drop_ole:
        files = tuple(f for f in files if f[0] != "<unnamed>")
    assert subject == theirs[0]
    assert _same_parties(frm, theirs[1]), (subject, frm, theirs[1])
    assert _same_parties(to, theirs[2]), (subject, to, theirs[2])
    # readpst writes no Date when the item has no client submit time; pstkit falls back
    # to the delivery time.
    assert date == theirs[3] or theirs[3] is None, (subject, date, theirs[3])
    assert embedded == theirs[5], subject
    their_files = tuple(f for f in theirs[4] if f[0] != "rtf-body.rtf")
    assert Counter(files) == Counter(their_files), subject
