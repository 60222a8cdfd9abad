"""Which PST folders a user sees, under which paths and roles. Pure.

`pst.source` walks the folder tree (node reader or pypff) into `RawFolder` records; this
module finds the IPM subtree (the "Top of Personal Folders" in any language),
gives every folder a path relative to it and a role from the store's
special-folder entry ids, then container classes, and English names only as
a last resort (OST files carry Exchange entry ids that name no PST node).
"""

from __future__ import annotations

from collections.abc import Iterator

from pstkit.converters.pst.props import (
    PR_ADDITIONAL_REN_ENTRYIDS,
    PR_IPM_APPOINTMENT_ENTRYID,
    PR_IPM_CONTACT_ENTRYID,
    PR_IPM_DRAFTS_ENTRYID,
    PR_IPM_JOURNAL_ENTRYID,
    PR_IPM_NOTE_ENTRYID,
    PR_IPM_OUTBOX_ENTRYID,
    PR_IPM_SENTMAIL_ENTRYID,
    PR_IPM_SUBTREE_ENTRYID,
    PR_IPM_TASK_ENTRYID,
    PR_IPM_WASTEBASKET_ENTRYID,
    Props,
    entryid_nid,
)
from pstkit.model import FolderInfo, FolderPath, Role

#: Top-level segment for folders outside the IPM subtree that hold items.
OUTSIDE = "(outside IPM subtree)"

_STORE_ROLES = ((PR_IPM_OUTBOX_ENTRYID, Role.OUTBOX), (PR_IPM_WASTEBASKET_ENTRYID, Role.TRASH),
                (PR_IPM_SENTMAIL_ENTRYID, Role.SENT))
_INBOX_ROLES = ((PR_IPM_APPOINTMENT_ENTRYID, Role.CALENDAR),
                (PR_IPM_CONTACT_ENTRYID, Role.CONTACTS), (PR_IPM_JOURNAL_ENTRYID, Role.JOURNAL),
                (PR_IPM_NOTE_ENTRYID, Role.NOTES),
                (PR_IPM_TASK_ENTRYID, Role.TASKS), (PR_IPM_DRAFTS_ENTRYID, Role.DRAFTS))
_CLASS_ROLES = {"ipf.appointment": Role.CALENDAR, "ipf.contact": Role.CONTACTS,
                "ipf.task": Role.TASKS, "ipf.stickynote": Role.NOTES, "ipf.journal": Role.JOURNAL}
_NAME_ROLES = {"inbox": Role.INBOX, "sent items": Role.SENT, "deleted items": Role.TRASH,
               "outbox": Role.OUTBOX, "drafts": Role.DRAFTS, "junk e-mail": Role.JUNK,
               "junk email": Role.JUNK, "calendar": Role.CALENDAR, "contacts": Role.CONTACTS,
               "tasks": Role.TASKS, "notes": Role.NOTES, "journal": Role.JOURNAL}
_JUNK_INDEX = 4  # PR_ADDITIONAL_REN_ENTRYIDS: conflicts, sync issues, local, server, junk
_SYNC_INDEXES = (0, 1, 2, 3)
#: Folders of the IPM subtree that hold Outlook's own data, not the user's: by container
#: class, else (Suggested Contacts shares IPF.Contact; Sync Issues IPF.Note) by English name
#: when no entry id names them.
_SYSTEM_CLASSES = {"ipf.configuration", "ipf.note.outlookhomepage",
                   "ipf.note.socialconnector.feeditems", "ipf.contact.moc.quickcontacts",
                   "ipf.contact.moc.imcontactlist"}
_SYSTEM_NAMES = {"conversation action settings", "quick step settings", "rss feeds",
                 "rss subscriptions", "news feed", "suggested contacts", "sync issues",
                 "conflicts", "local failures", "server failures"}


class RawFolder:
    # a plain class, not a dataclass: cheaper to import (see btree.Layout)
    __slots__ = ("container_class", "count", "name", "nid", "parent", "props")

    def __init__(self, nid: int, parent: int | None, name: str, container_class: str,
                 count: int, props: Props) -> None:
        self.nid, self.parent, self.name = nid, parent, name
        self.container_class, self.count, self.props = container_class, count, props


