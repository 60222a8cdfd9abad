"""PstSource against every PST/OST in the shared corpus (facts from corpus/README.md)."""

from __future__ import annotations

import email
import email.policy
import os
from email.message import Message
from pathlib import Path

import pytest

pytest.importorskip("pypff")

from pstkit.converters.pst.source import PstSource
from pstkit.errors import PstkitError, SourceError, UsageError
from pstkit.location import Location
from pstkit.model import Fetched, FetchResult, Flag, ItemKind, Role, Skipped
from pstkit.options import ConnectOptions, FetchFilter

FR = "Début du fichier de données Outlook"
JA = "Outlook データ ファイルのトップ"
OUT = "(outside IPM subtree)"

#: file -> {exported folder path: pypff item count} (README folder tables; empty folders left out)
EXPECTED: dict[str, dict[tuple[str, ...], int]] = {
    "testPST.pst": {(FR,): 7},
    "testPST_variousBodyTypes.pst": {("Inbox", "tmp"): 4},
    "pstsdk_sample1.pst": {("Sample1",): 1},
    "pstsdk_sample2.pst": {("Sample2",): 1},
    "pstsdk_submessage.pst": {("submessage",): 1},
    "dist-list.pst": {("Calendar",): 1, ("Contacts",): 2},
    "msgInMsg.pst": {(JA,): 1},
    "attachAndInline.pst": {(JA,): 1},
    "SampleOstFile.ost": {
        ("Deleted Items",): 10,
        ("Inbox",): 12,
        ("Inbox", "sub1"): 25,
        ("Inbox", "sub2"): 29,
        ("Sent Items",): 6,
        ("Calendar",): 1,
    },
    "aspose_source.pst": {
        ("Inbox",): 8,
        ("Sent Items",): 6,
        ("Calendar",): 1,
        ("Contacts",): 1,
    },
    "aspose_SampleContacts.pst": {("Contacts",): 6},
    "aspose_PersonalStorage.pst": {},
}


def open_pst(path: Path) -> PstSource:
    return PstSource(Location("pst", str(path)), ConnectOptions())


def export_all(path: Path) -> dict[tuple[str, ...], list[FetchResult]]:
    src = open_pst(path)
    try:
        return {f.path: list(src.fetch(f, None, FetchFilter(), set())) for f in src.folders()}
    finally:
        src.close()


def parse(raw: bytes) -> Message:
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def payload(part: Message) -> bytes:
    data = part.get_payload(decode=True)
    assert isinstance(data, bytes)
    return data


def inner_message(part: Message) -> Message:
    inner = part.get_payload(0)
    assert isinstance(inner, Message)
    return inner


def fetched(results: list[FetchResult]) -> list[Fetched]:
    return [r for r in results if isinstance(r, Fetched)]


def message(corpus: Path, name: str, subject: str) -> Fetched:
    for results in export_all(corpus / "pst" / name).values():
        for r in fetched(results):
            if r.meta.subject == subject:
                return r
    raise AssertionError(f"{subject!r} not found in {name}")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_item_is_stored_or_skipped(corpus: Path, name: str) -> None:
    results = export_all(corpus / "pst" / name)
    counts = {path: len(items) for path, items in results.items() if items}
    assert counts == EXPECTED[name]
    src = open_pst(corpus / "pst" / name)
    for f in src.folders():
        assert f.message_count == len(results[f.path])
    src.close()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_messages_parse_back_without_defects(corpus: Path, name: str) -> None:
    for results in export_all(corpus / "pst" / name).values():
        for r in fetched(results):
            msg = parse(r.raw)
            defects = [type(d).__name__ for part in msg.walk() for d in part.defects]
            assert defects == [], (r.meta.subject, defects)
            assert max(len(line) for line in r.raw.split(b"\r\n")) <= 998
            assert b"\n" not in r.raw.replace(b"\r\n", b"")  # CRLF only
            assert r.meta.size == len(r.raw)


def test_only_free_busy_items_are_skipped(corpus: Path) -> None:
    for name in EXPECTED:
        for path, results in export_all(corpus / "pst" / name).items():
            for r in results:
                if isinstance(r, Skipped):
                    assert path == (OUT, "Freebusy Data"), (name, r)
                    assert "outside the IPM subtree" in r.reason


def test_output_is_deterministic(corpus: Path) -> None:
    path = corpus / "pst" / "aspose_source.pst"
    first = [r.raw for rs in export_all(path).values() for r in fetched(rs)]
    second = [r.raw for rs in export_all(path).values() for r in fetched(rs)]
    assert first == second


