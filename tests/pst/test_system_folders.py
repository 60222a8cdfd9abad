"""Outlook's own folders are not user mail (issue 14): Freebusy Data (outside the IPM
subtree) and, inside it, Conversation Action Settings, Quick Step Settings, RSS Feeds,
News Feed, Suggested Contacts, Sync Issues and its sub-folders. Their items are counted as
"system items, not exported", the run exits 0, their folders are never created; with
`--opt pst_system=include` they are exported like any folder. Before, every ordinary
Outlook PST exited 1 (Freebusy Data's item was a skip) and the empty folders were made.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pstkit.converters.pst.props import Props
from pstkit.converters.pst.tree import RawFolder, layout
from pstkit.model import Role
from pstkit.store import Store
from tests.helpers import cli_json

SYSTEM_NAMES = {"(outside IPM subtree)", "Freebusy Data", "Conversation Action Settings",
                "Quick Step Settings", "RSS Feeds", "News Feed", "Suggested Contacts",
                "Sync Issues", "Conflicts", "Local Failures", "Server Failures"}


def _export(pst: Path, store: Path, *opts: str) -> tuple[int, dict[str, object], set[str]]:
    code, out = cli_json("export", *opts, str(pst), str(store))
    assert isinstance(out, dict)
    with Store.open(store) as st:
        names = {seg for f in st.folders() for seg in f.info.path}
    return code, out, names


@pytest.mark.parametrize(("name", "system"), [
    ("aspose_source.pst", 1),  # Inbox, Sent, Calendar, Contacts… and Freebusy Data
    ("dist-list.pst", 1),
    ("SampleOstFile.ost", 9),  # Sync Issues
])
def test_system_items_are_counted_not_exported(corpus: Path, tmp_path: Path, name: str,
                                               system: int) -> None:
    code, out, names = _export(corpus / "pst" / name, tmp_path / "store")
    problems = [p for p in out["problems"] if "OLE object" not in p["reason"]]  # type: ignore
    assert not problems  # the OST's OLE pictures are the only problems left
    assert code == 0  # the OST's OLE pictures are stored with a note: a warning, not a failure
    assert out["stats"]["system items, not exported"] == system  # type: ignore[index]
    assert not names & SYSTEM_NAMES, names & SYSTEM_NAMES


def test_an_option_exports_them(corpus: Path, tmp_path: Path) -> None:
    code, out, names = _export(corpus / "pst" / "SampleOstFile.ost", tmp_path / "store",
                               "--opt", "pst_system=include")
    assert "system items, not exported" not in out["stats"]  # type: ignore[operator]
    assert {"Sync Issues", "Conflicts", "RSS Feeds", "Quick Step Settings"} <= names
    with Store.open(tmp_path / "store") as st:
        sync = st.folder(("Sync Issues",))
        assert sync is not None and len(list(st.rows(sync.id))) == 9
    assert code == 0  # the OLE pictures of one Sent item are notes (warnings), as without it


def test_a_bad_option_value_is_a_usage_error(corpus: Path, tmp_path: Path) -> None:
    code, _out = cli_json("export", "--opt", "pst_system=maybe",
                          str(corpus / "pst" / "dist-list.pst"), str(tmp_path / "s"))
    assert code == 2


def _folder(nid: int, parent: int | None, name: str, cls: str = "", count: int = 0,
            props: dict[int | str, object] | None = None) -> RawFolder:
    return RawFolder(nid, parent, name, cls, count, Props(props or {}))


def eid(nid: int) -> bytes:
    return bytes(20) + nid.to_bytes(4, "little")


def test_sync_issues_found_by_entry_id_in_any_language() -> None:
    folders = [
        _folder(290, None, ""),
        _folder(1, 290, "Haut", props={}),
        _folder(2, 1, "Boîte de réception", "IPF.Note", 1,
                {0x36D0: eid(3), 0x36D8: (eid(9), eid(5), eid(6), eid(7), eid(8))}),
        _folder(3, 1, "Calendrier", "IPF.Appointment"),
        _folder(5, 1, "Problèmes de synchronisation", "IPF.Note", 4),
        _folder(6, 5, "Échecs locaux", "IPF.Note", 2),
        _folder(10, 1, "Paramètres des étapes rapides", "IPF.Configuration", 3),
        _folder(11, 1, "Flux RSS", "IPF.Note.OutlookHomepage", 1),
    ]
    nodes = layout(folders, Props({0x35E0: eid(1)}))
    system = {n.info.path[-1] for n in nodes if n.system}
    assert system == {"Problèmes de synchronisation", "Échecs locaux",
                      "Paramètres des étapes rapides", "Flux RSS"}
    assert {n.info.path[-1]: n.info.role for n in nodes if not n.system} == {
        "Boîte de réception": Role.INBOX, "Calendrier": Role.CALENDAR}
