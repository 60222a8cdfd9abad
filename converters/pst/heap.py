"""A heap-on-node property context from raw bytes (MS-PST 2.3.1, 2.3.2, 2.3.3). Pure.

This is all pypff gives for an embedded message when the node reader cannot
read it: the first block of its property heap.
"""

from __future__ import annotations

import struct

from pstkit.converters.pst.props import PT_BOOLEAN, PT_LONG, PT_SHORT, Props, decode_value


class HeapPC:
    """A property context read from raw heap-on-node bytes.

    `props` holds what could be read; `unreadable` the ids whose values live in
    sub-nodes, which the raw bytes pypff hands out do not contain.
    """

    # a plain class, not a dataclass: cheaper to import (see btree.Layout)
    __slots__ = ("props", "unreadable")

    def __init__(self, props: Props, unreadable: tuple[int, ...]) -> None:
        self.props, self.unreadable = props, unreadable


class HeapError(ValueError):
    """The bytes are not a heap-on-node property context."""


def _heap_item(data: bytes, hid: int) -> bytes:
    if hid & 0x1F or hid >> 16:  # a node id, or an item in a later heap page
        raise HeapError(f"hid {hid:#x} is not in the first heap page")
    index = (hid >> 5) & 0x7FF
    ib_map = struct.unpack_from("<H", data, 0)[0]
    count = struct.unpack_from("<H", data, ib_map)[0]
    if not 1 <= index <= count:
        raise HeapError(f"hid {hid:#x} out of range")
    start, end = struct.unpack_from("<HH", data, ib_map + 4 + 2 * (index - 1))
    if not start <= end <= len(data):
        raise HeapError("bad heap allocation")
    return data[start:end]


def read_heap_pc(data: bytes, codepage: str) -> HeapPC:
    """Read the properties of a PC heap (one page; embedded messages are small)."""
    try:
        if len(data) < 12 or data[2] != 0xEC or data[3] != 0xBC:
            raise HeapError("not a property context heap")
        bth = _heap_item(data, struct.unpack_from("<I", data, 4)[0])
        if len(bth) < 8 or bth[0] != 0xB5 or bth[1] != 2 or bth[2] != 6:
            raise HeapError("bad BTH header")
        levels, root = bth[3], struct.unpack_from("<I", bth, 4)[0]
        records = _bth_leaves(data, root, levels) if root else b""
        return _pc_values(data, records, codepage)
    except (struct.error, IndexError) as e:
        raise HeapError(f"truncated heap ({e})") from e


def _bth_leaves(data: bytes, hid: int, levels: int, budget: list[int] | None = None) -> bytes:
    node = _heap_item(data, hid)
    if levels == 0:
        return node
    budget = [len(data)] if budget is None else budget
    out = b""
    for off in range(0, len(node) - 5, 6):  # intermediate: key(2) + hid(4)
        budget[0] -= 1
        if budget[0] < 0:  # more nodes than one heap page can hold: a cycle (damaged file)
            raise HeapError("bad BTH")
        out += _bth_leaves(data, struct.unpack_from("<I", node, off + 2)[0], levels - 1, budget)
    return out


def _pc_values(data: bytes, records: bytes, codepage: str) -> HeapPC:
    values: dict[int | str, object] = {}
    unreadable: list[int] = []
    for off in range(0, len(records) - 7, 8):
        pid, ptype, hnid = struct.unpack_from("<HHI", records, off)
        if ptype in (PT_SHORT, PT_LONG, PT_BOOLEAN):
            raw = records[off + 4 : off + 8]
        elif hnid == 0:
            raw = b""
        else:
            try:
                raw = _heap_item(data, hnid)
            except HeapError:
                unreadable.append(pid)
                continue
        values[pid] = decode_value(ptype, raw, codepage)
    return HeapPC(Props(values), tuple(unreadable))
