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
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from pstkit.catalog import MessageRow, path_to_text, text_to_path
from pstkit.errors import IntegrityError
from pstkit.importing import _wanted, make_plan
from pstkit.itemfields import differences, stored_fields
from pstkit.mapping import PlanEntry, path_text
from pstkit.model import FolderPath, ItemKind, StoredMessage
from pstkit.options import MappingOptions
from pstkit.protocols import Sink, TargetItem
from pstkit.scratch import scratch_db
from pstkit.store import Store

_T = TypeVar("_T")

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
    """One target folder at a time: its store rows stream from the catalog with the
    ledger joined in SQL, and its inventory is indexed in a temporary file (`_Index`),
    so memory does not grow with the mailbox or the folder."""
    opts = opts or MappingOptions()
    existing = {f.path for f in sink.folders()}
    for target, sources in _targets(store, sink, make_plan(store, sink, opts)).items():
        if target not in existing:
            for row, _ in _rows(store, sink.key, target, sources):
                yield _line("-", target, row, "folder missing in target")
            continue
        yield from _verify_folder(store, target, partial(_rows, store, sink.key, target, sources),
                                  sink.inventory(target))  # fmt: skip


def _targets(
    store: Store, sink: Sink, entries: Iterable[PlanEntry]
) -> dict[FolderPath, list[tuple[int, bool]]]:
    """Target folder -> (store folder id, whether the plan sends it there) whose rows are
    there: a row is where the ledger says it went, else where the plan sends it now (a
    plan made after the import may differ: a folder the import created can since have
    taken a role). Targets come in the order of their first row."""
    went: dict[int, list[str]] = defaultdict(list)
    for folder_id, target_text in store.catalog.ledger_targets(sink.key):
        went[folder_id].append(target_text)
    groups: dict[FolderPath, list[tuple[int, bool]]] = {}
    for entry in entries:
        if not _wanted(entry):
            continue
        groups.setdefault(entry.target, []).append((entry.source.id, True))
        for target in map(text_to_path, went.get(entry.source.id, ())):
            if target != entry.target:
                groups.setdefault(target, []).append((entry.source.id, False))
    return groups


def _rows(
    store: Store, sink_key: str, target: FolderPath, sources: list[tuple[int, bool]]
) -> Iterator[tuple[MessageRow, str]]:
    """The store rows in `target`, each with the target id the ledger holds for it."""
    text = path_to_text(target)
    for folder_id, planned in sources:
        yield from store.rows_for_target(folder_id, sink_key, text, planned)


_INDEX_SCHEMA = """
CREATE TABLE items(n INTEGER PRIMARY KEY, target_id TEXT, size INTEGER, subject TEXT,
                   message_id TEXT, stable_key TEXT, sha256 TEXT, fields TEXT,
                   sha256_unended TEXT, used INTEGER NOT NULL DEFAULT 0);
CREATE TABLE keys(kind TEXT, value TEXT, n INTEGER);
CREATE TABLE paired(message INTEGER PRIMARY KEY, n INTEGER);
"""


class _Index:
    """The target folder's items by each way of finding one; `take` hands an item out
    once, the first unused in inventory order. Held in a private temporary SQLite file
    (deleted on close; SQLite keeps a bounded page cache), not in memory: a folder may
    hold a million items."""

    def __init__(self, items: Iterable[TargetItem]) -> None:
        # 512 KiB, not SQLite's 2,000: a folder of 1,000 items fits either way, one of
        # 10,000 filled the larger cache and verify's peak RSS at 100,000 messages was
        # 1.19-1.20 times that at 10,000 (1.09 now; scripts/bench_scale.py), no slower.
        self._db = scratch_db(cache_kib=512, threads=True)
        self._db.executescript(_INDEX_SCHEMA)
        with self._db:
            for chunk in _chunks(enumerate(items), 1000):
                self._db.executemany(
                    "INSERT INTO items VALUES(?,?,?,?,?,?,?,?,?,0)",
                    [(n, i.target_id, i.size, i.subject, i.message_id, i.stable_key, i.sha256,
                      json.dumps(i.fields), i.sha256_unended) for n, i in chunk],
                )  # fmt: skip
                self._db.executemany(
                    "INSERT INTO keys VALUES(?,?,?)",
                    [(kind, value, n) for n, i in chunk for kind, value in _keys(i)],
                )
        self._db.execute("CREATE INDEX keys_value ON keys(kind, value, n)")

    def take(self, msg: StoredMessage, *keys: tuple[str, str]) -> TargetItem | None:
        found = self._take(msg, keys)
        return None if found is None else _item(found)

    def _take(self, msg: StoredMessage, keys: Iterable[tuple[str, str]]) -> tuple[Any, ...] | None:
        for kind, value in keys:
            if not value:
                continue
            found = self._db.execute(
                "SELECT i.* FROM keys k JOIN items i ON i.n=k.n WHERE k.kind=? AND k.value=?"
                " AND i.used=0 ORDER BY k.n LIMIT 1",
                (kind, value),
            ).fetchone()
            if found is None:
                continue
            if kind != "id" or _same_item(msg, _item(found)):
                self._db.execute("UPDATE items SET used=1 WHERE n=?", (found[0],))
                return tuple(found)
        return None

    def pair(self, msg: StoredMessage, target_id: str) -> None:
        """Give `msg` the item its ledger id names, before any row is matched by content."""
        found = self._take(msg, [("id", target_id)])
        if found is not None:
            self._db.execute("INSERT INTO paired VALUES(?, ?)", (msg.id, found[0]))

    def paired(self, msg: StoredMessage) -> TargetItem | None:
        found = self._db.execute(
            "SELECT i.* FROM paired p JOIN items i ON i.n=p.n WHERE p.message=?", (msg.id,)
        ).fetchone()
        return None if found is None else _item(found)

    def unused(self) -> Iterator[TargetItem]:
        cur = self._db.execute("SELECT * FROM items WHERE used=0 ORDER BY n")
        return (_item(r) for r in cur)

    def close(self) -> None:
        self._db.close()


