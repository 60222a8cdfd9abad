"""The messaging layer (MS-PST 2.4) of a new PST: message store, name-to-id map, folders with
their hierarchy/contents/FAI tables, messages with recipients and attachments. I/O through
`NdbWriter`; what a folder, a message or a table holds is decided here.

Besides what [MS-PST] 2.7.1 requires, the store carries what an empty Outlook store has
(writers that Outlook accepts learned that its IPM-subtree validation wants them): the
table templates, a receive-folder table, an outgoing queue, the search root ("Finder"),
"Deleted Items" and one search folder listed in the search activity list. Messages are
written as they come; folders and their tables at `finish`, when their counts are known.
"""

from __future__ import annotations

import marshal
import struct
import tempfile
import uuid
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from .ltp import (
    Heap,
    Prop,
    SubNodes,
    bth,
    property_context,
    property_context_slot,
    table_context,
)
from .mapi import (
    PT_BINARY,
    PT_BOOLEAN,
    PT_LONG,
    PT_UNICODE,
    Attachment,
    Message,
    binary,
    boolean,
    long,
    unicode,
)
from .namemap import CONTENT_KEY, KEYWORDS, PART_MAX_SIZE, SOURCE_KEY, NameMap
from .ndb import NdbWriter

NID_STORE, NID_NAME_MAP, NID_ROOT = 0x21, 0x61, 0x122
NID_SUBTREE, NID_FINDER, NID_DELETED, NID_SPAM_SEARCH = 0x8022, 0x8042, 0x8062, 0x2223
NID_SMQ, NID_SEARCH_ACTIVITY, NID_HIERARCHY_MAP = 0x1E1, 0x201, 0xC01
_EMPTY_QUEUES = (0x321, 0x501, 0xE41)  # search gatherer folder queue and two more, empty
NID_RECEIVE_FOLDERS, NID_OUTGOING_QUEUE = 0x62B, 0x64C
NID_RECIPIENTS, NID_ATTACHMENTS = 0x692, 0x671
NID_EMBEDDED = (0x600 << 5) | 0x04  # an attached message, inside its attachment
PT_OBJECT = 0x000D
FIRST_FOLDER_INDEX, FIRST_MESSAGE_INDEX = 0x400, 0x10000

# Column sets of the tables (MS-PST 2.4.4.4.1, 2.4.4.5.1, 2.4.4.5.2, 2.4.5.3.1, 2.4.6.1.1),
# tags (id << 16 | type), exactly as in the templates of an Outlook-made store (pstsdk's
# sample1.pst); every table of a kind has the template's columns.
HIERARCHY = (0x0E300102, 0x0E330014, 0x0E340102, 0x0E380003, 0x3001001F, 0x36020003,
             0x36030003, 0x360A000B, 0x3613001F, 0x66350003, 0x66360003)
CONTENTS = (0x00170003, 0x001A001F, 0x00360003, 0x0037001F, 0x00390040, 0x0042001F,
            0x0057000B, 0x0058000B, 0x0070001F, 0x00710102, 0x0E03001F, 0x0E04001F,
            0x0E060040, 0x0E070003, 0x0E080003, 0x0E170003, 0x0E300102, 0x0E330014,
            0x0E340102, 0x0E380003, 0x0E3C0102, 0x0E3D0102, 0x10970003, 0x30080040,
            0x30130102, 0x65C60003)
FAI = (0x001A001F, 0x0E070003, 0x0E170003, 0x3001001F, 0x6800001F, 0x6803000B,
       0x68051003, 0x682F001F, 0x70030003, 0x70040102, 0x70050102, 0x7006001F, 0x70070003)
SEARCH_CONTENTS = (0x00170003, 0x001A001F, 0x00360003, 0x0037001F, 0x0042001F, 0x0057000B,
                   0x0058000B, 0x0E03001F, 0x0E04001F, 0x0E05001F, 0x0E060040, 0x0E070003,
                   0x0E080003, 0x0E170003, 0x0E2A000B, 0x30080040, 0x67F10003)
RECIPIENTS = (0x0C150003, 0x0E0F000B, 0x0FF90102, 0x0FFE0003, 0x0FFF0102, 0x3001001F,
              0x3002001F, 0x3003001F, 0x300B0102, 0x39000003, 0x39FF001F, 0x3A40000B)
ATTACHMENTS = (0x0E200003, 0x3704001F, 0x37050003, 0x370B0003)
OUTGOING = (0x000F0040, 0x00390040, 0x0E070003, 0x0E100003, 0x0E140003, 0x0E29001F,
            0x0EA20003, 0x67F10003)
