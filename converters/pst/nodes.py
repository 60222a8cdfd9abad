"""Folders and items of a PST/OST read straight from its node database, without pypff. I/O.

The result has the shape pypff gives (raw `(id, type, bytes)` entries per
object), so `pstkit.converters.pst.source` maps items the same way whichever reader read
them. A folder's sub-folders and items are the nodes whose parent it is, in
NID order, as libpff lists them: folders and search folders as sub-folders,
normal messages as items. Any damage raises one of READ_ERRORS; the caller
then falls back to pypff (for the file or for the one item).
"""

from __future__ import annotations

import struct
from array import array
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

from pstkit.converters.pst.btree import (
    NID_FOLDER,
    NID_MESSAGE,
    NID_SEARCH_FOLDER,
    READ_ERRORS,
    Ndb,
    NdbError,
    Ref,
)
from pstkit.converters.pst.ndb import Entry, Heap, pc_entries, tc_rows

NID_MESSAGE_STORE, NID_NAME_TO_ID_MAP, NID_ROOT_FOLDER = 0x21, 0x61, 0x122
_RECIPIENTS, _ATTACHMENTS = 0x692, 0x671
_PR_ATTACH_DATA, _PR_ATTACH_METHOD, _PR_LTP_ROW_ID = 0x3701, 0x3705, 0x67F2
_PT_OBJECT = 0x000D
_NID_ATTACHMENT = 0x05


def recipients_note(reason: str) -> str:
    return (f"recipient table unreadable ({reason}): To/Cc/Bcc are the display names "
            "Outlook kept, without addresses")


#: a message whose index entry was found by scanning (its node B-tree page is lost)
RECOVERED_NOTE = ("its index entry was lost (truncated or damaged file) and found again by "
                  "scanning the file: it may be an older version of the item")


def noted(item: RawItem, notes: Sequence[str]) -> RawItem:
    """The item with `notes` first among its problems (they travel as X-Pstkit-Note)."""
    notes = list(dict.fromkeys(notes))  # the same note from two checks: once
    if not notes:
        return item
    return RawItem(item.nid, item.entries, item.recipients, item.attachments,
                   [*((-1, n) for n in notes), *item.failed], item.recipients_read)


def damaged_part(part: str, reason: str) -> str:
    return f"{part} comes from a damaged block ({reason})"


def attachment_table_note(reason: str) -> str:
    return f"attachment table unreadable ({reason}): attachments lost"


@dataclass(frozen=True)
class RawAttachment:
    """One attachment: its properties, its data (by value or OLE) and its sub-node.
    A dataclass: tests compare a lenient read's attachments with an intact read's."""

    index: int  # its place among the item's attachments
    nid: int
    entries: list[Entry]
    data: bytes
    ref: Ref | None = None  # where an embedded message (attach method 5) lives


class RawItem:
    """One message as read from the file, before any decoding."""

    # a plain class, not a dataclass: cheaper to import (see btree.Layout)
    __slots__ = ("attachments", "entries", "failed", "nid", "recipients", "recipients_read")

    def __init__(self, nid: int, entries: list[Entry], recipients: list[list[Entry]],
                 attachments: list[RawAttachment], failed: list[tuple[int, str]] | None = None,
                 recipients_read: bool = True) -> None:
        self.nid, self.entries, self.recipients = nid, entries, recipients
        self.attachments = attachments
        self.failed = [] if failed is None else failed  # attachments not read: why
        self.recipients_read = recipients_read  # False: the recipient table was unreadable


class Children:
    """What a folder holds, by NID, in NID order."""

    # a plain class, not a dataclass: cheaper to import (see btree.Layout)
    __slots__ = ("folders", "messages", "nodes")

    def __init__(self, folders: dict[int, list[int]], messages: dict[int, array[int]],
                 nodes: dict[int, array[int]]) -> None:
        self.folders = folders
        self.messages = messages  # 4 bytes an item: a folder may hold a million
        self.nodes = nodes  # every child (also associated items): libpff's sub-items

    def position(self, parent: int, nid: int) -> int:
        """Where a child is among all of its parent's children (-1: not there)."""
        kids = self.nodes.get(parent, array("I"))
        at = bisect_left(kids, nid)
        return at if at < len(kids) and kids[at] == nid else -1


def children(ndb: Ndb) -> Children:
    """One walk over the node B-tree: the folder tree and every folder's items."""
    folders: dict[int, list[int]] = {}
    messages: dict[int, array[int]] = {}
    nodes: dict[int, array[int]] = {}
    for nid, parent in ndb.nodes():
        if nid != parent:
            if parent not in nodes:
                nodes[parent] = array("I")
            nodes[parent].append(nid)
        kind = nid & 0x1F
        if kind == NID_MESSAGE:
            if parent not in messages:
                messages[parent] = array("I")
            messages[parent].append(nid)
        elif kind in (NID_FOLDER, NID_SEARCH_FOLDER) and nid != parent:
            folders.setdefault(parent, []).append(nid)
    if ndb.lost:  # nodes found by scanning come after the tree's: put them in NID order
        for table in (messages, nodes):
            for key, kids in table.items():
                table[key] = array("I", sorted(kids))
        for key, fids in folders.items():
            folders[key] = sorted(fids)
    return Children(folders, messages, nodes)


