"""The target mailbox's folder tree over Graph: list, find by role or name, create.

Well-known folders are found by Graph's well-known names (so a German
"Gesendete Elemente" is still SENT); other folders by display name under
their parent, compared case-insensitively as Exchange does. Several threads
may ask for the same path: creation is serialised, and a 409
ErrorFolderExists (someone else made it) is answered by looking again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from pstkit.converters.graph.client import Ambiguous, ApiError, GraphHttp
from pstkit.converters.graph.jsonmail import ROLE_WELL_KNOWN, WELL_KNOWN_ROLES
from pstkit.model import FolderInfo, FolderPath, Role


class FolderTree:
    def __init__(self, api: GraphHttp, base: str) -> None:
        self._api = api
        self._base = base
        self._ids: dict[FolderPath, str] = {}
        self._lock = threading.Lock()
        self._roles: dict[str, Role] | None = None

    def _well_known(self) -> dict[str, Role]:
        """Folder id -> role, for the well-known folders this mailbox has."""
        if self._roles is None:
            roles: dict[str, Role] = {}
            for name, role in WELL_KNOWN_ROLES.items():
                try:
                    item = self._api.json(
                        "GET", f"{self._base}/mailFolders/{name}", params={"$select": "id"}
                    )
                except ApiError as e:
                    if e.status == 404:  # e.g. no archive folder in this mailbox
                        continue
                    raise
                roles[str(item["id"])] = role
            self._roles = roles
        return self._roles

    def _children(self, parent: str) -> list[dict[str, Any]]:
        url = f"{self._base}/mailFolders/{parent}/childFolders"
        return list(self._api.pages(url, {"$top": "100"}))

    def list(self) -> list[FolderInfo]:
        roles = self._well_known()
        out: list[FolderInfo] = []
        todo: list[tuple[FolderPath, str]] = [((), "msgfolderroot")]
        while todo:
            path, fid = todo.pop(0)
            for child in self._children(fid):
                sub = (*path, str(child["displayName"]))
                cid = str(child["id"])
                with self._lock:
                    self._ids.setdefault(sub, cid)
                out.append(
                    FolderInfo(
                        path=sub,
                        role=roles.get(cid),
                        source_name="/".join(sub),
                        message_count=child.get("totalItemCount"),
                    )
                )
                if child.get("childFolderCount"):
                    todo.append((sub, cid))
        return out

    def ensure(self, path: FolderPath, role: Role | None) -> str:
        """The id of the folder at `path` (made if missing); a role picks the well-known one."""
        with self._lock:
            if path in self._ids:
                return self._ids[path]
            name = ROLE_WELL_KNOWN.get(role) if role is not None else None
            if name is not None and len(path) <= 1:
                fid = str(
                    self._api.json(
                        "GET", f"{self._base}/mailFolders/{name}", params={"$select": "id"}
                    )["id"]
                )
            else:
                fid = self._walk(path)
            self._ids[path] = fid
            return fid

    def _walk(self, path: FolderPath) -> str:
        parent = "msgfolderroot"
        for depth in range(1, len(path) + 1):
            known = self._ids.get(path[:depth])
            parent = known if known is not None else self._child(parent, path[depth - 1])
            self._ids[path[:depth]] = parent
        return parent

    def _child(self, parent: str, name: str) -> str:
        def find() -> str | None:
            return next((str(c["id"]) for c in self._children(parent)
                         if str(c["displayName"]).lower() == name.lower()), None)  # fmt: skip

        url = f"{self._base}/mailFolders/{parent}/childFolders"
        return find_or_create(self._api, url, {"displayName": name, "isHidden": False}, find)


def find_or_create(
    api: GraphHttp, url: str, body: dict[str, Any], find: Callable[[], str | None]
) -> str:
    """The id `find()` gives, else of a folder made by POSTing `body` to `url`. After an
    unanswered POST or a 409 ErrorFolderExists (made meanwhile, perhaps by our own request
    whose answer was lost) look again rather than create twice."""
    for _ in range(3):
        found = find()
        if found is not None:
            return found
        try:
            return str(api.json("POST", url, json=body)["id"])
        except Ambiguous:
            continue
        except ApiError as e:
            if e.code != "ErrorFolderExists":
                raise
    raise ApiError(409, "ErrorFolderExists", f"folder {body} exists but cannot be found")