_TEMPLATES = {0x60D: HIERARCHY, 0x60E: CONTENTS, 0x60F: FAI, 0x610: SEARCH_CONTENTS,
              NID_RECIPIENTS: RECIPIENTS, NID_ATTACHMENTS: ATTACHMENTS}


#: special folders found from entry ids on the Inbox and the root folder (MS-OXOSFLD)
_INBOX_IDS = (("calendar", 0x36D0), ("contacts", 0x36D1), ("journal", 0x36D2),
              ("notes", 0x36D3), ("tasks", 0x36D4), ("drafts", 0x36D7))


@dataclass
class Folder:
    nid: int
    parent: int
    name: str
    container_class: str = "IPF.Note"
    children: list[int] = field(default_factory=list)
    #: where this folder's contents-table rows are in the writer's spool (8 bytes an item:
    #: a folder may hold 100,000 items and memory stays flat)
    rows: array[int] = field(default_factory=lambda: array("Q"))
    unread: int = 0
    props: list[Prop] = field(default_factory=list)  # extra properties (entry ids)


def nid(index: int, kind: int) -> int:
    return (index << 5) | kind


class PstWriter:
    """Builds a whole store into an open, empty file; `finish` makes it a valid PST."""

    def __init__(self, f: BinaryIO, display_name: str, uid: bytes | None = None,
                 names: NameMap | None = None) -> None:
        self.ndb = NdbWriter(f)
        self.uid = uid or uuid.uuid4().bytes  # the store's PR_RECORD_KEY, in every entry id
        self.display_name = display_name
        self.folders: dict[int, Folder] = {}
        self.special: dict[str, int] = {}  # role name -> folder nid
        self.names = names or NameMap()  # an append keeps the earlier file's ids (append.py)
        # contents-table rows until `finish`; an anonymous file, gone when closed
        self.spool = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the writer)
        self.spool_size = 0  # bytes written to the spool (its end)
        self.keywords_id, self.key_id = self.names.id(KEYWORDS), self.names.id(SOURCE_KEY)
        self.next_folder, self.next_message = FIRST_FOLDER_INDEX, FIRST_MESSAGE_INDEX
        self._extra_store: list[Prop] = []
        self._add(Folder(NID_ROOT, NID_ROOT, "", ""))
        self._add(Folder(NID_SUBTREE, NID_ROOT, "Top of Personal Folders", ""))
        self._add(Folder(NID_FINDER, NID_ROOT, "Search Root", ""))
        self._add(Folder(NID_DELETED, NID_SUBTREE, "Deleted Items", ""))
        self._add(Folder(NID_SPAM_SEARCH, NID_ROOT, "SPAM Search Folder 2", ""))
        self.special["trash"] = NID_DELETED

    def remember_max_size(self, size: int) -> None:
        """Keep a split set's part size in the store (pstkit's named property)."""
        pid = self.names.id(PART_MAX_SIZE)
        self._extra_store = [(pid, 0x0014, struct.pack("<q", size))]

    def entry_id(self, folder_nid: int) -> bytes:
        """An entry id of this store (MS-PST 2.4.3.2): flags, provider uid, NID."""
        return b"\0" * 4 + self.uid + struct.pack("<I", folder_nid)

    def _add(self, folder: Folder) -> None:
        self.folders[folder.nid] = folder
        if folder.parent != folder.nid:
            self.folders[folder.parent].children.append(folder.nid)

    def folder(self, parent: int | None, name: str, container_class: str = "IPF.Note",
               role: str = "") -> int:
        """A new folder under `parent` (None: the IPM subtree); its NID. A role names one of
        Outlook's special folders (inbox, sent, trash, drafts, junk, outbox)."""
        if role == "trash":
            return NID_DELETED
        while True:
            new = nid(self.next_folder, 0x02)
            self.next_folder += 1
            if new not in (NID_SUBTREE, NID_FINDER, NID_DELETED):
                break
        return self.adopt_folder(new, parent, name, container_class, role)

    def adopt_folder(self, new: int, parent: int | None, name: str, container_class: str,
                     role: str = "") -> int:
        """A folder with a given NID (an append carries an earlier file's folders over
        with their NIDs, so entry ids and target ids stay valid)."""
        if new == NID_DELETED:
            return new
        self._add(Folder(new, NID_SUBTREE if parent is None else parent, name,
                         container_class))
        self.next_folder = max(self.next_folder, (new >> 5) + 1)
        if role:
            self.special.setdefault(role, new)
        return new

    def message(self, folder_nid: int, msg: Message, keywords: Sequence[str] = (),
                key: str = "", sha256: str = "") -> int:
        """Write one message now (with its categories, pstkit's stable key and, for mail
        without a Message-ID, the SHA-256 of its bytes); its contents-table row is kept
        for `finish`."""
        new = nid(self.next_message, 0x04)
        self.next_message += 1
        extra = [unicode(self.key_id, key)] if key else []
        if sha256:
            extra.append(unicode(self.names.id(CONTENT_KEY), sha256))
        if keywords:
            extra.append((self.keywords_id, 0x101F, multi_string(keywords)))
        msg = Message(msg.props + extra, msg.recipients, msg.attachments)
        data_bid, sub_bid, size = write_message(self.ndb, msg)
        self.adopt_message(folder_nid, new, data_bid, sub_bid,
                           [*msg.props, long(0x0E08, size)])
        return new

    def adopt_message(self, folder_nid: int, new: int, data_bid: int, sub_bid: int,
                      props: Sequence[Prop]) -> None:
        """A message node whose data is written (by `message`, or copied by an append):
        its NBT entry and its contents-table row from its properties."""
        self.ndb.node(new, data_bid, sub_bid, folder_nid)
        self.next_message = max(self.next_message, (new >> 5) + 1)
        folder = self.folders[folder_nid]
        row = {(p[0] << 16) | p[1]: p for p in props}
        # kept small until `finish` writes the table (a folder may hold 100,000 items)
        record = marshal.dumps((new, tuple(row[t] for t in CONTENTS if t in row)))
        # appended at `spool_size`, kept here: a seek to the end per item flushed the
        # spool's buffer each time (a write and an lseek per item; `_row` reads it only
        # in `finish`, which ends the writing)
        folder.rows.append(self.spool_size)
        self.spool.write(struct.pack("<I", len(record)) + record)
        self.spool_size += 4 + len(record)
        flags = int.from_bytes(row.get(0x0E070003, (0, 0, b"\0\0\0\0"))[2], "little")
        folder.unread += 0 if flags & 1 else 1

    # --- finish -------------------------------------------------------------------
    def finish(self) -> None:
        ndb = self.ndb
        self._special_entry_ids()
        for tid, tags in _TEMPLATES.items():
            self._table(tid, tags, [])
        self._table(0x6B6, (0x0E330014, 0x0E370102, 0x0E380003), [])
        self._table(0x6D7, (0x001A001F, 0x0E300102, 0x0E310102, 0x0E330014, 0x0E340102,
                            0x0E380003, 0x0E3E0102), [])
        self._table(0x6F8, (0x0E330014, 0x30070040), [])
        inbox = self.special.get("inbox", NID_ROOT)
        self._table(NID_RECEIVE_FOLDERS, (0x001A001F, 0x66050003),
                    [(1, [unicode(0x001A, ""), long(0x6605, inbox)])])
        self._table(NID_OUTGOING_QUEUE, OUTGOING, [])
        for folder in sorted(self.folders.values(), key=lambda f: f.nid):
            if folder.nid != NID_SPAM_SEARCH:
                self._folder(folder)
        self._spam_search_folder()
        self._pc(NID_NAME_MAP, self.names.props())
        heap = Heap(0x9C)  # the hierarchy map: empty, as in a new Outlook store
        self.ndb.node(NID_HIERARCHY_MAP, self.ndb.tree(heap.build(bth(heap, 16, 4, []))))
        self._pc(NID_STORE, self._store_props())
        for empty in (NID_SMQ, *_EMPTY_QUEUES):  # as in a new Outlook store
            ndb.node(empty, ndb.block(b""))
        ndb.node(NID_SEARCH_ACTIVITY, ndb.block(struct.pack("<I", NID_SPAM_SEARCH)))
        ndb.finish(self._rgnid())
        self.spool.close()

    def _special_entry_ids(self) -> None:
        """Drafts, junk... are found from the Inbox and the root folder (MS-OXOSFLD)."""
        extra = [binary(pid, self.entry_id(self.special[role])) for role, pid in _INBOX_IDS
                 if role in self.special]
        if "junk" in self.special:  # PR_ADDITIONAL_REN_ENTRYIDS, 5th value: Junk E-mail
            ids = [b""] * 4 + [self.entry_id(self.special["junk"])]
            extra.append((0x36D8, 0x1102, multi_binary(ids)))
        for target in {NID_ROOT, self.special.get("inbox", NID_ROOT)}:
            self.folders[target].props += extra

    def _store_props(self) -> list[Prop]:
        history = struct.pack("<I", 1) + self.uid + struct.pack("<I", 1)
        props = [binary(0x0FF9, self.uid), unicode(0x3001, self.display_name),
                 long(0x67FF, 0), binary(0x35E0, self.entry_id(NID_SUBTREE)),
                 binary(0x35E7, self.entry_id(NID_FINDER)), binary(0x0E34, history),
                 long(0x0E38, 0), boolean(0x6633, True), long(0x66FA, 0x000E0011),
                 *self._extra_store]
        mask = 0x89  # IPM subtree, wastebasket and finder are valid
        for role, pid, bit in (("trash", 0x35E3, 0x08), ("sent", 0x35E4, 0x10),
                               ("outbox", 0x35E2, 0x04)):
            if role in self.special:
                props.append(binary(pid, self.entry_id(self.special[role])))
                mask |= bit
        if "inbox" in self.special:
            mask |= 0x02
        return [*props, long(0x35DF, mask)]

    def _folder(self, f: Folder) -> None:
        kids = [self.folders[k] for k in sorted(f.children)]
        props = [unicode(0x3001, f.name), long(0x3602, len(f.rows)), long(0x3603, f.unread),
                 boolean(0x360A, bool(kids)), *f.props]
        if f.container_class:  # as Outlook: mail folders have a class and hidden counts
            props += [unicode(0x3613, f.container_class), long(0x6635, 0), long(0x6636, 0)]
        self._pc(f.nid, props, parent=f.parent)
        base = f.nid & ~0x1F
        self._table(base | 0x0D, HIERARCHY, [(k.nid, _hierarchy_row(k)) for k in kids])
        self._table(base | 0x0E, CONTENTS, (self._row(at) for at in f.rows))
        self._table(base | 0x0F, FAI, [])

    def _row(self, at: int) -> tuple[int, Sequence[Prop]]:
        self.spool.seek(at)
        size = struct.unpack("<I", self.spool.read(4))[0]
        nid_, cells = marshal.loads(self.spool.read(size))
        return int(nid_), list(cells)

    def _spam_search_folder(self) -> None:
        base = NID_SPAM_SEARCH & ~0x1F
        self._pc(NID_SPAM_SEARCH, [unicode(0x3001, "SPAM Search Folder 2"),
                                   long(0x3602, 0), long(0x3603, 0),
                                   boolean(0x360A, False)], parent=NID_ROOT)
        self.ndb.node(base | 0x06, self.ndb.block(b""))  # its (empty) search update queue
        self._pc(base | 0x07, [long(0x660B, 0)])  # search criteria object
        self._table(base | 0x10, SEARCH_CONTENTS, [])

    def _pc(self, node: int, props: Sequence[Prop], parent: int = 0) -> None:
        subs = SubNodes()
        blocks = property_context(props, subs)
        self.ndb.node(node, self.ndb.tree(blocks), _store_subs(self.ndb, subs), parent)

    def _table(self, node: int, tags: Sequence[int],
               rows: Iterable[tuple[int, Sequence[Prop]]]) -> None:
        subs = SubNodes()
        blocks = table_context(tags, rows, subs)
        self.ndb.node(node, self.ndb.tree(blocks), _store_subs(self.ndb, subs))

    def _rgnid(self) -> list[int]:
        """The header's next free index per NID type (MS-PST 2.2.2.6)."""
        out = [0x400] * 32
        out[0x02], out[0x04] = self.next_folder, self.next_message
        out[0x03], out[0x08] = 0x4000, 0x8000
        return [max(a, b) for a, b in zip(out, self.ndb.top_index, strict=True)]