def test_roles_from_entry_ids_and_localised_names(corpus: Path) -> None:
    src = open_pst(corpus / "pst" / "aspose_source.pst")
    roles = {f.path: f.role for f in src.folders()}
    src.close()
    assert roles[("Inbox",)] is Role.INBOX
    assert roles[("Sent Items",)] is Role.SENT
    assert roles[("Deleted Items",)] is Role.TRASH
    assert roles[("Outbox",)] is Role.OUTBOX
    assert roles[("Drafts",)] is Role.DRAFTS
    assert roles[("Junk E-mail",)] is Role.JUNK
    assert roles[("Calendar",)] is Role.CALENDAR
    assert roles[("Contacts",)] is Role.CONTACTS
    assert roles[("Inbox", "SubInbox")] is None
    src = open_pst(corpus / "pst" / "testPST.pst")
    roles = {f.path: f.role for f in src.folders()}
    src.close()
    assert roles[("Éléments supprimés",)] is Role.TRASH  # French: from the entry id, not the name


def test_ost_layout(corpus: Path) -> None:
    src = open_pst(corpus / "pst" / "SampleOstFile.ost")
    assert src.password_protected is False  # 0xFFFFFFFF in an OST means nothing
    folders = {f.path: f for f in src.folders()}
    src.close()
    assert folders[("Inbox",)].role is Role.INBOX
    assert folders[("Deleted Items",)].role is Role.TRASH
    assert folders[("Sent Items",)].role is Role.SENT
    assert folders[("Calendar",)].container_class == "IPF.Appointment"
    assert not any(p[0] in ("Root - Mailbox", "IPM_SUBTREE", "Finder") for p in folders)


def test_ost_kinds_and_received_dates(corpus: Path) -> None:
    results = export_all(corpus / "pst" / "SampleOstFile.ost")
    kinds = [r.meta.kind for rs in results.values() for r in fetched(rs)]
    assert kinds.count(ItemKind.EVENT) == 5 and kinds.count(ItemKind.MAIL) == 78  # 9: Sync Issues
    for r in fetched(results[("Inbox",)]):
        assert r.meta.received is not None and r.meta.received.utcoffset() is not None


def test_sample1_fields(corpus: Path) -> None:
    r = message(corpus, "pstsdk_sample1.pst", "Here is a sample message")
    msg = parse(r.raw)
    assert msg["Subject"] == "Here is a sample message"
    assert "Terry Mahaffey" in msg["From"]
    assert msg["Message-ID"].strip().startswith("<B2FDDB8BE384C94794441DB4A7F3D8B804AE624B@")
    assert msg.get_content_type() == "multipart/mixed"
    atts = [p for p in msg.walk() if p.get_filename()]
    assert [(a.get_filename(), len(a.get_payload(decode=True))) for a in atts] == [
        ("leah_thumper.jpg", 93142)
    ]
    assert Flag.SEEN in r.meta.flags
    assert r.meta.keywords == {"Green Category", "Blue Category"}  # categories (named prop)


def _texts(msg: Message) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in msg.walk():
        if part.get_content_maintype() == "text" and not part.get_filename():
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            out.setdefault(
                part.get_content_type(), payload.decode(part.get_content_charset() or "ascii")
            )
    return out


def test_ansi_pst_matches_unicode_twin(corpus: Path) -> None:
    one = parse(message(corpus, "pstsdk_sample1.pst", "Here is a sample message").raw)
    two = parse(message(corpus, "pstsdk_sample2.pst", "Here is a sample message").raw)
    # The twins differ in one respect in the file itself: U+2019 in Unicode, "'" in ANSI.
    assert _texts(one)["text/plain"].replace("\u2019", "'") == _texts(two)["text/plain"]
    assert "sample attachment" in _texts(two)["text/plain"]
    assert one["Subject"] == two["Subject"] and one["From"] == two["From"]
    data = [p.get_payload(decode=True) for m in (one, two) for p in m.walk() if p.get_filename()]
    assert data[0] == data[1]


def test_embedded_message_becomes_message_rfc822(corpus: Path) -> None:
    r = message(
        corpus, "pstsdk_submessage.pst", "This is a message which has an embedded message attached"
    )
    msg = parse(r.raw)
    inner = [p for p in msg.walk() if p.get_content_type() == "message/rfc822"]
    assert len(inner) == 1
    sub = inner_message(inner[0])
    assert sub["Subject"] == "This is an embedded message"
    # read through the attachment's sub-nodes (pst_ndb): recipients, transport headers, body
    assert "terrymah@microsoft.com" in sub["To"]
    assert sub["Received"] is not None
    assert "X-Pstkit-Note" not in msg and "X-Pstkit-Note" not in sub