class NodeReader:
    """Reads property contexts and whole messages by node id."""

    def __init__(self, ndb: Ndb) -> None:
        self.ndb = ndb

    def heap(self, ref: Ref) -> tuple[Heap, dict[int, Ref]]:
        subs = self.ndb.subnodes(ref[1])
        blocks = self.ndb.blocks

        loaded: dict[int, bytes] = {}  # a damaged heap may name one big sub-node many times

        def load(nid: int) -> bytes:
            if nid not in loaded:
                if nid not in subs:
                    raise NdbError(f"sub-node {nid:#x} missing")
                loaded[nid] = b"".join(blocks(subs[nid][0]))
            return loaded[nid]

        return Heap(tuple(blocks(ref[0])), load), subs

    def damage(self, nid: int) -> list[str]:
        """Which parts of a message come from blocks that fail their checks, one note a
        part ("attachment 2 comes from a damaged block (…)"): what another reader (libpff
        checks no CRC) gives for those parts may be changed."""
        try:
            data, sub = self.ndb.node(nid)
        except READ_ERRORS as e:
            return [f"its index entry is damaged ({e})"]
        out = [RECOVERED_NOTE] if nid in self.ndb.recovered else []
        why = self.ndb.check(data)
        if why:
            out.append(damaged_part("its property context", why))
        try:
            subs = self.ndb.subnodes(sub)
        except READ_ERRORS as e:
            return [*out, damaged_part("its recipients, attachments and large properties",
                                       str(e))]
        names = self._part_names(subs)
        for snid in sorted(subs, key=lambda n: (names.get(n, "~"), n)):
            why = self._tree_damage(subs[snid], 0)
            if why:
                out.append(damaged_part(names.get(snid, f"a large property (sub-node "
                                                        f"{snid:#x})"), why))
        return out

    def _tree_damage(self, ref: Ref, depth: int) -> str:
        """Why a sub-node (with its own sub-nodes: an attachment's data, an embedded
        message) cannot be read intact; "" when it can."""
        why = self.ndb.check(ref[0])
        if why or not ref[1] or depth > 8:
            return why
        try:
            subs = self.ndb.subnodes(ref[1])
        except READ_ERRORS as e:
            return str(e)
        return next((w for r in subs.values() if (w := self._tree_damage(r, depth + 1))), "")

    def _part_names(self, subs: dict[int, Ref]) -> dict[int, str]:
        names = {_RECIPIENTS: "the recipient table", _ATTACHMENTS: "the attachment table"}
        try:  # attachments by their place in the attachment table, as the user counts them
            rows = self._table(subs.get(_ATTACHMENTS))
            order = [int.from_bytes(raw[:4], "little") for row in rows
                     for pid, _t, raw in row if pid == _PR_LTP_ROW_ID]
        except READ_ERRORS:
            order = sorted(n for n in subs if n & 0x1F == _NID_ATTACHMENT)
        names.update({n: f"attachment {i + 1}" for i, n in enumerate(order)})
        return names

    def entries(self, nid: int) -> list[Entry]:
        """The properties of a node's property context (a folder, the store, the name map)."""
        heap, _subs = self.heap(self.ndb.node(nid))
        return pc_entries(heap)

    def item(self, nid: int, lenient: bool = False) -> RawItem:
        """A message with its recipients and attachments. `lenient` (the last resort, when
        libpff cannot read the item either): a damaged recipient table, attachment table or
        attachment becomes a note in `failed` instead of an error."""
        heap, subs = self.heap(self.ndb.node(nid))
        entries = pc_entries(heap)
        failed: list[tuple[int, str]] = []
        recipients: list[list[Entry]] | None = None
        try:
            recipients = self._table(subs.get(_RECIPIENTS))
        except READ_ERRORS as e:
            if not lenient:
                raise
            failed.append((-1, recipients_note(str(e))))
        try:
            rows = self._table(subs.get(_ATTACHMENTS))
        except READ_ERRORS as e:
            if not lenient:
                raise
            rows = []
            failed.append((-1, attachment_table_note(str(e))))
        attachments = []
        for index, row in enumerate(rows):
            try:
                attachments.append(self._row_attachment(nid, index, row, subs))
            except READ_ERRORS as e:
                if not lenient:
                    raise
                failed.append((index, f"attachment {index + 1} unreadable: {e}"))
        return RawItem(nid, entries, recipients or [], attachments, failed,
                       recipients_read=recipients is not None)

    def _row_attachment(self, nid: int, index: int, row: list[Entry], subs: dict[int, Ref]
                        ) -> RawAttachment:
        att_nid = next((int.from_bytes(raw[:4], "little") for pid, _t, raw in row
                        if pid == _PR_LTP_ROW_ID), None)
        if att_nid is None or att_nid not in subs:
            raise NdbError(f"attachment {att_nid} of {nid:#x} missing")
        return self._attachment(index, att_nid, subs[att_nid])

    def _attachment(self, index: int, nid: int, ref: Ref) -> RawAttachment:
        heap, subs = self.heap(ref)
        entries = pc_entries(heap)
        data = b""
        method = next((raw for pid, _t, raw in entries if pid == _PR_ATTACH_METHOD), b"")
        for pid, ptype, raw in entries:
            if pid != _PR_ATTACH_DATA or method[:1] == b"\x05":  # a message: read apart
                continue
            data = raw
            if ptype == _PT_OBJECT and len(raw) >= 4:  # an OLE object: in a sub-node
                obj = int(struct.unpack_from("<I", raw)[0])
                data = b"".join(self.ndb.blocks(subs[obj][0])) if obj in subs else b""
        return RawAttachment(index, nid, entries, data, ref)

    def _table(self, ref: Ref | None) -> list[list[Entry]]:
        if ref is None:
            return []
        heap, subs = self.heap(ref)
        info = heap.item(heap.root(0x7C))
        hnid = struct.unpack_from("<I", info, 14)[0] if len(info) >= 18 else 0
        rows = self.ndb.blocks(subs[hnid][0]) if hnid & 0x1F and hnid in subs else None
        return tc_rows(heap, rows)
