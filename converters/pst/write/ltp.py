"""Lists, tables and properties (MS-PST 2.3) of a new PST: heap-on-node, BTree-on-heap,
property contexts and table contexts. Pure: each builder returns the node's heap blocks and
the sub-nodes (large values, a large row matrix) the caller stores with `NdbWriter`.

Values are given raw, as they are stored: `(prop id, prop type, bytes)`; fixed-size types
of up to 4 bytes sit in the record itself, everything else in the heap, or in a sub-node
when larger than a heap allocation may be (3580 bytes).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pstkit.converters.pst import speedups

from .ndb import BLOCK_MAX, Data, cut

HEAP_ITEM_MAX = 3580  # largest heap allocation (MS-PST 2.3.1.1)
NID_TYPE_LTP = 0x1F  # sub-nodes that hold one large property value
_INLINE = {0x0002: 2, 0x0003: 4, 0x0004: 4, 0x000A: 4, 0x000B: 1}  # type -> size in a PC
_FIXED = {0x0002: 2, 0x0003: 4, 0x0004: 4, 0x000A: 4, 0x000B: 1,
          0x0005: 8, 0x0006: 8, 0x0007: 8, 0x0014: 8, 0x0040: 8}  # size of a TC cell
_MAX_ALLOCS = 2047  # an HID holds an 11-bit allocation index

Prop = tuple[int, int, bytes]  # (id, type, raw value)
SubNode = tuple[int, Sequence[Data]]  # (nid, data-tree blocks)


def _header_size(index: int) -> int:
    """HNHDR on block 0, HNBITMAPHDR on blocks 8, 136, 264..., HNPAGEHDR elsewhere."""
    if index == 0:
        return 12
    return 66 if index >= 8 and (index - 8) % 128 == 0 else 2


def _fill_level(free: int) -> int:
    """The 4-bit fill level of a heap block with `free` bytes left (MS-PST 2.3.1.2)."""
    for level, bound in enumerate((3584, 2560, 2048, 1792, 1536, 1280, 1024, 768, 512,
                                   256, 128, 64, 32, 16, 8)):
        if free >= bound:
            return level
    return 0xF


@dataclass
class Heap:
    """A heap-on-node being built: allocations go to the last block while they fit."""

    client_sig: int  # 0xBC property context, 0x7C table context, 0xB5 BTH only
    blocks: list[list[bytes]] = field(default_factory=lambda: [[]])
    sizes: list[int] = field(default_factory=lambda: [_header_size(0)])

    def add(self, item: bytes) -> int:
        """Allocate `item`; its HID. (Called ~80 times a message: the fit test is inline.)"""
        size = len(item)
        if size > HEAP_ITEM_MAX:
            raise ValueError("heap item too large")
        index = len(self.blocks) - 1
        items = self.blocks[index]
        n = len(items) + 1
        end = self.sizes[index] + size
        if n > _MAX_ALLOCS or end + (end & 1) + 4 + 2 * (n + 1) > BLOCK_MAX:
            items, n, index = [], 1, index + 1
            self.blocks.append(items)
            self.sizes.append(_header_size(index))
            end = self.sizes[index] + size
        items.append(item)
        self.sizes[index] = end
        return (index << 16) | (n << 5)

    def where(self, hid: int) -> tuple[int, int]:
        """(block index, offset in it) of an allocation, as `build` lays it out."""
        index, n = hid >> 16, (hid >> 5) & 0x7FF
        return index, _header_size(index) + sum(map(len, self.blocks[index][: n - 1]))

    def build(self, root: int) -> list[bytes]:
        """The heap's data blocks. Every block but the last is a full data block (readers
        find a block by its index) with its page map at the very end, so the gap before
        the map is the block's free space."""
        last = len(self.blocks) - 1
        out, levels = [], []
        for i in range(len(self.blocks)):
            block, free = self._block(i, root, i < last)
            out.append(block)
            levels.append(_fill_level(free))
        first = bytearray(out[0])
        first[8:12] = _nibbles(levels[:8], 4)
        out[0] = bytes(first)
        for at in range(8, len(out), 128):
            bitmap = bytearray(out[at])
            bitmap[2:66] = _nibbles(levels[at : at + 128], 64)
            out[at] = bytes(bitmap)
        return out

    def _block(self, index: int, root: int, full: bool) -> tuple[bytes, int]:
        items = self.blocks[index]
        offsets = [_header_size(index)]
        for item in items:
            offsets.append(offsets[-1] + len(item))
        map_size = 4 + 2 * len(offsets)
        ib_map = BLOCK_MAX - map_size if full else offsets[-1] + (offsets[-1] & 1)
        if index == 0:
            head = struct.pack("<HBBI4x", ib_map, 0xEC, self.client_sig, root)
        else:
            head = struct.pack("<H", ib_map).ljust(_header_size(index), b"\0")
        body = (head + b"".join(items)).ljust(ib_map, b"\0")
        body += struct.pack(f"<HH{len(offsets)}H", len(items), 0, *offsets)
        free = ib_map - offsets[-1] if full else BLOCK_MAX - len(body)
        return body, free


