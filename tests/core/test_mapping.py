"""Outlook's "import into the same folder, include subfolders" mapping."""

from __future__ import annotations

from pstkit.mapping import StoreFolder, plan, role_from_name
from pstkit.model import FolderInfo, Role
from pstkit.options import MappingOptions


def _store(
    *paths: tuple[str, ...], roles: dict[tuple[str, ...], Role] | None = None
) -> list[StoreFolder]:
    roles = roles or {}
    return [StoreFolder(i, FolderInfo(p, roles.get(p)), 1) for i, p in enumerate(paths)]


EXCHANGE_DE = [
    FolderInfo(("Posteingang",), Role.INBOX),
    FolderInfo(("Gesendete Elemente",), Role.SENT),
    FolderInfo(("Gelöschte Elemente",), Role.TRASH),
    FolderInfo(("Junk-E-Mail",), Role.JUNK),
    FolderInfo(("Entwürfe",), Role.DRAFTS),
]


def _map(entries: list) -> dict[tuple[str, ...], tuple[str, ...]]:  # type: ignore[type-arg]
    return {e.source.info.path: e.target for e in entries}


def test_role_names_in_several_languages() -> None:
    assert role_from_name(("Sent Messages",)) is Role.SENT
    assert role_from_name(("Gesendete Objekte",)) is Role.SENT
    assert role_from_name(("Éléments supprimés",)) is Role.TRASH
    assert role_from_name(("Bandeja de entrada",)) is Role.INBOX
    assert role_from_name(("[Gmail]", "Sent Mail")) is Role.SENT
    assert role_from_name(("[Gmail]", "All Mail")) is Role.ALL
    assert role_from_name(("Projects", "Sent")) is None  # only top-level names are guessed


def test_special_folders_go_by_role_and_subfolders_follow() -> None:
    store = _store(("INBOX",), ("INBOX", "Kunden"), ("Sent Messages",), ("Trash",),
                   ("Projects", "2024"), roles={("INBOX",): Role.INBOX})  # fmt: skip
    got = _map(plan(store, EXCHANGE_DE, MappingOptions()))
    assert got == {
        ("INBOX",): ("Posteingang",),
        ("INBOX", "Kunden"): ("Posteingang", "Kunden"),
        ("Sent Messages",): ("Gesendete Elemente",),
        ("Trash",): ("Gelöschte Elemente",),
        ("Projects", "2024"): ("Projects", "2024"),
    }


def test_declared_role_beats_name() -> None:
    # A PST in French: its sent folder is found by its special-folder id, not its name.
    store = _store(
        ("Éléments envoyés",), ("Boîte d'envoi",), roles={("Éléments envoyés",): Role.SENT}
    )
    target = [FolderInfo(("Sent Items",), Role.SENT), FolderInfo(("Sent",))]
    got = _map(plan(store, target, MappingOptions()))
    assert got[("Éléments envoyés",)] == ("Sent Items",)
    assert got[("Boîte d'envoi",)] == ("Boîte d'envoi",)  # no outbox in the target: kept by name


def test_target_root_nests_everything_without_roles() -> None:
    store = _store(("INBOX",), ("Sent",), roles={("INBOX",): Role.INBOX})
    got = _map(plan(store, EXCHANGE_DE, MappingOptions(target_root=("Import", "2024"))))
    assert got == {("INBOX",): ("Import", "2024", "INBOX"), ("Sent",): ("Import", "2024", "Sent")}


def test_select_one_folder_with_and_without_subfolders() -> None:
    store = _store(("A",), ("A", "B"), ("A", "B", "C"), ("AB",))
    with_subs = _map(plan(store, [], MappingOptions(select=("A", "B"))))
    assert set(with_subs) == {("A", "B"), ("A", "B", "C")}
    alone = _map(plan(store, [], MappingOptions(select=("A", "B"), include_subfolders=False)))
    assert set(alone) == {("A", "B")}


def test_exclude_globs_and_create_flag() -> None:
    store = _store(("Inbox",), ("Spam",), ("Archive", "2019"))
    entries = plan(store, [FolderInfo(("Inbox",))], MappingOptions(exclude=("Archive/*",)))
    assert {e.source.info.path: e.create for e in entries} == {("Inbox",): False, ("Spam",): True}
