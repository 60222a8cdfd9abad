"""Import into Exchange Online over Microsoft Graph: `graph://TENANT/MAILBOX`.

Two delivery modes, chosen per run and reported (attribute `mode`, counts in
`mode_counts`, and a log line when it changes):
- "importMime": POST {beta}/users/{id}/mailFolders/{id}/importMime with the
  exact MIME bytes; a delivered, non-draft item whose $value is those bytes.
- "json": when the tenant refuses importMime (404/403, or 400 "segment"),
  or for one message whose request would pass Graph's 4 MB cap: the message
  is created from JSON (graph_json.json_message); the MIME bytes are not kept.

Contacts and events (from PST sources) go into contact folders and
calendars, created from JSON: see graph_pim_folders and graph_pim_sink.

Every item carries the stamped stable key (graph_json.KEY_PROP); after an
ambiguous failure the key is looked up before anything is sent again.
Location parameters for other clouds or the test server:
`?authority=https://login.example&graph=https://graph.example/v1.0`.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from pstkit.converters.graph import jsonmail as gj
from pstkit.converters.graph.auth import auth_from_options, tls_verify
from pstkit.converters.graph.client import Ambiguous, ApiError, GraphHttp
from pstkit.converters.graph.folders import FolderTree
from pstkit.converters.graph.index import FolderIndex, listing_params
from pstkit.converters.graph.pim.folders import PimFolder, PimFolders
from pstkit.converters.graph.pim.sink import PimSink
from pstkit.errors import AuthError, BadLocation, ConnectError, UsageError
from pstkit.location import Location
from pstkit.model import Delivered, Flag, FolderInfo, FolderPath, ItemKind, Role, StoredMessage
from pstkit.options import ConnectOptions
from pstkit.protocols import BatchLimit, Failed, TargetItem

log = logging.getLogger("pstkit.graph")

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_GRAPH = "https://graph.microsoft.com/v1.0"
MODES = ("importMime", "json")
ATTEMPTS = 3  # sends of one message after ambiguous failures (each preceded by a lookup)
UPLOAD_CHUNK = 10 * 320 * 1024  # a multiple of 320 KiB below 4 MB, as Graph asks


def _unavailable(e: ApiError) -> bool:
    """Does this importMime answer mean "this tenant cannot do it" (not "bad message")?"""
    return e.status in (403, 404, 405, 501) or (e.status == 400 and "segment" in e.message)


class GraphSink:
    max_connections = 4  # Exchange Online: 4 concurrent requests per mailbox
    # Big batches keep the 4 slots busy (put_batch waits for its slowest item) and
    # mean fewer ledger commits; after a kill, the items in flight are looked up.
    batch_limit = BatchLimit(max_items=100, max_bytes=64 * 1024 * 1024)

    def __init__(self, location: Location, options: ConnectOptions) -> None:
        self.tenant = location.host or options.tenant or ""
        self.mailbox = location.path.strip("/") or options.mailbox or ""
        if not self.tenant or not self.mailbox:
            raise BadLocation(location.display(), "give it as graph://TENANT/MAILBOX")
        self.key = f"graph://{self.tenant.lower()}/{self.mailbox.lower()}"
        params = location.params
        graph = params.get("graph", DEFAULT_GRAPH).rstrip("/")
        self._graph = graph
        self._beta = params.get("graph_beta") or (graph.rsplit("/", 1)[0] + "/beta")
        self._base = f"{graph}/users/{quote(self.mailbox)}"
        self._beta_base = f"{self._beta}/users/{quote(self.mailbox)}"
        self.mode = options.extra.get("graph_mode", "importMime")
        if self.mode not in MODES:
            raise UsageError(f"graph_mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        self.mode_counts = {m: 0 for m in (*MODES, "mimeDraft")}
        self._lock = threading.Lock()
        self._index_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(self.max_connections, thread_name_prefix="graph")
        self._indexes: dict[str, FolderIndex] = {}
        self._http = httpx.Client(
            verify=tls_verify(options),
            timeout=options.timeout,
            limits=httpx.Limits(max_connections=self.max_connections),
        )
        try:
            authority = params.get("authority", DEFAULT_AUTHORITY)
            auth = auth_from_options(self.tenant, self.mailbox, authority, self._http, options)
            self.api = GraphHttp(self._http, auth.token, concurrency=self.max_connections)
            self._folders = FolderTree(self.api, self._base)
            # Contacts and calendars live outside mailFolders (see graph_pim_folders).
            self._pim_folders = PimFolders(self.api, self._base)
            invite = options.extra.get("graph_invite_attendees", "") == "yes"
            self._pim = PimSink(self.api, self._base, self._pim_error, invite)
            self._check_mailbox()
        except BaseException:
            self._http.close()  # nobody will call close() on a half-made sink
            raise

    def _check_mailbox(self) -> None:
        try:
            self.api.json("GET", f"{self._base}/mailFolders/inbox", params={"$select": "id"})
        except ApiError as e:
            raise _edge_error(e, self.mailbox, "Mail.ReadWrite") from e

    # --- folders -----------------------------------------------------------

    def folders(self) -> list[FolderInfo]:
        found: list[FolderInfo] = self._wrap(self._folders.list)
        mail = [f.path for f in found]
        return found + list(self._wrap(lambda: self._pim_folders.list(mail)))

    def ensure_folder(self, path: FolderPath, role: Role | None, folder_class: str = "") -> None:
        if self._wrap(lambda: self._pim_folders.ensure(path, role, folder_class)) is None:
            self._wrap(lambda: self._folders.ensure(path, role))

    def _pim_folder(self, path: FolderPath) -> PimFolder | None:
        found: PimFolder | None = self._wrap(lambda: self._pim_folders.lookup(path))
        return found

    def _pim_error(self, e: ApiError, permission: str) -> Exception:
        return _edge_error(e, self.mailbox, permission)

    def _wrap(self, fn: Any) -> Any:
        try:
            return fn()
        except ApiError as e:
            raise _edge_error(e, self.mailbox, "Mail.ReadWrite") from e

    # --- delivery ----------------------------------------------------------

    def put_batch(
        self, folder: FolderPath, batch: Sequence[tuple[StoredMessage, bytes]]
    ) -> list[Delivered | Failed]:
        pim = self._pim_folder(folder)
        if pim is not None:  # a contacts folder or calendar: items made from JSON
            return list(self._pool.map(lambda item: self._pim.put(pim, *item), batch))
        folder_id = self._wrap(lambda: self._folders.ensure(folder, None))

        def put(msg: StoredMessage, raw: bytes) -> Delivered | Failed:
            # Graph creates items from MIME only as messages: a contact or event
            # sent that way would become an e-mail, a silent change.
            if msg.kind is not ItemKind.MAIL:
                return Failed(
                    f"Graph import of {msg.kind.value} items is not supported yet; "
                    "use ews:// or keep them in the store"
                )
            return self._put_one(folder_id, msg, raw)

        # The items of one batch go out side by side (the pipeline works one
        # folder per thread, so a big Inbox would otherwise use 1 of 4 slots).
        return list(self._pool.map(lambda item: put(*item), batch))

    def _put_one(self, folder_id: str, msg: StoredMessage, raw: bytes) -> Delivered | Failed:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return Delivered(self._send(folder_id, msg, raw))
            except Ambiguous as e:
                log.info("message %s: outcome unknown (%s); looking it up", msg.id, e)
                found = self._wrap(lambda: self._settle(folder_id, msg))
                if found:
                    return Delivered(found)
                if attempt == ATTEMPTS:
                    return Failed(f"Graph did not confirm delivery after {ATTEMPTS} tries: {e}")
            except ApiError as e:
                if e.status in (401, 403) and e.code == "ErrorAccessDenied":
                    raise _edge_error(e, self.mailbox, "Mail.ReadWrite") from e
                return Failed(f"Graph refused the message: {e}")
        raise AssertionError("unreachable")

    def _settle(self, folder_id: str, msg: StoredMessage) -> str:
        """After an ambiguous send: the id if it arrived whole; remove half-made copies."""
        key = msg.stable_key
        for item in self._by_key(folder_id, key + gj.INCOMPLETE):
            self.api.call("DELETE", f"{self._base}/messages/{item['id']}")
        found = self._by_key(folder_id, key)
        if found:
            return str(found[0]["id"])
        return self._adopt_draft(folder_id, msg) if Flag.DRAFT in msg.flags else ""

    def _send(self, folder_id: str, msg: StoredMessage, raw: bytes) -> str:
        if Flag.DRAFT in msg.flags and gj.import_size(raw) <= gj.MAX_REQUEST:
            return self._draft(folder_id, msg, raw)
        if self.mode == "importMime" and gj.import_size(raw) <= gj.MAX_REQUEST:
            try:
                return self._import(folder_id, msg, raw)
            except ApiError as e:
                if not _unavailable(e):
                    raise
                self._switch_to_json(e)
        elif self.mode == "importMime":
            log.warning(
                "message %s is %d bytes: over importMime's 4 MB request cap, delivered "
                "as JSON (MIME bytes not kept)",
                msg.id,
                len(raw),
            )
        return self._create_json(folder_id, msg, raw)

    def _draft(self, folder_id: str, msg: StoredMessage, raw: bytes) -> str:
        """Drafts stay editable drafts: Graph's documented MIME create (base64 as
        text/plain) makes one; state and stable key follow in a PATCH."""
        url = f"{self._base}/mailFolders/{folder_id}/messages"
        body = base64.b64encode(raw)
        item = self.api.json("POST", url, content=body, headers={"Content-Type": "text/plain"})
        self._stamp(str(item["id"]), msg)
        self._counted("mimeDraft")
        return str(item["id"])

    def _stamp(self, item_id: str, msg: StoredMessage) -> None:
        try:
            self.api.call("PATCH", f"{self._base}/messages/{item_id}", json=gj.draft_patch(msg))
        except ApiError:
            self.api.call("DELETE", f"{self._base}/messages/{item_id}")  # no unstamped copies
            raise

    def _adopt_draft(self, folder_id: str, msg: StoredMessage) -> str:
        """After an ambiguous draft create: an unstamped copy with our Message-ID is ours."""
        if not msg.message_id:
            return ""
        url = f"{self._base}/mailFolders/{folder_id}/messages"
        flt = f"internetMessageId eq {gj.odata_quote(msg.message_id)}"
        params = {"$filter": flt, "$select": "id", "$expand": gj.expand_props(gj.KEY_PROP)}
        for item in self.api.pages(url, params):
            if gj.prop_value(item, gj.KEY_PROP) is None:
                self._stamp(str(item["id"]), msg)
                self._counted("mimeDraft")
                return str(item["id"])
        return ""

    def _import(self, folder_id: str, msg: StoredMessage, raw: bytes) -> str:
        url = f"{self._beta_base}/mailFolders/{folder_id}/importMime"
        item = self.api.json("POST", url, json=gj.import_body(msg, raw))
        self._counted("importMime")
        return str(item["id"])

    def _switch_to_json(self, e: ApiError) -> None:
        with self._lock:
            if self.mode != "json":
                self.mode = "json"
                log.warning(
                    "importMime is not available (%s; it needs Mail-Advanced.ReadWrite): "
                    "creating messages as JSON, which cannot keep the MIME bytes",
                    e,
                )

    def _counted(self, mode: str) -> None:
        with self._lock:
            self.mode_counts[mode] += 1

    def _create_json(self, folder_id: str, msg: StoredMessage, raw: bytes) -> str:
        made = gj.json_message(msg, raw, msg.stable_key)
        url = f"{self._base}/mailFolders/{folder_id}/messages"
        item_id = str(self.api.json("POST", url, json=made.body)["id"])
        if made.late:
            try:
                for att in made.late:
                    self._attach(item_id, att)
                self.api.call(
                    "PATCH",
                    f"{self._base}/messages/{item_id}",
                    json={
                        "singleValueExtendedProperties": [
                            {"id": gj.KEY_PROP, "value": msg.stable_key}
                        ]
                    },
                )
            except (ApiError, Ambiguous):
                self.api.call("DELETE", f"{self._base}/messages/{item_id}")
                raise
        self._counted("json")
        return item_id

    def _attach(self, item_id: str, att: gj.AttachmentPart) -> None:
        url = f"{self._base}/messages/{item_id}/attachments"
        if len(att.data) <= gj.SMALL_ATTACHMENT:
            self.api.call("POST", url, json=att.graph())
            return
        session = self.api.json(
            "POST",
            f"{url}/createUploadSession",
            json={
                "AttachmentItem": {
                    "attachmentType": "file",
                    "name": att.name,
                    "size": len(att.data),
                    "contentType": att.content_type,
                    "isInline": att.is_inline,
                }
            },
        )
        total = len(att.data)
        for start in range(0, total, UPLOAD_CHUNK):
            chunk = att.data[start : start + UPLOAD_CHUNK]
            rng = f"bytes {start}-{start + len(chunk) - 1}/{total}"
            self.api.put_raw(str(session["uploadUrl"]), chunk, {"Content-Range": rng})

    # --- lookups -----------------------------------------------------------

    def _by_key(self, folder_id: str, key: str) -> list[dict[str, Any]]:
        url = f"{self._base}/mailFolders/{folder_id}/messages"
        return list(self.api.pages(url, {"$filter": gj.key_filter(key), "$select": "id"}))

    def find_duplicates(self, msg: StoredMessage, raw: bytes, folder: FolderPath) -> list[str]:
        """From an index of the folder made at the first question (see graph_index)."""
        pim = self._pim_folder(folder)
        if pim is None:
            folder_id = self._wrap(lambda: self._folders.ensure(folder, None))
        else:
            folder_id = pim.ns + pim.id
        with self._index_lock:
            index = self._indexes.get(folder_id)
            if index is None:
                index = self._pim.index(pim) if pim else FolderIndex.of(self._listing(folder_id))
                if index.incomplete:
                    log.info("removing %d half-made items in %s", len(index.incomplete), folder)
                    self.delete(folder, index.incomplete)
                self._indexes[folder_id] = index
        return index.lookup(msg.stable_key, msg.message_id)

    def _listing(self, folder_id: str) -> list[dict[str, Any]]:
        url = f"{self._base}/mailFolders/{folder_id}/messages"
        items: list[dict[str, Any]] = self._wrap(
            lambda: list(self.api.pages(url, listing_params()))
        )
        return items

    def delete(self, folder: FolderPath, target_ids: Sequence[str]) -> None:
        """Delete items, 20 per JSON $batch call (DELETE may safely run twice)."""
        pim = self._pim_folder(folder)
        if pim is not None:
            return self._pim.delete(pim, target_ids)
        ids = list(dict.fromkeys(target_ids))
        for start in range(0, len(ids), 20):
            reqs = [
                {
                    "id": str(n),
                    "method": "DELETE",
                    "url": f"/users/{quote(self.mailbox)}/messages/{quote(tid)}",
                }
                for n, tid in enumerate(ids[start : start + 20])
            ]
            answers = self._wrap(lambda reqs=reqs: self.api.batch(self._graph, reqs))
            for r in answers.values():
                # 404: already gone, which is what we wanted.
                if r.get("status") not in (204, 404):
                    body = r.get("body") if isinstance(r.get("body"), dict) else {}
                    err = body.get("error", {}) if isinstance(body, dict) else {}
                    e = ApiError(
                        int(r.get("status", 0)),
                        str(err.get("code", "")),
                        str(err.get("message", "")),
                    )
                    raise _edge_error(e, self.mailbox, "Mail.ReadWrite")

    def inventory(self, folder: FolderPath) -> Iterator[TargetItem]:
        pim = self._pim_folder(folder)
        if pim is not None:
            yield from self._pim.inventory(pim)
            return
        folder_id = self._wrap(lambda: self._folders.ensure(folder, None))
        for item in self._listing(folder_id):
            size = gj.prop_value(item, gj.PR_MESSAGE_SIZE)
            yield TargetItem(
                target_id=str(item["id"]),
                size=int(size) if size else None,
                subject=str(item.get("subject") or ""),
                message_id=str(item.get("internetMessageId") or ""),
                stable_key=gj.prop_value(item, gj.KEY_PROP) or "",
            )

    def read_mime(self, target_id: str) -> bytes:
        """The item's MIME as Exchange hands it out (GET …/$value), for verify."""
        url = f"{self._base}/messages/{quote(target_id)}/$value"
        data: bytes = self._wrap(lambda: self.api.call("GET", url).content)
        return data

    def close(self) -> None:
        self._pool.shutdown()
        self._http.close()


def _edge_error(e: ApiError, mailbox: str, permission: str) -> Exception:
    where = f"Graph mailbox {mailbox}"
    if e.status == 404 and e.code in (
        "ErrorInvalidUser",
        "MailboxNotEnabledForRESTAPI",
        "ResourceNotFound",
    ):
        return ConnectError(
            where,
            f"mailbox not found ({e.code}): check the address or id",
            hint="the mailbox must exist and be licensed for Exchange Online",
        )
    if e.status == 403:
        return AuthError(
            where,
            f"insufficient permission: the app needs the Graph permission "
            f"{permission} (application: {permission}, admin-consented)",
        )
    if e.status == 401:
        return AuthError(where, str(e))
    return ConnectError(where, str(e))


if TYPE_CHECKING:
    from pstkit.protocols import Sink

    _: type[Sink] = GraphSink
