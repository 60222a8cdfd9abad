"""Import into Exchange Online over Microsoft Graph: `graph://TENANT/MAILBOX`.

A mail item takes two requests: create (`create.py`: Graph's importMime
action with the base64 MIME, a MIME draft, or JSON when the tenant refuses
importMime; the mode is reported in `mode`/`mode_counts`), then one PATCH
for what MIME cannot carry (`finish.py`, in JSON batches). Between the two
the item exists unstamped: `put_batch_noting` reports the created ids so the
pipeline's ledger keeps them, and after a kill `settle` finds such an item
(by that id, else by its Message-ID) and finishes it instead of sending it
again. A message is "delivered" only once its PATCH is done.

Contacts and events (from PST sources) go into contact folders and
calendars, created from JSON: see pim/folders.py and pim/sink.py.

Every item carries the stamped stable key (jsonmail.KEY_PROP); after an
ambiguous failure the key is looked up before anything is sent again.
Location parameters for other clouds or the test server:
`?authority=https://login.example&graph=https://graph.example/v1.0`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from pstkit.converters.graph import jsonmail as gj
from pstkit.converters.graph.auth import auth_from_options, tls_verify
from pstkit.converters.graph.client import ApiError, GraphHttp, answer_error
from pstkit.converters.graph.create import MODES, Creator, Lost, Made
from pstkit.converters.graph.finish import MAX_BATCH, Finisher
from pstkit.converters.graph.folders import FolderTree
from pstkit.converters.graph.index import FolderIndex, listing_params
from pstkit.converters.graph.pim.folders import PimFolder, PimFolders
from pstkit.converters.graph.pim.sink import PimSink
from pstkit.errors import AuthError, BadLocation, ConnectError, UsageError
from pstkit.location import Location
from pstkit.model import Delivered, FolderInfo, FolderPath, ItemKind, Role, StoredMessage
from pstkit.options import ConnectOptions
from pstkit.protocols import BatchLimit, Failed, TargetItem

log = logging.getLogger("pstkit.graph")

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_GRAPH = "https://graph.microsoft.com/v1.0"
Created = Callable[[Sequence[tuple[int, str]]], None]


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
        mode = options.extra.get("graph_mode", "importMime")
        if mode not in MODES:
            raise UsageError(f"graph_mode must be one of {', '.join(MODES)}, not {mode!r}")
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
            edge = lambda e: _edge_error(e, self.mailbox, "Mail.ReadWrite")  # noqa: E731
            self._creator = Creator(self.api, self._base, self._beta_base, mode, edge)
            self._finisher = Finisher(self.api, graph, self.mailbox, self._pool)
            self._folders = FolderTree(self.api, self._base)
            # Contacts and calendars live outside mailFolders (see graph_pim_folders).
            self._pim_folders = PimFolders(self.api, self._base)
            invite = options.extra.get("graph_invite_attendees", "") == "yes"
            self._pim = PimSink(self.api, self._base, self._pim_error, invite)
            self._check_mailbox()
        except BaseException:
            self._http.close()  # nobody will call close() on a half-made sink
            raise

    @property
    def mode(self) -> str:
        """Either importMime, or json once the tenant refused importMime (or when asked)."""
        return self._creator.mode

    @property
    def mode_counts(self) -> dict[str, int]:
        return self._creator.mode_counts

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
        return self.put_batch_noting(folder, batch, lambda made: None)

    def put_batch_noting(
        self, folder: FolderPath, batch: Sequence[tuple[StoredMessage, bytes]], created: Created
    ) -> list[Delivered | Failed]:
        """Create every item (4 side by side), report the ones still to be
        finished as (store id, target id) through `created`, then PATCH them."""
        pim = self._pim_folder(folder)
        if pim is not None:  # a contacts folder or calendar: items made from JSON
            return list(self._pool.map(lambda item: self._pim.put(pim, *item), batch))
        folder_id = self._wrap(lambda: self._folders.ensure(folder, None))

        def create(msg: StoredMessage, raw: bytes) -> Made | Failed | Lost:
            # Graph creates items from MIME only as messages: a contact or event
            # sent that way would become an e-mail, a silent change.
            if msg.kind is not ItemKind.MAIL:
                return Failed(
                    f"Graph import of {msg.kind.value} items is not supported yet; "
                    "use ews:// or keep them in the store"
                )
            return self._creator.create(folder_id, msg, raw)

        # The pipeline works one folder per thread: without the pool a big
        # Inbox would use 1 of the mailbox's 4 slots.
        tried = list(self._pool.map(lambda item: create(*item), batch))
        # Lost answers are looked up one by one once every other create is answered.
        made = [self._creator.recover(folder_id, msg, raw, m) if isinstance(m, Lost) else m
                for (msg, raw), m in zip(batch, tried, strict=True)]  # fmt: skip
        todo = [(msg.id, m) for (msg, _), m in zip(batch, made, strict=True)
                if isinstance(m, Made) and m.patch is not None]  # fmt: skip
        if todo:
            created([(mid, m.item_id) for mid, m in todo])
        errors = dict(zip([m.item_id for _, m in todo], self._finish([m for _, m in todo]),
                          strict=True))  # fmt: skip
        return [_result(m, errors) for m in made]

    def _finish(self, made: Sequence[Made]) -> list[str]:
        return self._finisher.finish([(m.item_id, m.patch or {}) for m in made])

    def settle(
        self, folder: FolderPath, msg: StoredMessage, raw: bytes, target_id: str
    ) -> list[str]:
        """For a message whose batch was in flight when a run died: its target
        ids, after finishing it if it was created but not yet PATCHed (found by
        the id the ledger kept, else by stable key, else by Message-ID or, for a
        message without one, by subject and sent time)."""
        if self._pim_folder(folder) is not None:
            return self.find_duplicates(msg, raw, folder)
        folder_id = self._wrap(lambda: self._folders.ensure(folder, None))
        made = self._wrap(lambda: self._creator.by_id(target_id, msg)) if target_id else None
        made = made or self._wrap(lambda: self._creator.settle(folder_id, msg, raw))
        if made is None:
            return []
        if made.patch is not None:
            log.info("message %s: finishing item %s left unstamped", msg.id, made.item_id)
            (error,) = self._finish([made])
            if error:
                raise ConnectError(
                    f"Graph mailbox {self.mailbox}",
                    f"cannot finish item {made.item_id} of message {msg.id}: {error}",
                )
        return [made.item_id]

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
        """Delete items, 20 per sequential JSON $batch call (DELETE may safely run twice)."""
        pim = self._pim_folder(folder)
        if pim is not None:
            return self._pim.delete(pim, target_ids)
        ids = list(dict.fromkeys(target_ids))
        for start in range(0, len(ids), MAX_BATCH):
            reqs = [
                {
                    "id": str(n),
                    "method": "DELETE",
                    "url": f"/users/{quote(self.mailbox)}/messages/{quote(tid)}",
                }
                for n, tid in enumerate(ids[start : start + MAX_BATCH])
            ]
            answers = self._wrap(
                lambda reqs=reqs: self.api.batch(self._graph, reqs, sequential=True)
            )
            for r in answers.values():
                # 404: already gone, which is what we wanted.
                if r.get("status") not in (204, 404):
                    raise _edge_error(answer_error(r), self.mailbox, "Mail.ReadWrite")

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


def _result(made: Made | Failed, errors: dict[str, str]) -> Delivered | Failed:
    if isinstance(made, Failed):
        return made
    error = errors.get(made.item_id, "")
    if error:  # the ledger keeps the id: the next run finishes the item, not resends it
        return Failed(f"created as {made.item_id} but not finished (state, stable key): {error}")
    return Delivered(made.item_id)


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