def _hierarchy_row(f: Folder) -> list[Prop]:
    row = [unicode(0x3001, f.name), long(0x3602, len(f.rows)), long(0x3603, f.unread),
           boolean(0x360A, bool(f.children))]
    return row + ([unicode(0x3613, f.container_class)] if f.container_class else [])


def _store_subs(ndb: NdbWriter, subs: SubNodes) -> int:
    return ndb.subnodes([(n, ndb.tree(blocks), 0) for n, blocks in subs.items])


def multi_binary(values: Sequence[bytes]) -> bytes:
    """A PT_MV_BINARY value: count, offsets, data (MS-PST 2.3.3.4.2)."""
    head = 4 + 4 * len(values)
    offsets, at = [], head
    for v in values:
        offsets.append(at)
        at += len(v)
    return struct.pack(f"<I{len(values)}I", len(values), *offsets) + b"".join(values)


def multi_string(values: Sequence[str]) -> bytes:
    """A PT_MV_UNICODE value: count, offsets, UTF-16 strings."""
    return multi_binary([unicode(0, v)[2] for v in values])


# --- messages ---------------------------------------------------------------------


def write_message(ndb: NdbWriter, msg: Message) -> tuple[int, int, int]:
    """A message node: its PC, recipient table, attachment table and attachments. Returns
    (bidData, bidSub, size); size is every byte of its data trees, as Outlook's
    PR_MESSAGE_SIZE counts them, and is stored in the message and its contents row."""
    entries: list[tuple[int, int, int]] = []
    size = 0
    rsubs = SubNodes()
    rows = [(i, r) for i, r in enumerate(msg.recipients)]
    tags = _tags(RECIPIENTS, [p for r in msg.recipients for p in r])
    blocks = table_context(tags, rows, rsubs)
    size += _bytes(blocks, rsubs)
    entries.append((NID_RECIPIENTS, ndb.tree(blocks), _store_subs(ndb, rsubs)))
    arows = []
    for i, att in enumerate(msg.attachments):
        anid = nid(0x400 + i, 0x05)
        data_bid, sub_bid, asize, props = _attachment(ndb, att)
        size += asize
        entries.append((anid, data_bid, sub_bid))
        keep = {t >> 16 for t in ATTACHMENTS}
        arows.append((anid, [p for p in props if p[0] in keep]))
    if arows:
        tsubs = SubNodes()
        tblocks = table_context(ATTACHMENTS, arows, tsubs)
        size += _bytes(tblocks, tsubs)
        entries.append((NID_ATTACHMENTS, ndb.tree(tblocks), _store_subs(ndb, tsubs)))
    msubs = SubNodes()
    props = [p for p in msg.props if p[0] != 0x0E08]
    # built once: PR_MESSAGE_SIZE counts the PC's own blocks, and its value sits inline in
    # a record, so it is written into the built block (the layout does not depend on it)
    blocks, slot = property_context_slot([*props, long(0x0E08, 0)], msubs, 0x0E08)
    size += _bytes(blocks, msubs)
    if slot is None:  # over 447 properties: a two-level BTH, built again with the size
        msubs = SubNodes()
        blocks = property_context([*props, long(0x0E08, size)], msubs)
    else:
        patched = bytearray(blocks[slot[0]])
        patched[slot[1] : slot[1] + 4] = long(0x0E08, size)[2]
        blocks[slot[0]] = bytes(patched)
    data_bid = ndb.tree(blocks)
    entries += [(n, ndb.tree(b), 0) for n, b in msubs.items]
    return data_bid, ndb.subnodes(entries), size


