"""PST contacts and calendar items -> Graph test server, through the CLI and the sink.

The checks look at the test server's contact folders and calendars: what
arrived where, once, with which fields; what could not be carried is a
reported problem, never silently dropped.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pstkit.converters.graph import jsonmail as gj
from pstkit.model import Delivered, Fetched, FetchResult, FolderInfo, ItemKind, MessageMeta, Role
from pstkit.options import FetchFilter
from pstkit.pipeline import export
from pstkit.protocols import Failed
from pstkit.store import Store
from tests.helpers import cli
from tests.servers.graph.fixtures import (
    SECRET_ENV,
    UPN,
    graph,
    graph_tls,
    open_sink,
    pim_box,
    source_key,
    stored,
)
from tests.servers.graph.server import GraphServer
from tests.servers.graph.state import CALENDARS_RW, CONTACTS_RW

__all__ = ["graph", "graph_tls"]  # fixtures used by name


def _connect(server: GraphServer) -> list[str]:
    return ["--client-id", "pstkit-app", "--client-secret-env", SECRET_ENV,
            "--ca-file", str(server.ca_file)]  # fmt: skip


def _import(server: GraphServer, store: Path) -> tuple[int, str]:
    code, out, err = cli("import", str(store), server.location(UPN), *_connect(server))
    return code, out + err


def _export(pst: Path, store: Path) -> None:
    code, _, err = cli("export", f"pst:{pst}", str(store))
    assert code in (0, 1), err


def test_dist_list_pst(graph: GraphServer, corpus: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    _export(corpus / "pst" / "dist-list.pst", store)
    code, out = _import(graph, store)
    assert code == 1, out  # the distribution list is a reported failure
    assert "contact group" in out
    pim = pim_box(graph)
    events = pim.in_folder("event", pim.default_calendar)
    contacts = pim.in_folder("contact", pim.contacts_root)
    assert [e.props["subject"] for e in events] == ["Test appointment"]
    rec = events[0].props["recurrence"]
    assert rec["pattern"] == {"type": "weekly", "interval": 1, "daysOfWeek": ["tuesday"],
                              "firstDayOfWeek": "sunday"}  # fmt: skip
    # the series keeps its own zone: 08:00 Pacific time all year (15:00Z in August)
    pst = "Pacific Standard Time"
    assert rec["range"] == {"type": "noEnd", "startDate": "2016-08-02",
                            "recurrenceTimeZone": pst}  # fmt: skip
    assert events[0].props["start"] == {"dateTime": "2016-08-02T08:00:00", "timeZone": pst}
    assert events[0].props["reminderMinutesBeforeStart"] == 15
    # The deleted occurrence is gone, the two changed ones moved (exceptions), as in the PST.
    assert events[0].cancelled == {"2016-08-09T15:00:00Z"}
    moved = {k: (v["start"]["dateTime"], v["body"]["content"])
             for k, v in events[0].exceptions.items()}  # fmt: skip
    assert moved == {
        "2016-08-23T15:00:00Z": ("2016-08-23T09:00:00", "This is the appointment at 9\n"),
        "2016-08-30T15:00:00Z": ("2016-08-30T10:00:00", "This is the one at 10\n"),
    }
    # Its two attached messages go along as .eml file attachments.
    assert [(a.name, a.content_type) for a in events[0].attachments] == [
        ("Untitled.eml", "message/rfc822")] * 2  # fmt: skip
    assert b"This is the appointment at 9" in events[0].attachments[0].data
    assert "not carried" not in out
    assert [c.props["displayName"] for c in contacts] == ["contact name 1"]
    assert contacts[0].props["emailAddresses"] == [
        {"address": "contact1@rjohnson.id.au", "name": "contact name 1"}
    ]
    assert all(source_key(i) for i in pim.items.values())

    created = dict(graph.state.counters)
    code, out = _import(graph, store)  # a re-run retries only the distribution list
    assert code == 1 and "contact group" in out
    for kind in ("contact_created", "event_created"):
        assert graph.state.counters[kind] == created[kind]

    code, out, err = cli("verify", str(store), graph.location(UPN), *_connect(graph))
    lines = [x for x in out.splitlines() if x[:1] in "-+*!"]
    assert lines == [x for x in lines if "test dist list" in x], out + err
    assert len(lines) == 1


SAMPLE_CONTACTS = ["Sebastian Wright", "Wichert Kroos", "Christoffer van de Meeberg",
                   "Margaret J. Tolle", "Matthew R. Wilcox", "Bertha A. Buell"]  # fmt: skip


def test_sample_contacts_all_arrive_once_and_verify(
    graph: GraphServer, corpus: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    _export(corpus / "pst" / "aspose_SampleContacts.pst", store)
    shutil.copytree(store, tmp_path / "copy")  # same store id, no deliveries recorded
    code, out = _import(graph, store)
    assert code == 0, out
    pim = pim_box(graph)
    names = sorted(c.props["displayName"] for c in pim.in_folder("contact", pim.contacts_root))
    assert names == sorted(SAMPLE_CONTACTS)
    bertha = next(c for c in pim.items.values() if c.props["displayName"] == "Bertha A. Buell")
    assert bertha.props["companyName"] == "Awthentikz"
    assert bertha.props["jobTitle"] == "Social work assistant"
    assert bertha.props["surname"] == "Buell" and bertha.props["givenName"] == "Bertha"

    code, out = _import(graph, store)
    assert code == 0, out
    # A lost ledger (the copy never saw the import): the stamped keys find every contact.
    code, out = _import(graph, tmp_path / "copy")
    assert code == 0, out
    assert graph.state.counters["contact_created"] == 6
    code, out, err = cli("verify", str(store), graph.location(UPN), *_connect(graph))
    assert code == 0, out + err
    # e-mail addresses are compared too: one changed on the server is a difference
    assert bertha.props.get("emailAddresses"), bertha.props
    bertha.props["emailAddresses"] = [{"address": "someone.else@example.com", "name": "x"}]
    code, out, err = cli("verify", str(store), graph.location(UPN), *_connect(graph))
    assert code != 0 and "someone.else@example.com" in out + err, out + err
    assert "1 differing" in out + err, out + err


# --- a custom calendar folder, from a source made here ------------------------------

ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:x-{n}\r\n"
    "DTSTART;VALUE=DATE:2024010{n}\r\nDTEND;VALUE=DATE:2024010{m}\r\n"
    "SUMMARY:Holiday {n}\r\nRRULE:FREQ=YEARLY;BYMONTH=1;BYMONTHDAY={n}\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)


def event_mime(n: int) -> bytes:
    ics = ICS.format(n=n, m=n + 1)
    return (
        f"Subject: Holiday {n}\r\nMessage-ID: <h{n}@test>\r\nX-Pstkit-Item-Class: IPM.Appointment"
        "\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        "Content-Type: text/plain\r\n\r\n\r\n--b\r\nContent-Type: text/calendar; charset=utf-8"
        f"\r\nContent-Disposition: attachment; filename=event.ics\r\n\r\n{ics}--b--\r\n"
    ).encode()


@dataclass
class CalendarSource:
    key: str = "test://calendars"
    max_connections: int = 1

    def folders(self) -> list[FolderInfo]:
        return [
            FolderInfo(("Calendar",), Role.CALENDAR, container_class="IPF.Appointment"),
            FolderInfo(("Calendar", "Holidays"), container_class="IPF.Appointment"),
        ]

    def fetch(
        self, folder: FolderInfo, cursor: str | None, filt: FetchFilter,
        known: Container[tuple[str, str]],
    ) -> Iterator[FetchResult]:  # fmt: skip
        if folder.path != ("Calendar", "Holidays"):
            return
        for n in (1, 2, 3):
            raw = event_mime(n)
            meta = MessageMeta(folder.path, str(n), "1", size=len(raw), kind=ItemKind.EVENT)
            yield Fetched(meta, raw, str(n))

    def committed(self, folder: FolderInfo, source_ids: Sequence[str]) -> None:
        pass

    def close(self) -> None:
        pass


def test_custom_calendar_folder(graph: GraphServer, tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    with Store.create(store_dir) as store:
        export(CalendarSource(), store)
    code, out = _import(graph, store_dir)
    assert code == 0, out
    pim = pim_box(graph)
    cals = {c.name: c.id for c in pim.calendars.values()}
    assert set(cals) == {"Calendar", "Holidays"}
    events = pim.in_folder("event", cals["Holidays"])
    assert sorted(e.props["subject"] for e in events) == ["Holiday 1", "Holiday 2", "Holiday 3"]
    one = next(e for e in events if e.props["subject"] == "Holiday 1")
    assert one.props["isAllDay"] is True
    assert one.props["recurrence"]["pattern"] == {
        "type": "absoluteYearly", "dayOfMonth": 1, "month": 1, "interval": 1}  # fmt: skip
    code, out = _import(graph, store_dir)  # again: nothing new
    assert code == 0, out
    assert graph.state.counters["event_created"] == 3
    code, out, err = cli("verify", str(store_dir), graph.location(UPN), *_connect(graph))
    assert code == 0, out + err


# --- the sink directly: duplicates, ambiguity, permissions ---------------------------


def _contact_raw(name: str, emails: int = 1) -> bytes:
    lines = [f"EMAIL;TYPE=INTERNET:{name.lower()}{n}@example.org" for n in range(emails)]
    card = "\r\n".join(["BEGIN:VCARD", "VERSION:3.0", f"FN:{name}", *lines, "END:VCARD", ""])
    return (f"Subject: {name}\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
            f"Content-Type: text/vcard; charset=utf-8\r\n\r\n{card}--b--\r\n").encode()  # fmt: skip


def _as(kind: ItemKind, n: int, raw: bytes) -> Any:
    return stored(n, raw).__class__(**{**stored(n, raw).__dict__, "kind": kind})


def test_ambiguous_create_is_looked_up_not_doubled(graph: GraphServer) -> None:
    sink = open_sink(graph)
    try:
        sink.folders()
        sink.ensure_folder(("Contacts",), Role.CONTACTS, "IPF.Contact")
        graph.state.inject(0, when="after", path_contains="/contacts", method="POST")
        raw = _contact_raw("Ann")
        (res,) = sink.put_batch(("Contacts",), [(_as(ItemKind.CONTACT, 1, raw), raw)])
        assert isinstance(res, Delivered)
        assert len(pim_box(graph).items) == 1
        msg = _as(ItemKind.CONTACT, 1, raw)
        assert sink.find_duplicates(msg, raw, ("Contacts",)) == [res.target_id]
    finally:
        sink.close()


def test_more_than_three_emails_is_a_note(graph: GraphServer) -> None:
    sink = open_sink(graph)
    try:
        sink.folders()
        raw = _contact_raw("Bob", emails=5)
        (res,) = sink.put_batch(("Contacts",), [(_as(ItemKind.CONTACT, 2, raw), raw)])
        assert isinstance(res, Delivered)
        assert "bob3@example.org, bob4@example.org" in res.note
        (item,) = pim_box(graph).items.values()
        assert len(item.props["emailAddresses"]) == 3
    finally:
        sink.close()


def test_without_pim_permissions_mail_goes_on(graph: GraphServer) -> None:
    graph.state.apps["pstkit-app"].roles -= {CONTACTS_RW, CALENDARS_RW}
    sink = open_sink(graph)
    try:
        paths = [f.path for f in sink.folders()]
        assert ("Inbox",) in paths and ("Contacts",) not in paths
        sink.ensure_folder(("Contacts",), Role.CONTACTS, "IPF.Contact")
        raw = _contact_raw("Cy")
        (res,) = sink.put_batch(("Contacts",), [(_as(ItemKind.CONTACT, 3, raw), raw)])
        assert isinstance(res, Failed) and "Contacts.ReadWrite" in res.reason
        mail = b"Subject: hi\r\nMessage-ID: <m@x>\r\n\r\nbody\r\n"
        (ok,) = sink.put_batch(("Inbox",), [(stored(4, mail), mail)])
        assert isinstance(ok, Delivered)
    finally:
        sink.close()


def test_replace_policy_deletes_the_old_contact(graph: GraphServer) -> None:
    sink = open_sink(graph)
    try:
        sink.folders()
        raw = _contact_raw("Dee")
        msg = _as(ItemKind.CONTACT, 5, raw)
        (first,) = sink.put_batch(("Contacts",), [(msg, raw)])
        assert isinstance(first, Delivered)
        sink.delete(("Contacts",), [first.target_id])
        assert not pim_box(graph).items
        items = list(sink.inventory(("Contacts",)))
        assert items == []
    finally:
        sink.close()


def test_stamped_key_is_the_stable_key(graph: GraphServer) -> None:
    sink = open_sink(graph)
    try:
        sink.folders()
        raw = _contact_raw("Eve")
        msg = _as(ItemKind.CONTACT, 6, raw)
        sink.put_batch(("Contacts",), [(msg, raw)])
        (item,) = sink.inventory(("Contacts",))
        assert item.stable_key == msg.stable_key and item.subject == "Eve"
        assert Counter(source_key(i) for i in pim_box(graph).items.values()) == {msg.stable_key: 1}
        assert gj.KEY_PROP.endswith("PstkitSourceKey")
    finally:
        sink.close()


@dataclass
class ContactTree:
    key: str = "test://contact-tree"
    max_connections: int = 1

    def folders(self) -> list[FolderInfo]:
        return [
            FolderInfo(("Contacts",), Role.CONTACTS, container_class="IPF.Contact"),
            FolderInfo(("Contacts", "Family"), container_class="IPF.Contact"),
            FolderInfo(("Suppliers",), container_class="IPF.Contact"),
        ]

    def fetch(
        self, folder: FolderInfo, cursor: str | None, filt: FetchFilter,
        known: Container[tuple[str, str]],
    ) -> Iterator[FetchResult]:  # fmt: skip
        name = folder.path[-1]
        raw = _contact_raw(f"{name} Person")
        meta = MessageMeta(folder.path, "1", "1", size=len(raw), kind=ItemKind.CONTACT)
        yield Fetched(meta, raw, "1")

    def committed(self, folder: FolderInfo, source_ids: Sequence[str]) -> None:
        pass

    def close(self) -> None:
        pass


def test_contact_folders_inside_contacts(graph: GraphServer, tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    with Store.create(store_dir) as store:
        export(ContactTree(), store)
    for _ in range(2):  # the second run finds every folder and contact again
        code, out = _import(graph, store_dir)
        assert code == 0, out
    pim = pim_box(graph)
    folders = {f.name: f for f in pim.contact_folders.values()}
    assert set(folders) == {"Family", "Suppliers"}
    assert {f.parent_id for f in folders.values()} == {""}  # both inside the default folder
    where = {i.props["displayName"]: i.folder_id for i in pim.items.values()}
    assert where == {"Contacts Person": pim.contacts_root, "Family Person": folders["Family"].id,
                     "Suppliers Person": folders["Suppliers"].id}  # fmt: skip
    code, out, err = cli("verify", str(store_dir), graph.location(UPN), *_connect(graph))
    assert code == 0, out + err


def test_verify_finds_a_contact_that_arrived_empty(
    graph: GraphServer, corpus: Path, tmp_path: Path
) -> None:
    """Issue 13's verify point on Graph: the display name is compared, so an empty
    contact is `*` (it used to pass on its stamped key and an empty subject)."""
    store = tmp_path / "store"
    _export(corpus / "pst" / "aspose_SampleContacts.pst", store)
    assert _import(graph, store)[0] == 0
    pim = pim_box(graph)
    bertha = next(c for c in pim.items.values() if c.props["displayName"] == "Bertha A. Buell")
    bertha.props["displayName"] = ""
    code, out, err = cli("verify", str(store), graph.location(UPN), *_connect(graph))
    assert code == 1, out + err
    assert "5 matching, 0 missing, 0 extra, 1 differing" in out
    assert "name '' != 'Bertha A. Buell'" in out
