"""Outlook's "import items into the same folder, include subfolders" (pure).

Every store folder lands in the target folder with the same path, except
that special folders go by role: a store folder whose role is SENT (from
SPECIAL-USE, the PST's special-folder ids, or a known name in any of the
languages below) lands in whatever folder the target calls its sent folder,
and its subfolders follow it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from pstkit.model import FolderInfo, FolderPath, Role
from pstkit.options import MappingOptions

# Names seen in English, German, French, Spanish, Italian, Portuguese, Dutch
# mailboxes (Outlook, Exchange, Thunderbird, Apple Mail, Dovecot, cPanel),
# compared case-insensitively.
ROLE_NAMES: dict[Role, tuple[str, ...]] = {
    Role.INBOX: ("inbox", "posteingang", "boîte de réception", "bandeja de entrada",
                 "posta in arrivo", "caixa de entrada", "postvak in"),
    Role.SENT: ("sent", "sent items", "sent messages", "sent mail", "sent-mail", "sent email",
                "gesendet", "gesendete objekte", "gesendete elemente", "gesendete nachrichten",
                "éléments envoyés", "envoyés", "messages envoyés", "elementos enviados",
                "enviados", "posta inviata", "itens enviados", "verzonden items"),
    Role.DRAFTS: ("drafts", "draft", "entwürfe", "brouillons", "borradores", "bozze",
                  "rascunhos", "concepten"),
    Role.TRASH: ("trash", "deleted items", "deleted messages", "deleted", "bin", "papierkorb",
                 "gelöschte elemente", "gelöschte objekte", "corbeille", "éléments supprimés",
                 "papelera", "elementos eliminados", "posta eliminata", "cestino",
                 "itens excluídos", "lixeira", "verwijderde items", "prullenbak"),
    Role.JUNK: ("junk", "junk e-mail", "junk email", "junk mail", "spam", "bulk mail",
                "junk-e-mail", "spam-verdacht", "courrier indésirable", "pourriel",
                "correo no deseado", "posta indesiderata", "lixo eletrônico",
                "ongewenste e-mail"),
    Role.ARCHIVE: ("archive", "archives", "archiv", "archivo", "archivio", "arquivo", "archief"),
    Role.OUTBOX: ("outbox", "postausgang", "boîte d'envoi", "bandeja de salida", "posta in uscita",
                  "caixa de saída", "postvak uit"),
}  # fmt: skip
GMAIL_ROLES: dict[str, Role] = {
    "sent mail": Role.SENT, "drafts": Role.DRAFTS, "trash": Role.TRASH, "bin": Role.TRASH,
    "spam": Role.JUNK, "all mail": Role.ALL, "starred": Role.FLAGGED, "important": Role.IMPORTANT,
}  # fmt: skip
_BY_NAME = {name: role for role, names in ROLE_NAMES.items() for name in names}


def role_from_name(path: FolderPath) -> Role | None:
    """A role guessed from a top-level name (or Gmail's "[Gmail]/X")."""
    if len(path) == 1:
        return _BY_NAME.get(path[0].casefold())
    if len(path) == 2 and path[0].casefold() in ("[gmail]", "[google mail]"):
        return GMAIL_ROLES.get(path[1].casefold())
    return None


def effective_role(info: FolderInfo) -> Role | None:
    return info.role or role_from_name(info.path)


def path_text(path: FolderPath) -> str:
    return "/".join(path)


def matches(path: FolderPath, globs: Sequence[str]) -> bool:
    """Shell-style globs over "/"-joined paths, case-sensitive. A pattern takes the
    folders under what it matches too (`Projects` also means `Projects/A`), as
    Outlook's "include subfolders" does; `Projects/*` alone means only those under it,
    `--folder Projects --exclude 'Projects/*'` the folder itself only."""
    text = path_text(path)
    return any(fnmatch.fnmatchcase(text, g) or fnmatch.fnmatchcase(text, g.rstrip("/") + "/*")
               for g in globs)  # fmt: skip


def selected(path: FolderPath, include: Sequence[str], exclude: Sequence[str]) -> bool:
    if include and not matches(path, include):
        return False
    return not (exclude and matches(path, exclude))


@dataclass(frozen=True)
class StoreFolder:
    id: int
    info: FolderInfo
    count: int = 0
    size: int = 0


@dataclass(frozen=True)
class PlanEntry:
    source: StoreFolder
    target: FolderPath
    role: Role | None  # set when `target` is the target's own folder for that role
    create: bool  # the target folder does not exist yet

    @property
    def how(self) -> str:
        if self.role is not None and self.target and not self.create:
            return f"by role {self.role.value}"
        return "create" if self.create else "same name"


def plan(
    store_folders: Sequence[StoreFolder], target: Sequence[FolderInfo], opts: MappingOptions
) -> list[PlanEntry]:
    """Where every chosen store folder goes, parents before children."""
    chosen = [f for f in store_folders if _chosen(f.info.path, opts)]
    roles = _target_roles(target) if opts.by_role and not opts.target_root else {}
    role_of = {f.info.path: effective_role(f.info) for f in store_folders}
    existing = {t.path for t in target}
    entries = []
    for folder in sorted(chosen, key=lambda f: f.info.path):
        dest, role = _destination(folder.info.path, role_of, roles, opts.target_root)
        entries.append(PlanEntry(folder, dest, role, dest not in existing))
    return entries


def _chosen(path: FolderPath, opts: MappingOptions) -> bool:
    if opts.select is not None:
        inside = path[: len(opts.select)] == opts.select
        if not inside or (not opts.include_subfolders and path != opts.select):
            return False
    return not (opts.exclude and matches(path, opts.exclude))


def _target_roles(target: Sequence[FolderInfo]) -> dict[Role, FolderPath]:
    roles: dict[Role, FolderPath] = {}
    # Declared roles (SPECIAL-USE, distinguished ids) win over guessed ones.
    for info in sorted(target, key=lambda t: (t.role is None, len(t.path), t.path)):
        role = effective_role(info)
        if role is not None and role not in roles:
            roles[role] = info.path
    return roles


def _destination(
    path: FolderPath,
    role_of: dict[FolderPath, Role | None],
    roles: dict[Role, FolderPath],
    root: FolderPath,
) -> tuple[FolderPath, Role | None]:
    if root:
        return root + path, None
    for cut in range(len(path), 0, -1):
        role = role_of.get(path[:cut])
        if role is not None and role in roles:
            rest = path[cut:]
            return roles[role] + rest, (role if not rest else None)
    return path, None