def _same_item(msg: StoredMessage, item: TargetItem) -> bool:
    """Whether the item found under the id the ledger holds can be this message. An id
    can come to name another item: an mbox id is a byte offset, which moves when a user
    deletes a message before it. Pairing by such an id would call the next message
    "differing" and the last one "missing", and --redeliver-missing would send that one
    twice while the deleted one stays lost. A different stable key stamped on the item
    proves it is another; so does a different Message-ID where the target holds our own
    bytes (it reports their SHA-256: local targets), since nothing there rewrites one.
    A server may give a message without one its own, so there a differing Message-ID
    proves nothing."""
    if item.stable_key and item.stable_key != msg.stable_key:
        return False
    return not (item.sha256 and item.message_id and msg.message_id
                and item.message_id != msg.message_id)


def _keys(i: TargetItem) -> Iterator[tuple[str, str]]:
    """An item's keys, as `take` is asked for them (none that is empty)."""
    if i.target_id:
        yield "id", i.target_id
    if i.stable_key:
        yield "key", i.stable_key
    if i.message_id:
        yield "mid", _mid(i.message_id, i.size)
        yield "mid1", i.message_id
    if i.sha256:  # last: the same bytes are the same message (one without a Message-ID
        yield "sha", i.sha256  # that another store's run found in a PST, say)
    if i.sha256_unended:
        yield "sha", i.sha256_unended


def _mid(message_id: str, size: int | None) -> str:
    return f"{size}|{message_id}" if message_id else ""


def _item(r: tuple[Any, ...]) -> TargetItem:
    fields = tuple((str(k), str(v)) for k, v in json.loads(r[7]))
    return TargetItem(target_id=r[1], size=r[2], subject=r[3], message_id=r[4],
                      stable_key=r[5], sha256=r[6], fields=fields,
                      sha256_unended=r[8])  # fmt: skip


def _chunks(it: Iterable[_T], n: int) -> Iterator[list[_T]]:
    chunk: list[_T] = []
    for x in it:
        chunk.append(x)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _verify_folder(
    store: Store, target: FolderPath, rows: Callable[[], Iterable[tuple[MessageRow, str]]],
    items: Iterable[TargetItem],
) -> Iterator[VerifyLine]:  # fmt: skip
    index = _Index(items)
    try:
        # First every row takes the item its ledger id names, then the rest are matched
        # by key, Message-ID or content: in one pass a row whose item is gone took, by
        # content, a later row's item (two copies without a Message-ID), and the later
        # row, whose item is there, was called missing. The rows are read twice from
        # the catalog rather than held: a folder may hold a million.
        for row, target_id in rows():
            if target_id:
                index.pair(row.msg, target_id)
        for row, _target_id in rows():
            msg = row.msg
            found = index.paired(msg) or index.take(
                msg, ("key", msg.stable_key),
                ("mid", _mid(msg.message_id, msg.size)), ("mid1", msg.message_id),
                ("sha", msg.sha256),
            )  # fmt: skip
            if found is None:
                yield _line("-", target, row, "")
                continue
            try:
                yield compare(store, row, target, found)
            except IntegrityError as e:  # the store's copy is damaged: nothing to compare with
                yield _line("!", target, row, f"store file damaged: {e.message}")
        for item in index.unused():
            yield VerifyLine("+", target, item.target_id, "", item.subject, item.message_id,
                             item.size)  # fmt: skip
    finally:
        index.close()


def compare(store: Store, row: MessageRow, folder: FolderPath, item: TargetItem) -> VerifyLine:
    msg = row.msg
    if item.sha256:
        if item.sha256 == msg.sha256:
            return _line("=", folder, row, "")
        # An mbox ends every message with a line end (the next separator must start a
        # line), so one without gets it there: the same message, not a difference.
        if item.sha256_unended == msg.sha256:
            return _line("=", folder, row, "a line end added at the end by the target (mbox)")
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
    """Every line end as CRLF (bare CR and bare LF included). Mail that has only CRLF
    (most) is returned as it is after three C scans; the regex rewrote every line end."""
    crlfs = raw.count(b"\r\n")
    if raw.count(b"\r") == crlfs == raw.count(b"\n"):
        return raw
    return re.sub(rb"\r\n|\r|\n", b"\r\n", raw)


# --- the summary -----------------------------------------------------------


@dataclass
class VerifySummary:
    """Counts per mark, in total and per target folder (rclone check's closing block)."""

    total: Counter[str] = field(default_factory=Counter)
    folders: dict[str, Counter[str]] = field(default_factory=dict)
    #: notes on matches ("line ends made CRLF by the target") -> how many
    notes: Counter[str] = field(default_factory=Counter)

    def add(self, line: VerifyLine) -> None:
        name = MARK_NAMES[line.mark]
        self.total[name] += 1
        if line.mark == "=" and line.detail:
            self.notes[line.detail] += 1
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
