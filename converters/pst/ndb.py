"""Heaps, property contexts and table contexts of a PST (MS-PST 2.3), and embedded messages.

The node database itself (B-trees, blocks, sub-nodes) is `pst_btree`. Heap,
BTH, property and table context parsing here is pure; `pc_entries`/`tc_rows`
give raw `(id, type, bytes)` entries as pypff does, `read_pc`/`read_tc`
decoded values. pypff cannot open an embedded message (attach method 5): it
hands out only the first block of the message's property heap; `Reader`
reads it with its recipients and attachments from the attachment's
sub-nodes, recursively. Unicode (wVer 23) and ANSI (wVer 14/15) files with no
or "permute" encoding; anything else raises NdbError and the caller falls
back to what pypff gives (`heap_only`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from pstkit.converters.pst import speedups
from pstkit.converters.pst.btree import READ_ERRORS, Ndb, NdbError, Ref
from pstkit.converters.pst.heap import HeapError, read_heap_pc
from pstkit.converters.pst.items import attachment_name, file_attachment, item_bodies, mail_message
from pstkit.converters.pst.mime import Attachment, MapiMessage
from pstkit.converters.pst.props import Props, decode_value

Entry = tuple[int, int, bytes]  # (property id, property type, raw value), as pypff gives it

_INLINE = {0x0002, 0x0003, 0x000A, 0x000B, 0x0004}  # types whose value sits in the HNID


# --- LTP: heap, property context, table context (pure) ------------------------------


class Heap:
    # a plain class, not a dataclass: cheaper to import (see btree.Layout)
    __slots__ = ("blocks", "load", "maps")

    def __init__(self, blocks: tuple[bytes, ...], load: Callable[[int], bytes]) -> None:
        self.blocks = blocks
        self.load = load  # sub-node NID -> its data, for values stored there
        self.maps: dict[int, tuple[int, ...]] = {}  # page -> its allocation offsets

    def offsets(self, page: int) -> tuple[int, ...]:
        """A heap block's allocation offsets (its page map, MS-PST 2.3.1.5), parsed once."""
        got = self.maps.get(page)
        if got is None:
            block = self.blocks[page]
            ib_map = struct.unpack_from("<H", block, 0)[0]
            count = struct.unpack_from("<H", block, ib_map)[0]
            got = self.maps[page] = struct.unpack_from(f"<{count + 1}H", block, ib_map + 4)
        return got

    def item(self, hid: int) -> bytes:
        page, index = hid >> 16, (hid >> 5) & 0x7FF
        if page >= len(self.blocks) or index == 0:
            raise NdbError(f"bad HID {hid:#x}")
        offsets = self.offsets(page)
        if index >= len(offsets):
            raise NdbError(f"bad HID {hid:#x}")
        return self.blocks[page][offsets[index - 1] : offsets[index]]

    def value(self, hnid: int) -> bytes:
        if hnid & 0x1F == 0:
            return self.item(hnid) if hnid else b""
        return self.load(hnid)

    def root(self, client_sig: int) -> int:
        first = self.blocks[0] if self.blocks else b""
        if len(first) < 12 or first[2] != 0xEC or first[3] != client_sig:
            raise NdbError("not the expected heap")
        return int(struct.unpack_from("<I", first, 4)[0])


def _bth_leaves(heap: Heap, hid: int) -> tuple[list[bytes], int]:
    """The leaf blocks of a BTH (MS-PST 2.3.2) and the size of one record in them."""
    head = heap.item(hid)
    if len(head) < 8 or head[0] != 0xB5:
        raise NdbError("bad BTH header")
    size, levels, root = head[1] + head[2], head[3], struct.unpack_from("<I", head, 4)[0]
    if levels > 8:  # a heap of 8 KiB blocks never needs more; a damaged byte would loop long
        raise NdbError("bad BTH header")
    nodes = [root] if root else []
    for _ in range(levels):  # intermediate records: key + HID of the level below
        nodes = [struct.unpack_from("<I", r, head[1])[0] for n in nodes
                 for r in _split(heap.item(n), head[1] + 4)]
        if len(nodes) > 65536:  # more than a heap can hold: a cycle in a damaged file
            raise NdbError("bad BTH")
    return [heap.item(n) for n in nodes], size


