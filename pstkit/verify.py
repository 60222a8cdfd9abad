"""`verify`: compare a store with a target, one target folder at a time.

Marks as `rclone check`: = same, - missing in the target, + only in the
target, * differs, ! could not be compared. Several store folders may land in
one target folder (two trash folders of a PST, both role trash): they are
verified together against that folder's one inventory, so an item is never
both `=` and `+`. Matching is multiset-correct: each target item answers for
at most one store item, so two identical copies in the store need two.

What counts as the same: the bytes (or their CRLF form, as IMAP servers
store bare LF line ends), when the target gives them; else for mail the
subject (whitespace-normalised on both sides), for contacts and events the
fields that matter (`pstkit.itemfields`).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from pstkit.catalog import MessageRow, text_to_path
from pstkit.errors import IntegrityError
from pstkit.importing import _wanted, make_plan
from pstkit.itemfields import differences, stored_fields
from pstkit.mapping import PlanEntry, path_text
from pstkit.model import FolderPath, ItemKind
from pstkit.options import MappingOptions
from pstkit.protocols import Sink, TargetItem
from pstkit.store import Store

MARK_NAMES = {"=": "matching", "-": "missing", "+": "extra", "*": "differing", "!": "errors"}


@dataclass(frozen=True)
class VerifyLine:
    """One line of the comparison; `item` is the store message id (the target
    id for `+`); subject, Message-ID, size and date describe the item."""

    mark: str
    folder: FolderPath
    item: str
    detail: str = ""
    subject: str = ""
    message_id: str = ""
    size: int | None = None
    date: str = ""


def verify(store: Store, sink: Sink, opts: MappingOptions | None = None) -> Iterator[VerifyLine]:
    opts = opts or MappingOptions()
    ledger = store.catalog.deliveries(sink.key)
    existing = {f.path for f in sink.folders()}
    for target, rows in _by_target(store, make_plan(store, sink, opts), ledger).items():
        if target not in existing:
            for row in rows:
                yield _line("-", target, row, "folder missing in target")
            continue
        yield from _verify_folder(store, target, rows, list(sink.inventory(target)), ledger)


def _by_target(
    store: Store, entries: Iterable[PlanEntry], ledger: dict[int, tuple[str, str, str]]
) -> dict[FolderPath, list[MessageRow]]:
    """Store rows per target folder: where the ledger says each went, else where
    the plan sends it now (a plan made after the import may differ: a folder the
    import created can since have taken a role)."""
    groups: dict[FolderPath, list[MessageRow]] = {}
    for entry in entries:
        if not _wanted(entry):
            continue
        groups.setdefault(entry.target, [])
        for row in store.rows(entry.source.id):
            went = ledger.get(row.msg.id)
            target = text_to_path(went[0]) if went and went[2] != "sending" else entry.target
            groups.setdefault(target, []).append(row)
    return groups


@dataclass
class _Index:
    """The target folder's items by each way of finding one; `take` hands an
    item out once."""

    items: list[TargetItem]
    used: set[int] = field(default_factory=set)
    keys: dict[tuple[str, object], list[int]] = field(default_factory=lambda: defaultdict(list))

    def __post_init__(self) -> None:
        for n, i in enumerate(self.items):
            for key in (("id", i.target_id), ("key", i.stable_key),
                        ("mid", (i.message_id, i.size)), ("mid1", i.message_id)):  # fmt: skip
                if key[1] and key[1] != ("", i.size):
                    self.keys[key].append(n)

    def take(self, *keys: tuple[str, object]) -> TargetItem | None:
        for key in keys:
            for n in self.keys.get(key, ()):
                if n not in self.used:
                    self.used.add(n)
                    return self.items[n]
        return None

    def unused(self) -> Iterator[TargetItem]:
        return (i for n, i in enumerate(self.items) if n not in self.used)


def _verify_folder(
    store: Store, target: FolderPath, rows: Iterable[MessageRow], items: list[TargetItem],
    ledger: dict[int, tuple[str, str, str]],
) -> Iterator[VerifyLine]:  # fmt: skip
    index = _Index(items)
    for row in rows:
        msg = row.msg
        target_id = ledger.get(msg.id, ("", "", ""))[1]
        found = index.take(
            ("id", target_id), ("key", msg.stable_key),
            ("mid", (msg.message_id, msg.size)), ("mid1", msg.message_id),
        )  # fmt: skip
        if found is None:
            yield _line("-", target, row, "")
            continue
        try:
            yield compare(store, row, target, found)
        except IntegrityError as e:  # the store's copy is damaged: nothing to compare with
            yield _line("!", target, row, f"store file damaged: {e.message}")
    for item in index.unused():
        yield VerifyLine("+", target, item.target_id, "", item.subject, item.message_id, item.size)


def compare(store: Store, row: MessageRow, folder: FolderPath, item: TargetItem) -> VerifyLine:
    msg = row.msg
    if item.sha256:
        if item.sha256 == msg.sha256:
            return _line("=", folder, row, "")
        # IMAP servers store bare LF line ends as CRLF (RFC 5322 requires CRLF):
        # the same message, with its line ends normalised, is not a difference.
        if hashlib.sha256(crlf(store.read(row))).hexdigest() == item.sha256:
            return _line("=", folder, row, "line ends made CRLF by the target")
        return _line("*", folder, row, "content differs")
    if msg.kind is not ItemKind.MAIL and item.fields:
        found = differences(stored_fields(msg.kind, store.read(row)), dict(item.fields))
        return _line("*" if found else "=", folder, row, "; ".join(found))
    if item.subject != msg.subject and _words(item.subject) != _words(msg.subject):
        return _line("*", folder, row, f"subject {item.subject!r} != {msg.subject!r}")
    return _line("=", folder, row, "")


def _words(text: str) -> str:
    return " ".join(text.split())


def _line(mark: str, folder: FolderPath, row: MessageRow, detail: str) -> VerifyLine:
    msg = row.msg
    date = msg.received.isoformat() if msg.received else ""
    return VerifyLine(mark, folder, str(msg.id), detail, msg.subject, msg.message_id, msg.size,
                      date)  # fmt: skip


def crlf(raw: bytes) -> bytes:
    """Every line end as CRLF (bare CR and bare LF included)."""
    return re.sub(rb"\r\n|\r|\n", b"\r\n", raw)


# --- the summary -----------------------------------------------------------


@dataclass
class VerifySummary:
    """Counts per mark, in total and per target folder (rclone check's closing block)."""

    total: Counter[str] = field(default_factory=Counter)
    folders: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, line: VerifyLine) -> None:
        name = MARK_NAMES[line.mark]
        self.total[name] += 1
        self.folders.setdefault(path_text(line.folder), Counter())[name] += 1

    @property
    def clean(self) -> bool:
        return all(self.total[n] == 0 for n in ("missing", "extra", "differing", "errors"))

    def unclean_folders(self) -> dict[str, Counter[str]]:
        return {f: c for f, c in self.folders.items()
                if any(c[n] for n in ("missing", "extra", "differing", "errors"))}  # fmt: skip

    def as_dict(self) -> dict[str, object]:
        return {"totals": {n: self.total[n] for n in MARK_NAMES.values()},
                "folders": {f: {n: c[n] for n in MARK_NAMES.values()}
                            for f, c in self.folders.items()}}  # fmt: skip


def counts_text(c: Counter[str]) -> str:
    """'2000 matching, 0 missing, 0 extra, 0 differing' (errors only when there are any)."""
    names = ["matching", "missing", "extra", "differing"] + (["errors"] if c["errors"] else [])
    return ", ".join(f"{c[n]} {n}" for n in names)
