"""The whole source/sink contract, in one file.

Data flows one way: Source -> pipeline.export -> Store -> pipeline.import_ -> Sink.
Sources never see the store; sinks never see sources. Converters are
constructed as `Cls(location, options)` (see `converters/__init__.py`) and
must be closed. Each converter module ends with
`if TYPE_CHECKING: _: type[Source] = TheClass` so mypy proves it fits.

Errors: a converter raises only `pstkit.errors` classes. A problem with one
message is yielded as `Skipped` (sources) or returned as `Failed` (sinks); a
problem with the whole connection raises `ConnectorError` (and `AuthError`
is never retried). Transient faults are retried inside the converter with
capped backoff, and must never deliver or store an item twice.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pstkit.model import Delivered, FetchResult, FolderInfo, FolderPath, Role, StoredMessage
from pstkit.options import FetchFilter


class Source(Protocol):
    """Reads mail from somewhere. Never changes anything there, except
    `committed()` for sources told to delete after export (POP3)."""

    #: identity without secrets, e.g. "imaps://bob@mail.example.com:993";
    #: the store keys cursors by it.
    key: str
    #: how many folders may be fetched concurrently (from different threads).
    max_connections: int

    def folders(self) -> list[FolderInfo]:
        """Every folder, parents before children, with roles where known."""
        ...

    def fetch(
        self,
        folder: FolderInfo,
        cursor: str | None,
        filt: FetchFilter,
        known: Container[tuple[str, str]],
    ) -> Iterator[FetchResult]:
        """Yield the folder's messages after `cursor` (None = from the start).

        `known` holds the (source_epoch, source_id) pairs the store already
        has in this folder: a source should not read those again (the
        pipeline drops them anyway).

        Each result may carry the cursor valid once it is durable; the
        pipeline stores it only after the message and all earlier ones are.
        """
        ...

    def committed(self, folder: FolderInfo, source_ids: Sequence[str]) -> None:
        """Called after these messages are durable in the store."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class KindCounter(Protocol):
    """Optional for sources whose folders hold more than mail (PST: contacts,
    events, tasks...): item counts per kind, "skipped" for items it cannot read."""

    def kinds(self, folder: FolderInfo) -> Mapping[str, int]: ...


@runtime_checkable
class NotExported(Protocol):
    """Optional for sources that leave items out on purpose (PST: Outlook's own system
    folders): counts by why ("system items, not exported"), added to the run's summary;
    not problems."""

    def not_exported(self) -> Mapping[str, int]: ...


@dataclass(frozen=True)
class Failed:
    """A sink could not deliver one message; the run goes on."""

    reason: str


@dataclass(frozen=True)
class TargetItem:
    """One item found in a target folder (for `verify` and duplicate checks)."""

    target_id: str
    size: int | None = None
    subject: str = ""
    message_id: str = ""
    stable_key: str = ""  # StoredMessage.stable_key if pstkit stamped it
    sha256: str = ""  # when the sink can read the bytes cheaply
    #: for contacts and events: ("name"|"emails"|"start"|"end", value) pairs the
    #: target reports (see pstkit.itemfields); verify compares them to the store's.
    fields: tuple[tuple[str, str], ...] = ()
    #: the SHA-256 of the bytes without their final line end, where the target adds one
    #: to a message that has none (an mbox: the next separator must start a line)
    sha256_unended: str = ""


@dataclass(frozen=True)
class BatchLimit:
    max_items: int = 1
    max_bytes: int = 64 * 1024 * 1024


class Sink(Protocol):
    """Delivers stored messages somewhere."""

    #: identity without secrets; the delivery ledger is keyed by it.
    key: str
    max_connections: int
    batch_limit: BatchLimit

    def folders(self) -> list[FolderInfo]:
        """Folders that exist in the target now, with roles where known."""
        ...

    def ensure_folder(self, path: FolderPath, role: Role | None, folder_class: str = "") -> None:
        """Create `path` (and parents) unless it exists. `folder_class` is the
        source folder's container class ("IPF.Appointment", "IPF.Contact"…, "" when
        unknown): Exchange sinks create a calendar/contacts/tasks folder from it."""
        ...

    def put_batch(
        self, folder: FolderPath, batch: Sequence[tuple[StoredMessage, bytes]]
    ) -> list[Delivered | Failed]:
        """Deliver a batch; one result per item, in order. Returns only once
        every `Delivered` item is durable in the target."""
        ...

    def find_duplicates(self, msg: StoredMessage, raw: bytes, folder: FolderPath) -> list[str]:
        """Target ids of items in `folder` that are this message already."""
        ...

    def delete(self, folder: FolderPath, target_ids: Sequence[str]) -> None: ...

    def inventory(self, folder: FolderPath) -> Iterator[TargetItem]:
        """Every item in a target folder (for verify)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class LocalTarget(Protocol):
    """Optional for sinks that write files (Maildir, mbox, PST). Opened with `only_read`
    they make nothing, so a target path that is not there can be told from an empty one:
    `verify` refuses it (a mistyped path), where it would call every item missing."""

    def exists(self) -> bool: ...


@runtime_checkable
class AtomicSink(Protocol):
    """Optional for sinks whose target shows nothing of a run until `close` has finished
    (the PST writer writes a work file and renames it into place at the end). The
    pipeline marks a batch "sending" in the ledger before it goes out so that the run
    after a kill looks in the target for it; a killed run leaves such a target as it was,
    so the marks are skipped: one durable ledger commit per batch less."""

    def shows_nothing_before_close(self) -> bool: ...


@runtime_checkable
class KnowsItems(Protocol):
    """Optional for sinks that know at once which items they hold (a file pstkit wrote,
    whose index is read when it is opened). An import asks it which of the ledger's
    delivered items are gone, before it writes: a PST replaced by an older copy would
    otherwise get "0 new, N already delivered" and exit 0 with items missing."""

    def missing(self, target_ids: Sequence[str]) -> list[str]: ...


@runtime_checkable
class LookAhead(Protocol):
    """Optional for sinks that prepare items before they are offered (the PST writer
    translates MIME -> MAPI in a second process). The pipeline reads the next batch while
    one is delivered and shows it to the sink as soon as it is read, from the reading
    thread: a hint only, made before any duplicate check, so some of its items may never
    be offered. The sink keeps at most the latest batch it was shown."""

    def upcoming(self, batch: Sequence[tuple[StoredMessage, bytes]]) -> None: ...


@runtime_checkable
class TwoStepSink(Protocol):
    """Optional for sinks that deliver an item in two requests, create then
    finish (Graph: importMime, then a PATCH with state and stable key). Between
    the two the item exists unfinished; the pipeline keeps the ids the sink
    reports, and after a kill asks the sink to settle each in-flight item."""

    def put_batch_noting(
        self,
        folder: FolderPath,
        batch: Sequence[tuple[StoredMessage, bytes]],
        created: Callable[[Sequence[tuple[int, str]]], None],
    ) -> list[Delivered | Failed]:
        """`put_batch`, calling `created` with (message id, target id) pairs of
        the items it made before it finishes them."""
        ...

    def settle(
        self, folder: FolderPath, msg: StoredMessage, raw: bytes, target_id: str
    ) -> list[str]:
        """For a message that was in flight when a run died (`target_id` as
        reported by `created`, or ""): its target ids, after finishing it if it
        was made but not finished. Empty when it never arrived."""
        ...
