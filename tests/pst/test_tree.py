"""pst_tree: IPM subtree, paths and roles from raw folder records. Tables."""

from __future__ import annotations

import struct

from pstkit.converters.pst.props import Props
from pstkit.converters.pst.tree import OUTSIDE, RawFolder, layout
from pstkit.model import Role


def eid(nid: int) -> bytes:
    return bytes(4) + bytes(16) + struct.pack("<I", nid)


def folder(nid: int, parent: int | None, name: str, count: int = 0, cls: str = "",
           props: dict[int | str, object] | None = None) -> RawFolder:
    return RawFolder(nid, parent, name, cls, count, Props(props or {}))


def pst_folders(inbox_props: dict[int | str, object]) -> list[RawFolder]:
    return [
        folder(290, None, ""),
        folder(0x8022, 290, "Haut du fichier", count=2),
        folder(0x8062, 0x8022, "Éléments supprimés"),
        folder(0x8082, 0x8022, "Boîte de réception", count=3, props=inbox_props),
        folder(0x8342, 0x8082, "Boîte de réception", count=1),  # same name one level down
        folder(0x80C2, 0x8022, "Envoyés"),
        folder(0x8122, 0x8022, "Calendrier", cls="IPF.Appointment"),
        folder(0x8202, 0x8022, "Courrier indésirable", cls="IPF.Note"),
        folder(0x8203, 0x8022, "Envoyés"),  # a second sibling with the same name
        folder(0x2223, 290, "Search Root"),
        folder(0x8222, 290, "Freebusy Data", count=1),
        folder(0x8223, 290, "Empty system folder"),
    ]


STORE = Props({0x35E0: eid(0x8022), 0x35E3: eid(0x8062), 0x35E4: eid(0x80C2)})
INBOX: dict[int | str, object] = {
    0x36D0: eid(0x8122),
    0x36D8: (eid(1), eid(2), eid(3), eid(4), eid(0x8202)),  # [4] is the junk folder
}


def test_pst_layout_from_entry_ids() -> None:
    nodes = layout(pst_folders(INBOX), STORE)
    got = [(n.info.path, n.info.role, n.info.message_count, n.top, n.system) for n in nodes]
    assert got == [
        (("Haut du fichier",), None, 2, True, False),
        (("Éléments supprimés",), Role.TRASH, 0, False, False),
        (("Boîte de réception",), Role.INBOX, 3, False, False),
        (("Boîte de réception", "Boîte de réception"), None, 1, False, False),
        (("Envoyés",), Role.SENT, 0, False, False),
        (("Calendrier",), Role.CALENDAR, 0, False, False),
        (("Courrier indésirable",), Role.JUNK, 0, False, False),
        ((f"Envoyés ({0x8203})",), None, 0, False, False),
        ((OUTSIDE,), None, 0, False, True),  # a parent that holds nothing
        ((OUTSIDE, "Freebusy Data"), None, 1, False, True),  # Outlook's own: not exported
    ]
    assert [n.info.selectable for n in nodes[-2:]] == [False, True]
    assert nodes[-1].info.source_name == "Freebusy Data"
    assert not any(n.skip_reason for n in nodes)


def test_ost_layout_by_name_and_class() -> None:
    folders = [
        folder(290, None, ""),
        folder(1, 290, "Root - Public"),
        folder(2, 1, "IPM_SUBTREE"),
        folder(3, 290, "Root - Mailbox"),
        folder(4, 3, "IPM_SUBTREE"),
        folder(5, 4, "Inbox", count=12, cls="IPF.Note", props={0x36D0: bytes(46)}),
        folder(6, 4, "Deleted Items", count=10, cls="IPF.Note"),
        folder(7, 4, "Calendar", cls="IPF.Appointment"),
        folder(8, 4, "Sent Items", cls="IPF.Note"),
        folder(9, 4, "Suggested Contacts", cls="IPF.Contact"),
        folder(10, 4, "Contacts", cls="IPF.Contact"),
    ]
    nodes = {n.info.path: n.info.role for n in layout(folders, Props({}))}
    assert nodes == {("Inbox",): Role.INBOX, ("Deleted Items",): Role.TRASH,
                     ("Calendar",): Role.CALENDAR, ("Sent Items",): Role.SENT,
                     ("Suggested Contacts",): None, ("Contacts",): Role.CONTACTS}


def test_cyclic_tree_terminates() -> None:
    folders = [folder(290, None, ""), folder(1, 290, "Top"), folder(2, 1, "A", count=1),
               folder(1, 2, "Top again")]
    nodes = layout(folders, Props({0x35E0: eid(1)}))
    assert ("A",) in {n.info.path for n in nodes}


def test_no_subtree_found_exports_outside_items_as_skips() -> None:
    folders = [folder(290, None, ""), folder(1, 290, "Odd", count=2)]
    nodes = layout(folders, Props({}))
    assert [(n.info.path, bool(n.skip_reason)) for n in nodes] == [
        ((OUTSIDE,), False), ((OUTSIDE, "Odd"), True)]