def _nibbles(levels: Sequence[int], size: int) -> bytes:
    out = bytearray(size)
    for i, level in enumerate(levels):
        out[i // 2] |= level << (4 * (i & 1))
    return bytes(out)


def bth(heap: Heap, key_size: int, data_size: int, records: Sequence[bytes]) -> int:
    """A BTree-on-heap (MS-PST 2.3.2) over records already sorted by key; its header HID."""
    return _bth(heap, key_size, data_size, records)[0]


def _bth(heap: Heap, key_size: int, data_size: int, records: Sequence[bytes]
         ) -> tuple[int, int]:
    """`bth`, and the HID of its only leaf (-1 when it has more than one level)."""
    level, rows = 0, list(records)
    per = HEAP_ITEM_MAX // (key_size + data_size)
    root = 0
    while rows:
        chunks = [rows[i : i + per] for i in range(0, len(rows), per)]
        hids = [heap.add(b"".join(c)) for c in chunks]
        if len(hids) == 1:
            root = hids[0]
            break
        rows = [c[0][:key_size] + struct.pack("<I", h) for c, h in zip(chunks, hids, strict=True)]
        per, level = HEAP_ITEM_MAX // (key_size + 4), level + 1
    header = heap.add(struct.pack("<BBBBI", 0xB5, key_size, data_size, level, root))
    return header, root if level == 0 and rows else -1


class SubNodes:
    """Sub-node NIDs handed out for one node's large values."""

    def __init__(self, start: int = 0x400) -> None:
        self.next = start
        self.items: list[SubNode] = []

    def put(self, data: bytes) -> int:
        nid = (self.next << 5) | NID_TYPE_LTP
        self.next += 1
        self.items.append((nid, cut(data)))
        return nid


def _value_ref(heap: Heap, subs: SubNodes, raw: bytes) -> int:
    """Where a variable-size value goes: the heap, or a sub-node when large (its HNID)."""
    return heap.add(raw) if len(raw) <= HEAP_ITEM_MAX else subs.put(raw)


def property_context(props: Sequence[Prop], subs: SubNodes) -> list[bytes]:
    """A PC (MS-PST 2.3.3): the heap blocks; large values are added to `subs`."""
    return _property_context(props, subs)[0]


def property_context_slot(props: Sequence[Prop], subs: SubNodes, pid: int
                          ) -> tuple[list[bytes], tuple[int, int] | None]:
    """`property_context`, and where the inline value of property `pid` (given among
    `props`, fixed-size) sits: (block index, offset), None when it is not inline or the
    BTH has more than one level. The caller may overwrite those 4 bytes with a value it
    learns only from the built blocks (a message's size)."""
    return _property_context(props, subs, pid)


def _property_context(props: Sequence[Prop], subs: SubNodes, pid: int = -1
                      ) -> tuple[list[bytes], tuple[int, int] | None]:
    """The blocks and `pid`'s slot; by the C twin (_pstspeed_ltp.c) when it is there and
    takes the input (it leaves values that are no bytes, ids out of range to Python)."""
    if speedups.C is not None:
        done = speedups.C.pc_build(props, subs.next, pid)
        if done is not None:
            blocks, larges, slot = done
            for raw in larges:  # the NIDs the C twin gave them, in the same order
                subs.put(raw)
            return blocks, slot
    return _property_context_py(props, subs, pid)


_RECORD = struct.Struct("<HHI")


def _property_context_py(props: Sequence[Prop], subs: SubNodes, pid: int = -1
                         ) -> tuple[list[bytes], tuple[int, int] | None]:
    """`_property_context` in Python (the C twin's reference)."""
    heap = Heap(0xBC)
    records = []
    pack, at = _RECORD.pack, -1
    for i, (p, ptype, raw) in enumerate(sorted(props, key=lambda p: p[0])):
        if ptype in _INLINE:
            hnid = int.from_bytes(raw[:4].ljust(4, b"\0"), "little")
            if p == pid:
                at = i
        else:
            hnid = heap.add(raw) if len(raw) <= HEAP_ITEM_MAX else subs.put(raw)
        records.append(pack(p, ptype, hnid))
    if len({r[:2] for r in records}) != len(records):
        raise ValueError("a property is given twice")
    root, leaf = _bth(heap, 2, 6, records)
    blocks = heap.build(root)
    if at < 0 or leaf < 0:
        return blocks, None
    index, offset = heap.where(leaf)
    return blocks, (index, offset + at * 8 + 4)


@dataclass(frozen=True)
class Column:
    tag: int  # (id << 16) | type
    ib: int
    cb: int
    bit: int


def _width(tag: int) -> int:
    return _FIXED.get(tag & 0xFFFF, 4)  # variable-size values: a 4-byte HNID


def columns(tags: Sequence[int]) -> tuple[list[Column], int, tuple[int, int, int, int]]:
    """The layout of a row (MS-PST 2.3.4.4): row id and version first, then 8-, 4-, 2- and
    1-byte cells, then the cell existence bitmap. Columns by tag, row size, TCINFO's rgib."""
    rest = [t for t in dict.fromkeys(tags) if t >> 16 not in (0x67F2, 0x67F3)]
    order = [0x67F20003, 0x67F30003, *sorted(rest, key=lambda t: -_width(t))]
    cols, ib = [], 0
    for bit, tag in enumerate(order):
        cols.append(Column(tag, ib, _width(tag), bit))
        ib += _width(tag)
    end4 = sum(c.cb for c in cols if c.cb >= 4)
    end2 = end4 + sum(c.cb for c in cols if c.cb == 2)
    end1 = end2 + sum(c.cb for c in cols if c.cb == 1)
    size = end1 + (len(cols) + 7) // 8
    return sorted(cols, key=lambda c: c.tag), size, (end4, end2, end1, size)


def table_context(tags: Sequence[int], rows: Iterable[tuple[int, Sequence[Prop]]],
                  subs: SubNodes) -> list[bytes]:
    """A TC (MS-PST 2.3.4) with these columns and rows `(row id, cells)`: the heap blocks;
    a row matrix over one heap allocation becomes a sub-node in `subs`. The rows are taken
    once, in order (a folder's come from the writer's spool: only their encoded form is
    kept, not 100,000 rows of property tuples). By the C twin (_pstspeed_ltp.c) when it
    is there."""
    if speedups.C is None:
        return table_context_py(tags, rows, subs)
    cols, size, rgib, plan = _layout(tuple(tags))
    blocks, larges, matrix = speedups.C.tc_build(plan, size, rows, subs.next, len(cols),
                                                 rgib, _col_descs(tuple(tags)))
    for raw in larges:  # the NIDs the C twin gave them, in the same order
        subs.put(raw)
    if matrix is not None:
        subs.items.append(((subs.next << 5) | NID_TYPE_LTP, matrix))
        subs.next += 1
    return blocks


def table_context_py(tags: Sequence[int], rows: Iterable[tuple[int, Sequence[Prop]]],
                     subs: SubNodes) -> list[bytes]:
    """`table_context` in Python (the C twin's reference)."""
    heap = Heap(0x7C)
    cols, size, rgib, plan = _layout(tuple(tags))
    matrix, ids = [], []
    for i, (rid, cells) in enumerate(rows):
        matrix.append(_row(heap, subs, plan, size, rid, i, cells))
        ids.append((rid, i))
    index = bth(heap, 4, 4, [struct.pack("<II", rid, i) for rid, i in sorted(ids)])
    data = b"".join(matrix)
    if not data:
        hnid = 0
    elif len(data) <= HEAP_ITEM_MAX:
        hnid = heap.add(data)
    else:  # rows never span blocks: each block holds whole rows, padded
        per = BLOCK_MAX // size
        blocks = [b"".join(matrix[i : i + per]) for i in range(0, len(matrix), per)]
        blocks = [b.ljust(BLOCK_MAX, b"\0") for b in blocks[:-1]] + blocks[-1:]
        hnid = (subs.next << 5) | NID_TYPE_LTP
        subs.next += 1
        subs.items.append((hnid, blocks))
    info = struct.pack("<BB4HIII", 0x7C, len(cols), *rgib, index, hnid, 0)
    info += _col_descs(tuple(tags))
    return heap.build(heap.add(info))


@functools.lru_cache(maxsize=64)
def _col_descs(tags: tuple[int, ...]) -> bytes:
    """TCINFO's column descriptions (TCOLDESC) of these columns."""
    return b"".join(struct.pack("<IHBB", c.tag, c.ib, c.cb, c.bit) for c in _layout(tags)[0])


_Plan = Sequence[tuple[int, int, int, bool, int, int]]


@functools.lru_cache(maxsize=64)
def _layout(tags: tuple[int, ...]) -> tuple[list[Column], int, tuple[int, int, int, int],
                                            _Plan]:
    """`columns`, and per column (tag, offset, width, fixed-size?, CEB byte, CEB bit):
    worked out once per set of columns (a recipient table's are nearly always the same),
    not for every message. Callers only read what it returns."""
    cols, size, rgib = columns(tags)
    ceb_at = size - (len(cols) + 7) // 8
    plan = tuple((c.tag, c.ib, c.cb, (c.tag & 0xFFFF) in _FIXED, ceb_at + c.bit // 8,
                  0x80 >> (c.bit % 8)) for c in cols)
    return cols, size, rgib, plan
_U32 = struct.Struct("<I")


def _row(heap: Heap, subs: SubNodes, plan: _Plan, size: int, rid: int, version: int,
         cells: Sequence[Prop]) -> bytes:
    row = bytearray(size)
    values = {(pid << 16) | ptype: raw for pid, ptype, raw in cells}
    values[0x67F20003] = _U32.pack(rid)
    values[0x67F30003] = _U32.pack(version)
    for tag, ib, cb, fixed, ceb, bit in plan:
        raw = values.get(tag)
        if raw is None:
            continue
        if fixed:
            row[ib : ib + cb] = raw[:cb].ljust(cb, b"\0")
        else:
            _U32.pack_into(row, ib, heap.add(raw) if len(raw) <= HEAP_ITEM_MAX
                           else subs.put(raw))
        row[ceb] |= bit
    return bytes(row)
