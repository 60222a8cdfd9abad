"""EWS folder operations: GetFolder, FindFolder, CreateFolder, SyncFolderHierarchy."""

from __future__ import annotations

import base64

from lxml import etree

from tests.servers.ews import render
from tests.servers.ews.core import (
    Context,
    EwsError,
    _error,
    _kids,
    _messages,
    _ok,
    _page,
    _root,
    _slice,
    resolve_folder,
)
from tests.servers.ews.mailbox import is_our_id
from tests.servers.ews.soap import m, sub, t


def get_folder(ctx: Context, req: etree._Element) -> etree._Element:
    resp, messages = _messages("GetFolder")
    fields, _ = render.shape_fields(req.find(m("FolderShape")), render.FOLDER_SHAPES)
    for ref in _kids(req, m("FolderIds")):
        try:
            box, folder = resolve_folder(ctx, ref)
        except EwsError as e:  # the page's error example ends with an empty <m:Folders/>
            sub(_error(messages, "GetFolder", e), m("Folders"))
            continue
        msg = _ok(messages, "GetFolder")
        with box.lock:
            render.folder_xml(sub(msg, m("Folders")), box, folder, fields)
    return resp


def find_folder(ctx: Context, req: etree._Element) -> etree._Element:
    resp, messages = _messages("FindFolder")
    fields, _ = render.shape_fields(req.find(m("FolderShape")), render.FOLDER_SHAPES)
    traversal = req.get("Traversal")
    for ref in _kids(req, m("ParentFolderIds")):
        try:
            box, parent = resolve_folder(ctx, ref)
        except EwsError as e:
            _error(messages, "FindFolder", e)
            continue
        with box.lock:
            # "SoftDelete traversal searches for items and folders will not return any
            # results" (DeleteItem element page, Remarks)
            found = (
                box.descendants(parent.id) if traversal == "Deep"
                else box.children(parent.id) if traversal == "Shallow"
                else []
            )  # fmt: skip
            page = _page(req, "IndexedPageFolderView", len(found))
            out = sub(_root(_ok(messages, "FindFolder"), page, len(found)), t("Folders"))
            for folder in _slice(found, page):
                render.folder_xml(out, box, folder, fields)
    return resp


#: the class Exchange gives a folder created by element type without a FolderClass.
FOLDER_CLASSES = {
    "CalendarFolder": "IPF.Appointment",
    "ContactsFolder": "IPF.Contact",
    "TasksFolder": "IPF.Task",
    "SearchFolder": "IPF.Note",
}


def create_folder(ctx: Context, req: etree._Element) -> etree._Element:
    resp, messages = _messages("CreateFolder")
    parent_ref = req.find(m("ParentFolderId"))
    assert parent_ref is not None  # required by the schema
    for spec in _kids(req, m("Folders")):
        try:
            box, parent = resolve_folder(ctx, parent_ref[0])
            with box.lock:
                made = box.add_folder(
                    parent.id,
                    spec.findtext(t("DisplayName")) or "",
                    spec.findtext(t("FolderClass"))
                    or FOLDER_CLASSES.get(etree.QName(spec).localname, "IPF.Note"),
                )
            if made is None:
                raise EwsError(
                    "ErrorFolderExists", "A folder with the specified name already exists."
                )
        except EwsError as e:
            _error(messages, "CreateFolder", e)
            sub(messages[-1], m("Folders"))
            continue
        out = sub(sub(_ok(messages, "CreateFolder"), m("Folders")), t(etree.QName(spec).localname))
        sub(out, t("FolderId"), Id=made.id, ChangeKey="AQAAAA==")
    return resp


def _sync_state(state: str) -> set[str]:
    """The folder ids a SyncState (ours: base64 of the ids, one per line) knew; none
    without one ("not included in the request for the first attempt")."""
    try:
        known = set(base64.b64decode(state, validate=True).decode().split())
    except (ValueError, UnicodeDecodeError):
        known = {""}
    if not all(is_our_id(i) for i in known):
        raise EwsError(
            "ErrorInvalidSyncStateData",
            "Synchronization state data is corrupted or otherwise invalid.",
        )
    return known


def sync_folder_hierarchy(ctx: Context, req: etree._Element) -> etree._Element:
    """Folders created/deleted since `SyncState` (ours: the known folder ids).

    Renames are not tracked (this server has no UpdateFolder), so no Update.
    """
    resp, messages = _messages("SyncFolderHierarchy")
    fields, _ = render.shape_fields(req.find(m("FolderShape")), render.FOLDER_SHAPES)
    try:
        sync_ref = req.find(m("SyncFolderId"))
        box, top = (
            resolve_folder(ctx, sync_ref[0]) if sync_ref is not None
            else (ctx.principal, ctx.principal.distinguished("root"))
        )  # fmt: skip
        known = _sync_state(req.findtext(m("SyncState")) or "")
    except EwsError as e:
        # the page's error example (an invalid SyncState) keeps an empty SyncState and
        # IncludesLastFolderInRange after the error elements
        msg = _error(messages, "SyncFolderHierarchy", e)
        sub(msg, m("SyncState"))
        sub(msg, m("IncludesLastFolderInRange"), "true")
        return resp
    assert top is not None  # every mailbox has a root
    with box.lock:
        now = box.descendants(top.id)
        msg = _ok(messages, "SyncFolderHierarchy")
        current = " ".join(f.id for f in now)
        sub(msg, m("SyncState"), base64.b64encode(current.encode()).decode("ascii"))
        sub(msg, m("IncludesLastFolderInRange"), "true")
        changes = sub(msg, m("Changes"))
        for folder in now:
            if folder.id not in known:
                render.folder_xml(sub(changes, t("Create")), box, folder, fields)
        for gone in sorted(known - {f.id for f in now}):
            sub(sub(changes, t("Delete")), t("FolderId"), Id=gone)
    return resp