def _attachment(ndb: NdbWriter, att: Attachment) -> tuple[int, int, int, list[Prop]]:
    """An attachment node (bidData, bidSub, bytes, its properties). An embedded message is
    a sub-node of the attachment, named by PR_ATTACH_DATA_OBJ (NID and size)."""
    extra: list[tuple[int, int, int]] = []
    props = list(att.props)
    inner_size = 0
    if att.embedded is not None:
        data_bid, sub_bid, inner_size = write_message(ndb, att.embedded)
        extra.append((NID_EMBEDDED, data_bid, sub_bid))
        props += [(0x3701, PT_OBJECT, struct.pack("<II", NID_EMBEDDED, inner_size)),
                  long(0x0E20, inner_size)]
    subs = SubNodes()
    blocks = property_context(props, subs)
    sub = ndb.subnodes([(n, ndb.tree(b), 0) for n, b in subs.items] + extra)
    return ndb.tree(blocks), sub, _bytes(blocks, subs) + inner_size, props


def _tags(base: Sequence[int], props: Sequence[Prop]) -> list[int]:
    """A template's columns plus every other property the rows hold."""
    out = list(base)
    seen = {t >> 16 for t in base}
    for pid, ptype, _raw in props:
        if pid not in seen:
            seen.add(pid)
            out.append((pid << 16) | ptype)
    return out


def _bytes(blocks: Sequence[bytes], subs: SubNodes) -> int:
    return sum(map(len, blocks)) + sum(len(b) for _n, bl in subs.items for b in bl)


__all__ = ["PT_BINARY", "PT_BOOLEAN", "PT_LONG", "PT_UNICODE", "PstWriter"]