def test_embedded_message_keeps_its_own_attachment(corpus: Path) -> None:
    msg = parse(message(corpus, "testPST.pst", "FW: First email").raw)
    sub = inner_message(next(p for p in msg.walk() if p.get_content_type() == "message/rfc822"))
    assert sub["Subject"] == "First email" and "lfcnassif@gmail.com" in sub["To"]
    (docx,) = [p for p in sub.walk() if p.get_filename()]
    assert docx.get_filename() == "attachment.docx" and len(payload(docx)) == 11862
    assert payload(docx)[:2] == b"PK"  # a real .docx (zip), not a property record


def test_msg_in_msg_iso2022jp_and_html_from_rtf(corpus: Path) -> None:
    r = message(corpus, "msgInMsg.pst", "I have attachments!")
    msg = parse(r.raw)
    texts = _texts(msg)
    assert texts["text/plain"].startswith("I have attachments!")
    assert "<html" in texts["text/html"]  # de-encapsulated from \fromhtml1 RTF
    assert "I have attachments!" in texts["text/html"]
    inner = inner_message(next(p for p in msg.walk() if p.get_content_type() == "message/rfc822"))
    subject = str(email.header.make_header(email.header.decode_header(inner["Subject"])))
    assert subject == "Microsoft Outlook テスト メッセージ"
    assert "Microsoft Outlook から自動送信" in _texts(inner)["text/plain"]
    png = next(p for p in msg.walk() if p.get_filename() == "green.png")
    assert len(png.get_payload(decode=True)) == 134


def test_inline_image_is_related_with_content_id(corpus: Path) -> None:
    r = message(corpus, "attachAndInline.pst", "Attach and inline")
    msg = parse(r.raw)
    parts = {p.get_filename(): p for p in msg.walk() if p.get_filename()}
    assert set(parts) == {"attach.png", "image001.png"}
    assert len(parts["image001.png"].get_payload(decode=True)) == 809
    assert len(parts["attach.png"].get_payload(decode=True)) == 1558
    assert parts["image001.png"]["Content-ID"]
    assert parts["image001.png"].get_content_disposition() == "inline"
    related = [p for p in msg.walk() if p.get_content_type() == "multipart/related"]
    assert related and parts["image001.png"] in related[0].get_payload()
    assert parts["attach.png"].get_content_disposition() == "attachment"


def test_transport_headers_kept_with_new_mime_headers(corpus: Path) -> None:
    results = export_all(corpus / "pst" / "testPST_variousBodyTypes.pst")[("Inbox", "tmp")]
    for r in fetched(results):
        msg = parse(r.raw)
        assert msg["Received"] is not None
        assert len(msg.get_all("Content-Type", [])) == 1
        assert len(msg.get_all("MIME-Version", [])) == 1
        assert "text/plain" in _texts(msg)
    third = parse(fetched(results)[2].raw)  # plain + compressed RTF only
    assert "text/html" in _texts(third) or "text/rtf" in _texts(third)


def test_contacts_become_vcards(corpus: Path) -> None:
    results = export_all(corpus / "pst" / "aspose_SampleContacts.pst")[("Contacts",)]
    names = []
    for r in fetched(results):
        assert r.meta.kind is ItemKind.CONTACT
        card = next(p for p in parse(r.raw).walk() if p.get_content_type() == "text/vcard")
        text = payload(card).decode("utf-8")
        assert text.startswith("BEGIN:VCARD\r\n") and text.endswith("END:VCARD\r\n")
        names.append(r.meta.subject)
    assert names == [
        "Sebastian Wright",
        "Wichert Kroos",
        "Christoffer van de Meeberg",
        "Margaret J. Tolle",
        "Matthew R. Wilcox",
        "Bertha A. Buell",
    ]


def test_distlist_and_appointment(corpus: Path) -> None:
    results = export_all(corpus / "pst" / "dist-list.pst")
    contacts = fetched(results[("Contacts",)])
    assert [r.meta.kind for r in contacts] == [ItemKind.DISTLIST, ItemKind.CONTACT]
    card = next(p for p in parse(contacts[0].raw).walk() if p.get_content_type() == "text/vcard")
    assert b"mailto:dist1@rjohnson.id.au" in card.get_payload(decode=True)
    event = fetched(results[("Calendar",)])[0]
    assert event.meta.kind is ItemKind.EVENT
    ics = next(p for p in parse(event.raw).walk() if p.get_content_type() == "text/calendar")
    text = payload(ics).decode()
    # a recurring series is written in its own zone: 08:00 Pacific (15:00Z in August)
    pst = "TZID=Pacific Standard Time"
    assert "SUMMARY:Test appointment" in text and f"DTSTART;{pst}:20160802T080000" in text
    # weekly on Tuesdays; one occurrence deleted, two changed (from the embedded exceptions)
    assert "RRULE:FREQ=WEEKLY;INTERVAL=1;BYDAY=TU;WKST=SU" in text
    assert text.count("EXDATE") == 1 and f"EXDATE;{pst}:20160809T080000" in text
    assert f"RECURRENCE-ID;{pst}:20160823T080000\r\nDTSTART;{pst}:20160823T090000" in text
    assert f"RECURRENCE-ID;{pst}:20160830T080000\r\nDTSTART;{pst}:20160830T100000" in text