class Node:
    """A folder as exported; items of a node with a `skip_reason` are all skipped."""

    # a plain class, not a dataclass: cheaper to import (see btree.Layout)
    __slots__ = ("info", "nid", "skip_reason", "system", "top")

    def __init__(self, info: FolderInfo, nid: int, skip_reason: str = "", top: bool = False,
                 system: bool = False) -> None:
        self.info, self.nid, self.skip_reason = info, nid, skip_reason
        self.top = top  # holds the items that sit directly in the top-of-store folder
        self.system = system  # Outlook's own data (Freebusy, Sync Issues…): not exported by default


def find_subtree(folders: list[RawFolder], store: Props) -> int | None:
    nids = {f.nid for f in folders}
    nid = entryid_nid(store.binary(PR_IPM_SUBTREE_ENTRYID))
    if nid in nids:
        return nid
    named = [f for f in folders if f.name == "IPM_SUBTREE"]
    named.sort(key=lambda f: _parent_name(folders, f) != "Root - Mailbox")
    return named[0].nid if named else None


def _parent_name(folders: list[RawFolder], f: RawFolder) -> str:
    return next((p.name for p in folders if p.nid == f.parent), "")


def special_roles(folders: list[RawFolder], store: Props, subtree: int | None) -> dict[int, Role]:
    """nid -> role from the store's and the Inbox's entry ids (PST files)."""
    roles: dict[int, Role] = {}
    for pid, role in _STORE_ROLES:
        nid = entryid_nid(store.binary(pid))
        if nid is not None:
            roles[nid] = role
    inside = set(_descendants(folders, subtree)) if subtree is not None else set()
    inbox = next((f for f in folders if f.nid in inside and f.props.get(
        PR_IPM_APPOINTMENT_ENTRYID) is not None), None)
    if inbox is not None:
        roles[inbox.nid] = Role.INBOX
        for pid, role in _INBOX_ROLES:
            nid = entryid_nid(inbox.props.binary(pid))
            if nid is not None:
                roles.setdefault(nid, role)
        extra = inbox.props.binaries(PR_ADDITIONAL_REN_ENTRYIDS)
        junk = entryid_nid(extra[_JUNK_INDEX]) if len(extra) > _JUNK_INDEX else None
        if junk is not None:
            roles.setdefault(junk, Role.JUNK)
    return roles


def system_folders(folders: list[RawFolder], subtree: int | None) -> set[int]:
    """Folders of the IPM subtree that hold Outlook's own data (and everything below
    them): Sync Issues and its sub-folders by the Inbox's entry ids, the rest (RSS Feeds,
    Quick Step Settings, Suggested Contacts…) by class or English name."""
    if subtree is None:
        return set()
    inside = set(_descendants(folders, subtree))
    found: set[int] = set()
    for f in folders:
        if f.nid in inside and f.props.get(PR_IPM_APPOINTMENT_ENTRYID) is not None:
            extra = f.props.binaries(PR_ADDITIONAL_REN_ENTRYIDS)
            found |= {n for i in _SYNC_INDEXES if i < len(extra)
                      if (n := entryid_nid(extra[i])) is not None}
    for f in folders:
        if f.parent == subtree and (f.container_class.lower() in _SYSTEM_CLASSES
                                    or f.name.lower() in _SYSTEM_NAMES):
            found.add(f.nid)
    return {n for nid in found & inside for n in (nid, *_descendants(folders, nid))}


def _children(folders: list[RawFolder]) -> dict[int | None, list[RawFolder]]:
    out: dict[int | None, list[RawFolder]] = {}
    for f in folders:
        if f.nid != f.parent:  # a folder that is its own parent would loop forever
            out.setdefault(f.parent, []).append(f)
    return out


def _descendants(folders: list[RawFolder], nid: int | None) -> Iterator[int]:
    children = _children(folders)
    stack = [nid]
    seen: set[int | None] = set()
    while stack:
        for f in children.get(stack.pop(), []):
            if f.nid not in seen:
                seen.add(f.nid)
                yield f.nid
                stack.append(f.nid)


