"""Exchange Web Services sink (stage 2: import into Exchange).

Items are created with CreateItem(MimeContent) plus MAPI properties, one
request per batch, so Exchange never sees them as drafts or dated today (the
properties are decided in the pure `pstkit.converters.ews.props`; exchangelib is
reached only through `pstkit.converters.ews.client`).

A PST's contacts, distribution lists, appointments and tasks are created as
EWS Contact, DistributionList, CalendarItem and Task (what to send is decided
in the pure `pstkit.converters.ews.kinds`), never as e-mail; notes and journal
entries are reported as failures and stay in the store.

Retries happen here, not in exchangelib: after a failure that may have
reached the server (connection dropped, server busy) the batch's items are
first looked up by their stamped source key, and only the missing ones are
sent again, so no item is lost or doubled. A request the server refuses as
too large (HTTP 413) is halved, and later batches use the lower limit. A SOAP
fault for a whole request (one item in it the server will not take) is narrowed
down by halving too: that item fails with the server's words, the rest arrive.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from pstkit.converters.ews import kinds as ews_kinds
from pstkit.converters.ews import props as ews_props
from pstkit.converters.ews.client import EwsClient, FolderRef, ItemError
from pstkit.converters.ews.errors import Refused, RequestTooLarge, Throttled
from pstkit.errors import ConnectorError, QuotaExceeded, TransientError, UsageError
from pstkit.location import Location
from pstkit.model import Delivered, FolderInfo, FolderPath, ItemKind, Role, StoredMessage
from pstkit.options import ConnectOptions
from pstkit.protocols import BatchLimit, Failed, TargetItem

DEFAULT_REQUEST_LIMIT = 64 * 1024 * 1024  # EWS maxReceivedMessageSize default
DEFAULT_BATCH_ITEMS = 100
MIN_REQUEST_LIMIT = 8 * 1024
QUOTA_CODES = ("ErrorQuotaExceeded", "ErrorQuotaExceededOnDelete")
T = TypeVar("T")
log = logging.getLogger(__name__)
Batch = Sequence[tuple[StoredMessage, bytes]]
Results = list[Delivered | Failed | None]


@dataclass(frozen=True)
class _Out:
    """One stored item as it goes on the wire (see ews_kinds for non-mail items)."""

    key: str  # StoredMessage.stable_key, stamped on the created item
    content: bytes  # MimeContent: the message, or the event's iCalendar / contact's vCard
    props: ews_props.ItemProps
    note: str = ""  # reported with the delivered item (what was not carried)
    size: int = 0  # bytes sent base64-encoded: the content and any attachments


Work = Sequence[_Out | None]


class EwsSink:
    """Imports into one Exchange mailbox over EWS. `put_batch` may run in
    several threads at once (exchangelib keeps a pool of `connections` sessions)."""

    def __init__(self, location: Location, options: ConnectOptions) -> None:
        mailbox = options.mailbox or location.user
        if "@" not in mailbox:
            raise ConnectorError(
                f"give the target mailbox's SMTP address with --mailbox ({location.display()})"
            )
        self.key = f"{location.display()}?mailbox={mailbox.lower()}"
        # Exchange Online allows 27 concurrent EWS connections per user.
        self.max_connections = min(27, max(1, options.connections))
        extra = options.extra  # until ConnectOptions has fields for these
        self._request_limit = int(_number(extra, "ews_request_limit", DEFAULT_REQUEST_LIMIT))
        items = int(_number(extra, "ews_batch_items", DEFAULT_BATCH_ITEMS))
        # The pipeline sums raw sizes: give it what fits into one request after base64.
        self.batch_limit = BatchLimit(items, ews_props.raw_budget(self._request_limit, items))
        self._retries = int(_number(extra, "ews_retries", 8))
        self._max_backoff = _number(extra, "ews_max_backoff", 300)
        self.backoffs: list[float] = []  # every wait taken, for logs and tests
        self._lock = threading.Lock()
        self._folders: dict[FolderPath, FolderRef] = {}
        self._indexes: dict[FolderPath, _Index] = {}
        self._client = EwsClient(location, options, mailbox)
        self._where = self._client.where
        self._top = self._retrying(self._client.top)

    def close(self) -> None:
        self._client.close()

    # --- retry policy -------------------------------------------------------------

    def _retrying(self, call: Callable[[], T]) -> T:
        """Run an idempotent call; throttling and drops are retried with capped backoff."""
        attempt = 0
        while True:
            try:
                return call()
            except Throttled as e:
                attempt += 1
                self._wait(attempt, e.back_off, e)

    def _wait(self, attempt: int, hint: float | None, error: Exception) -> None:
        if attempt > self._retries:
            raise TransientError(
                self._where, f"still failing after {self._retries} retries ({error})"
            ) from error
        delay = ews_props.backoff_seconds(attempt, hint, self._max_backoff)
        with self._lock:
            self.backoffs.append(delay)
        log.info("%s; retry %d in %.1f s", error, attempt, delay)
        self._client.restore_pool(self.max_connections)
        time.sleep(delay)

    # --- folders --------------------------------------------------------------------

    def folders(self) -> list[FolderInfo]:
        roles = self._retrying(self._client.roles)
        listing = self._retrying(lambda: self._client.walk(self._top))
        paths = ews_props.folder_paths(((f.id, f.parent_id, f.name) for f in listing), self._top.id)
        out = []
        for f in listing:
            if f.id in paths:
                info = FolderInfo(
                    paths[f.id],
                    roles.get(f.id),
                    f.name,
                    f.total_count,
                    container_class=f.folder_class,
                )
                out.append(info)
                with self._lock:
                    self._folders.setdefault(paths[f.id], f)
        return sorted(out, key=lambda i: i.path)

    def ensure_folder(self, path: FolderPath, role: Role | None, folder_class: str = "") -> None:
        self._folder(path, role, folder_class)

    def _folder(self, path: FolderPath, role: Role | None = None, cls: str = "") -> FolderRef:
        """The folder for `path`: by distinguished id when `role` has one, else
        found or created level by level below the top of the mailbox; a new
        leaf is a calendar/contacts/tasks folder when the source's class `cls`
        says so (Exchange refuses calendar items and contacts elsewhere)."""
        with self._lock:
            if path in self._folders:
                return self._folders[path]
        if not path:
            return self._top
        if role is not None and role in ews_props.DISTINGUISHED:
            folder = self._retrying(lambda: self._client.role_folder(role))
        else:
            parent = self._folder(path[:-1])
            made = ews_props.folder_class(cls)
            folder = self._retrying(lambda: self._client.typed_child(parent, path[-1], made))
        with self._lock:
            return self._folders.setdefault(path, folder)

    # --- delivery ---------------------------------------------------------------------

    def put_batch(self, folder: FolderPath, batch: Batch) -> list[Delivered | Failed]:
        target = self._folder(folder)
        results: Results = [None] * len(batch)
        work = [self._prepare(msg, raw, results, i) for i, (msg, raw) in enumerate(batch)]
        todo = [i for i, out in enumerate(work) if out is not None]
        sizes = [out.size for out in work if out is not None]
        for group in ews_props.split_by_size(
            sizes, self.batch_limit.max_items, self._request_limit
        ):
            self._create(target, [todo[g] for g in group], work, results)
        with self._lock:
            if folder in self._indexes:
                for (msg, _), res in zip(batch, results, strict=True):
                    if isinstance(res, Delivered):
                        mid = msg.message_id if msg.kind is ItemKind.MAIL else ""
                        self._indexes[folder].add(res.target_id, msg.stable_key, mid)
        return [_final(r, out) for r, out in zip(results, work, strict=True)]

    def _prepare(self, msg: StoredMessage, raw: bytes, results: Results, i: int) -> _Out | None:
        """The item to send, or None with `results[i]` saying why it is not sent.
        Never a non-mail item as a Message: that would be a silent change."""
        shaped = ews_kinds.shape(msg, raw)
        if isinstance(shaped, str):
            results[i] = Failed(shaped)
            return None
        fits = ews_props.max_raw_size(self._request_limit)
        if shaped.wire_size > fits:
            results[i] = Failed(
                f"{shaped.wire_size} bytes is more than this server accepts in one "
                f"request ({fits} bytes of MIME)"
            )
            return None
        props = ews_props.shaped_props(msg, shaped)
        return _Out(msg.stable_key, shaped.content, props, shaped.note, shaped.wire_size)

    def _create(self, target: FolderRef, idxs: list[int], batch: Work, results: Results) -> None:
        pending, attempt, unsure = list(idxs), 0, False
        while pending:
            try:
                if unsure:  # the last try may have created some: find those first
                    pending = self._settle(target, pending, batch, results)
                    if not pending:
                        return
                items = [(_sure(batch[i]).content, _sure(batch[i]).props) for i in pending]
                answers = self._client.create(target, items)
            except RequestTooLarge:
                self._too_large(target, pending, batch, results)
                return
            except Refused as e:
                self._refused(target, pending, batch, results, e)
                return
            except Throttled as e:
                attempt, unsure = attempt + 1, True
                self._wait(attempt, e.back_off, e)
                continue
            pending = _record(pending, answers, results, self._where)
            if pending:  # refused as busy item by item: only those again
                attempt, unsure = attempt + 1, True
                self._wait(attempt, None, TransientError(self._where, "ErrorServerBusy per item"))

    def _settle(
        self, target: FolderRef, pending: list[int], batch: Work, results: Results
    ) -> list[int]:
        """Mark the items an unanswered earlier try did create; return the others."""
        found = self._client.find_by_keys(target, [_sure(batch[i]).key for i in pending])
        for i in pending:
            key = _sure(batch[i]).key
            if key in found:
                results[i] = Delivered(found[key])
        return [i for i in pending if results[i] is None]

    def _too_large(
        self, target: FolderRef, pending: list[int], batch: Work, results: Results
    ) -> None:
        """HTTP 413: the server's request limit is lower than assumed. Halve and go on."""
        size = ews_props.request_bytes(_sure(batch[i]).size for i in pending)
        with self._lock:
            self._request_limit = min(self._request_limit, max(size // 2, MIN_REQUEST_LIMIT))
            items = self.batch_limit.max_items
            self.batch_limit = BatchLimit(items, ews_props.raw_budget(self._request_limit, items))
        if len(pending) == 1:
            results[pending[0]] = Failed(f"the server refuses a request of {size} bytes (HTTP 413)")
            return
        half = len(pending) // 2
        self._create(target, pending[:half], batch, results)
        self._create(target, pending[half:], batch, results)

    def _refused(
        self, target: FolderRef, pending: list[int], batch: Work, results: Results, e: Refused
    ) -> None:
        """A SOAP fault for the whole request: nothing of it was created. Halve until
        the item the server will not take is alone; it fails with the server's words."""
        if len(pending) == 1:
            results[pending[0]] = Failed(f"the server refused it: {e.words}")
            return
        half = len(pending) // 2
        self._create(target, pending[:half], batch, results)
        self._create(target, pending[half:], batch, results)

    # --- duplicates, verify -----------------------------------------------------------

    def find_duplicates(self, msg: StoredMessage, raw: bytes, folder: FolderPath) -> list[str]:
        """By stamped key first; else by Message-ID (mail not stamped by this store)."""
        index = self._index(folder)
        with self._lock:
            found = index.by_key.get(msg.stable_key) or (
                index.by_message_id.get(msg.message_id) if msg.message_id else None
            )
            return list(found or ())

    def _index(self, folder: FolderPath) -> _Index:
        """The folder's items by key and Message-ID: one listing per folder and
        run instead of a FindItem per message; kept current by put/delete."""
        with self._lock:
            if folder in self._indexes:
                return self._indexes[folder]
        target = self._folder(folder)
        index = _Index()
        for item in self._retrying(lambda: self._client.listing(target)):
            index.add(item.target_id, item.stable_key, item.message_id)
        with self._lock:
            return self._indexes.setdefault(folder, index)

    def delete(self, folder: FolderPath, target_ids: Sequence[str]) -> None:
        self._retrying(lambda: self._client.soft_delete(list(target_ids)))
        with self._lock:
            if folder in self._indexes:
                self._indexes[folder].remove(set(target_ids))

    def inventory(self, folder: FolderPath) -> Iterator[TargetItem]:
        """Every item, with its Size as Exchange reports it. For a calendar item
        or contact that is not the stored size (the store holds the wrapping
        message, Exchange its own rendering of the card): verify compares such
        items by stamped key and subject only, never by size or bytes."""
        target = self._folder(folder)
        # Listed completely before yielding, so a retried page cannot repeat items.
        yield from self._retrying(lambda: self._client.listing(target))


def _number(extra: Mapping[str, str], key: str, default: float) -> float:
    try:
        value = float(extra.get(key, default))
    except ValueError:
        raise UsageError(f"--opt {key}={extra[key]!r} is not a number") from None
    if value < 0:
        raise UsageError(f"--opt {key} must not be negative")
    return value


@dataclass
class _Index:
    by_key: dict[str, list[str]] = field(default_factory=dict)
    by_message_id: dict[str, list[str]] = field(default_factory=dict)

    def add(self, target_id: str, key: str, message_id: str) -> None:
        if key:
            self.by_key.setdefault(key, []).append(target_id)
        if message_id:
            self.by_message_id.setdefault(message_id, []).append(target_id)

    def remove(self, target_ids: set[str]) -> None:
        for table in (self.by_key, self.by_message_id):
            for name, ids in list(table.items()):
                table[name] = [i for i in ids if i not in target_ids]


def _sure(out: _Out | None) -> _Out:
    assert out is not None  # only prepared items are ever sent
    return out


def _final(result: Delivered | Failed | None, out: _Out | None) -> Delivered | Failed:
    if result is None:
        return Failed("not delivered")
    if isinstance(result, Delivered) and out is not None and out.note:
        return Delivered(result.target_id, out.note)
    return result


def _record(
    pending: list[int], answers: list[str | ItemError], results: Results, where: str
) -> list[int]:
    """Store one CreateItem's per-item answers; return the items to send again."""
    again = []
    for i, answer in zip(pending, answers, strict=True):
        if isinstance(answer, str):
            results[i] = Delivered(answer)
        elif answer.transient:
            again.append(i)
        elif answer.code in QUOTA_CODES:  # every further item would fail the same way
            raise QuotaExceeded(where, answer.message)
        else:
            results[i] = Failed(f"{answer.code}: {answer.message}")
    return again


if TYPE_CHECKING:
    from pstkit.protocols import Sink

    _: type[Sink] = EwsSink