def test_cursor_resumes_and_known_items_are_not_read(corpus: Path) -> None:
    src = open_pst(corpus / "pst" / "SampleOstFile.ost")
    folder = next(f for f in src.folders() if f.path == ("Inbox", "sub1"))
    everything = list(src.fetch(folder, None, FetchFilter(), set()))
    assert [r.cursor for r in everything] == [str(i) for i in range(1, 26)]
    rest = list(src.fetch(folder, "10", FetchFilter(), set()))
    assert [r.meta.source_id for r in rest] == [r.meta.source_id for r in everything[10:]]
    known = {("", r.meta.source_id) for r in everything[:20]}
    assert len(list(src.fetch(folder, None, FetchFilter(), known))) == 5
    src.close()


def test_filters_become_skips(corpus: Path) -> None:
    src = open_pst(corpus / "pst" / "aspose_source.pst")
    inbox = next(f for f in src.folders() if f.path == ("Inbox",))
    small = list(src.fetch(inbox, None, FetchFilter(max_size=20000), set()))
    assert len(small) == 8
    assert any(isinstance(r, Skipped) and "larger than" in r.reason for r in small)
    everything = fetched(list(src.fetch(inbox, None, FetchFilter(), set())))
    dates = sorted(r.meta.received for r in everything if r.meta.received)
    cut = dates[len(dates) // 2]
    later = list(src.fetch(inbox, None, FetchFilter(since=cut), set()))
    assert len(later) == 8
    assert all(isinstance(r, Skipped) for r in later if r.meta.received and r.meta.received < cut)
    src.close()


def test_key_and_connections(corpus: Path) -> None:
    src = open_pst(corpus / "pst" / "testPST.pst")
    assert src.key == f"pst:{(corpus / 'pst' / 'testPST.pst').resolve()}"
    assert src.max_connections == 1
    assert src.password_protected is False
    src.close()


def test_corrupt_header_is_one_line_error(corpus: Path) -> None:
    with pytest.raises(SourceError) as err:
        open_pst(corpus / "pst" / "aspose_AddingBulkMessagesWithImprovedPerformance.pst")
    assert str(err.value).endswith("corrupt PST header (checksum mismatch)")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "content", [b"", b"From: a@b\r\n\r\nhi\r\n", os.urandom(4096), b"!BDN" + bytes(600)]
)
def test_not_a_pst_is_one_line_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.pst"
    path.write_bytes(content)
    with pytest.raises(PstkitError) as err:
        open_pst(path)
    assert "\n" not in str(err.value)
    if not content.startswith(b"!BDN"):
        assert str(err.value).endswith("not a PST/OST file")


def test_eml_file_is_not_a_pst(corpus: Path) -> None:
    with pytest.raises(SourceError, match="not a PST/OST file"):
        open_pst(corpus / "eml" / "cpython_msg_02.txt")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError):
        open_pst(tmp_path / "nope.pst")


def test_codepage_override(corpus: Path) -> None:
    path = corpus / "pst" / "pstsdk_sample2.pst"
    default = [r.raw for rs in export_all(path).values() for r in fetched(rs)]
    src = PstSource(Location("pst", str(path)), ConnectOptions(codepage="1251"))
    assert src._file.ascii_codepage == b"cp1251"  # folder names too
    forced = [r.raw for f in src.folders() for r in fetched(list(
        src.fetch(f, None, FetchFilter(), set())))]
    src.close()
    assert forced == default  # this file's ANSI text is pure ASCII


@pytest.mark.parametrize("name", ["no-such-codepage", "99999"])
def test_unknown_codepage_is_a_usage_error(corpus: Path, name: str) -> None:
    with pytest.raises(UsageError, match="unknown code page"):
        PstSource(Location("pst", str(corpus / "pst" / "testPST.pst")),
                  ConnectOptions(codepage=name))


def test_kinds_per_folder(corpus: Path) -> None:
    src = open_pst(corpus / "pst" / "dist-list.pst")
    kinds = {f.path: src.kinds(f) for f in src.folders() if f.message_count}
    src.close()
    assert kinds == {("Calendar",): {"event": 1}, ("Contacts",): {"distlist": 1, "contact": 1}}