def _bth_records(heap: Heap, hid: int) -> list[bytes]:
    leaves, size = _bth_leaves(heap, hid)
    return [r for leaf in leaves for r in _split(leaf, size)]


def _split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data) - size + 1, size)]


def pc_entries(heap: Heap) -> list[Entry]:
    """The raw properties of a property context (MS-PST 2.3.3), sub-node values included."""
    leaves, size = _bth_leaves(heap, heap.root(0xBC))
    if size != 8:
        raise NdbError("bad property context")
    blocks = heap.blocks
    maps = [heap.offsets(i) for i in range(len(blocks))]
    if speedups.C is not None:
        return speedups.C.pc_entries(leaves, blocks, maps, heap.load)
    return _pc_entries_py(leaves, blocks, maps, heap.load)


def _pc_entries_py(leaves: list[bytes], blocks: tuple[bytes, ...], maps: list[tuple[int, ...]],
                   load: Callable[[int], bytes]) -> list[Entry]:
    out: list[Entry] = []
    for leaf in leaves:
        for pid, ptype, hnid in struct.iter_unpack("<HHI", leaf[: len(leaf) // 8 * 8]):
            if ptype in _INLINE:
                raw = hnid.to_bytes(4, "little")
            elif hnid & 0x1F:  # a sub-node
                raw = load(hnid)
            elif hnid:  # inline: a heap item, as in Heap.item
                page, index = hnid >> 16, (hnid >> 5) & 0x7FF
                offs = maps[page]
                if not 0 < index < len(offs):
                    raise NdbError(f"bad HID {hnid:#x}")
                raw = blocks[page][offs[index - 1] : offs[index]]
            else:
                raw = b""
            out.append((pid, ptype, raw))
    return out


def read_pc(heap: Heap, codepage: str) -> Props:
    """A property context (MS-PST 2.3.3) with every value, sub-node ones included."""
    return Props({pid: decode_value(ptype, raw, codepage) for pid, ptype, raw in pc_entries(heap)})


def tc_rows(heap: Heap, rows_data: list[bytes] | None) -> list[list[Entry]]:
    """The raw cells of a table context (MS-PST 2.3.4), empty cells left out; `rows_data`
    when the row matrix is a sub-node."""
    info = heap.item(heap.root(0x7C))
    if len(info) < 22 or info[0] != 0x7C:
        raise NdbError("bad TCINFO")
    ncols, ceb_at, row_size = info[1], struct.unpack_from("<H", info, 6)[0], struct.unpack_from(
        "<H", info, 8)[0]
    cols = [(tag >> 16, tag & 0xFFFF, ib, cb, ceb_at + bit // 8, 0x80 >> (bit % 8))
            for tag, ib, cb, bit in struct.iter_unpack("<IHBB", info[22 : 22 + 8 * ncols])]
    hnid = struct.unpack_from("<I", info, 14)[0]
    if rows_data is None:
        rows_data = [heap.value(hnid)] if hnid else []
    if speedups.C is not None:
        return speedups.C.tc_rows(rows_data, row_size, cols, heap.blocks, _page_maps(heap),
                                  heap.value)
    return _tc_rows_py(rows_data, row_size, cols, heap.value)


def _page_maps(heap: Heap) -> list[tuple[int, ...] | None]:
    """Every heap page's map, None where it cannot be read (Heap.item raises for those)."""
    maps: list[tuple[int, ...] | None] = []
    for page in range(len(heap.blocks)):
        try:
            maps.append(heap.offsets(page))
        except READ_ERRORS:
            maps.append(None)
    return maps


def _tc_rows_py(rows_data: list[bytes], row_size: int,
                cols: list[tuple[int, int, int, int, int, int]],
                value: Callable[[int], bytes]) -> list[list[Entry]]:
    rows = [r for block in rows_data for r in _split(block, row_size)] if row_size else []
    out = []
    for row in rows:
        cells: list[Entry] = []
        for pid, ptype, ib, cb, at, bit in cols:
            if not row[at] & bit:
                continue  # the cell is empty
            cell = row[ib : ib + cb]
            if cb == 4 and ptype not in _INLINE:
                cell = value(struct.unpack_from("<I", cell)[0])
            cells.append((pid, ptype, cell))
        out.append(cells)
    return out


def read_tc(heap: Heap, rows_data: list[bytes] | None, codepage: str) -> list[Props]:
    """The rows of a table context (MS-PST 2.3.4); `rows_data` when the matrix is a sub-node."""
    return [Props({pid: decode_value(t, raw, codepage) for pid, t, raw in row})
            for row in tc_rows(heap, rows_data)]


# --- messages stored in sub-nodes ------------------------------------------------------

_RECIPIENTS, _ATTACHMENTS = 0x692, 0x671


class SubAttachment:
    # a plain class, not a dataclass: cheaper to import (see btree.Layout)
    __slots__ = ("error", "message", "props")

    def __init__(self, props: Props, message: SubMessage | None = None, error: str = "") -> None:
        self.props = props
        self.message = message  # attach method 5, read recursively
        self.error = error  # why an embedded message could not be read


class SubMessage:
    __slots__ = ("attachments", "props", "recipients")

    def __init__(self, props: Props, recipients: tuple[Props, ...],
                 attachments: tuple[SubAttachment, ...]) -> None:
        self.props, self.recipients, self.attachments = props, recipients, attachments


class Reader:
    """Reads messages that live in sub-nodes (embedded messages, recursively)."""

    def __init__(self, ndb: Ndb, codepage: str, names: dict[int, str]) -> None:
        self.ndb, self.codepage, self.names = ndb, codepage, names

    def _heap(self, ref: Ref) -> tuple[Heap, dict[int, Ref]]:
        subs = self.ndb.subnodes(ref[1])

        def load(nid: int) -> bytes:
            if nid not in subs:
                raise NdbError(f"sub-node {nid:#x} missing")
            return b"".join(self.ndb.blocks(subs[nid][0]))

        return Heap(tuple(self.ndb.blocks(ref[0])), load), subs

    def _props(self, props: Props) -> Props:
        """Named properties under the caller's names (see pst_items.NAMED); unknown ones go."""
        return Props({self.names.get(k, k) if isinstance(k, int) else k: v
                      for k, v in props.values.items()
                      if not isinstance(k, int) or k < 0x8000 or k in self.names})

    def message(self, ref: Ref, depth: int = 0) -> SubMessage:
        heap, subs = self._heap(ref)
        props = self._props(read_pc(heap, self.codepage))
        recipients = tuple(self._props(r) for r in self._table(subs.get(_RECIPIENTS)))
        attachments = []
        for row in self._table(subs.get(_ATTACHMENTS)):
            nid = row.integer(0x67F2)  # PR_LTP_ROW_ID: the attachment's sub-node
            if nid is not None and nid in subs:
                attachments.append(self._attachment(subs[nid], depth))
        return SubMessage(props, recipients, tuple(attachments))

    def _attachment(self, ref: Ref, depth: int) -> SubAttachment:
        heap, subs = self._heap(ref)
        props = self._props(read_pc(heap, self.codepage))
        method, obj = props.integer(0x3705), props.binary(0x3701)
        if method == 6 and obj is not None and len(obj) == 8:  # OLE: data in a sub-node
            nid = int(struct.unpack_from("<I", obj)[0])
            data = b"".join(self.ndb.blocks(subs[nid][0])) if nid in subs else b""
            return SubAttachment(Props({**props.values, 0x3701: data}))
        if method != 5:  # PR_ATTACH_METHOD: not an embedded message
            return SubAttachment(props)
        if depth >= 8:
            return SubAttachment(props, None, "embedded messages nested too deep")
        try:
            return SubAttachment(props, self.embedded(ref, depth + 1))
        except READ_ERRORS as e:
            return SubAttachment(props, None, str(e))

    def _table(self, ref: Ref | None) -> list[Props]:
        if ref is None:
            return []
        heap, subs = self._heap(ref)
        info = heap.item(heap.root(0x7C))
        hnid = struct.unpack_from("<I", info, 14)[0] if len(info) >= 18 else 0
        rows = self.ndb.blocks(subs[hnid][0]) if hnid & 0x1F and hnid in subs else None
        return read_tc(heap, rows, self.codepage)

    def embedded(self, attachment: Ref, depth: int = 0) -> SubMessage:
        """The message an attach-method-5 attachment holds (its PR_ATTACH_DATA_OBJ sub-node)."""
        heap, subs = self._heap(attachment)
        obj = read_pc(heap, self.codepage).binary(0x3701)
        if obj is None or len(obj) < 4:
            raise NdbError("attachment has no data object")
        nid = int(struct.unpack_from("<I", obj)[0])
        if nid not in subs:
            raise NdbError(f"embedded message sub-node {nid:#x} missing")
        return self.message(subs[nid], depth)

    def attachment_of(self, message_nid: int, attachment_nid: int) -> Ref:
        """The sub-node of one attachment of a top-level message."""
        subs = self.ndb.subnodes(self.ndb.node(message_nid)[1])
        if attachment_nid not in subs:
            raise NdbError(f"attachment sub-node {attachment_nid:#x} missing")
        return subs[attachment_nid]


def to_mapi(sm: SubMessage, codepage: str) -> MapiMessage:
    """An embedded message (and its own embedded messages) as pst_mime describes it."""
    notes: list[str] = []
    atts: list[Attachment] = []
    for i, a in enumerate(sm.attachments):
        if a.message is not None:
            atts.append(Attachment(attachment_name(a.props), "message/rfc822", b"",
                                   embedded=to_mapi(a.message, codepage)))
        elif a.error:
            notes.append(f"embedded message {i + 1} unreadable: {a.error}")
        else:
            built = file_attachment(a.props, a.props.binary(0x3701) or b"", i, notes)
            atts += [built] if built is not None else []
    bodies = item_bodies(sm.props, notes, codepage)
    return mail_message(sm.props, sm.recipients, bodies, tuple(atts), tuple(notes))


def heap_only(data: bytes, name: str, i: int, codepage: str, names: dict[int, str],
              notes: list[str]) -> tuple[Attachment, Props | None]:
    """The fallback when sub-nodes cannot be read (ANSI files, damage): pypff's attachment
    data is the embedded message's first property block; use what it holds."""
    try:
        pc = read_heap_pc(data, codepage)
    except HeapError as e:
        notes.append(f"embedded message {i + 1} ({name}) unreadable ({e}), kept as bytes")
        return Attachment(name or f"embedded-{i + 1}.bin", "application/octet-stream", data), None
    props = Props({names.get(k, k) if isinstance(k, int) else k: v
                   for k, v in pc.props.values.items()})
    lost = ", ".join(f"{pid:#06x}" for pid in pc.unreadable)
    notes.append(f"embedded message {i + 1}: recipients and attachments not readable"
                 + (f", nor properties {lost}" if lost else ""))
    # The recipient table is a sub-node; Outlook's display strings are all that is left.
    shown = [f"{h}: {props.text(pid)}" for h, pid in (("To", 0x0E04), ("Cc", 0x0E03),
                                                       ("Bcc", 0x0E02)) if props.text(pid)]
    inner_notes = ["recipients not readable" + (f"; Outlook shows {'; '.join(shown)}"
                                                if shown else "")]
    bodies = item_bodies(props, inner_notes, codepage)
    inner = mail_message(props, (), bodies, (), tuple(inner_notes))
    return Attachment(name, "message/rfc822", b"", embedded=inner), props