def _fallback_roles(children: list[RawFolder], roles: dict[int, Role]) -> None:
    """Container class, then English names, for the subtree's direct children."""
    taken = set(roles.values())
    # Several folders may share a class (Contacts, Suggested Contacts): the one whose
    # English name also says so wins, else the first.
    by_name = sorted(children, key=lambda f: _NAME_ROLES.get(f.name.lower()) is None)
    for how in ("class", "name"):
        for f in by_name:
            key = f.container_class.lower() if how == "class" else f.name.lower()
            role = (_CLASS_ROLES if how == "class" else _NAME_ROLES).get(key)
            if f.nid not in roles and role is not None and role not in taken:
                roles[f.nid] = role
                taken.add(role)


def _unique(name: str, nid: int, used: set[str]) -> str:
    """Sibling folders may share a name in a PST; a path must not."""
    seg = name or f"(unnamed {nid})"
    if seg.lower() in used:
        seg = f"{seg} ({nid})"
    used.add(seg.lower())
    return seg


def layout(folders: list[RawFolder], store: Props) -> list[Node]:
    """Every exported folder, parents before children."""
    subtree = find_subtree(folders, store)
    roles = special_roles(folders, store, subtree)
    _fallback_roles([f for f in folders if f.parent == subtree and subtree is not None], roles)
    nodes: list[Node] = []
    top = next((f for f in folders if f.nid == subtree), None)
    used: set[str] = set()
    if top is not None and top.count:
        # Items directly in the top of the store get a folder named after it.
        path = (_unique(top.name, top.nid, used),)
        nodes.append(Node(_info(path, top, None), top.nid, top=True))
    children = _children(folders)
    if subtree is not None:
        system = system_folders(folders, subtree)
        nodes += [Node(n.info, n.nid, n.skip_reason, n.top, system=n.nid in system)
                  for n in _walk(children, subtree, (), roles, used, "")]
    root = next((f.nid for f in folders if f.parent is None), None)
    inside = {subtree, *(_descendants(folders, subtree))} if subtree is not None else set()
    # Outside a subtree that was found, folders are Outlook's (Freebusy Data, Reminders…);
    # when none was found, they may be the user's: then they are reported as skipped.
    mode = "system" if subtree is not None else "outside"
    outside = [n for n in _walk(children, root, (OUTSIDE,), {}, set(), mode)
               if n.nid not in inside and n.info.message_count]
    return nodes + _with_parents(outside)


def _with_parents(nodes: list[Node]) -> list[Node]:
    """Folders outside the subtree are exported only when they hold items; their parents
    (and the OUTSIDE segment itself) come first, as folders that hold nothing."""
    out: list[Node] = []
    seen: set[FolderPath] = set()
    for node in nodes:
        for depth in range(1, len(node.info.path)):
            parent = node.info.path[:depth]
            if parent not in seen:
                seen.add(parent)
                info = FolderInfo(path=parent, source_name=parent[-1], message_count=0,
                                  selectable=False)
                out.append(Node(info, -1, system=node.system))
        seen.add(node.info.path)
        out.append(node)
    return out


def _walk(children: dict[int | None, list[RawFolder]], parent: int | None, prefix: FolderPath,
          roles: dict[int, Role], used: set[str], mode: str, depth: int = 0) -> list[Node]:
    out: list[Node] = []
    if depth > 64:  # a damaged file can make the tree cyclic
        return out
    for f in children.get(parent, []):
        path = (*prefix, _unique(f.name, f.nid, used))
        reason = ""
        if mode == "outside":
            reason = f"folder {f.name!r} is outside the IPM subtree: Outlook's own data, " \
                     "not a user item"
        out.append(Node(_info(path, f, roles.get(f.nid)), f.nid, reason, system=mode == "system"))
        out += _walk(children, f.nid, path, roles, set(), mode, depth + 1)
    return out


def _info(path: FolderPath, f: RawFolder, role: Role | None) -> FolderInfo:
    return FolderInfo(path=path, role=role, source_name=f.name, message_count=f.count,
                      container_class=f.container_class)
