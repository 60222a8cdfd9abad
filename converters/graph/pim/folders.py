"""Contact folders and calendars of the target mailbox over Graph.

Graph keeps them apart from mail: contacts in `contactFolders` (the
default folder is `/contacts`; `GET /contactFolders` lists the folders
inside it), events in `calendars` (the default one is `/calendar`);
`mailFolders` lists neither. How they appear as pstkit folder paths:

- the default contacts folder is ("Contacts",) with role CONTACTS (Graph
  v1.0 does not give its localised name; the path is only a label), its
  subfolders ("Contacts", name, …);
- the default calendar is (its name,) with role CALENDAR; every other
  calendar is (name,) and also (default calendar's name, name): Graph's
  calendars are flat, so a PST's "Calendar/Holidays" becomes the calendar
  "Holidays" and must be found again under that path;
- a contacts folder a source has outside Contacts is made inside it (the
  only place Graph's contactFolders API creates one) and is also listed as
  (name,), unless a mail folder has that path.

Without the Contacts.ReadWrite / Calendars.ReadWrite permission the
namespace is marked denied: mail still goes on, its items fail one by one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pstkit.converters.graph.client import ApiError, GraphHttp
from pstkit.converters.graph.folders import find_or_create
from pstkit.model import FolderInfo, FolderPath, Role

log = logging.getLogger("pstkit.graph")

CONTACTS, CALENDAR = "contacts", "calendar"
CONTACTS_LABEL = "Contacts"
DENIED = "!denied"
PERMISSION = {CONTACTS: "Contacts.ReadWrite", CALENDAR: "Calendars.ReadWrite"}
CLASS = {CONTACTS: "IPF.Contact", CALENDAR: "IPF.Appointment"}


@dataclass(frozen=True)
class PimFolder:
    ns: str  # CONTACTS | CALENDAR
    id: str  # contacts: "" = the default folder; DENIED + reason without access

    def items_url(self, base: str) -> str:
        if self.ns == CONTACTS:
            return f"{base}/contactFolders/{self.id}/contacts" if self.id else f"{base}/contacts"
        return f"{base}/calendars/{self.id}/events"

    def item_url(self, base: str, item_id: str) -> str:
        return f"{base}/{'contacts' if self.ns == CONTACTS else 'events'}/{item_id}"


def namespace_of(role: Role | None, folder_class: str) -> str | None:
    """Which Graph namespace a source folder belongs in (None: mail)."""
    cls = folder_class.lower()
    if role is Role.CONTACTS or cls.startswith("ipf.contact"):
        return CONTACTS
    if role is Role.CALENDAR or cls.startswith("ipf.appointment"):
        return CALENDAR
    return None


class PimFolders:
    def __init__(self, api: GraphHttp, base: str) -> None:
        self._api = api
        self._base = base
        self._known: dict[FolderPath, PimFolder] = {}
        self._infos: list[FolderInfo] = []
        self._lock = threading.RLock()
        self._loaded = False
        #: namespace -> why Graph refused it (items there fail with this reason)
        self.denied: dict[str, str] = {}

    # --- listing -------------------------------------------------------------

    def list(self, mail_paths: Iterable[FolderPath] = ()) -> list[FolderInfo]:
        with self._lock:
            self._known.clear()
            self._infos = []
            taken = {tuple(s.lower() for s in p) for p in mail_paths}
            self._guarded(CALENDAR, lambda: self._list_calendars(taken))
            self._guarded(CONTACTS, lambda: self._list_contacts(taken))
            self._loaded = True
            return list(self._infos)

    def _guarded(self, ns: str, fn: Any) -> None:
        try:
            fn()
        except ApiError as e:
            if e.status not in (403, 404):  # 404: a mailbox without that folder
                raise
            self.denied[ns] = str(e)
            log.warning("Graph refused %s (%s): the app needs %s", ns, e, PERMISSION[ns])

    def _add(self, path: FolderPath, folder: PimFolder, role: Role | None = None,
             name: str = "", taken: set[tuple[str, ...]] | None = None) -> None:  # fmt: skip
        if taken is not None and tuple(s.lower() for s in path) in taken:
            return  # a mail folder has this path: it keeps it
        if path in self._known:
            return
        self._known[path] = folder
        info = FolderInfo(path, role, source_name=name or "/".join(path),
                          container_class=CLASS[folder.ns])  # fmt: skip
        self._infos.append(info)

    def _list_calendars(self, taken: set[tuple[str, ...]]) -> None:
        default = self._api.json("GET", f"{self._base}/calendar", params={"$select": "id,name"})
        top = str(default.get("name") or "Calendar")
        self._add((top,), PimFolder(CALENDAR, str(default["id"])), Role.CALENDAR, top)
        params = {"$select": "id,name", "$top": "100"}
        for cal in self._api.pages(f"{self._base}/calendars", params):
            if str(cal["id"]) == str(default["id"]):
                continue
            folder, name = PimFolder(CALENDAR, str(cal["id"])), str(cal.get("name") or "")
            self._add((top, name), folder, None, name)
            self._add((name,), folder, None, name, taken)

    def _list_contacts(self, taken: set[tuple[str, ...]]) -> None:
        top = list(self._api.pages(self._children_url(""), {"$top": "100"}))  # 403 first
        self._add((CONTACTS_LABEL,), PimFolder(CONTACTS, ""), Role.CONTACTS, "contacts (default)")
        todo: list[tuple[FolderPath, str]] = [((CONTACTS_LABEL,), "")]
        while todo:
            path, fid = todo.pop(0)
            children = top if not fid else self._api.pages(self._children_url(fid), {"$top": "100"})
            for child in children:
                sub = (*path, str(child["displayName"]))
                folder = PimFolder(CONTACTS, str(child["id"]))
                self._add(sub, folder)
                if len(sub) == 2:
                    self._add(sub[1:], folder, None, "/".join(sub), taken)
                todo.append((sub, folder.id))

    def _children_url(self, fid: str) -> str:
        if fid:
            return f"{self._base}/contactFolders/{fid}/childFolders"
        return f"{self._base}/contactFolders"

    # --- lookup and creation -------------------------------------------------

    def lookup(self, path: FolderPath) -> PimFolder | None:
        with self._lock:
            if not self._loaded:
                self.list()
            return self._known.get(path)

    def ensure(self, path: FolderPath, role: Role | None, folder_class: str) -> PimFolder | None:
        """The contacts folder/calendar for `path` (made if missing); None for mail."""
        with self._lock:
            known = self.lookup(path)
            ns = namespace_of(role, folder_class)
            if known is not None or ns is None:
                return known
            if ns in self.denied:
                folder = PimFolder(ns, DENIED + self.denied[ns])
            elif ns == CONTACTS:
                folder = PimFolder(ns, self._contact_folder(path))
            else:
                folder = PimFolder(ns, self._calendar(path[-1]))
            self._known[path] = folder
            return folder

    def _contact_folder(self, path: FolderPath) -> str:
        parent = self._known.get(path[:-1]) if len(path) > 1 else None
        parent_id = parent.id if parent is not None and parent.ns == CONTACTS else ""
        url = self._children_url(parent_id)
        return self._find_or_make(url, "displayName", path[-1])

    def _calendar(self, name: str) -> str:
        return self._find_or_make(f"{self._base}/calendars", "name", name)

    def _find_or_make(self, url: str, field: str, name: str) -> str:
        """Find `name` (case-blind, as Exchange compares) in a collection, else create it."""

        def find() -> str | None:
            return next((str(item["id"]) for item in self._api.pages(url, {"$top": "100"})
                         if str(item.get(field, "")).lower() == name.lower()), None)  # fmt: skip

        return find_or_create(self._api, url, {field: name}, find)
